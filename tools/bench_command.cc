// kiln bench: a trtexec-style performance summary for anything kiln::LoadModel loads.
//
// An unconverted SavedModel (or ONNX file) is converted in memory first (FP32 unless --precision,
// engines built for the bench shapes, saved to a temporary directory and loaded back), unless
// --native asks for the reference executor. A converted SavedModel or a .kiln engine file is
// loaded as is. Then: --warmup iterations, then --iterations N (or --duration S seconds) with
// --threads concurrent callers of Signature::Run, then the summary (--json: one JSON object on
// stdout; progress always goes to stderr in that mode). For GPU engines, --io device keeps
// inputs and outputs in GPU memory (RunWithBuffers, as a caller holding GPU tensors would) and
// the host<->device copies of the same tensors are timed apart.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "api/model_format.h"
#include "backend/backend.h"
#include "backend/device.h"
#include "backend/layer_profiler.h"
#include "kiln/converter.h"
#include "kiln/device.h"
#include "kiln/model.h"
#include "kiln/version.h"
#include "tools/commands.h"

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// Where the human-readable lines go: stdout, or stderr when stdout carries the JSON.
struct Printer {
  bool to_stderr;
  template <typename... Args>
  void operator()(fmt::format_string<Args...> f, Args&&... args) const {
    fmt::print(to_stderr ? stderr : stdout, f, std::forward<Args>(args)...);
    std::fflush(to_stderr ? stderr : stdout);
  }
};

// The shape of every signature input: --shapes if given, else static dims with unknown dim 0 =
// --batch-size. Errors name the input and what to pass.
std::map<std::string, Shape> ResolveShapes(const std::vector<TensorSpec>& specs, const BenchOptions& options) {
  std::map<std::string, Shape> given;
  if (!options.shapes.empty()) {
    auto runs = ParseBuildShapes(options.shapes, "--shapes");
    if (runs.size() > 1) throw Error(ErrorCode::kInvalidArgument, "--shapes takes one set of shapes (no ';')");
    if (!runs.empty()) given = runs[0];
  }
  std::string names;
  for (const TensorSpec& s : specs) names += fmt::format("{}{} {}", names.empty() ? "" : ", ", s.name, s.ShapeString());
  for (const auto& [name, shape] : given) {
    bool known = false;
    for (const TensorSpec& s : specs) known = known || s.name == name;
    if (!known)
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("--shapes names input '{}', which the signature does not have (inputs: {})", name, names));
  }
  std::map<std::string, Shape> out;
  for (const TensorSpec& s : specs) {
    auto it = given.find(s.name);
    if (it != given.end()) {
      const Shape& shape = it->second;
      if (s.rank_known) {
        bool ok = shape.size() == s.dims.size();
        for (size_t d = 0; ok && d < shape.size(); ++d) ok = s.dims[d] < 0 || s.dims[d] == shape[d];
        if (!ok)
          throw Error(ErrorCode::kInvalidArgument, fmt::format("--shapes gives input '{}' shape {}, which does not "
                                                               "match its signature shape {}",
                                                               s.name, ShapeToString(shape), s.ShapeString()));
      }
      out[s.name] = shape;
      continue;
    }
    if (!s.rank_known)
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("input '{}' has unknown rank: give its shape with --shapes {}:DIMxDIM...", s.name, s.name));
    Shape shape;
    for (size_t d = 0; d < s.dims.size(); ++d) {
      if (s.dims[d] >= 0) {
        shape.push_back(s.dims[d]);
      } else if (d == 0) {
        shape.push_back(options.batch_size);
      } else {
        std::vector<int64_t> example;  // the message suggests the static dims, --batch-size and 128
        for (size_t k = 0; k < s.dims.size(); ++k)
          example.push_back(s.dims[k] >= 0 ? s.dims[k] : k == 0 ? options.batch_size : 128);
        throw Error(ErrorCode::kInvalidArgument,
                    fmt::format("input '{}' {} has unknown dim {}: give its shape with --shapes, e.g. --shapes {}:{}",
                                s.name, s.ShapeString(), d, s.name, fmt::join(example, "x")));
      }
    }
    out[s.name] = shape;
  }
  return out;
}

