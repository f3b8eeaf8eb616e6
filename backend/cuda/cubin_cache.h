// Compiled kernels kept and carried: the process-wide cache of NVRTC cubins by (architecture,
// source), and their encoding in CUDA engine files, so that loading a saved engine compiles
// nothing. A cubin from a file is used only for the exact source and architecture it was
// compiled from; anything else compiles as usual.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "backend/cuda/nvrtc_compiler.h"

namespace kiln::backend::cuda {

struct CubinEntry {
  GpuArch arch;
  std::string source;
  std::string cubin;
};

// The cubin of `source` for `arch`: from the cache, else compiled by NVRTC (`name` names it in
// errors) and cached. The thread's active CubinRecorder records it either way.
std::string CubinFor(const std::string& source, const std::string& name, GpuArch arch);
// Puts a cubin in the cache (from an engine file); an entry already there is kept.
void AddCubin(const CubinEntry& entry);
// NVRTC compilations in this process so far.
int64_t NvrtcCompileCount();

// Records, on this thread while it lives, every cubin CubinFor hands out (each once); threads
// working for this one record into it too through a CubinRecorderBinding.
class CubinRecorder {
 public:
  CubinRecorder();
  ~CubinRecorder();
  CubinRecorder(const CubinRecorder&) = delete;
  CubinRecorder& operator=(const CubinRecorder&) = delete;
  void Record(const std::string& source, GpuArch arch, const std::string& cubin);
  std::vector<CubinEntry> Take();
  // This thread's recorder (null: none).
  static CubinRecorder* Active();

 private:
  CubinRecorder* previous_;
  std::mutex mutex_;  // worker threads record concurrently
  std::vector<CubinEntry> entries_;
};

// Makes `recorder` (may be null) this thread's recorder while it lives: a worker thread of an
// engine build records into the builder's.
class CubinRecorderBinding {
 public:
  explicit CubinRecorderBinding(CubinRecorder* recorder);
  ~CubinRecorderBinding();
  CubinRecorderBinding(const CubinRecorderBinding&) = delete;
  CubinRecorderBinding& operator=(const CubinRecorderBinding&) = delete;

 private:
  CubinRecorder* previous_;
};

// A self-delimiting encoding of cubin entries (little-endian lengths). DecodeCubins throws
// kDataLoss naming what is wrong for a truncated or malformed encoding.
std::string EncodeCubins(const std::vector<CubinEntry>& entries);
std::vector<CubinEntry> DecodeCubins(std::string_view bytes);

}  // namespace kiln::backend::cuda
