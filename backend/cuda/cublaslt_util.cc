#include "backend/cuda/cublaslt_util.h"

#include <fmt/format.h>

#include <map>
#include <mutex>

#include "backend/cuda/cuda_check.h"

namespace kiln::backend::cuda {

cublasLtHandle_t LtHandle() {
  static std::mutex mutex;
  static std::map<int, cublasLtHandle_t> handles;
  int device = 0;
  Check(cudaGetDevice(&device), "cudaGetDevice");
  std::lock_guard<std::mutex> lock(mutex);
  cublasLtHandle_t& handle = handles[device];
  if (!handle) Check(cublasLtCreate(&handle), "cublasLtCreate");
  return handle;
}

void MakePreference(LtPreference& pref, size_t workspace_bytes, uint32_t alignment) {
  Check(cublasLtMatmulPreferenceCreate(&pref.object), "cublasLtMatmulPreferenceCreate");
  Check(cublasLtMatmulPreferenceSetAttribute(pref.object, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes,
                                             sizeof(workspace_bytes)),
        "set MAX_WORKSPACE_BYTES");
  for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
    Check(cublasLtMatmulPreferenceSetAttribute(pref.object, attr, &alignment, sizeof(alignment)), "set MIN_ALIGNMENT");
}

uint32_t Alignment(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  uint32_t align = 256;
  while (align > 1 && a % align != 0) align /= 2;
  return align;
}

std::string AlgoHex(const cublasLtMatmulAlgo_t& algo) {
  std::string hex;
  for (uint64_t word : algo.data) hex += fmt::format("{:016x}", word);
  return hex;
}

std::string AlgoName(const cublasLtMatmulAlgo_t& algo) {
  auto attr = [&](cublasLtMatmulAlgoConfigAttributes_t which) {
    uint32_t value = 0;  // every attribute read here is a 32-bit integer (or an enum of that size)
    size_t written = 0;
    if (cublasLtMatmulAlgoConfigGetAttribute(&algo, which, &value, sizeof(value), &written) != CUBLAS_STATUS_SUCCESS)
      return int64_t{-1};
    return static_cast<int64_t>(value);
  };
  return fmt::format("algo {} tile {} stages {} split-k {} swizzle {}", attr(CUBLASLT_ALGO_CONFIG_ID),
                     attr(CUBLASLT_ALGO_CONFIG_TILE_ID), attr(CUBLASLT_ALGO_CONFIG_STAGES_ID),
                     attr(CUBLASLT_ALGO_CONFIG_SPLITK_NUM), attr(CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING));
}

}  // namespace kiln::backend::cuda
