#include "backend/cuda/quantize_kernel.h"

#include <fmt/format.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/eltwise_codegen.h"
#include "kiln/error.h"

namespace kiln::backend::cuda {
namespace {

constexpr const char* kFloat8ByteSource = R"(
__device__ __forceinline__ unsigned char KilnE4M3Byte(float v) {
#if __CUDA_ARCH__ >= 890
  // Ada and Hopper convert in one instruction: round to nearest even, saturating at +-448, NaN to
  // NaN, as RoundFloat8E4M3 and its Bits do (the formula is ~30 instructions an element, which
  // made the quantize kernel compute-bound).
  unsigned short pair;
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(pair) : "f"(0.0f), "f"(v));
  return static_cast<unsigned char>(pair & 0xFF);
#else
  ew::State state;
  return static_cast<unsigned char>(ew::RoundFloat8E4M3::Bits(ew::RoundFloat8E4M3::Apply<float>(v, state)));
#endif
}
)";

// One element per iteration, or V = 16 bytes of T per iteration (one load, one V-byte store of
// int8) when the count and both pointers allow.
constexpr const char* kQuantizeSource = R"(
typedef __KILN_T__ T;
constexpr bool kDequantize = __KILN_DEQUANTIZE__;
constexpr bool kFloat8 = __KILN_FLOAT8__;
typedef __KILN_OUT__ Out;
struct QuantizeParams { float inv_scale, divisor, qmin, qmax, scale; };

// A template so that `if constexpr` discards the branches the output type cannot take.
template <typename O>
__device__ __forceinline__ O QuantizeOne(T x, const QuantizeParams& p) {
  float v = float(ew::Load<T>(x));
  v = p.divisor != 0.0f ? v / p.divisor : v * p.inv_scale;
  if constexpr (kFloat8 && !kDequantize) {
    return static_cast<O>(KilnE4M3Byte(v));
  } else if constexpr (kFloat8) {
    ew::State state;
    v = ew::RoundFloat8E4M3::Apply<float>(v, state);
    return ew::Store<T>(static_cast<ew::ComputeT<T>>(v * p.scale));
  } else {
    v = v == v ? v : 0.0f;  // NaN has no int8 value
    v = rintf(fminf(fmaxf(v, p.qmin), p.qmax));  // round half to even
    if constexpr (kDequantize) {
      return ew::Store<T>(static_cast<ew::ComputeT<T>>(v * p.scale));
    } else {
      return static_cast<O>(static_cast<int>(v));
    }
  }
}

constexpr int kV = 16 / sizeof(T);
struct alignas(16) InVec { T v[kV]; };
struct alignas(sizeof(Out) * kV) OutVec { Out v[kV]; };

extern "C" __global__ void kiln_quantize(const QuantizeParams p, long long n, const T* __restrict__ x,
                                         Out* __restrict__ y) {
  const long long step = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) y[i] = QuantizeOne<Out>(x[i], p);
}
extern "C" __global__ void kiln_quantize_vec(const QuantizeParams p, long long vectors, const T* __restrict__ x,
                                             Out* __restrict__ y) {
  const long long step = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < vectors; i += step) {
    const InVec in = reinterpret_cast<const InVec*>(x)[i];
    OutVec out;
#pragma unroll
    for (int j = 0; j < kV; ++j) out.v[j] = QuantizeOne<Out>(in.v[j], p);
    reinterpret_cast<OutVec*>(y)[i] = out;
  }
}
)";

}  // namespace

QuantizeParams QuantizeParamsOf(const ir::QuantDequant& q) {
  QuantizeParams p;
  p.inv_scale = q.inv_scale;
  p.divisor = q.divisor;
  p.qmin = q.qmin;
  p.qmax = q.qmax;
  p.scale = q.scale;
  return p;
}

std::string QuantizeKernelSource(DType in, ir::QuantFormat format, bool dequantize) {
  if (in != DType::kFloat32 && in != DType::kFloat16 && in != DType::kBFloat16)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("GPU quantization takes float32/float16/bfloat16, not {}", DTypeName(in)));
  std::string body = ReplaceAll(kQuantizeSource, "__KILN_T__", CudaTypeName(in));
  body = ReplaceAll(body, "__KILN_DEQUANTIZE__", dequantize ? "true" : "false");
  const bool fp8 = format == ir::QuantFormat::kFloat8E4M3;
  body = ReplaceAll(body, "__KILN_FLOAT8__", fp8 ? "true" : "false");
  body = ReplaceAll(body, "__KILN_OUT__", dequantize ? CudaTypeName(in) : fp8 ? "unsigned char" : "signed char");
  return std::string(KernelPrologue()) + kFloat8ByteSource + body;
}

const char* Float8ByteSource() { return kFloat8ByteSource; }

QuantizeKernel::QuantizeKernel(DType in, ir::QuantFormat format, bool dequantize, GpuArch arch)
    : in_(in), format_(format), dequantize_(dequantize) {
  module_ = CompiledModule(QuantizeKernelSource(in, format, dequantize), "kiln_quantize", arch);
  scalar_ = module_->Kernel("kiln_quantize");
  vector_ = module_->Kernel("kiln_quantize_vec");
}

void QuantizeKernel::Launch(const void* x, void* out, int64_t n, const QuantizeParams& params,
                            cudaStream_t stream) const {
  if (n <= 0) return;
  const long long width = static_cast<long long>(16 / DTypeSize(in_));
  const size_t out_align = dequantize_ ? 16 : static_cast<size_t>(width);
  const bool vector =
      n % width == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(out) % out_align == 0;
  long long items = vector ? n / width : n;
  QuantizeParams p = params;
  void* args[] = {&p, &items, &x, &out};
  Check(cudaLaunchKernel(reinterpret_cast<const void*>(vector ? vector_ : scalar_), dim3(GridFor(items, 256)),
                         dim3(256), args, 0, stream),
        "cudaLaunchKernel (quantize)");
}

}  // namespace kiln::backend::cuda
