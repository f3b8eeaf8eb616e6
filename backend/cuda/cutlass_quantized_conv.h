// 8-bit convolutions on Hopper's warpgroup tensor-core instructions (CUTLASS sm90 implicit-GEMM
// kernels: the input's windows are gathered by TMA's im2col mode), with the epilogue of a quantized
// convolution (as cutlass_quantized_gemm.h):
//   y[n][p][q][k] = out(clamp(alpha[k] * sum_{r,s,c} x[n][p*sh-pt+r*dh][q*sw-pl+s*dw][c] * w[k][r][s][c]
//                             + beta * residual[n][p][q][k] + bias[k], lower, upper))
// x NHWC and w KRSC, both int8 or both E4M3; residual and y NHWC in the output's storage (int8,
// E4M3 or float16: QuantizedOperands); all packed; zero padding; one group. alpha and bias float32
// [K] on the device (bias may be null), beta a host float (no residual: null and 0), lower 0 for a
// ReLU; E4M3 output is clamped to [-448, 448]. Compiled ahead of time for sm_90a only; builds
// without CUTLASS (KILN_WITH_CUTLASS unset) have none (cutlass_absent.cc).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "backend/cuda/conv_geometry.h"
#include "backend/cuda/quantized_operands.h"

namespace kiln::backend::cuda {

struct CutlassQuantizedConvArgs {
  QuantizedOperands operands;
  ConvGeometry geometry;
  const void* x = nullptr;
  const void* filter = nullptr;
  const float* alpha = nullptr;
  const float* bias = nullptr;     // may be null: no bias
  const void* residual = nullptr;  // may be null: no residual
  float beta = 0;
  void* y = nullptr;
  bool relu = false;
};

// Number of tile configurations compiled in for the operand combination (0 without CUTLASS, or
// for a combination it has no kernels for).
int CutlassQuantizedConvConfigs(QuantizedOperands operands);
// "cutlass sm90 <input>-><output> conv <tile>".
std::string CutlassQuantizedConvConfigName(QuantizedOperands operands, int config);
// Whether the device runs these kernels (compute capability 9.0) and `config` of args.operands
// takes the problem
// (channels in and out multiples of 16, 16-byte aligned pointers, sizes that fit CUTLASS's ints,
// output sizes that agree with the padding, stride and dilation).
bool CutlassQuantizedConvCanRun(int config, const CutlassQuantizedConvArgs& args, int device);
size_t CutlassQuantizedConvWorkspaceBytes(int config, const CutlassQuantizedConvArgs& args, int device);
// Launches the kernel `repeats` times (timing runs) on `stream`. Null when launched; otherwise why
// CUTLASS refused it or the launch failed.
const char* CutlassQuantizedConvRun(int config, const CutlassQuantizedConvArgs& args, void* workspace, int device,
                                    cudaStream_t stream, int repeats = 1);

}  // namespace kiln::backend::cuda