// Removes the temporary converted model when the bench ends.
struct TempDir {
  std::string path;
  ~TempDir() {
    if (path.empty()) return;
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string MakeTempDir() {
  std::string templ = (fs::temp_directory_path() / "kiln-bench-XXXXXX").string();
  if (!mkdtemp(templ.data())) throw Error(ErrorCode::kNotFound, fmt::format("cannot create a temporary directory {}", templ));
  return templ;
}

// The per-layer profile of `runs` runs: JSON (every layer) and the text table (the `top` slowest
// layers, then the time by kernel kind).
struct LayerReport {
  nlohmann::json json;
  std::string text;
};

LayerReport ReportLayers(const std::vector<backend::LayerProfiler::Entry>& entries, int runs, int top) {
  LayerReport r;
  double total = 0;
  for (const auto& e : entries) total += e.total_ms;
  std::vector<const backend::LayerProfiler::Entry*> order;
  for (const auto& e : entries) order.push_back(&e);
  std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->total_ms > b->total_ms; });
  std::map<std::string, std::pair<double, int64_t>> by_kernel;
  for (const auto& e : entries) {
    auto& k = by_kernel[e.kernel];
    k.first += e.total_ms;
    k.second += e.calls;
  }
  const double per_run = runs > 0 ? total / runs : 0.0;
  r.json["runs"] = runs;
  r.json["layer_ms_per_run"] = per_run;
  r.json["layers"] = nlohmann::json::array();
  for (const auto* e : order)
    r.json["layers"].push_back({{"layer", e->layer},
                                {"kernel", e->kernel},
                                {"detail", e->detail},
                                {"ms_per_run", e->total_ms / runs},
                                {"calls_per_run", static_cast<double>(e->calls) / runs}});
  r.json["by_kernel"] = nlohmann::json::object();
  for (const auto& [k, v] : by_kernel)
    r.json["by_kernel"][k] = {{"ms_per_run", v.first / runs}, {"calls_per_run", static_cast<double>(v.second) / runs}};
  if (entries.empty()) {
    r.text = "layer profile:       no layer timings (the run went through no engine: native ops are not timed)\n";
    return r;
  }
  r.text = fmt::format("layer profile:       {} runs; the engines' layers took {:.3f} ms per run (timed one by one)\n", runs,
                       per_run);
  r.text += fmt::format("  {:>9} {:>6}  {:<28} {:<22} {}\n", "ms/run", "%", "kernel", "output", "layer");
  for (size_t i = 0; i < order.size() && i < static_cast<size_t>(std::max(top, 0)); ++i) {
    const auto* e = order[i];
    std::string layer = e->layer;
    if (layer.size() > 90) layer = layer.substr(0, 40) + " ... " + layer.substr(layer.size() - 45);
    r.text += fmt::format("  {:>9.4f} {:>5.1f}%  {:<28} {:<22} {}\n", e->total_ms / runs,
                          total > 0 ? 100.0 * e->total_ms / total : 0.0, e->kernel, e->detail, layer);
  }
  std::vector<std::pair<std::string, std::pair<double, int64_t>>> kinds(by_kernel.begin(), by_kernel.end());
  std::stable_sort(kinds.begin(), kinds.end(), [](auto& a, auto& b) { return a.second.first > b.second.first; });
  r.text += "  by kernel:\n";
  for (const auto& [k, v] : kinds)
    r.text += fmt::format("  {:>9.4f} {:>5.1f}%  {} ({} per run)\n", v.first / runs, total > 0 ? 100.0 * v.first / total : 0.0,
                          k, static_cast<double>(v.second) / runs);
  return r;
}

