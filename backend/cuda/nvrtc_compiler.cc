#include "backend/cuda/nvrtc_compiler.h"

#include "backend/cuda/cubin_cache.h"

#include <fmt/format.h>
#include <nvrtc.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/embedded_headers.h"
#include "kiln/error.h"

namespace kiln::backend::cuda {
namespace {

// The standard headers the op formulas include, all answered by nvrtc_std.h.
constexpr const char* kStdHeaders[] = {"cmath",   "type_traits", "limits", "array",       "cstdint",
                                       "cstring", "climits",     "string", "string_view", "cstddef"};

struct ProgramDeleter {
  void operator()(nvrtcProgram* p) const {
    nvrtcDestroyProgram(p);
    delete p;
  }
};

std::string ProgramLog(nvrtcProgram program) {
  size_t size = 0;
  if (nvrtcGetProgramLogSize(program, &size) != NVRTC_SUCCESS || size == 0) return {};
  std::string log(size, '\0');
  nvrtcGetProgramLog(program, log.data());
  while (!log.empty() && (log.back() == '\0' || log.back() == '\n')) log.pop_back();
  return log;
}

}  // namespace

std::string GpuArch::Name() const { return fmt::format("sm_{}{}", major, minor); }

GpuArch ArchOf(int device) {
  GpuArch arch;
  Check(cudaDeviceGetAttribute(&arch.major, cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute");
  Check(cudaDeviceGetAttribute(&arch.minor, cudaDevAttrComputeCapabilityMinor, device), "cudaDeviceGetAttribute");
  return arch;
}

std::string CompileToCubin(const std::string& source, const std::string& name, GpuArch arch) {
  std::vector<const char*> header_texts, header_names;
  const char* std_text = nullptr;
  for (const EmbeddedHeader& h : EmbeddedHeaders()) {
    header_texts.push_back(h.text);
    header_names.push_back(h.include_name);
    if (std::string_view(h.include_name) == "backend/cuda/nvrtc_std.h") std_text = h.text;
  }
  if (!std_text) throw Error(ErrorCode::kInternal, "the NVRTC standard-library header is not embedded");
  for (const char* std_name : kStdHeaders) {
    header_texts.push_back(std_text);
    header_names.push_back(std_name);
  }
  std::unique_ptr<nvrtcProgram, ProgramDeleter> program(new nvrtcProgram{});
  Check(nvrtcCreateProgram(program.get(), source.c_str(), (name + ".cu").c_str(), static_cast<int>(header_texts.size()),
                           header_texts.data(), header_names.data()),
        "nvrtcCreateProgram");
  const std::string arch_option = "-arch=" + arch.Name();
  // -default-device: the op formulas are plain functions; compile them for the device.
  const char* options[] = {"--std=c++20", arch_option.c_str(), "-default-device", "--extra-device-vectorization"};
  const nvrtcResult result = nvrtcCompileProgram(*program, static_cast<int>(std::size(options)), options);
  if (result != NVRTC_SUCCESS)
    throw Error(ErrorCode::kInternal,
                fmt::format("NVRTC could not compile the generated kernel '{}' for {}: {}\n{}", name, arch.Name(),
                            nvrtcGetErrorString(result), ProgramLog(*program)));
  size_t size = 0;
  Check(nvrtcGetCUBINSize(*program, &size), "nvrtcGetCUBINSize");
  std::string cubin(size, '\0');
  Check(nvrtcGetCUBIN(*program, cubin.data()), "nvrtcGetCUBIN");
  return cubin;
}

CudaModule::CudaModule(const std::string& cubin) {
  Check(cudaLibraryLoadData(&library_, cubin.data(), nullptr, nullptr, 0, nullptr, nullptr, 0), "cudaLibraryLoadData");
}

CudaModule::~CudaModule() {
  if (library_) cudaLibraryUnload(library_);
}

cudaKernel_t CudaModule::Kernel(const char* name) const {
  cudaKernel_t kernel = nullptr;
  const cudaError_t status = cudaLibraryGetKernel(&kernel, library_, name);
  if (status != cudaSuccess) {
    cudaGetLastError();
    throw Error(ErrorCode::kInternal,
                fmt::format("the compiled module has no kernel '{}': {}", name, cudaGetErrorString(status)));
  }
  return kernel;
}

unsigned GridFor(long long items, unsigned block) {
  return static_cast<unsigned>(std::max(1LL, std::min<long long>((items + block - 1) / block, 65535LL * 32)));
}

std::shared_ptr<const CudaModule> CompiledModule(const std::string& source, const std::string& name, GpuArch arch) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<const CudaModule>> cache;
  const std::string key = arch.Name() + "\n" + source;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto module = cache[key].lock()) {
    CubinFor(source, name, arch);  // cached: records it for the engine being built
    return module;
  }
  auto module = std::make_shared<const CudaModule>(CubinFor(source, name, arch));
  cache[key] = module;
  return module;
}

}  // namespace kiln::backend::cuda
