// The kiln CLI's subcommands.
#pragma once

#include <map>
#include <random>
#include <string>
#include <vector>

#include "kiln/converter.h"
#include "kiln/model.h"
#include "kiln/tensor.h"

namespace kiln::cli {

struct InspectOptions {
  std::string dir;
  std::vector<std::string> tags;
  std::string signature_key = "serving_default";
};
int Inspect(const InspectOptions& options);

struct RunOptions {
  std::string dir;
  std::vector<std::string> tags;
  std::string signature_key = "serving_default";
  std::vector<std::string> inputs;  // NAME=FILE.npy
  int64_t batch_size = 1;
  int64_t input_size = 128;
  uint64_t seed = 0;
  std::string output_dir;
  int iterations = 1;
};
int Run(const RunOptions& options);

// The INT8 options of convert, build and bench (calibration, explicit quantization, layers kept
// in floating point).
struct Int8Options {
  std::string calibration_data;        // a directory of .npy batches (ReadBuildData's layout)
  std::string calibrator;  // empty: the precision's default
  double calibration_percentile = 99.99;
  std::string calibration_table;       // a table file to use instead of calibrating
  std::string save_calibration_table;  // where to write the table used
  bool no_calibration = false;         // use_calibration=false
  std::vector<std::string> keep_precision;  // layers kept in floating point
};
// Sets the INT8 fields of `params` from `int8`.
void ApplyInt8Options(const Int8Options& int8, ConversionParams& params);
// converter.convert(), with the calibration batches of --calibration-data when given (read for
// `inputs`, the source signature's), then --save-calibration-table.
void ConvertWithCalibration(Converter& converter, const Int8Options& int8, const std::vector<TensorSpec>& inputs);

struct ConvertOptions {
  std::string input_dir, output_dir;
  std::vector<std::string> tags;
  std::string signature_key = "serving_default";
  std::string precision = "FP32";
  int minimum_segment_size = 3;
  int maximum_cached_engines = 1;
  bool use_dynamic_shape = false;
  std::string profile_strategy = "Range";
  std::string build_shapes;  // "x:8x128,y:8x128;x:4x384,y:4x384"
  std::string build_data;    // a directory of .npy inputs (ReadBuildData)
  bool no_build_at_runtime = false;
  bool no_save_engines = false;
  std::vector<std::string> denylist;
  std::string device = "cpu";
  std::string report_csv;
  Int8Options int8;
};
int Convert(const ConvertOptions& options);
// Shared by convert and bench (convert_command.cc). "x:8x128,y:8x128;x:4x384" -> one map per ';'
// run; errors name `flag`.
std::vector<std::map<std::string, Shape>> ParseBuildShapes(const std::string& text,
                                                           const std::string& flag = "--build-shapes");
// Random values for input `spec` of `shape`: normal floats; integers in [0, 9] (valid token ids
// and masks), below the input's index_limit where it indexes a smaller table; bools. Errors name
// the input.
Tensor RandomTensor(const TensorSpec& spec, const Shape& shape, std::mt19937_64& rng);
// A tensor name as a file name: characters other than letters, digits, '_', '-' and '.' become
// '_' (how `kiln run` names its .npy outputs, and how --build-data finds inputs).
std::string SafeFileName(const std::string& name);
// --build-data DIR: the build runs' inputs from .npy files, DIR/NAME.npy for one run or
// DIR/RUN/NAME.npy for several (runs in RUN name order); NAME is an input's name or its
// SafeFileName. kInvalidArgument naming the run and the input for a missing input, an .npy file
// that names no input, or a directory mixing both layouts.
std::vector<std::vector<Tensor>> ReadBuildData(const std::string& dir, const std::vector<TensorSpec>& inputs,
                                               const std::string& flag = "--build-data");

struct BenchOptions {
  std::string model;  // anything LoadModel loads
  std::vector<std::string> tags;
  std::string signature_key = "serving_default";
  int64_t batch_size = 1;
  std::string shapes;           // "x:8x224x224x3,y:8x10"
  int warmup = 10;              // iterations (all threads together)
  double duration_s = 10.0;     // measure this long unless iterations > 0
  int64_t iterations = 0;       // measure exactly this many inferences (all threads together)
  int threads = 1;              // concurrent callers of Signature::Run
  bool native = false;          // do not convert an unconverted SavedModel
  std::string precision = "FP32";
  std::string device = "cpu";   // engine backend of the in-memory conversion
  std::string io = "host";      // where inputs and outputs live: host, or device (the engines' GPU)
  uint64_t seed = 0;
  bool json = false;
  std::string cuda_graph = "on";  // GPU engines replay CUDA graphs of repeated runs (on/off)
  int profile_runs = 0;         // > 0: that many more runs with per-layer timing, then the profile
  int profile_top = 25;         // layers listed in the profile
  Int8Options int8;             // of the in-memory conversion
};
int Bench(const BenchOptions& options);


struct BuildOptions {
  std::string input;   // SavedModel directory (or a model file the Converter accepts)
  std::string output;  // the .kiln file to write
  std::vector<std::string> tags;
  std::string signature_key = "serving_default";
  std::string precision = "FP32";
  int minimum_segment_size = 3;
  int maximum_cached_engines = 1;
  std::string min_shapes, opt_shapes, max_shapes;  // "name:1x3x224x224,..."
  std::string shapes;                              // fixed: min = opt = max
  bool no_build_at_runtime = false;
  std::vector<std::string> denylist;
  std::string device = "cpu";
  Int8Options int8;
};
int Build(const BuildOptions& options);

struct SummaryOptions {
  std::string dir;
  std::vector<std::string> tags;
  int line_length = 160;
};
int Summary(const SummaryOptions& options);

// Markdown list of supported TF ops and IR ops (docs/supported-ops.md).
std::string SupportedOpsMarkdown();
int Ops();

}  // namespace kiln::cli
