// Int8 matrix products on Hopper's warpgroup tensor-core instructions (CUTLASS sm90 kernels:
// TMA loads, warp-specialized persistent mainloop), with the epilogue of a quantized 1x1
// convolution writing int8 (the same arithmetic as int8_gemm.h):
//   D[p][c] = int8(round(clamp(alpha[c] * sum_k X[p][k] * W[c][k] + beta * C[p][c] + bias[c], lower, +inf)))
// X: int8 [pixels][k] (NHWC input), W: int8 [channels][k] (KRSC filter), C, D: int8
// [pixels][channels]; alpha and bias float32 [channels] on the device, beta a host float (0 and no
// C: the residual is not read), lower 0 for a ReLU and -inf otherwise. int8 conversion rounds to
// nearest even and saturates. The kernels are compiled ahead of time for sm_90a only; builds without
// CUTLASS (KILN_WITH_CUTLASS unset) have none
// (cutlass_int8_absent.cc).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace kiln::backend::cuda {

struct CutlassInt8GemmArgs {
  int64_t pixels = 0, channels = 0, k = 0;
  const void* x = nullptr;
  const void* w = nullptr;
  const float* alpha = nullptr;
  const float* bias = nullptr;  // may be null: no bias
  const void* c = nullptr;      // may be null: no residual
  float beta = 0;
  void* d = nullptr;
  bool relu = false;
};

// Number of tile configurations compiled in (0 without CUTLASS).
int CutlassInt8GemmConfigs();
// "cutlass sm90 int8 <schedule> <tile>".
const char* CutlassInt8GemmConfigName(int config);
// Whether the device runs these kernels (compute capability 9.0) and `config` takes the problem
// (alignment: k and channels multiples of 16, 16-byte aligned pointers).
bool CutlassInt8GemmCanRun(int config, const CutlassInt8GemmArgs& args, int device);
size_t CutlassInt8GemmWorkspaceBytes(int config, const CutlassInt8GemmArgs& args, int device);
// Launches the kernel `repeats` times (timing runs) on `stream`. Null when launched; otherwise why
// CUTLASS refused it or the launch failed (this file is compiled by nvcc apart from the rest of
// Kiln: callers turn the message into an error).
const char* CutlassInt8GemmRun(int config, const CutlassInt8GemmArgs& args, void* workspace, int device,
                               cudaStream_t stream, int repeats = 1);

}  // namespace kiln::backend::cuda
