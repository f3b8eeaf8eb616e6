// kiln build: convert a model, build its engines for explicit shape profiles, write one .kiln file.
#include <chrono>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "convert/kiln_file.h"
#include "kiln/converter.h"
#include "tools/commands.h"

namespace kiln::cli {
namespace {

// --min/--opt/--max-shapes (or --shapes) -> the profiles; ';' separates several profiles.
std::vector<InputShapeProfile> ParseProfiles(const BuildOptions& o) {
  const bool ranged = !o.min_shapes.empty() || !o.opt_shapes.empty() || !o.max_shapes.empty();
  if (!o.shapes.empty()) {
    if (ranged)
      throw Error(ErrorCode::kInvalidArgument,
                  "--shapes gives fixed shapes (min = opt = max): it cannot be combined with --min-shapes, --opt-shapes or "
                  "--max-shapes");
    std::vector<InputShapeProfile> profiles;
    for (const auto& group : ParseBuildShapes(o.shapes, "--shapes")) {
      InputShapeProfile p;
      for (const auto& [name, shape] : group) p[name] = {shape, shape, shape};
      profiles.push_back(std::move(p));
    }
    return profiles;
  }
  if (!ranged) return {};
  if (o.min_shapes.empty() || o.max_shapes.empty())
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{} was given without {}: a shape profile needs both --min-shapes and --max-shapes "
                            "(--opt-shapes defaults to the max shapes; use --shapes for fixed shapes)",
                            o.min_shapes.empty() ? "--max-shapes" : "--min-shapes",
                            o.min_shapes.empty() ? "--min-shapes" : "--max-shapes"));
  const auto mins = ParseBuildShapes(o.min_shapes, "--min-shapes");
  const auto maxs = ParseBuildShapes(o.max_shapes, "--max-shapes");
  const auto opts = o.opt_shapes.empty() ? maxs : ParseBuildShapes(o.opt_shapes, "--opt-shapes");
  if (mins.size() != maxs.size() || opts.size() != maxs.size())
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("--min-shapes, --opt-shapes and --max-shapes give {}, {} and {} profiles (';'-separated): "
                            "they must give the same number",
                            mins.size(), opts.size(), maxs.size()));
  std::vector<InputShapeProfile> profiles;
  for (size_t i = 0; i < mins.size(); ++i) {
    InputShapeProfile p;
    std::set<std::string> names;
    for (const auto* group : {&mins[i], &opts[i], &maxs[i]})
      for (const auto& [name, shape] : *group) names.insert(name);
    for (const std::string& name : names) {
      auto lo = mins[i].find(name), hi = maxs[i].find(name), mid = opts[i].find(name);
      if (lo == mins[i].end() || hi == maxs[i].end())
        throw Error(ErrorCode::kInvalidArgument,
                    fmt::format("input '{}' has a shape in {} but not in {} (profile {})", name,
                                lo == mins[i].end() ? "--max-shapes" : "--min-shapes",
                                lo == mins[i].end() ? "--min-shapes" : "--max-shapes", i));
      p[name] = {lo->second, mid == opts[i].end() ? hi->second : mid->second, hi->second};
    }
    profiles.push_back(std::move(p));
  }
  return profiles;
}

}  // namespace

int Build(const BuildOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<InputShapeProfile> profiles = ParseProfiles(options);  // flag errors before any work
  ConversionParams params;
  params.precision_mode = options.precision;
  params.minimum_segment_size = options.minimum_segment_size;
  params.maximum_cached_engines = options.maximum_cached_engines;
  params.allow_build_at_runtime = !options.no_build_at_runtime;
  params.use_dynamic_shape = !profiles.empty();  // explicit profiles are shape ranges
  params.denylist = options.denylist;
  params.device = options.device;
  ApplyInt8Options(options.int8, params);
  Converter converter(options.input, options.tags, options.signature_key, params);
  fmt::print("kiln build: converting {}\n", options.input);
  std::fflush(stdout);
  std::vector<TensorSpec> inputs;
  if (!options.int8.calibration_data.empty()) {
    LoadOptions load;
    load.tags = options.tags.empty() ? std::vector<std::string>{"serve"} : options.tags;
    inputs = LoadModel(options.input, load)->signature(options.signature_key).inputs();
  }
  ConvertWithCalibration(converter, options.int8, inputs);
  if (profiles.empty()) {
    fmt::print("kiln build: no shapes given: converting only; engines are built at first run (give --shapes, or "
               "--min-shapes and --max-shapes, to build them now)\n");
  } else {
    fmt::print("kiln build: building engines for {} profile(s)\n", profiles.size());
  }
  std::fflush(stdout);
  if (!profiles.empty()) converter.build_profiles(profiles);
  converter.save_kiln_file(options.output);
  fmt::print("{}", converter.summary());

  // Read the file back: proves it loads, and counts what it holds.
  const convert::ConvertedModel written = convert::ReadKilnFile(options.output);
  size_t engines = 0;
  for (const auto& [name, files] : written.engine_files) engines += files.size();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double megabytes = static_cast<double>(std::filesystem::file_size(options.output)) / 1e6;
  fmt::print("kiln build: wrote {} ({:.2f} MB): {} engine(s) for {} profile(s){} in {:.2f} s\n", options.output, megabytes,
             engines, profiles.size(), profiles.empty() ? ", engines built at first run" : "", seconds);
  return 0;
}

}  // namespace kiln::cli
