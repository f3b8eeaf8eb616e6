// Int8 matrix products on Hopper's warpgroup tensor-core instructions (CUTLASS sm90 kernels:
// TMA loads, warp-specialized persistent mainloop), with the epilogue of a quantized 1x1
// convolution writing int8 (the same arithmetic as int8_gemm.h):
//   D[p][c] = int8(round(clamp(alpha[c] * sum_k X[p][k] * W[c][k] + beta * C[p][c] + bias[c], lower, +inf)))
// X: int8 [pixels][k] (NHWC input), W: int8 [channels][k] (KRSC filter), C, D: int8
// [pixels][channels]; alpha and bias float32 [channels] on the device, beta a host float (0 and no
// C: the residual is not read), lower 0 for a ReLU and -inf otherwise. int8 conversion rounds to
// nearest even and saturates. The kernels are compiled ahead of time for sm_90a only; builds without
// CUTLASS (KILN_WITH_CUTLASS unset) have none
// (cutlass_absent.cc).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "backend/cuda/quantized_operands.h"

namespace kiln::backend::cuda {

struct CutlassQuantizedGemmArgs {
  QuantizedOperands operands;
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

// Number of tile configurations compiled in for the operand combination (0 without CUTLASS, or
// for a combination it has no kernels for).
int CutlassQuantizedGemmConfigs(QuantizedOperands operands);
// "cutlass sm90 <input>-><output> <schedule> <tile>".
std::string CutlassQuantizedGemmConfigName(QuantizedOperands operands, int config);
// Whether the device runs these kernels (compute capability 9.0) and `config` of args.operands
// takes the problem (alignment: k and channels multiples of 16, 16-byte aligned pointers).
bool CutlassQuantizedGemmCanRun(int config, const CutlassQuantizedGemmArgs& args, int device);
size_t CutlassQuantizedGemmWorkspaceBytes(int config, const CutlassQuantizedGemmArgs& args, int device);
// Launches the kernel `repeats` times (timing runs) on `stream`. Null when launched; otherwise why
// CUTLASS refused it or the launch failed (this file is compiled by nvcc apart from the rest of
// Kiln: callers turn the message into an error).
const char* CutlassQuantizedGemmRun(int config, const CutlassQuantizedGemmArgs& args, void* workspace, int device,
                                    cudaStream_t stream, int repeats = 1);

}  // namespace kiln::backend::cuda