double Percentile(const std::vector<double>& sorted, double p) {  // nearest rank
  if (sorted.empty()) return 0.0;
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace

int Bench(const BenchOptions& options) {
  if (options.threads < 1) throw Error(ErrorCode::kInvalidArgument, "--threads must be at least 1");
  if (options.warmup < 0) throw Error(ErrorCode::kInvalidArgument, "--warmup must be >= 0");
  if (options.iterations < 0) throw Error(ErrorCode::kInvalidArgument, "--iterations must be >= 0");
  if (options.iterations == 0 && !(options.duration_s > 0))
    throw Error(ErrorCode::kInvalidArgument, "--duration must be > 0 seconds");
  if (options.batch_size < 1) throw Error(ErrorCode::kInvalidArgument, "--batch-size must be at least 1");
  if (options.profile_runs < 0) throw Error(ErrorCode::kInvalidArgument, "--profile-layers must be >= 0");
  const Printer say{options.json};
  const api::DetectedModel kind = api::DetectModel(options.model);
  LoadOptions load;
  load.tags = options.tags.empty() ? std::vector<std::string>{"serve"} : options.tags;
  load.log = [](const std::string& m) { fmt::print(stderr, "{}\n", m); };
  load.cuda_graphs = options.cuda_graph == "on";

  // The model is converted first when it is not already (engines for the bench shapes).
  const bool convert = !options.native && kind.format == api::ModelFormat::kSource;
  const Int8Options& int8 = options.int8;
  const bool int8_given = !int8.calibration_data.empty() || !int8.calibration_table.empty() ||
                          !int8.save_calibration_table.empty() || int8.no_calibration || !int8.keep_precision.empty();
  if (int8_given && !convert)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the INT8 options apply to the in-memory conversion of an unconverted model; {} is {}", options.model,
                            options.native ? "run natively (--native)" : "already converted"));
  nlohmann::json report;
  report["kiln_version"] = KILN_VERSION;
  report["model"] = options.model;
  report["model_kind"] = kind.Describe();
  report["signature"] = options.signature_key;
  report["mode"] = convert ? "converted in memory"
                 : kind.format != api::ModelFormat::kSource ? "engines as loaded"
                     : "native (reference executor)";

  TempDir temp;
  std::string bench_path = options.model;
  std::mt19937_64 rng(options.seed);
  std::map<std::string, Tensor> inputs;
  std::map<std::string, Shape> shapes;
  std::optional<double> convert_ms, build_ms, save_ms;

  if (convert) {
    say("kiln bench: converting {} ({}, precision {}, device {}) in memory\n", options.model, kind.Describe(), options.precision,
        options.device);
    // Source signature: input order, dtypes and shapes.
    std::vector<TensorSpec> specs;
    {
      auto source = LoadModel(options.model, load);
      specs = source->signature(options.signature_key).inputs();
    }
    shapes = ResolveShapes(specs, options);
    for (const TensorSpec& s : specs) inputs[s.name] = RandomTensor(s, shapes.at(s.name), rng);
    ConversionParams params;
    params.precision_mode = options.precision;
    params.device = options.device;
    ApplyInt8Options(options.int8, params);
    auto t0 = Clock::now();
    Converter converter(options.model, load.tags, options.signature_key, params);
    ConvertWithCalibration(converter, options.int8, specs);
    convert_ms = MsSince(t0);
    t0 = Clock::now();
    bool given = false;
    converter.build([&]() -> std::optional<std::vector<Tensor>> {
      if (given) return std::nullopt;
      given = true;
      std::vector<Tensor> v;
      for (const TensorSpec& s : specs) v.push_back(inputs.at(s.name));
      return v;
    });
    build_ms = MsSince(t0);
    temp.path = MakeTempDir();
    bench_path = (fs::path(temp.path) / "converted").string();
    t0 = Clock::now();
    converter.save(bench_path);
    save_ms = MsSince(t0);
    say("kiln bench: converted in {:.1f} ms, engines built in {:.1f} ms, saved in {:.1f} ms\n", *convert_ms, *build_ms,
        *save_ms);
  }

  // Load what is benched (load time includes importing the signature and loading engine files).
  auto t0 = Clock::now();
  std::unique_ptr<Model> model = LoadModel(bench_path, load);
  const Signature& sig = model->signature(options.signature_key);
  const double load_ms = MsSince(t0);
  const RunStats after_load = sig.stats();
  say("kiln bench: loaded {} (signature '{}') in {:.1f} ms ({} IR nodes)\n", bench_path, sig.key(), load_ms, sig.num_nodes());

  if (!convert) {
    shapes = ResolveShapes(sig.inputs(), options);
    for (const TensorSpec& s : sig.inputs()) inputs[s.name] = RandomTensor(s, shapes.at(s.name), rng);
  }
  int64_t batch = options.batch_size;
  if (!sig.inputs().empty()) {
    const Shape& first = shapes.at(sig.inputs().front().name);
    if (!first.empty()) batch = first[0];
  }
  for (const TensorSpec& s : sig.inputs())
    say("kiln bench: input {}: {} {}\n", s.name, DTypeName(s.dtype), ShapeToString(shapes.at(s.name)));

  // One first run on its own: it may build engines (unconverted dims) and shows errors early.
  t0 = Clock::now();
  const std::map<std::string, Tensor> first_outputs = sig.Run(inputs);
  const double first_ms = MsSince(t0);

  // Device-resident inputs and outputs (--io device), and the copies they save, timed apart.
  const Device engine_device = sig.input_device();
  const bool io_device = options.io == "device";
  if (io_device && engine_device.kind == DeviceKind::kCpu)
    throw Error(ErrorCode::kInvalidArgument,
                "--io device needs engines on a GPU (convert with --device cuda, or bench a model converted for one)");
  std::vector<Tensor> device_inputs;
  std::vector<BufferBinding> input_bindings;
  std::optional<double> h2d_ms, d2h_ms;
  if (engine_device.kind != DeviceKind::kCpu) {
    auto median_ms = [](const std::function<void()>& fn) {
      std::vector<double> v;
      for (int i = 0; i < 11; ++i) {
        const auto s = Clock::now();
        fn();
        v.push_back(MsSince(s));
      }
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    h2d_ms = median_ms([&] {
      for (const TensorSpec& s : sig.inputs()) CopyTensorTo(inputs.at(s.name), engine_device);
    });
    std::vector<Tensor> on_device;
    for (const auto& [name, t] : first_outputs) on_device.push_back(CopyTensorTo(t, engine_device));
    d2h_ms = median_ms([&] {
      for (const Tensor& t : on_device) CopyTensorTo(t, Device{});
    });
    if (io_device)
      for (const TensorSpec& s : sig.inputs()) {
        Tensor& d = device_inputs.emplace_back(CopyTensorTo(inputs.at(s.name), engine_device));
        input_bindings.push_back({s.name, d.dtype(), d.shape(), d.raw_data(), d.byte_size(), engine_device});
      }
  }
  // One inference: host tensors through Run, or device buffers through RunWithBuffers (each
  // caller thread has output buffers of its own).
  auto run_once = [&](std::vector<Tensor>& my_outputs) {
    if (!io_device) {
      sig.Run(inputs);
      return;
    }
    if (my_outputs.empty())
      for (const TensorSpec& s : sig.outputs()) {
        const Tensor& host = first_outputs.at(s.name);
        my_outputs.push_back(AllocateTensorOn(engine_device, host.dtype(), host.shape()));
      }
    std::vector<BufferBinding> out;
    for (size_t i = 0; i < my_outputs.size(); ++i)
      out.push_back({sig.outputs()[i].name, my_outputs[i].dtype(), {}, my_outputs[i].raw_data(),
                     my_outputs[i].byte_size(), engine_device});
    sig.RunWithBuffers(input_bindings, out);
  };

  // Warmup and measurement share one driver: T threads take iterations from a counter.
  auto drive = [&](int64_t count, double seconds, std::vector<double>* latencies) -> double {
    std::atomic<int64_t> next{0};
    std::mutex mu;
    std::exception_ptr error;
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    auto worker = [&]() {
      std::vector<double> mine;
      std::vector<Tensor> my_outputs;
      try {
        for (;;) {
          if (count > 0) {
            if (next.fetch_add(1) >= count) break;
          } else if (Clock::now() >= deadline) {
            break;
          }
          const auto s = Clock::now();
          run_once(my_outputs);
          mine.push_back(MsSince(s));
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(mu);
      if (latencies) latencies->insert(latencies->end(), mine.begin(), mine.end());
    };
    std::vector<std::thread> pool;
    for (int i = 1; i < options.threads; ++i) pool.emplace_back(worker);
    worker();
    for (auto& t : pool) t.join();
    if (error) std::rethrow_exception(error);
    return std::chrono::duration<double>(Clock::now() - start).count();
  };

  if (options.warmup > 0) {
    say("kiln bench: warmup {} iteration(s), {} thread(s)\n", options.warmup, options.threads);
    drive(options.warmup, 0.0, nullptr);
  }
  if (options.iterations > 0)
    say("kiln bench: measuring {} iteration(s), {} thread(s)\n", options.iterations, options.threads);
  else
    say("kiln bench: measuring for {:.1f} s, {} thread(s)\n", options.duration_s, options.threads);
  const RunStats before = sig.stats();
  std::vector<double> lat;
  // Only the measured runs are what a device profiler started with "wait for the program"
  // (ncu --profile-from-start off, nsys --capture-range=cudaProfilerApi) captures.
  const backend::DeviceServices* profiled = nullptr;
  if (engine_device.kind != DeviceKind::kCpu) {
    profiled = &backend::ServicesOf(engine_device);
    profiled->SetProfilerCapture(true);
  }
  double wall_s = 0;
  try {
    wall_s = drive(options.iterations, options.duration_s, &lat);
  } catch (...) {
    if (profiled) profiled->SetProfilerCapture(false);
    throw;
  }
  if (profiled) profiled->SetProfilerCapture(false);
  const RunStats stats = sig.stats();
  std::sort(lat.begin(), lat.end());
  const int64_t n = static_cast<int64_t>(lat.size());
  double sum = 0;
  for (double v : lat) sum += v;
  const double ips = n > 0 && wall_s > 0 ? static_cast<double>(n) / wall_s : 0.0;

  report["batch"] = batch;
  nlohmann::json jin = nlohmann::json::object();
  for (const TensorSpec& s : sig.inputs()) jin[s.name] = {{"dtype", DTypeName(s.dtype)}, {"shape", shapes.at(s.name)}};
  report["inputs"] = jin;
  report["threads"] = options.threads;
  report["precision"] = convert ? nlohmann::json(options.precision) : nlohmann::json(nullptr);
  report["device"] = convert ? nlohmann::json(options.device) : nlohmann::json(nullptr);
  report["load_ms"] = load_ms;
  report["convert_ms"] = convert_ms ? nlohmann::json(*convert_ms) : nlohmann::json(nullptr);
  report["engine_build_ms"] = build_ms ? nlohmann::json(*build_ms) : nlohmann::json(nullptr);
  report["save_ms"] = save_ms ? nlohmann::json(*save_ms) : nlohmann::json(nullptr);
  report["first_run_ms"] = first_ms;
  report["engines"] = {{"loaded", stats.engines_loaded},
                       {"built_at_load", after_load.engines_built},
                       {"built_at_run_time", stats.engines_built - after_load.engines_built},
                       {"built_in_conversion", convert ? nlohmann::json(true) : nlohmann::json(false)}};
  report["runs"] = {{"engine_runs", stats.engine_runs - before.engine_runs},
                    {"native_fallbacks", stats.native_runs - before.native_runs},
                    {"engine_runs_total", stats.engine_runs},
                    {"native_fallbacks_total", stats.native_runs}};
  report["warmup_iterations"] = options.warmup;
  report["iterations"] = n;
  report["wall_s"] = wall_s;
  report["throughput"] = {{"inferences_per_s", ips}, {"samples_per_s", ips * static_cast<double>(batch)}};
  report["latency_ms"] = {{"min", n ? lat.front() : 0.0},  {"mean", n ? sum / n : 0.0},
                          {"median", Percentile(lat, 50)}, {"p90", Percentile(lat, 90)},
                          {"p95", Percentile(lat, 95)},    {"p99", Percentile(lat, 99)},
                          {"max", n ? lat.back() : 0.0}};
  // Host<->device copies of the inputs and outputs: part of each run's latency with --io host,
  // none with --io device; timed apart (median of 11, pageable host memory) either way.
  const std::string copies_note =
      engine_device.kind == DeviceKind::kCpu
          ? "none: CPU engines"
          : fmt::format("{}; on their own: inputs to {} {:.3f} ms, outputs back {:.3f} ms",
                        io_device ? "none in the runs (inputs and outputs on the device)" : "included in each run's latency",
                        engine_device.ToString(), *h2d_ms, *d2h_ms);
  auto json_ms = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  report["io"] = options.io;
  report["cuda_graph"] = options.cuda_graph;
  report["engine_device"] = engine_device.ToString();
  report["host_device_copies"] = {{"h2d_ms", json_ms(h2d_ms)}, {"d2h_ms", json_ms(d2h_ms)}, {"note", copies_note}};

  // Per-layer timing, after the measurement so that it does not slow the measured runs.
  std::optional<LayerReport> layers;
  if (options.profile_runs > 0) {
    say("kiln bench: profiling layers over {} run(s)\n", options.profile_runs);
    backend::LayerProfiler profiler;
    backend::SetActiveLayerProfiler(&profiler);
    try {
      std::vector<Tensor> my_outputs;
      for (int i = 0; i < options.profile_runs; ++i) run_once(my_outputs);
    } catch (...) {
      backend::SetActiveLayerProfiler(nullptr);
      throw;
    }
    backend::SetActiveLayerProfiler(nullptr);
    layers = ReportLayers(profiler.Entries(), options.profile_runs, options.profile_top);
    report["layer_profile"] = layers->json;
  }

  if (options.json) {
    fmt::print("{}\n", report.dump(2));
    return 0;
  }
  auto opt_ms = [](const std::optional<double>& v) { return v ? fmt::format("{:.1f} ms", *v) : std::string("-"); };
  fmt::print("=== kiln bench: {} ===\n", options.model);
  fmt::print("model kind:          {} ({})\n", kind.Describe(), report["mode"].get<std::string>());
  fmt::print("signature:           {}; batch {}; {} thread(s); inputs and outputs on {}{}\n", sig.key(), batch,
             options.threads, io_device ? engine_device.ToString() : "the host",
             engine_device.kind == DeviceKind::kCpu ? "" : fmt::format("; CUDA graphs {}", options.cuda_graph));
  fmt::print("load time:           {:.1f} ms\n", load_ms);
  if (convert) {
    fmt::print("conversion:          {} (precision {}, device {})\n", opt_ms(convert_ms), options.precision, options.device);
    fmt::print("engine build time:   {} (save {})\n", opt_ms(build_ms), opt_ms(save_ms));
  }
  fmt::print("first run:           {:.1f} ms\n", first_ms);
  fmt::print("engines:             {} loaded, {} built at load, {} built at run time\n", stats.engines_loaded,
             after_load.engines_built, stats.engines_built - after_load.engines_built);
  fmt::print("engine runs:         {} (native fallbacks: {}) during the measurement\n",
             stats.engine_runs - before.engine_runs, stats.native_runs - before.native_runs);
  fmt::print("iterations:          {} in {:.3f} s (after {} warmup)\n", n, wall_s, options.warmup);
  fmt::print("throughput:          {:.2f} inferences/s, {:.2f} samples/s\n", ips, ips * static_cast<double>(batch));
  fmt::print("latency (ms):        min {:.3f}, mean {:.3f}, median {:.3f}, p90 {:.3f}, p95 {:.3f}, p99 {:.3f}, max {:.3f}\n",
             n ? lat.front() : 0.0, n ? sum / n : 0.0, Percentile(lat, 50), Percentile(lat, 90), Percentile(lat, 95),
             Percentile(lat, 99), n ? lat.back() : 0.0);
  fmt::print("host<->device copies: {}\n", copies_note);
  if (layers) fmt::print("{}", layers->text);
  return 0;
}

}  // namespace kiln::cli
