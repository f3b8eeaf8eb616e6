// The run-time side of one engine node: its LRU cache of engines, building engines for new
// shapes when allowed, and the native fallback (the segment run by the reference executor).
// Every fallback is logged once with its reason: never silently.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "ir/graph.h"
#include "kiln/tensor.h"
#include "runtime/engine_cache.h"
#include "runtime/executor.h"

namespace kiln::runtime {

using LogFn = std::function<void(const std::string&)>;

// Where output `index` of an engine node goes: a tensor of `dtype` and `shape` on the engine's
// device (a caller's buffer when one is bound to it, else fresh memory).
using OutputAllocator = std::function<Tensor(size_t index, DType dtype, const Shape& shape)>;

struct EngineSettings {
  backend::CompileOptions compile;
  size_t maximum_cached_engines = 1;
  bool allow_build_at_runtime = true;
  bool use_dynamic_shape = false;  // false: implicit batch (an engine built at batch N serves 1..N)
};

// Counters shared by the engine nodes of one graph (what tests and `kiln run` report).
struct EngineStats {
  std::atomic<int64_t> engines_built{0};   // compiled in this process (build() or at run time)
  std::atomic<int64_t> engines_loaded{0};  // deserialized from engine files
  std::atomic<int64_t> engine_runs{0};
  std::atomic<int64_t> native_runs{0};     // segment executions that fell back to the native subgraph
};

class EngineNodeRuntime {
 public:
  EngineNodeRuntime(const ir::Node& node, std::shared_ptr<const backend::Backend> backend, EngineSettings settings,
                    EngineStats& stats, LogFn log);

  const std::string& name() const { return name_; }
  const ir::Graph& segment() const { return *segment_; }
  std::shared_ptr<const ir::Graph> segment_ptr() const { return segment_; }

  // Runs the node on `stream`: a cached engine covering the input shapes, else a new one (if
  // allowed), else the native segment. Inputs are on the engine device, and so are the
  // outputs (the native segment's are copied there). Outputs are complete once the stream is
  // synchronized. Thread-safe.
  std::vector<Tensor> Run(std::span<const Tensor> inputs, backend::Stream& stream, const OutputAllocator& allocate);
  // The native segment on the host; inputs and outputs cross to and from the engine device.
  std::vector<Tensor> RunNative(std::span<const Tensor> inputs, backend::Stream& stream);
  // The native segment on host inputs, giving host outputs.
  std::vector<Tensor> RunNativeOnHost(std::span<const Tensor> inputs);
  // The device engine inputs and outputs live on.
  Device device() const { return backend_->device_services().device(); }

  // Compiles an engine for `profile` and caches it (counts as built). Throws on failure.
  std::shared_ptr<const backend::Engine> Build(const backend::Profile& profile);
  // Caches an engine built elsewhere (e.g. deserialized; counts as loaded).
  void AddLoadedEngine(std::shared_ptr<const backend::Engine> engine);
  // Grows the cache (never below maximum_cached_engines).
  void Reserve(size_t capacity);
  std::vector<std::shared_ptr<const backend::Engine>> Engines() const;
  const EngineSettings& settings() const { return settings_; }
  // Logs `message` the first time `key` is seen.
  void LogOnce(const std::string& key, const std::string& message);

 private:
  std::string name_;
  std::shared_ptr<const ir::Graph> segment_;
  std::shared_ptr<const backend::Backend> backend_;
  EngineSettings settings_;
  EngineStats& stats_;
  LogFn log_;
  ReferenceExecutor native_;
  mutable std::mutex cache_mutex_;
  std::unique_ptr<EngineCache> cache_;
  std::mutex build_mutex_;
  std::set<std::string> failed_profiles_;
  std::mutex log_mutex_;
  std::set<std::string> logged_;
};

}  // namespace kiln::runtime
