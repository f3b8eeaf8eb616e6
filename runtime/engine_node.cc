#include "runtime/engine_node.h"

#include <chrono>

#include <fmt/format.h>

#include "convert/profiles.h"

namespace kiln::runtime {
namespace {

std::string ShapesToString(const std::vector<Shape>& shapes) {
  std::vector<std::string> parts;
  for (const Shape& s : shapes) parts.push_back(ShapeToString(s));
  return fmt::format("{}", fmt::join(parts, ";"));
}

}  // namespace

EngineNodeRuntime::EngineNodeRuntime(const ir::Node& node, std::shared_ptr<const backend::Backend> backend,
                                     EngineSettings settings, EngineStats& stats, LogFn log)
    : name_(node.attrs.Str("engine_name")),
      segment_(node.attrs.Get<std::shared_ptr<ir::Graph>>("segment")),
      backend_(std::move(backend)),
      settings_(std::move(settings)),
      stats_(stats),
      log_(std::move(log)),
      native_(segment_),
      cache_(std::make_unique<EngineCache>(std::max<size_t>(1, settings_.maximum_cached_engines))) {}

void EngineNodeRuntime::LogOnce(const std::string& key, const std::string& message) {
  {
    std::lock_guard<std::mutex> lock(log_mutex_);
    if (!logged_.insert(key).second) return;
  }
  if (log_) log_(message);
}

std::vector<Tensor> EngineNodeRuntime::RunNativeOnHost(std::span<const Tensor> inputs) {
  ++stats_.native_runs;
  return native_.Run(std::vector<Tensor>(inputs.begin(), inputs.end()));
}

std::vector<Tensor> EngineNodeRuntime::RunNative(std::span<const Tensor> inputs, backend::Stream& stream) {
  const backend::DeviceServices& services = backend_->device_services();
  if (services.device().kind == DeviceKind::kCpu) return RunNativeOnHost(inputs);
  std::vector<Tensor> host;
  for (const Tensor& t : inputs) {
    if (t.is_host()) {
      host.push_back(t);
      continue;
    }
    Tensor h = backend::HostServices().allocator().AllocateTensor(t.dtype(), t.shape());
    services.transfer().CopyTensor(t, h, stream);
    host.push_back(std::move(h));
  }
  stream.Synchronize();
  std::vector<Tensor> outputs = RunNativeOnHost(host);
  for (Tensor& t : outputs) {
    Tensor d = services.allocator().AllocateTensor(t.dtype(), t.shape());
    services.transfer().CopyTensor(t, d, stream);
    t = std::move(d);
  }
  stream.Synchronize();  // the host outputs die here
  return outputs;
}

std::shared_ptr<const backend::Engine> EngineNodeRuntime::Build(const backend::Profile& profile) {
  const auto start = std::chrono::steady_clock::now();
  backend::CompileOptions options = settings_.compile;
  if (log_)
    options.progress = [&](const std::string& what) {
      log_(fmt::format("kiln: building engine {} for profile {}: {}", name_, profile.ToString(), what));
    };
  std::shared_ptr<const backend::Engine> engine = backend_->Compile(*segment_, profile, options);
  ++stats_.engines_built;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!engine->precision_note().empty())
    LogOnce("precision", fmt::format("kiln: engine {}: {}", name_, engine->precision_note()));
  if (log_) log_(fmt::format("kiln: built engine {} for profile {} in {:.2f} s", name_, profile.ToString(), seconds));
  std::lock_guard<std::mutex> lock(cache_mutex_);
  for (const auto& evicted : cache_->Insert(engine))
    LogOnce("evict:" + evicted->profile().ToString(),
            fmt::format("kiln: engine {}: evicted the engine for profile {} (maximum_cached_engines={})", name_,
                        evicted->profile().ToString(), cache_->capacity()));
  return engine;
}

void EngineNodeRuntime::AddLoadedEngine(std::shared_ptr<const backend::Engine> engine) {
  ++stats_.engines_loaded;
  std::lock_guard<std::mutex> lock(cache_mutex_);
  cache_->Insert(std::move(engine));
}

void EngineNodeRuntime::Reserve(size_t capacity) {
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (capacity <= cache_->capacity()) return;
  auto bigger = std::make_unique<EngineCache>(capacity);
  std::vector<std::shared_ptr<const backend::Engine>> engines = cache_->Engines();  // most recent first
  for (auto it = engines.rbegin(); it != engines.rend(); ++it) bigger->Insert(*it);
  cache_ = std::move(bigger);
}

std::vector<std::shared_ptr<const backend::Engine>> EngineNodeRuntime::Engines() const {
  std::lock_guard<std::mutex> lock(cache_mutex_);
  return cache_->Engines();
}

std::vector<Tensor> EngineNodeRuntime::Run(std::span<const Tensor> inputs, backend::Stream& stream,
                                           const OutputAllocator& allocate) {
  std::vector<Shape> shapes;
  for (const Tensor& t : inputs) shapes.push_back(t.shape());
  std::shared_ptr<const backend::Engine> engine;
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    engine = cache_->Find(shapes);
  }
  if (!engine) {
    if (!settings_.allow_build_at_runtime) {
      LogOnce("nobuild:" + ShapesToString(shapes),
              fmt::format("kiln: engine {}: no cached engine covers input shapes {} and allow_build_at_runtime is "
                          "false; running its native segment",
                          name_, ShapesToString(shapes)));
      return RunNative(inputs, stream);
    }
    std::lock_guard<std::mutex> build_lock(build_mutex_);
    {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      engine = cache_->Find(shapes);  // another thread may have built it meanwhile
    }
    if (!engine) {
      const backend::Profile profile =
          settings_.use_dynamic_shape ? convert::ExactProfile(shapes) : convert::ImplicitBatchProfile(shapes);
      const std::string key = profile.ToString();
      if (failed_profiles_.count(key)) return RunNative(inputs, stream);
      try {
        engine = Build(profile);
      } catch (const Error& e) {
        failed_profiles_.insert(key);
        LogOnce("build:" + key, fmt::format("kiln: engine {} failed to build for profile {}: {}; running its native "
                                            "segment for these shapes",
                                            name_, key, e.what()));
        return RunNative(inputs, stream);
      }
    }
  }
  try {
    std::vector<Shape> out_shapes;
    try {
      out_shapes = engine->OutputShapes(shapes);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kUnimplemented) throw;
      // Output shapes only the run determines: the engine allocates the outputs it is handed
      // undefined.
      std::vector<Tensor> outputs(engine->output_dtypes().size());
      engine->Enqueue(inputs, outputs, stream);
      ++stats_.engine_runs;
      return outputs;
    }
    const std::vector<DType> dtypes = engine->output_dtypes();
    std::vector<Tensor> outputs;
    outputs.reserve(out_shapes.size());
    for (size_t i = 0; i < out_shapes.size(); ++i) outputs.push_back(allocate(i, dtypes.at(i), out_shapes[i]));
    engine->Enqueue(inputs, outputs, stream);
    ++stats_.engine_runs;
    return outputs;
  } catch (const Error& e) {
    LogOnce("run:" + engine->profile().ToString(),
            fmt::format("kiln: engine {} (profile {}) failed to run: {}; falling back to its native segment", name_,
                        engine->profile().ToString(), e.what()));
    return RunNative(inputs, stream);
  }
}

}  // namespace kiln::runtime
