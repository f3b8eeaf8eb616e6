// kiln convert / kiln summary.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include <fmt/format.h>

#include "kiln/converter.h"
#include "kiln/half.h"
#include "kiln/model.h"
#include "api/converted_model_loader.h"
#include "api/summary.h"
#include "kiln/npy.h"
#include "common/atomic_file.h"
#include "tools/commands.h"

namespace kiln::cli {

// "x:8x128,y:8x128;x:4x384,y:4x384" -> one map (input name -> shape) per build run; a scalar
// input is "name:" or "name:scalar".
std::vector<std::map<std::string, Shape>> ParseBuildShapes(const std::string& text, const std::string& flag) {
  std::vector<std::map<std::string, Shape>> runs;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(';', start);
    std::string run = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    std::map<std::string, Shape> shapes;
    size_t p = 0;
    while (p <= run.size() && !run.empty()) {
      size_t comma = run.find(',', p);
      std::string item = run.substr(p, comma == std::string::npos ? std::string::npos : comma - p);
      size_t colon = item.rfind(':');
      if (colon == std::string::npos || colon == 0)
        throw Error(ErrorCode::kInvalidArgument,
                    fmt::format("{}: '{}' is not NAME:DIMxDIM... (or NAME:scalar)", flag, item));
      Shape shape;
      std::string dims = item.substr(colon + 1);
      const bool scalar = dims.empty() || dims == "scalar";
      size_t q = 0;
      while (!scalar && q <= dims.size()) {
        size_t x = dims.find('x', q);
        std::string d = dims.substr(q, x == std::string::npos ? std::string::npos : x - q);
        try {
          size_t used = 0;
          long long v = std::stoll(d, &used);
          if (used != d.size() || v < 0) throw std::invalid_argument(d);
          shape.push_back(v);
        } catch (const std::exception&) {
          throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: '{}' in '{}' is not a dimension", flag, d, item));
        }
        if (x == std::string::npos) break;
        q = x + 1;
      }
      shapes[item.substr(0, colon)] = shape;
      if (comma == std::string::npos) break;
      p = comma + 1;
    }
    if (!shapes.empty()) runs.push_back(std::move(shapes));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return runs;
}

Tensor RandomTensor(const TensorSpec& spec, const Shape& shape, std::mt19937_64& rng) {
  const DType dtype = spec.dtype;
  if (spec.index_limit == 0)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("input '{}' indexes an empty table, so no value is valid for it", spec.name));
  Tensor t(dtype, shape);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> small(0, spec.index_limit > 0 ? static_cast<int>(std::min<int64_t>(9, spec.index_limit - 1)) : 9);
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    switch (dtype) {
      case DType::kFloat32: t.data<float>()[i] = normal(rng); break;
      case DType::kFloat64: t.data<double>()[i] = normal(rng); break;
      case DType::kFloat16: t.data<Half>()[i] = Half(normal(rng)); break;
      case DType::kBFloat16: t.data<BFloat16>()[i] = BFloat16(normal(rng)); break;
      case DType::kInt32: t.data<int32_t>()[i] = small(rng); break;
      case DType::kInt64: t.data<int64_t>()[i] = small(rng); break;
      case DType::kInt8: t.data<int8_t>()[i] = static_cast<int8_t>(small(rng)); break;
      case DType::kUInt8: t.data<uint8_t>()[i] = static_cast<uint8_t>(small(rng)); break;
      case DType::kBool: t.data<bool>()[i] = small(rng) >= 5; break;
      default:
        throw Error(ErrorCode::kUnimplemented, fmt::format("cannot make random values of dtype {} for input '{}': give it "
                                                           "with --input",
                                                           DTypeName(dtype), spec.name));
    }
  }
  return t;
}

std::string SafeFileName(const std::string& name) {
  std::string out = name;
  for (char& c : out)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) c = '_';
  return out;
}

namespace {

// One run's inputs from the .npy files directly in `dir` (subdirectories are not looked at).
std::vector<Tensor> ReadRun(const std::filesystem::path& dir, const std::vector<TensorSpec>& inputs,
                            const std::string& flag) {
  std::map<std::string, std::filesystem::path> files;  // file stem -> path
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.is_regular_file() && entry.path().extension() == ".npy") files[entry.path().stem().string()] = entry.path();
  std::vector<Tensor> run;
  std::set<std::string> used;
  for (const TensorSpec& spec : inputs) {
    auto it = files.find(spec.name);
    if (it == files.end()) it = files.find(SafeFileName(spec.name));
    if (it == files.end())
      throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: {} has no {}.npy for input '{}'", flag, dir.string(),
                                                           SafeFileName(spec.name), spec.name));
    used.insert(it->first);
    run.push_back(ReadNpy(it->second.string()));
  }
  for (const auto& [stem, path] : files)
    if (!used.count(stem))
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("{}: {} names no input of the signature (its inputs: {})", flag, path.string(),
                              api::SpecNames(inputs)));
  return run;
}

}  // namespace

std::vector<std::vector<Tensor>> ReadBuildData(const std::string& dir, const std::vector<TensorSpec>& inputs,
                                               const std::string& flag) {
  const std::filesystem::path root(dir);
  std::error_code ec;
  if (!std::filesystem::is_directory(root, ec))
    throw Error(ErrorCode::kNotFound, fmt::format("{}: '{}' is not a directory", flag, dir));
  std::vector<std::filesystem::path> runs;
  bool files = false;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    if (entry.is_directory()) runs.push_back(entry.path());
    if (entry.is_regular_file() && entry.path().extension() == ".npy") files = true;
  }
  if (files && !runs.empty())
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: '{}' holds both .npy files (one run) and directories (one run each); "
                            "use one layout",
                            flag, dir));
  if (files) return {ReadRun(root, inputs, flag)};
  if (runs.empty())
    throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: '{}' holds no .npy files or run directories", flag, dir));
  std::sort(runs.begin(), runs.end());
  std::vector<std::vector<Tensor>> out;
  for (const auto& run : runs) out.push_back(ReadRun(run, inputs, flag));
  return out;
}

