// CUDA source for fused elementwise kernels. A program is a DAG of ops from the elementwise op
// table (ir/ops/elementwise_*_ops.h) over broadcast inputs; the generated kernel evaluates it per
// output element in registers, calling the ops' own formulas (the same functions the reference
// kernels and the CPU chains call), so it needs one read per input element and one write.
#pragma once

#include <string>
#include <vector>

#include "ir/ops/elementwise_op_info.h"
#include "kiln/dtype.h"

namespace kiln::backend::cuda {

struct EltwiseStep {
  // An op of the table; nullptr for the two elementwise ops with their own rules: a Cast to
  // `cast_to` (ir/ops/elementwise_cast.h) when cast_to is set, else Select(cond, x, y).
  const ir::elementwise::OpInfo* op = nullptr;
  std::vector<int> args;  // value indices: program inputs first, then step results in order
  double param = 0;       // the op's scalar attribute (OpInfo::param)
  DType cast_to = DType::kInvalid;
  bool truncate = false;  // Cast: TensorFlow's Truncate attribute
};

struct EltwiseProgram {
  std::vector<DType> inputs;
  // uniform[i]: input i always has one element (a scalar constant), read once per thread rather
  // than per element. Shorter than `inputs` means false for the rest.
  std::vector<bool> uniform;
  std::vector<EltwiseStep> steps;  // the last step's result is the output
  // The dtype of value `v` (inputs, then step results). kInvalidArgument for an op that does not
  // accept its arguments' dtypes.
  DType ValueDType(int v) const;
  DType OutputDType() const { return ValueDType(static_cast<int>(inputs.size() + steps.size()) - 1); }
};

// The most dims a (collapsed) broadcast shape may have in a generated kernel.
inline constexpr int kMaxEltwiseRank = 8;

// The kernel's parameter block for `num_inputs` inputs, as the generated code declares it. The
// 32-bit kernel divides by dims[d] as (umulhi(x, magic[d]) + x) >> shift[d] (exact for
// x < 2^31, dims[d] < 2^31: Granlund and Montgomery's division by invariant integers), since a
// hardware-less integer division per dim and element would dominate a memory-bound kernel.
struct EltwiseDims {
  long long n = 0;
  int rank = 0;
  long long dims[kMaxEltwiseRank] = {};
  unsigned int magic[kMaxEltwiseRank] = {};
  unsigned int shift[kMaxEltwiseRank] = {};
  // Bit k: input k's innermost stride is 0 (one value per vector in the vector kernel). Set by
  // the host: choosing strides[k][rank - 1] in the kernel indexes the parameters at run time,
  // which copies them to local memory in every thread.
  unsigned long long inner_broadcast = 0;
  // Sets dims[d] and its magic and shift (for divisors below 2^31).
  void SetDim(int d, long long size);
};

// Names of the kernels in the generated source: 32-bit and 64-bit element indices, and the
// vector loop (32-bit indices, EltwiseVectorWidth(program) elements per load and store).
inline constexpr const char* kEltwiseKernel32 = "kiln_eltwise_i32";
inline constexpr const char* kEltwiseKernel64 = "kiln_eltwise_i64";
inline constexpr const char* kEltwiseKernelVector = "kiln_eltwise_vec";

// Elements per vector in the vector kernel: 16 bytes of the widest dtype it loads or stores
// (uniform inputs are not loaded per element).
int EltwiseVectorWidth(const EltwiseProgram& program);

// The type generated code stores `dtype` as (the op formulas' T): "float", "kiln::Half", ...
// kInvalidArgument for dtypes without GPU kernels (strings, complex).
const char* CudaTypeName(DType dtype);

// Float32, float16, bfloat16 or float64: the dtypes of the floating-point kernels (reductions,
// softmax, pooling).
bool IsGpuFloat(DType dtype);

// `text` with every `from` replaced by `to` (filling the placeholders of kernel templates).
std::string ReplaceAll(std::string text, const std::string& from, const std::string& to);

// What every generated source starts with: the op formulas (ir/ops/elementwise_*_ops.h), the
// device float16 conversions, `namespace ew = kiln::ir::elementwise`.
const char* KernelPrologue();

// The CUDA C++ source of `program`'s kernels. Their parameters: a struct of the output's
// collapsed dims (EltwiseDims layout) followed by long long strides[num_inputs][8] (elements,
// 0 where an input broadcasts), then one pointer per input and the output pointer.
std::string GenerateEltwiseSource(const EltwiseProgram& program);

}  // namespace kiln::backend::cuda
