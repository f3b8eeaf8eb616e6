// Builds without CUTLASS (no headers or no nvcc at configure time) have no sm90 int8 kernels:
// int8 products then run on cuBLASLt's kernels only.
#ifndef KILN_WITH_CUTLASS

#include "backend/cuda/cutlass_int8_gemm.h"

namespace kiln::backend::cuda {

int CutlassInt8GemmConfigs() { return 0; }
const char* CutlassInt8GemmConfigName(int) { return "cutlass (not built)"; }
bool CutlassInt8GemmCanRun(int, const CutlassInt8GemmArgs&, int) { return false; }
size_t CutlassInt8GemmWorkspaceBytes(int, const CutlassInt8GemmArgs&, int) { return 0; }
const char* CutlassInt8GemmRun(int, const CutlassInt8GemmArgs&, void*, int, cudaStream_t, int) {
  return "this build has no CUTLASS kernels";
}

}  // namespace kiln::backend::cuda

#endif
