// What the cuBLASLt kernels (float matrix products, int8 convolutions as products) share: RAII
// holders for cuBLASLt's descriptors, the process's handle per device, an operand's alignment,
// and how the timing cache and the tactic log name an algorithm.
#pragma once

#include <cublasLt.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace kiln::backend::cuda {

template <typename T, typename Destroy>
struct LtObject {
  T object = nullptr;
  Destroy destroy;
  explicit LtObject(Destroy d) : destroy(d) {}
  ~LtObject() {
    if (object) destroy(object);
  }
  LtObject(const LtObject&) = delete;
  LtObject& operator=(const LtObject&) = delete;
};
using LtLayout = LtObject<cublasLtMatrixLayout_t, decltype(&cublasLtMatrixLayoutDestroy)>;
using LtOpDesc = LtObject<cublasLtMatmulDesc_t, decltype(&cublasLtMatmulDescDestroy)>;
using LtPreference = LtObject<cublasLtMatmulPreference_t, decltype(&cublasLtMatmulPreferenceDestroy)>;

// One cuBLASLt handle per device for the process, for the current device (handles are
// thread-safe; creating one per node would cost each engine build a handle per product).
cublasLtHandle_t LtHandle();

// A heuristic preference: at most `workspace_bytes` of workspace, operands A, B, C and D aligned
// to `alignment` bytes (what the caller's launches check).
void MakePreference(LtPreference& pref, size_t workspace_bytes, uint32_t alignment);

// The largest power of two (up to 256) dividing the address: what cuBLASLt may assume.
uint32_t Alignment(const void* p);

// An algorithm's opaque bytes, as the timing cache records them.
std::string AlgoHex(const cublasLtMatmulAlgo_t& algo);
// An algorithm as the tactic log names it: cuBLASLt's algorithm id, tile, stages and split.
std::string AlgoName(const cublasLtMatmulAlgo_t& algo);

}  // namespace kiln::backend::cuda