namespace {

// The source model's signature inputs (order, names, dtypes), for reading .npy runs.
std::vector<TensorSpec> SourceInputs(const ConvertOptions& options) {
  LoadOptions load;
  load.tags = options.tags.empty() ? std::vector<std::string>{"serve"} : options.tags;
  return LoadModel(options.input_dir, load)->signature(options.signature_key).inputs();
}

// An InputFn yielding `runs` in order, once each.
InputFn Yield(std::vector<std::vector<Tensor>>& runs) {
  return [&runs, next = size_t{0}]() mutable -> std::optional<std::vector<Tensor>> {
    if (next == runs.size()) return std::nullopt;
    return std::move(runs[next++]);
  };
}

}  // namespace

void ApplyInt8Options(const Int8Options& int8, ConversionParams& params) {
  params.calibrator = int8.calibrator;
  params.calibration_percentile = int8.calibration_percentile;
  params.calibration_table = int8.calibration_table;
  params.use_calibration = !int8.no_calibration;
  params.keep_precision = int8.keep_precision;
}

void ConvertWithCalibration(Converter& converter, const Int8Options& int8, const std::vector<TensorSpec>& inputs) {
  if (!int8.calibration_data.empty()) {
    std::vector<std::vector<Tensor>> batches = ReadBuildData(int8.calibration_data, inputs, "--calibration-data");
    converter.convert(Yield(batches));
  } else {
    converter.convert();
  }
  if (!int8.save_calibration_table.empty()) {
    const std::string table = converter.calibration_table_json();
    if (table.empty())
      throw Error(ErrorCode::kInvalidArgument,
                  "--save-calibration-table: no calibration table was used (it needs --precision INT8 with "
                  "--calibration-data or --calibration-table)");
    WriteFileAtomically(int8.save_calibration_table, {table});
    // On stderr with the other progress lines: `kiln bench --json` keeps stdout for its JSON.
    fmt::print(stderr, "kiln: wrote the calibration table to {}\n", int8.save_calibration_table);
  }
}

int Convert(const ConvertOptions& options) {
  if (!options.build_shapes.empty() && !options.build_data.empty())
    throw Error(ErrorCode::kInvalidArgument, "--build-shapes and --build-data both give the build runs: use one");
  ConversionParams params;
  params.precision_mode = options.precision;
  params.minimum_segment_size = options.minimum_segment_size;
  params.maximum_cached_engines = options.maximum_cached_engines;
  params.use_dynamic_shape = options.use_dynamic_shape;
  params.dynamic_shape_profile_strategy = options.profile_strategy;
  params.allow_build_at_runtime = !options.no_build_at_runtime;
  params.denylist = options.denylist;
  params.device = options.device;
  ApplyInt8Options(options.int8, params);
  Converter converter(options.input_dir, options.tags, options.signature_key, params);
  ConvertWithCalibration(converter, options.int8,
                         options.int8.calibration_data.empty() ? std::vector<TensorSpec>{} : SourceInputs(options));

  if (!options.build_data.empty()) {
    // Real inputs: the engines are built for their shapes, and the values are the user's.
    std::vector<std::vector<Tensor>> runs = ReadBuildData(options.build_data, SourceInputs(options));
    converter.build(Yield(runs));
  } else if (!options.build_shapes.empty()) {
    // The signature's input order and dtypes, from the source model.
    LoadOptions load;
    load.tags = options.tags.empty() ? std::vector<std::string>{"serve"} : options.tags;
    auto model = LoadModel(options.input_dir, load);
    const Signature& sig = model->signature(options.signature_key);
    std::vector<std::map<std::string, Shape>> runs = ParseBuildShapes(options.build_shapes, "--build-shapes");
    std::mt19937_64 rng(0);
    size_t next = 0;
    converter.build([&]() -> std::optional<std::vector<Tensor>> {
      if (next == runs.size()) return std::nullopt;
      const std::map<std::string, Shape>& shapes = runs[next++];
      std::vector<Tensor> inputs;
      for (const TensorSpec& spec : sig.inputs()) {
        auto it = shapes.find(spec.name);
        if (it == shapes.end())
          throw Error(ErrorCode::kInvalidArgument, fmt::format("--build-shapes run {} gives no shape for input '{}'", next,
                                                               spec.name));
        inputs.push_back(RandomTensor(spec, it->second, rng));
      }
      for (const auto& [name, shape] : shapes) {
        bool known = false;
        for (const TensorSpec& spec : sig.inputs()) known = known || spec.name == name;
        if (!known)
          throw Error(ErrorCode::kInvalidArgument, fmt::format("--build-shapes names input '{}', which the signature "
                                                               "does not have",
                                                               name));
      }
      return inputs;
    });
  }
  converter.save(options.output_dir, !options.no_save_engines);
  fmt::print("{}", converter.summary());
  if (!options.report_csv.empty()) {
    std::ofstream out(options.report_csv);
    if (!out) throw Error(ErrorCode::kNotFound, fmt::format("cannot write {}", options.report_csv));
    out << converter.non_conversion_report_csv();
    fmt::print("wrote the non-conversion report to {}\n", options.report_csv);
  }
  return 0;
}

int Summary(const SummaryOptions& options) {
  LoadOptions load;
  load.tags = options.tags.empty() ? std::vector<std::string>{"serve"} : options.tags;
  fmt::print("{}", api::ConvertedModelSummary(options.dir, load, options.line_length, true));
  return 0;
}

}  // namespace kiln::cli
