// kiln run: load a SavedModel signature, feed .npy or random inputs, write .npy outputs.
#include <chrono>
#include <filesystem>
#include <random>

#include <fmt/format.h>

#include "kiln/half.h"
#include "kiln/model.h"
#include "kiln/npy.h"
#include "tools/commands.h"

namespace kiln::cli {
namespace {

std::vector<std::string> TagsOrDefault(const std::vector<std::string>& tags) {
  return tags.empty() ? std::vector<std::string>{"serve"} : tags;
}

// Fills unknown dims like TF-TRT's C++ example: dim 0 from --batch-size, the rest from --input-size.
Tensor RandomInput(const TensorSpec& spec, const RunOptions& options, std::mt19937_64& rng) {
  if (!spec.rank_known)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("input '{}' has unknown rank: give it with --input {}=FILE.npy", spec.name, spec.name));
  Shape shape;
  for (size_t d = 0; d < spec.dims.size(); ++d)
    shape.push_back(spec.dims[d] >= 0 ? spec.dims[d] : (d == 0 ? options.batch_size : options.input_size));
  return RandomTensor(spec, shape, rng);
}


}  // namespace

int Run(const RunOptions& options) {
  LoadOptions load;
  load.tags = TagsOrDefault(options.tags);
  std::unique_ptr<Model> model = LoadModel(options.dir, load);
  const auto t0 = std::chrono::steady_clock::now();
  const Signature& sig = model->signature(options.signature_key);
  const auto t1 = std::chrono::steady_clock::now();
  fmt::print("loaded signature '{}' of {}: {} IR nodes ({:.1f} ms)\n", sig.key(), options.dir, sig.num_nodes(),
             std::chrono::duration<double, std::milli>(t1 - t0).count());

  std::map<std::string, Tensor> inputs;
  for (const std::string& arg : options.inputs) {
    const size_t eq = arg.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == arg.size())
      throw Error(ErrorCode::kInvalidArgument, fmt::format("--input '{}': expected NAME=FILE.npy", arg));
    const std::string name = arg.substr(0, eq);
    if (inputs.count(name)) throw Error(ErrorCode::kInvalidArgument, fmt::format("--input '{}' is given twice", name));
    inputs[name] = ReadNpy(arg.substr(eq + 1));
  }
  if (inputs.empty()) {
    std::mt19937_64 rng(options.seed);
    for (const TensorSpec& spec : sig.inputs()) {
      inputs[spec.name] = RandomInput(spec, options, rng);
      fmt::print("random input {}: {} {}\n", spec.name, DTypeName(spec.dtype), ShapeToString(inputs[spec.name].shape()));
    }
  }

  std::map<std::string, Tensor> outputs;
  for (int i = 0; i < std::max(1, options.iterations); ++i) {
    const auto s = std::chrono::steady_clock::now();
    outputs = sig.Run(inputs);
    const auto e = std::chrono::steady_clock::now();
    fmt::print("run {}: {:.2f} ms\n", i + 1, std::chrono::duration<double, std::milli>(e - s).count());
  }
  if (!options.output_dir.empty()) std::filesystem::create_directories(options.output_dir);
  for (const TensorSpec& spec : sig.outputs()) {
    const Tensor& t = outputs.at(spec.name);
    fmt::print("output {}: {} {} {}\n", spec.name, DTypeName(t.dtype()), ShapeToString(t.shape()), t.DebugString(6));
    if (!options.output_dir.empty()) {
      const std::string path = (std::filesystem::path(options.output_dir) / (SafeFileName(spec.name) + ".npy")).string();
      WriteNpy(path, t);
    }
  }
  if (!options.output_dir.empty()) fmt::print("wrote {} output file(s) to {}\n", sig.outputs().size(), options.output_dir);
  const RunStats stats = sig.stats();
  if (stats.engines_built + stats.engines_loaded + stats.engine_runs + stats.native_runs > 0)
    fmt::print("engines: {} loaded, {} built; engine runs: {}, native fallbacks: {}\n", stats.engines_loaded,
               stats.engines_built, stats.engine_runs, stats.native_runs);
  return 0;
}

}  // namespace kiln::cli
