// Per-layer timing of engine runs, as trtexec's --dumpProfile gives it. While a LayerProfiler is
// active, engines time their steps (the CUDA engine: CUDA events around each kernel; the CPU
// engine: the wall clock around each step)
// add one sample per step and run; runs are slower while profiling, so a profile says where the
// time goes, not how fast the model is.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kiln::backend {

class LayerProfiler {
 public:
  struct Entry {
    std::string layer;   // the IR nodes of the step ("a+b+c" for a fused chain)
    std::string kernel;  // what ran them ("cublasLt", "nvrtc elementwise (3 ops)", ...)
    std::string detail;  // e.g. the output shape; a layer run at two shapes has two entries
    double total_ms = 0;
    int64_t calls = 0;
  };
  void Add(std::string_view layer, std::string_view kernel, std::string_view detail, double ms);
  // Every layer seen, in the order first seen.
  std::vector<Entry> Entries() const;

 private:
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
  std::unordered_map<std::string, size_t> index_;  // layer, kernel and detail -> entry
};

// Makes `profiler` the one engines report to (nullptr: none, the default). The caller keeps it
// alive until it is replaced.
void SetActiveLayerProfiler(LayerProfiler* profiler);
LayerProfiler* ActiveLayerProfiler();

}  // namespace kiln::backend
