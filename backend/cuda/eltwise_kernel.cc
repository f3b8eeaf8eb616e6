#include "backend/cuda/eltwise_kernel.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "backend/cuda/cuda_check.h"

namespace kiln::backend::cuda {
namespace {

using Walk = EltwiseWalk;

// Drops dims of size 1 and merges neighbouring dims that every input walks contiguously
// together, so the common cases index with one or two dims.
Walk Merge(const Walk& full) {
  const size_t k = full.strides.size();
  Walk w;
  w.strides.resize(k);
  for (size_t d = 0; d < full.dims.size(); ++d) {
    if (full.dims[d] == 1) continue;
    bool merge = !w.dims.empty();
    for (size_t i = 0; merge && i < k; ++i) merge = w.strides[i].back() == full.strides[i][d] * full.dims[d];
    if (merge) {
      w.dims.back() *= full.dims[d];
      for (size_t i = 0; i < k; ++i) w.strides[i].back() = full.strides[i][d];
    } else {
      w.dims.push_back(full.dims[d]);
      for (size_t i = 0; i < k; ++i) w.strides[i].push_back(full.strides[i][d]);
    }
  }
  if (w.dims.empty()) {
    w.dims.push_back(1);
    for (size_t i = 0; i < k; ++i) w.strides[i].push_back(0);
  }
  return w;
}

Walk Broadcast(std::span<const Tensor> inputs, const Shape& out) {
  const size_t k = inputs.size(), r = out.size();
  Walk full;
  full.dims.assign(out.begin(), out.end());
  full.strides.assign(k, std::vector<long long>(r, 0));
  for (size_t i = 0; i < k; ++i) {
    const Shape& s = inputs[i].shape();
    if (s.size() > r)
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("elementwise input {} of shape {} has more dims than the output {}", i, ShapeToString(s),
                              ShapeToString(out)));
    const size_t offset = r - s.size();
    int64_t stride = 1;
    for (size_t d = s.size(); d-- > 0;) {
      if (s[d] != 1) {
        if (s[d] != out[offset + d])
          throw Error(ErrorCode::kInvalidArgument,
                      fmt::format("elementwise input {} of shape {} does not broadcast into {}", i, ShapeToString(s),
                                  ShapeToString(out)));
        full.strides[i][offset + d] = stride;
      }
      stride *= s[d];
    }
  }
  return Merge(full);
}

int MultiprocessorCount() {
  int device = 0, count = 0;
  Check(cudaGetDevice(&device), "cudaGetDevice");
  Check(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
  return count;
}

}  // namespace

EltwiseKernel::EltwiseKernel(EltwiseProgram program, GpuArch arch)
    : program_(std::move(program)),
      source_(GenerateEltwiseSource(program_)),
      module_(CompiledModule(source_, "kiln_eltwise", arch)) {
  multiprocessors_ = MultiprocessorCount();
  kernel32_ = module_->Kernel(kEltwiseKernel32);
  kernel64_ = module_->Kernel(kEltwiseKernel64);
  kernel_vector_ = module_->Kernel(kEltwiseKernelVector);
  vector_width_ = EltwiseVectorWidth(program_);
}

void EltwiseKernel::Launch(std::span<const Tensor> inputs, Tensor& out, cudaStream_t stream) const {
  if (inputs.size() != program_.inputs.size())
    throw Error(ErrorCode::kInternal, fmt::format("elementwise kernel: {} inputs for a program of {}", inputs.size(),
                                                  program_.inputs.size()));
  if (out.num_elements() == 0) return;
  std::vector<const void*> pointers;
  for (const Tensor& t : inputs) pointers.push_back(t.raw_data());
  Run(Broadcast(inputs, out.shape()), pointers, out, stream);
}

int64_t EltwiseKernel::LocalMemoryBytes() const {
  int64_t most = 0;
  for (cudaKernel_t k : {kernel32_, kernel64_, kernel_vector_}) {
    cudaFuncAttributes attributes{};
    Check(cudaFuncGetAttributes(&attributes, reinterpret_cast<const void*>(k)), "cudaFuncGetAttributes");
    most = std::max<int64_t>(most, static_cast<int64_t>(attributes.localSizeBytes));
  }
  return most;
}

bool EltwiseKernel::UsesVectorLoop(std::span<const Tensor> inputs, const Tensor& out) const {
  std::vector<const void*> pointers;
  for (const Tensor& t : inputs) pointers.push_back(t.raw_data());
  return out.num_elements() > 0 && CanVectorize(Broadcast(inputs, out.shape()), pointers, out);
}

void EltwiseKernel::LaunchPermuted(const Tensor& in, std::span<const int64_t> perm, Tensor& out,
                                   cudaStream_t stream) const {
  if (program_.inputs.size() != 1 || perm.size() != static_cast<size_t>(in.rank()) || out.rank() != in.rank())
    throw Error(ErrorCode::kInternal, "elementwise kernel: a permuted launch needs one input and a full permutation");
  if (out.num_elements() == 0) return;
  std::vector<long long> in_strides(static_cast<size_t>(in.rank()), 1);
  for (int d = in.rank() - 1; d > 0; --d)
    in_strides[static_cast<size_t>(d - 1)] = in_strides[static_cast<size_t>(d)] * in.dim(d);
  Walk full;
  full.dims.assign(out.shape().begin(), out.shape().end());
  full.strides.resize(1);
  for (int64_t p : perm) full.strides[0].push_back(in_strides.at(static_cast<size_t>(p)));
  const void* pointer = in.raw_data();
  Run(Merge(full), {&pointer, 1}, out, stream);
}

void EltwiseKernel::LaunchStrided(const Tensor& in, int64_t first, std::span<const int64_t> steps, const Shape& sizes,
                                  Tensor& out, cudaStream_t stream) const {
  if (program_.inputs.size() != 1 || steps.size() != sizes.size() || NumElements(sizes) != out.num_elements())
    throw Error(ErrorCode::kInternal, "elementwise kernel: a strided launch needs one input and a step per dim");
  if (out.num_elements() == 0) return;
  std::vector<long long> in_strides(static_cast<size_t>(in.rank()), 1);
  for (int d = in.rank() - 1; d > 0; --d)
    in_strides[static_cast<size_t>(d - 1)] = in_strides[static_cast<size_t>(d)] * in.dim(d);
  if (in_strides.size() != sizes.size())
    throw Error(ErrorCode::kInternal, "elementwise kernel: a strided launch needs a step per input dim");
  Walk full;
  full.dims.assign(sizes.begin(), sizes.end());
  full.strides.resize(1);
  for (size_t d = 0; d < sizes.size(); ++d) full.strides[0].push_back(steps[d] * in_strides[d]);
  const void* pointer = static_cast<const char*>(in.raw_data()) + first * static_cast<int64_t>(DTypeSize(in.dtype()));
  Run(Merge(full), {&pointer, 1}, out, stream);
}

void EltwiseKernel::Run(const Walk& w, std::span<const void* const> inputs, Tensor& out, cudaStream_t stream) const {
  const size_t k = program_.inputs.size();
  const int64_t n = out.num_elements();
  if (w.dims.size() > static_cast<size_t>(kMaxEltwiseRank))
    throw Error(ErrorCode::kUnimplemented,
                fmt::format("elementwise kernel: {} dims after merging (at most {})", w.dims.size(), kMaxEltwiseRank));
  EltwiseDims dims;
  dims.n = n;
  dims.rank = static_cast<int>(w.dims.size());
  for (size_t d = 0; d < w.dims.size(); ++d) dims.SetDim(static_cast<int>(d), w.dims[d]);
  for (size_t i = 0; i < k && i < 64; ++i)
    if (w.strides[i].back() == 0) dims.inner_broadcast |= 1ULL << i;
  std::vector<long long> strides(k * kMaxEltwiseRank, 0);
  for (size_t i = 0; i < k; ++i)
    for (size_t d = 0; d < w.dims.size(); ++d) strides[i * kMaxEltwiseRank + d] = w.strides[i][d];
  std::vector<const void*> pointers(inputs.begin(), inputs.end());
  pointers.push_back(out.raw_data());
  std::vector<void*> args = {&dims, strides.data()};
  for (const void*& p : pointers) args.push_back(&p);

  constexpr int kBlock = 256;
  const int64_t max_blocks = int64_t{multiprocessors_} * 16;
  const void* kernel = nullptr;
  int64_t blocks = 0;
  // The 32-bit kernels index with unsigned offsets: every input's offsets must be non-negative
  // and below 2^31 (a slice can walk backwards, or read far into a larger input).
  bool offsets32 = true;
  for (const std::vector<long long>& s : w.strides) {
    long long reach = 0;
    for (size_t d = 0; d < s.size(); ++d) {
      if (s[d] < 0) offsets32 = false;
      reach += (w.dims[d] - 1) * (s[d] < 0 ? -s[d] : s[d]);
    }
    if (reach >= (int64_t{1} << 31)) offsets32 = false;
  }
  if (offsets32 && CanVectorize(w, inputs, out)) {
    const int64_t vectors = n / vector_width_;
    blocks = std::min<int64_t>((vectors + kBlock - 1) / kBlock, max_blocks);
    kernel = reinterpret_cast<const void*>(kernel_vector_);
  } else {
    blocks = std::min<int64_t>((n + kBlock - 1) / kBlock, max_blocks);
    // 32-bit indices while i + four times the grid's stride cannot overflow them.
    const bool small = offsets32 && n + 4 * blocks * kBlock < (int64_t{1} << 31);
    kernel = reinterpret_cast<const void*>(small ? kernel32_ : kernel64_);
  }
  Check(cudaLaunchKernel(kernel, dim3(static_cast<unsigned>(blocks)), dim3(kBlock), args.data(), 0, stream),
        "cudaLaunchKernel (elementwise)");
}

bool EltwiseKernel::CanVectorize(const Walk& w, std::span<const void* const> inputs, const Tensor& out) const {
  const int64_t vec = vector_width_;
  // 32-bit indices: the vector kernel's v + grid stride stays below 2^31 since v < n / vec.
  if (vec < 2 || out.num_elements() >= (int64_t{1} << 30) || w.dims.back() % vec != 0 || inputs.size() > 64)
    return false;  // (EltwiseDims::inner_broadcast has a bit for each of 64 inputs)
  auto aligned = [&](const void* p, DType d) {
    return reinterpret_cast<uintptr_t>(p) % (DTypeSize(d) * static_cast<size_t>(vec)) == 0;
  };
  if (!aligned(out.raw_data(), out.dtype())) return false;
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (k < program_.uniform.size() && program_.uniform[k]) continue;
    const std::vector<long long>& s = w.strides[k];
    if (s.back() == 0) continue;  // one value per vector
    if (s.back() != 1 || !aligned(inputs[k], program_.inputs[k])) return false;
    for (size_t d = 0; d + 1 < s.size(); ++d)
      if (s[d] % vec != 0) return false;
  }
  return true;
}

}  // namespace kiln::backend::cuda
