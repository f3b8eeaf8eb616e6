// Int8 convolutions on Hopper's warpgroup tensor-core instructions (CUTLASS sm90 implicit-GEMM
// kernels: the input's windows are gathered by TMA's im2col mode), with the epilogue of a quantized
// convolution writing int8 (as cutlass_int8_gemm.h):
//   y[n][p][q][k] = int8(round(clamp(alpha[k] * sum_{r,s,c} x[n][p*sh-pt+r*dh][q*sw-pl+s*dw][c] * w[k][r][s][c]
//                                    + beta * residual[n][p][q][k] + bias[k], lower, +inf)))
// x NHWC, w KRSC, residual and y NHWC, all int8 and packed; zero padding; one group. alpha and bias
// float32 [K] on the device (bias may be null), beta a host float (no residual: null and 0), lower
// 0 for a ReLU and -inf otherwise. Compiled ahead of time for sm_90a only; builds without CUTLASS
// (KILN_WITH_CUTLASS unset) have none (cutlass_int8_absent.cc).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "backend/cuda/conv_geometry.h"

namespace kiln::backend::cuda {

struct CutlassInt8ConvArgs {
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

// Number of tile configurations compiled in (0 without CUTLASS).
int CutlassInt8ConvConfigs();
// "cutlass sm90 int8 conv <tile>".
const char* CutlassInt8ConvConfigName(int config);
// Whether the device runs these kernels (compute capability 9.0) and `config` takes the problem
// (channels in and out multiples of 16, 16-byte aligned pointers, sizes that fit CUTLASS's ints,
// output sizes that agree with the padding, stride and dilation).
bool CutlassInt8ConvCanRun(int config, const CutlassInt8ConvArgs& args, int device);
size_t CutlassInt8ConvWorkspaceBytes(int config, const CutlassInt8ConvArgs& args, int device);
// Launches the kernel `repeats` times (timing runs) on `stream`. Null when launched; otherwise why
// CUTLASS refused it or the launch failed.
const char* CutlassInt8ConvRun(int config, const CutlassInt8ConvArgs& args, void* workspace, int device,
                               cudaStream_t stream, int repeats = 1);

}  // namespace kiln::backend::cuda
