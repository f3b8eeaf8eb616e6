// The host CPU's ISA features that CPU engines depend on, the device string derived from them,
// the precision an engine can honour on them, and a scoped OpenMP thread limit.
#pragma once

#include <string>

#include "kiln/precision.h"

namespace kiln::backend::cpu {

struct CpuFeatures {
  std::string arch;  // "x86-64", "aarch64", ...
  bool avx2 = false, fma = false, avx512f = false, avx512_bf16 = false, avx512_fp16 = false, amx_bf16 = false;
  // int8 dot-product instructions that oneDNN uses (AVX-512 VNNI, AVX-VNNI or AMX, within
  // ONEDNN_MAX_CPU_ISA): without them oneDNN's int8 kernels halve the weights against int16
  // saturation, so Kiln keeps INT8 models' arithmetic in FP32 there.
  bool int8_dot_product = false;
  bool native_bf16() const { return avx512_bf16 || amx_bf16; }
};

const CpuFeatures& HostCpu();
// "x86-64 avx2 fma" (+ " avx512f", " avx512_bf16", " avx512_fp16", " amx_bf16", " int8_dot" when
// present).
std::string DeviceString(const CpuFeatures& cpu);

struct PrecisionChoice {
  Precision precision = Precision::kFP32;  // what the engine computes in
  std::string note;                        // why the request was not honoured ("" when it was)
  bool bf16_math = false;                  // try bf16 oneDNN convolutions/matmuls (the engine settles per step)
};
PrecisionChoice ChoosePrecision(Precision requested, const CpuFeatures& cpu);

// Limits OpenMP (oneDNN's threading runtime here) to `threads` for parallel regions started by
// the calling thread, restoring the previous limit on destruction. No-op for threads <= 0 or
// when the OpenMP runtime is not loaded.
class OmpThreadLimit {
 public:
  explicit OmpThreadLimit(int threads);
  ~OmpThreadLimit();
  OmpThreadLimit(const OmpThreadLimit&) = delete;
  OmpThreadLimit& operator=(const OmpThreadLimit&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace kiln::backend::cpu
