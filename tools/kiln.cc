// The kiln command-line tool.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <exception>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "kiln/error.h"
#include "kiln/tensor.h"
#include "kiln/custom_op.h"
#include "kiln/version.h"
#include "tools/commands.h"

namespace {

// The INT8 options of convert, build and bench.
void AddInt8Options(CLI::App* cmd, kiln::cli::Int8Options& int8) {
  cmd->add_option("--calibration-data", int8.calibration_data,
                          "INT8: calibration batches, DIR/NAME.npy (one batch) or DIR/BATCH/NAME.npy (one batch each)");
  cmd->add_option("--calibrator", int8.calibrator,
                  "INT8 / FP8: entropy (INT8's default), minmax (FP8's default) or percentile");
  cmd->add_option("--calibration-percentile", int8.calibration_percentile, "INT8: the percentile calibrator's percentile")
      ->capture_default_str();
  cmd->add_option("--calibration-table", int8.calibration_table, "INT8: use this calibration table instead of calibrating");
  cmd->add_option("--save-calibration-table", int8.save_calibration_table,
                          "INT8: write the calibration table used to this file (for --calibration-table)");
  cmd->add_option("--keep-precision", int8.keep_precision,
                          "INT8: layers kept in floating point: node names, op types or quantized tensor names ('*' ends a "
                          "prefix; comma-separated)")
      ->delimiter(',');
  cmd->add_flag("--no-calibration", int8.no_calibration,
                        "INT8: use the quantization the model carries (QuantizeLinear/DequantizeLinear, FakeQuant)");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Kiln: compiles TensorFlow SavedModels into fast engines for NVIDIA GPUs and CPUs"};
  app.set_version_flag("--version", std::string("kiln ") + KILN_VERSION);
  app.require_subcommand(1);
  std::vector<std::string> plugins;
  app.add_option("--plugin", plugins,
                 "Load custom ops from this shared library first (repeatable; include/kiln/custom_op.h)")
      ->type_name("LIB.so");

  kiln::cli::InspectOptions inspect;
  CLI::App* inspect_cmd = app.add_subcommand("inspect", "Show a SavedModel's tags, signatures, ops and variables, or an ONNX model's inputs, outputs and ops");
  inspect_cmd->add_option("dir", inspect.dir, "SavedModel directory or .onnx file")->required();
  inspect_cmd->add_option("--tag", inspect.tags, "MetaGraph tag set (repeatable; default: serve)");
  inspect_cmd->add_option("--signature-key", inspect.signature_key, "Signature to check for Kiln support");

  kiln::cli::RunOptions run;
  CLI::App* run_cmd = app.add_subcommand("run", "Run a signature on .npy inputs (or random ones) and write .npy outputs");
  run_cmd->add_option("dir", run.dir, "SavedModel directory")->required();
  run_cmd->add_option("--tag", run.tags, "MetaGraph tag set (repeatable; default: serve)");
  run_cmd->add_option("--signature-key", run.signature_key, "Signature to run")->capture_default_str();
  run_cmd->add_option("--input", run.inputs, "NAME=FILE.npy (repeatable); without any, random inputs are made");
  run_cmd->add_option("--batch-size", run.batch_size, "Size for unknown dim 0 of random inputs")->capture_default_str();
  run_cmd->add_option("--input-size", run.input_size, "Size for other unknown dims of random inputs")->capture_default_str();
  run_cmd->add_option("--seed", run.seed, "Seed for random inputs")->capture_default_str();
  run_cmd->add_option("--output-dir", run.output_dir, "Write one NAME.npy per output here");
  run_cmd->add_option("--iterations", run.iterations, "Run this many times (reports the time of each)")->capture_default_str();

  kiln::cli::ConvertOptions convert;
  CLI::App* convert_cmd = app.add_subcommand("convert", "Convert a SavedModel: segment it into engines, optionally build them, save");
  convert_cmd->add_option("input", convert.input_dir, "SavedModel directory")->required();
  convert_cmd->add_option("output", convert.output_dir, "Where to write the converted SavedModel")->required();
  convert_cmd->add_option("--tag", convert.tags, "MetaGraph tag set (repeatable; default: serve)");
  convert_cmd->add_option("--signature-key", convert.signature_key, "Signature to convert")->capture_default_str();
  convert_cmd->add_option("--precision", convert.precision, "FP32, FP16, BF16, INT8, FP8 (E4M3)")->capture_default_str();
  convert_cmd->add_option("--minimum-segment-size", convert.minimum_segment_size, "Smallest engine, in effective nodes (-1: none)")->capture_default_str();
  convert_cmd->add_option("--maximum-cached-engines", convert.maximum_cached_engines, "Engines cached per engine node")->capture_default_str();
  convert_cmd->add_flag("--use-dynamic-shape", convert.use_dynamic_shape, "Build engines for shape ranges (profiles)");
  convert_cmd->add_option("--profile-strategy", convert.profile_strategy, "Range, Optimal, Range+Optimal, ImplicitBatchModeCompatible")->capture_default_str();
  convert_cmd->add_option("--build-shapes", convert.build_shapes, "Build engines now for these input shapes: 'x:8x128,y:8x128;x:4x384,y:4x384'");
  convert_cmd->add_option("--build-data", convert.build_data,
                          "Build engines now for real inputs: DIR/NAME.npy (one run) or DIR/RUN/NAME.npy (one run each)");
  convert_cmd->add_flag("--no-build-at-runtime", convert.no_build_at_runtime, "Never build engines at run time: run natively instead");
  convert_cmd->add_flag("--no-save-engines", convert.no_save_engines, "Do not write device-specific engines");
  convert_cmd->add_option("--denylist", convert.denylist, "Op types never converted (comma-separated)")->delimiter(',');
  convert_cmd->add_option("--device", convert.device, "Engine backend")->capture_default_str();
  convert_cmd->add_option("--report-csv", convert.report_csv, "Write the non-conversion report as CSV here");
  AddInt8Options(convert_cmd, convert.int8);

  kiln::cli::BuildOptions build;
  CLI::App* build_cmd = app.add_subcommand("build", "Convert a model and build its engines into one self-contained .kiln file");
  build_cmd->add_option("input", build.input, "SavedModel directory or .onnx file")->required();
  build_cmd->add_option("-o,--output", build.output, "The .kiln file to write")->required();
  build_cmd->add_option("--tag", build.tags, "MetaGraph tag set (repeatable; default: serve)");
  build_cmd->add_option("--signature,--signature-key", build.signature_key, "Signature to convert")->capture_default_str();
  build_cmd->add_option("--precision", build.precision, "FP32, FP16, BF16, INT8, FP8 (E4M3)")->capture_default_str();
  build_cmd->add_option("--min-shapes", build.min_shapes, "Smallest input shapes of the profile: 'x:1x3x224x224,...'");
  build_cmd->add_option("--opt-shapes", build.opt_shapes, "Shapes to tune for (default: the max shapes)");
  build_cmd->add_option("--max-shapes", build.max_shapes, "Largest input shapes of the profile");
  build_cmd->add_option("--shapes", build.shapes, "Fixed input shapes (min = opt = max): 'x:8x128,...'");
  build_cmd->add_option("--minimum-segment-size", build.minimum_segment_size, "Smallest engine, in effective nodes (-1: none)")->capture_default_str();
  build_cmd->add_option("--maximum-cached-engines", build.maximum_cached_engines, "Engines cached per engine node")->capture_default_str();
  build_cmd->add_flag("--no-build-at-runtime", build.no_build_at_runtime, "Shapes outside the built profiles run natively instead of building engines");
  build_cmd->add_option("--denylist", build.denylist, "Op types never converted (comma-separated)")->delimiter(',');
  build_cmd->add_option("--device", build.device, "Engine backend")->capture_default_str();
  AddInt8Options(build_cmd, build.int8);

  kiln::cli::SummaryOptions summary;
  CLI::App* summary_cmd = app.add_subcommand("summary", "Show the engines and conversion report of a converted SavedModel or .kiln file");
  summary_cmd->add_option("dir", summary.dir, "Converted SavedModel directory or .kiln file")->required();
  summary_cmd->add_option("--tag", summary.tags, "MetaGraph tag set (repeatable; default: serve)");
  summary_cmd->add_option("--line-length", summary.line_length, "Table width")->capture_default_str();

  kiln::cli::BenchOptions bench;
  CLI::App* bench_cmd = app.add_subcommand("bench", "Measure throughput and latency (trtexec-style summary)");
  bench_cmd->add_option("model", bench.model, "SavedModel dir, converted SavedModel dir, .onnx or .kiln file")->required();
  bench_cmd->add_option("--tag", bench.tags, "MetaGraph tag set (repeatable; default: serve)");
  bench_cmd->add_option("--signature", bench.signature_key, "Signature to run")->capture_default_str();
  bench_cmd->add_option("--batch-size", bench.batch_size, "Size of unknown dim 0 of every input")->capture_default_str();
  bench_cmd->add_option("--shapes", bench.shapes, "Input shapes: 'x:1x128,mask:1x128' (other unknown dims need it)");
  bench_cmd->add_option("--warmup", bench.warmup, "Warmup iterations (all threads together)")->capture_default_str();
  auto* bench_duration = bench_cmd->add_option("--duration", bench.duration_s, "Measure for S seconds")->capture_default_str();
  bench_cmd->add_option("--iterations", bench.iterations, "Measure exactly N inferences instead of --duration")
      ->excludes(bench_duration);
  bench_cmd->add_option("--threads", bench.threads, "Concurrent callers of Signature::Run on one model")->capture_default_str();
  bench_cmd->add_flag("--native", bench.native, "Unconverted SavedModel: bench the reference executor, do not convert");
  bench_cmd->add_option("--precision", bench.precision, "Precision of the in-memory conversion")->capture_default_str();
  bench_cmd->add_option("--device", bench.device, "Engine backend of the in-memory conversion (cpu, cuda)")->capture_default_str();
  bench_cmd->add_option("--io", bench.io,
                        "Where inputs and outputs live: host (copies timed in each run) or device (on the engines' GPU, "
                        "RunWithBuffers, no copies)")
      ->check(CLI::IsMember({"host", "device"}))
      ->capture_default_str();
  bench_cmd->add_option("--seed", bench.seed, "Seed for random inputs")->capture_default_str();
  bench_cmd->add_flag("--json", bench.json, "JSON summary on stdout (progress on stderr)");
  bench_cmd->add_option("--cuda-graph", bench.cuda_graph, "GPU engines replay CUDA graphs of repeated runs")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  bench_cmd->add_option("--profile-layers", bench.profile_runs,
                        "After measuring, N more runs timing each engine layer (CUDA events on the GPU, wall time on the CPU; slower), then the profile");
  bench_cmd->add_option("--profile-top", bench.profile_top, "Layers listed by --profile-layers")->capture_default_str();
  AddInt8Options(bench_cmd, bench.int8);

  CLI::App* ops_cmd = app.add_subcommand("ops", "List the TensorFlow ops Kiln imports and its IR ops (Markdown)");

  CLI11_PARSE(app, argc, argv);
  try {
    // Limits on what a model may ask for (for models from untrusted sources): any one tensor, and
    // all the tensor data one model read.
    auto byte_limit = [](const char* name) -> size_t {
      const char* limit = std::getenv(name);
      if (!limit || !*limit) return 0;
      char* end = nullptr;
      errno = 0;
      const unsigned long long bytes = std::strtoull(limit, &end, 10);
      if (errno != 0 || *end != '\0' || bytes == 0 || limit[0] == '-')
        throw kiln::Error(kiln::ErrorCode::kInvalidArgument,
                          fmt::format("{} must be a positive number of bytes, not '{}'", name, limit));
      return static_cast<size_t>(bytes);
    };
    if (const size_t bytes = byte_limit("KILN_MAX_TENSOR_BYTES")) kiln::SetMaxTensorBytes(bytes);
    if (const size_t bytes = byte_limit("KILN_MAX_MODEL_BYTES")) kiln::SetMaxModelBytes(bytes);
    for (const std::string& plugin : plugins) kiln::LoadPlugin(plugin);
    if (*inspect_cmd) return kiln::cli::Inspect(inspect);
    if (*run_cmd) return kiln::cli::Run(run);
    if (*ops_cmd) return kiln::cli::Ops();
    if (*convert_cmd) return kiln::cli::Convert(convert);
    if (*summary_cmd) return kiln::cli::Summary(summary);
    if (*build_cmd) return kiln::cli::Build(build);
    if (*bench_cmd) return kiln::cli::Bench(bench);
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "kiln: error: %s\n", e.what());
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {  // a path that cannot be read or written
    std::fprintf(stderr, "kiln: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "kiln: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln: internal error: %s\n", e.what());
    return 3;
  }
  return 0;
}
