// Builds without CUTLASS (no headers or no nvcc at configure time) have no sm90 quantized kernels:
// quantized convolutions then run on cuDNN's kernels and cuBLASLt's int8 products only.
#ifndef KILN_WITH_CUTLASS

#include "backend/cuda/cutlass_quantized_conv.h"
#include "backend/cuda/cutlass_quantized_gemm.h"

namespace kiln::backend::cuda {

int CutlassQuantizedGemmConfigs(QuantizedOperands) { return 0; }
std::string CutlassQuantizedGemmConfigName(QuantizedOperands, int) { return "cutlass (not built)"; }
bool CutlassQuantizedGemmCanRun(int, const CutlassQuantizedGemmArgs&, int) { return false; }
size_t CutlassQuantizedGemmWorkspaceBytes(int, const CutlassQuantizedGemmArgs&, int) { return 0; }
const char* CutlassQuantizedGemmRun(int, const CutlassQuantizedGemmArgs&, void*, int, cudaStream_t, int) {
  return "this build has no CUTLASS kernels";
}

int CutlassQuantizedConvConfigs(QuantizedOperands) { return 0; }
std::string CutlassQuantizedConvConfigName(QuantizedOperands, int) { return "cutlass (not built)"; }
bool CutlassQuantizedConvCanRun(int, const CutlassQuantizedConvArgs&, int) { return false; }
size_t CutlassQuantizedConvWorkspaceBytes(int, const CutlassQuantizedConvArgs&, int) { return 0; }
const char* CutlassQuantizedConvRun(int, const CutlassQuantizedConvArgs&, void*, int, cudaStream_t, int) {
  return "this build has no CUTLASS kernels";
}

}  // namespace kiln::backend::cuda

#endif
