// The converter: TF-TRT's conversion workflow on Kiln's IR.
//
//   kiln::ConversionParams params;
//   params.precision_mode = "FP16";
//   params.maximum_cached_engines = 16;
//   kiln::Converter converter("/models/bert", {"serve"}, "serving_default", params);
//   converter.convert();
//   converter.build(input_fn);          // optional: pre-build engines for these shapes
//   converter.save("/models/bert_kiln");
//   std::cout << converter.summary();
//
// The converted model is still a SavedModel; load it with kiln::LoadModel. save_kiln_file writes
// the same content as one self-contained .kiln file (convert/kiln_file.h), which LoadModel also
// loads. build_profiles builds engines for explicit min/opt/max input shapes (trtexec style):
//
//   kiln::InputShapeProfile profile{{"input_ids", {{1, 16}, {8, 128}, {8, 384}}}};
//   converter.build_profiles({profile});   // needs params.use_dynamic_shape = true
//   converter.save_kiln_file("/models/bert.kiln");
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/model.h"
#include "kiln/precision.h"
#include "kiln/tensor.h"

namespace kiln {

struct ConversionParams {
  std::string precision_mode = "FP32";              // FP32, FP16, BF16, INT8 (case-insensitive)
  int64_t max_workspace_size_bytes = int64_t{1} << 30;
  int minimum_segment_size = 3;                     // effective nodes; -1 disables conversion
  int maximum_cached_engines = 1;                   // per engine node
  bool use_calibration = true;                      // INT8 only
  bool allow_build_at_runtime = true;
  bool use_dynamic_shape = false;
  std::string dynamic_shape_profile_strategy = "Range";  // Range, Optimal, Range+Optimal, ImplicitBatchModeCompatible
  bool is_dynamic_op = true;                        // V2: false is rejected
  int max_batch_size = 1;                           // implicit batch only
  std::vector<std::string> denylist;                // op types (TF or IR names) never converted
  std::string device = "cpu";                       // engine backend
  // INT8 / FP8 with use_calibration (Kiln's additions to TF-TRT's parameters): the calibrator
  // (entropy, minmax, percentile; empty: entropy for INT8, as TensorRT, and minmax for FP8, whose
  // exponent holds outliers that clipping would cost more than it saves), its percentile, and a
  // calibration table file to use instead of calibrating (a table a previous conversion saved,
  // or one a user wrote; see docs/converter.md, "INT8").
  std::string calibrator;
  double calibration_percentile = 99.99;
  std::string calibration_table;
  // INT8: layers kept in floating point (the engine's precision otherwise: FP32): node names, op
  // types (IR, TensorFlow or ONNX names) or quantized tensor names (as the calibration table
  // names them: every reader of that tensor), each matched exactly or, ending in '*', as a
  // prefix. A pattern that matches no quantizable layer is an error.
  std::vector<std::string> keep_precision;
  // Where progress (calibration, engine builds, saving) and engine messages go, one line per
  // call; stderr when unset. Called from the converting thread.
  std::function<void(const std::string&)> log;

  // kInvalidArgument naming the field and why, for invalid values and combinations.
  void Validate() const;
};

// A generator of input sets: each call returns the next list of tensors (in signature input
// order), or nullopt when exhausted.
using InputFn = std::function<std::optional<std::vector<Tensor>>()>;

// The shapes one signature input may take in an explicit profile: every dim min <= opt <= max.
struct ShapeRange {
  Shape min, opt, max;
};
// One explicit optimization profile: signature input name -> its range (every input given).
using InputShapeProfile = std::map<std::string, ShapeRange>;

class Converter {
 public:
  Converter(std::string input_saved_model_dir, std::vector<std::string> input_saved_model_tags = {"serve"},
            std::string input_saved_model_signature_key = "serving_default", ConversionParams params = {});
  ~Converter();
  Converter(const Converter&) = delete;
  Converter& operator=(const Converter&) = delete;

  // Freezes, segments and rewrites the graph. INT8 with use_calibration needs calibration_input_fn
  // (batches of representative inputs; the FP32 graph runs on each twice, with progress on
  // stderr) or params.calibration_table; the calibrated ranges become quantize-dequantize steps
  // in the graph (convert/calibration_table.h). INT8 without use_calibration runs the
  // quantization the model itself carries (ONNX QuantizeLinear/DequantizeLinear, TF FakeQuant).
  void convert(const InputFn& calibration_input_fn = nullptr);
  // The converted signature, run in this process: engines come from build() or are built at first
  // use (allow_build_at_runtime), as in a loaded converted model. Valid while the Converter lives;
  // thread-safe like any Signature. kFailedPrecondition before convert().
  const Signature& signature() const;
  // The INT8 calibration table convert() computed or read, as JSON (empty unless INT8 with
  // use_calibration): save it to reuse with params.calibration_table.
  std::string calibration_table_json() const;
  // Runs the converted graph on each input set to build engines (or collect dynamic-shape profiles).
  // kFailedPrecondition if called twice or before convert(); kInvalidArgument if input_fn is empty.
  void build(const InputFn& input_fn);
  // Builds engines for explicit signature-input shape ranges (TensorRT / trtexec style), one engine
  // per engine node and profile. The converted graph runs natively at each profile's min, opt and
  // max shapes (random floats for floating inputs, zeros for integer and bool inputs, so token ids
  // and indices are valid) to learn each engine node's input shapes; its engine profile spans
  // what it saw (min from the min run, opt from the opt run, max from the max run; where an
  // engine's input dim does not grow with the signature's, the range covers all three runs).
  // Needs params.use_dynamic_shape (kFailedPrecondition otherwise, or when build() or
  // build_profiles() was already called, or before convert()); kInvalidArgument naming the input
  // for a missing or unknown input, a rank or static dim the signature does not accept, a
  // negative dim or min <= opt <= max violated.
  void build_profiles(const std::vector<InputShapeProfile>& profiles);
  // Writes the converted SavedModel; with save_gpu_specific_engines=false, no device-specific
  // engine is written (they are rebuilt where the model is loaded).
  void save(const std::string& output_saved_model_dir, bool save_gpu_specific_engines = true);
  // Writes the same content as save() as one .kiln file (written to a temporary name next to it,
  // then renamed into place). Load it with kiln::LoadModel.
  void save_kiln_file(const std::string& path, bool save_gpu_specific_engines = true);
  // TF-TRT's summary table plus the non-conversion report.
  std::string summary(int line_length = 160, bool detailed = true) const;
  // The non-conversion report as CSV: op,reason,count,example_nodes.
  std::string non_conversion_report_csv() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln
