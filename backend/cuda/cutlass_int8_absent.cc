// Builds without CUTLASS (no headers or no nvcc at configure time) have no sm90 int8 kernels:
// int8 convolutions then run on cuDNN's kernels and cuBLASLt's products only.
#ifndef KILN_WITH_CUTLASS

#include "backend/cuda/cutlass_int8_conv.h"
#include "backend/cuda/cutlass_int8_gemm.h"

namespace kiln::backend::cuda {

int CutlassInt8GemmConfigs() { return 0; }
const char* CutlassInt8GemmConfigName(int) { return "cutlass (not built)"; }
bool CutlassInt8GemmCanRun(int, const CutlassInt8GemmArgs&, int) { return false; }
size_t CutlassInt8GemmWorkspaceBytes(int, const CutlassInt8GemmArgs&, int) { return 0; }
const char* CutlassInt8GemmRun(int, const CutlassInt8GemmArgs&, void*, int, cudaStream_t, int) {
  return "this build has no CUTLASS kernels";
}

int CutlassInt8ConvConfigs() { return 0; }
const char* CutlassInt8ConvConfigName(int) { return "cutlass (not built)"; }
bool CutlassInt8ConvCanRun(int, const CutlassInt8ConvArgs&, int) { return false; }
size_t CutlassInt8ConvWorkspaceBytes(int, const CutlassInt8ConvArgs&, int) { return 0; }
const char* CutlassInt8ConvRun(int, const CutlassInt8ConvArgs&, void*, int, cudaStream_t, int) {
  return "this build has no CUTLASS kernels";
}

}  // namespace kiln::backend::cuda

#endif
