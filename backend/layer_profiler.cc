#include "backend/layer_profiler.h"

#include <atomic>

namespace kiln::backend {
namespace {

std::atomic<LayerProfiler*> g_active{nullptr};

}  // namespace

void LayerProfiler::Add(std::string_view layer, std::string_view kernel, std::string_view detail, double ms) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string key = std::string(layer) + '\n' + std::string(kernel) + '\n' + std::string(detail);
  auto [it, added] = index_.try_emplace(std::move(key), entries_.size());
  if (added) {
    entries_.push_back({std::string(layer), std::string(kernel), std::string(detail), ms, 1});
    return;
  }
  Entry& e = entries_[it->second];
  e.total_ms += ms;
  ++e.calls;
}

std::vector<LayerProfiler::Entry> LayerProfiler::Entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_;
}

void SetActiveLayerProfiler(LayerProfiler* profiler) { g_active.store(profiler); }
LayerProfiler* ActiveLayerProfiler() { return g_active.load(); }

}  // namespace kiln::backend
