#include "backend/cuda/eltwise_kernel.h"

#include <map>
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include "backend/cuda/cuda_check.h"

namespace kiln::backend::cuda {
namespace {

// One compiled module per (source, architecture) in the process: models repeat the same
// elementwise pattern (every residual block's Add + Relu).
std::shared_ptr<const CudaModule> CompiledModule(const std::string& source, GpuArch arch) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<const CudaModule>> cache;
  const std::string key = arch.Name() + "\n" + source;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto module = cache[key].lock()) return module;
  auto module = std::make_shared<const CudaModule>(CompileToCubin(source, "kiln_eltwise", arch));
  cache[key] = module;
  return module;
}

// Output dims and per-input element strides (0 where an input broadcasts), with dims of size 1
// dropped and neighbouring dims merged where every input walks them contiguously together.
struct Walk {
  std::vector<long long> dims;
  std::vector<std::vector<long long>> strides;  // [input][dim]
};

Walk Collapse(std::span<const Tensor> inputs, const Shape& out) {
  const size_t k = inputs.size(), r = out.size();
  std::vector<std::vector<int64_t>> full(k, std::vector<int64_t>(r, 0));
  for (size_t i = 0; i < k; ++i) {
    const Shape& s = inputs[i].shape();
    if (s.size() > r)
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("elementwise input {} of shape {} has more dims than the output {}", i, ShapeToString(s), ShapeToString(out)));
    const size_t offset = r - s.size();
    int64_t stride = 1;
    for (size_t d = s.size(); d-- > 0;) {
      if (s[d] != 1) {
        if (s[d] != out[offset + d])
          throw Error(ErrorCode::kInvalidArgument, fmt::format("elementwise input {} of shape {} does not broadcast into {}", i,
                                                               ShapeToString(s), ShapeToString(out)));
        full[i][offset + d] = stride;
      }
      stride *= s[d];
    }
  }
  Walk w;
  w.strides.resize(k);
  for (size_t d = 0; d < r; ++d) {
    if (out[d] == 1) continue;
    bool merge = !w.dims.empty();
    for (size_t i = 0; merge && i < k; ++i) merge = w.strides[i].back() == full[i][d] * out[d];
    if (merge) {
      w.dims.back() *= out[d];
      for (size_t i = 0; i < k; ++i) w.strides[i].back() = full[i][d];
    } else {
      w.dims.push_back(out[d]);
      for (size_t i = 0; i < k; ++i) w.strides[i].push_back(full[i][d]);
    }
  }
  if (w.dims.empty()) {
    w.dims.push_back(1);
    for (size_t i = 0; i < k; ++i) w.strides[i].push_back(0);
  }
  return w;
}

int MultiprocessorCount() {
  int device = 0, count = 0;
  Check(cudaGetDevice(&device), "cudaGetDevice");
  Check(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
  return count;
}

}  // namespace

EltwiseKernel::EltwiseKernel(EltwiseProgram program, GpuArch arch)
    : program_(std::move(program)), source_(GenerateEltwiseSource(program_)), module_(CompiledModule(source_, arch)) {
  kernel32_ = module_->Kernel(kEltwiseKernel32);
  kernel64_ = module_->Kernel(kEltwiseKernel64);
}

void EltwiseKernel::Launch(std::span<const Tensor> inputs, Tensor& out, cudaStream_t stream) const {
  const size_t k = program_.inputs.size();
  if (inputs.size() != k)
    throw Error(ErrorCode::kInternal, fmt::format("elementwise kernel: {} inputs for a program of {}", inputs.size(), k));
  const int64_t n = out.num_elements();
  if (n == 0) return;
  const Walk w = Collapse(inputs, out.shape());
  if (w.dims.size() > static_cast<size_t>(kMaxEltwiseRank))
    throw Error(ErrorCode::kUnimplemented, fmt::format("elementwise kernel: {} broadcast dims after merging (at most {})",
                                                       w.dims.size(), kMaxEltwiseRank));
  EltwiseDims dims;
  dims.n = n;
  dims.rank = static_cast<int>(w.dims.size());
  for (size_t d = 0; d < w.dims.size(); ++d) dims.dims[d] = w.dims[d];
  std::vector<long long> strides(k * kMaxEltwiseRank, 0);
  for (size_t i = 0; i < k; ++i)
    for (size_t d = 0; d < w.dims.size(); ++d) strides[i * kMaxEltwiseRank + d] = w.strides[i][d];
  std::vector<const void*> pointers(k + 1);
  for (size_t i = 0; i < k; ++i) pointers[i] = inputs[i].raw_data();
  pointers[k] = out.raw_data();
  std::vector<void*> args = {&dims, strides.data()};
  for (const void*& p : pointers) args.push_back(&p);

  static const int sms = MultiprocessorCount();
  constexpr int kBlock = 256;
  const int64_t blocks = std::min<int64_t>((n + kBlock - 1) / kBlock, int64_t{sms} * 16);
  // 32-bit indices while i + the grid's stride cannot overflow them.
  const bool small = n + blocks * kBlock < (int64_t{1} << 31);
  Check(cudaLaunchKernel(reinterpret_cast<const void*>(small ? kernel32_ : kernel64_), dim3(static_cast<unsigned>(blocks)),
                         dim3(kBlock), args.data(), 0, stream),
        "cudaLaunchKernel (elementwise)");
}

}  // namespace kiln::backend::cuda
