// Run-time compilation of generated kernels: NVRTC turns CUDA C++ into a cubin for one GPU
// architecture (the embedded op headers and the standard-library stand-in are available to
// #include), and CudaModule loads a cubin and finds its kernels. Compiling needs no GPU.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <string>

namespace kiln::backend::cuda {

struct GpuArch {
  int major = 0, minor = 0;
  std::string Name() const;  // "sm_90"
};

// The architecture of CUDA device `device`.
GpuArch ArchOf(int device);

// Compiles `source` for `arch`; `name` names the program in errors. kInternal with NVRTC's log
// when the source does not compile (generated code always should).
std::string CompileToCubin(const std::string& source, const std::string& name, GpuArch arch);

// A loaded cubin. Libraries are context-independent: kernels may be launched on any stream of
// the device they were compiled for.
class CudaModule {
 public:
  explicit CudaModule(const std::string& cubin);
  ~CudaModule();
  CudaModule(const CudaModule&) = delete;
  CudaModule& operator=(const CudaModule&) = delete;
  // kInternal when the module has no kernel `name`.
  cudaKernel_t Kernel(const char* name) const;

 private:
  cudaLibrary_t library_ = nullptr;
};

}  // namespace kiln::backend::cuda

namespace kiln::backend::cuda {

// Blocks of `block` threads for one thread per item in a grid-stride loop (capped: the loop
// covers the rest).
unsigned GridFor(long long items, unsigned block);

// CompileToCubin + CudaModule, once per (source, architecture) in the process: models repeat the
// same kernels (every residual block's Add + Relu).
std::shared_ptr<const CudaModule> CompiledModule(const std::string& source, const std::string& name, GpuArch arch);

}  // namespace kiln::backend::cuda
