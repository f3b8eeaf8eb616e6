#include "backend/cuda/eltwise_codegen.h"

#include <fmt/format.h>

#include <algorithm>

#include "ir/dtype_class.h"
#include "kiln/error.h"

namespace kiln::backend::cuda {

const char* CudaTypeName(DType d) {
  switch (d) {
    case DType::kFloat32:
      return "float";
    case DType::kFloat64:
      return "double";
    case DType::kFloat16:
      return "kiln::Half";
    case DType::kBFloat16:
      return "kiln::BFloat16";
    case DType::kInt8:
      return "int8_t";
    case DType::kInt16:
      return "int16_t";
    case DType::kInt32:
      return "int32_t";
    case DType::kInt64:
      return "int64_t";
    case DType::kUInt8:
      return "uint8_t";
    case DType::kUInt16:
      return "uint16_t";
    case DType::kUInt32:
      return "uint32_t";
    case DType::kUInt64:
      return "uint64_t";
    case DType::kBool:
      return "bool";
    default:
      throw Error(ErrorCode::kInvalidArgument, fmt::format("dtype {} has no GPU kernels", DTypeName(d)));
  }
}

namespace {

// Device definitions of the float16 conversions that kiln/half.h declares (the host ones are
// software; the GPU converts in one instruction, with the same round-to-nearest-even).
constexpr const char* kPrologue = R"(#include "ir/ops/elementwise_unary_ops.h"
#include "ir/ops/elementwise_binary_ops.h"
#include "ir/ops/elementwise_cast.h"

namespace kiln {
uint16_t Half::FromFloat(float value) {
  unsigned short bits;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(bits) : "f"(value));
  return bits;
}
float Half::ToFloat(uint16_t bits) {
  float value;
  asm("cvt.f32.f16 %0, %1;" : "=f"(value) : "h"(bits));
  return value;
}
}  // namespace kiln

namespace ew = kiln::ir::elementwise;

)";

}  // namespace

const char* KernelPrologue() { return kPrologue; }

void EltwiseDims::SetDim(int d, long long size) {
  dims[d] = size;
  magic[d] = 0;
  shift[d] = 0;
  if (size < 1 || size >= (1LL << 31)) return;  // the 64-bit kernel divides these
  unsigned s = 0;
  while ((1ULL << s) < static_cast<unsigned long long>(size)) ++s;
  const unsigned long long m = ((1ULL << 32) * ((1ULL << s) - static_cast<unsigned long long>(size))) /
                                   static_cast<unsigned long long>(size) +
                               1;
  magic[d] = static_cast<unsigned int>(m);
  shift[d] = s;
}

bool IsGpuFloat(DType d) {
  return d == DType::kFloat32 || d == DType::kFloat16 || d == DType::kBFloat16 || d == DType::kFloat64;
}

std::string ReplaceAll(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

DType EltwiseProgram::ValueDType(int v) const {
  const int num_inputs = static_cast<int>(inputs.size());
  if (v < 0 || v >= num_inputs + static_cast<int>(steps.size()))
    throw Error(ErrorCode::kInternal, fmt::format("elementwise program: value {} does not exist", v));
  if (v < num_inputs) return inputs[static_cast<size_t>(v)];  // also the output of a copy (no steps)
  const EltwiseStep& s = steps[static_cast<size_t>(v - num_inputs)];
  const DType in = ValueDType(s.args.at(0));
  if (!s.op && s.cast_to != DType::kInvalid) {
    CudaTypeName(s.cast_to);  // a dtype the kernels can store
    return s.cast_to;
  }
  if (!s.op) {  // Select(cond, x, y)
    const DType x = ValueDType(s.args.at(1)), y = ValueDType(s.args.at(2));
    if (in != DType::kBool || x != y)
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("Select needs a bool condition and two values of one dtype, got {}, {}, {}",
                              DTypeName(in), DTypeName(x), DTypeName(y)));
    return x;
  }
  if (!ir::InClass(in, s.op->types))
    throw Error(ErrorCode::kInvalidArgument, fmt::format("{} does not accept {}", s.op->name, DTypeName(in)));
  return ir::elementwise::ReturnsBool(s.op->pattern) ? DType::kBool : in;
}

namespace {

// The flat path's input offsets of element `index` (an expression): index times each input's
// only stride (1, or 0 for a scalar).
std::string FlatOffsets(size_t num_inputs, const std::string& index) {
  std::string s;
  for (size_t i = 0; i < num_inputs; ++i) s += fmt::format(", ({}) * Index(strides[{}][0])", index, i);
  return s;
}

}  // namespace

std::string GenerateEltwiseSource(const EltwiseProgram& program) {
  const size_t num_inputs = program.inputs.size();
  if (num_inputs == 0 || (program.steps.empty() && num_inputs != 1))
    throw Error(ErrorCode::kInternal, "an elementwise program needs inputs, and steps unless it copies one input");
  for (size_t i = 0; i < program.steps.size(); ++i) {
    const EltwiseStep& s = program.steps[i];
    const int arity = s.op ? ir::elementwise::Arity(s.op->pattern) : s.cast_to != DType::kInvalid ? 1 : 3;
    if (static_cast<int>(s.args.size()) != arity)
      throw Error(ErrorCode::kInternal,
                  fmt::format("elementwise program: step {} has the wrong number of arguments", i));
    for (int a : s.args)
      if (a < 0 || a >= static_cast<int>(num_inputs + i))
        throw Error(ErrorCode::kInternal,
                    fmt::format("elementwise program: step {} reads value {} before it exists", i, a));
  }
  const DType out_dtype = program.OutputDType();

  // The loads, the steps and the store of element i, given each input's element offset o<k>.
  auto uniform = [&](size_t i) { return i < program.uniform.size() && program.uniform[i]; };
  std::string body;
  for (size_t i = 0; i < num_inputs; ++i)
    body += fmt::format("  const auto v{0} = ew::Load<{1}>(x{0});\n", i, CudaTypeName(program.inputs[i]));
  for (size_t i = 0; i < program.steps.size(); ++i) {
    const EltwiseStep& s = program.steps[i];
    const int v = static_cast<int>(num_inputs + i);
    const char* t = CudaTypeName(program.ValueDType(s.args[0]));
    if (!s.op && s.cast_to == DType::kInvalid) {
      body += fmt::format("  const auto v{0} = v{1} ? v{2} : v{3};\n", v, s.args[0], s.args[1], s.args[2]);
      continue;
    }
    if (!s.op) {
      const char* to = CudaTypeName(s.cast_to);
      body += fmt::format("  const auto v{0} = ew::Load<{1}>(ew::CastValue<{1}, {2}>(ew::Store<{2}>(v{3}), {4}));\n",
                          v, to, t, s.args[0], s.truncate ? "true" : "false");
      continue;
    }
    std::string args;
    for (int a : s.args) args += fmt::format("v{}, ", a);
    body += fmt::format("  ew::State s{0};\n  s{0}.param = {1:.17g};\n", v, s.param);
    body += fmt::format("  const auto v{0} = ew::{1}::Apply<{2}>({3}s{0});\n", v, s.op->name, t, args);
  }
  const int last = static_cast<int>(num_inputs + program.steps.size()) - 1;
  body += fmt::format("  return ew::Store<{}>(v{});\n", CudaTypeName(out_dtype), last);

  const char* out_type = CudaTypeName(out_dtype);
  // params: the kernel's pointers; pass: the same, passed on; element_args and vector_args: the
  // raw input values of one element for KilnCompute, read from memory or from the uniform
  // registers (u<k>), in the scalar and the vector loops.
  std::string params, offsets, offset_args, walk, zero, pass, compute_params, element_args, vector_args;
  std::string uniform_loads, uniform_params, uniform_pass, vector_setup, vector_loads, flat_vector_walk;
  for (size_t i = 0; i < num_inputs; ++i) {
    const char* t = CudaTypeName(program.inputs[i]);
    params += fmt::format(", const {}* __restrict__ in{}", t, i);
    offsets += fmt::format(", Index o{}", i);
    offset_args += fmt::format(", o{}", i);
    walk += fmt::format("        o{0} += c * Index(strides[{0}][d]);\n", i);
    zero += fmt::format("      Index o{} = 0;\n", i);
    pass += fmt::format(", in{}", i);
    compute_params += fmt::format("{}const {} x{}", i ? ", " : "", t, i);
    if (uniform(i)) {
      uniform_loads += fmt::format("  const {0} u{1} = in{1}[0];\n", t, i);
      uniform_params += fmt::format(", const {} u{}", t, i);
      uniform_pass += fmt::format(", u{}", i);
      element_args += fmt::format(", u{}", i);
      vector_args += fmt::format(", u{}", i);
      continue;
    }
    element_args += fmt::format(", in{0}[o{0}]", i);
    // An input that broadcasts along the innermost dim has one value per vector (the host says
    // which do); the vector and the single value are each loaded whole.
    vector_setup += i < 64 ? fmt::format("  const bool broadcast{0} = (p.inner_broadcast >> {0}) & 1;\n", i)
                           : fmt::format("  const bool broadcast{0} = false;  // never launched\n", i);
    vector_loads += fmt::format(
        "    KilnVec<{0}, kKilnVec> a{1} = {{}};\n"
        "    {0} b{1} = {{}};\n"
        "    if (broadcast{1})\n"
        "      b{1} = in{1}[o{1}];\n"
        "    else\n"
        "      a{1} = *reinterpret_cast<const KilnVec<{0}, kKilnVec>*>(in{1} + o{1});\n",
        t, i);
    vector_args += fmt::format(", broadcast{0} ? b{0} : a{0}.v[j]", i);
    flat_vector_walk += fmt::format("      o{0} = broadcast{0} ? 0 : i;\n", i);
  }
  params += fmt::format(", {}* __restrict__ out", out_type);
  pass += ", out";
  element_args.erase(0, 2);
  vector_args.erase(0, 2);

  // Each input's offset o<k> of element i (an Index), walking the output's dims. The loop runs
  // over every possible dim so that it unrolls and reads the parameter arrays at constant
  // indices (a run-time index makes the compiler copy them to local memory).
  const std::string walk_block = fmt::format(R"({{
      Index rest = i;
#pragma unroll
      for (int d = {max_rank} - 1; d >= 0; --d) {{
        if (d >= p.rank) continue;
        const Index q = KilnDiv<Index>(rest, p, d);
        const Index c = rest - q * Index(p.dims[d]);
        rest = q;
{walk}      }}
    }}
)",
                                             fmt::arg("walk", walk), fmt::arg("max_rank", kMaxEltwiseRank));
  const std::string index_walk = zero + "    " + walk_block;
  // The vector loop's: one dim (the common case, same-shape inputs) needs no walk.
  const std::string vector_walk = zero + "    if (p.rank == 1) {\n" + flat_vector_walk + "    } else " + walk_block;

  std::string source = kPrologue;
  source += fmt::format(R"(
struct KilnEltwiseDims {{
  long long n;
  int rank;
  long long dims[8];
  unsigned int magic[8];
  unsigned int shift[8];
  unsigned long long inner_broadcast;
}};

template <typename Index>
__device__ __forceinline__ Index KilnDiv(Index x, const KilnEltwiseDims& p, int d) {{
  if constexpr (sizeof(Index) == 4) {{
    return (__umulhi(x, p.magic[d]) + x) >> p.shift[d];
  }} else {{
    return x / Index(p.dims[d]);
  }}
}}

// One element's value from its inputs' stored values.
__device__ __forceinline__ {out_type} KilnCompute({compute_params}) {{
{body}}}

template <typename Index>
__device__ __forceinline__ void KilnElement(Index i{offsets}{params}{uniform_params}) {{
  out[i] = KilnCompute({element_args});
}}

template <typename Index>
__device__ __forceinline__ void KilnEltwise(const KilnEltwiseDims& p, const long long (&strides)[{k}][8]{params}) {{
  const Index n = Index(p.n);
  const Index step = Index(gridDim.x) * Index(blockDim.x);
  Index i = Index(blockIdx.x) * Index(blockDim.x) + Index(threadIdx.x);
{uniform_loads}  if (p.rank == 1) {{  // every input contiguous or a scalar: no index arithmetic
    // Four elements a grid's stride apart per iteration: four independent loads per input in
    // flight, each still coalesced across the warp.
    for (; i + 3 * step < n; i += 4 * step) {{
      KilnElement<Index>(i{flat0}{pass}{uniform_pass});
      KilnElement<Index>(i + step{flat1}{pass}{uniform_pass});
      KilnElement<Index>(i + 2 * step{flat2}{pass}{uniform_pass});
      KilnElement<Index>(i + 3 * step{flat3}{pass}{uniform_pass});
    }}
    for (; i < n; i += step) KilnElement<Index>(i{flat0}{pass}{uniform_pass});
    return;
  }}
  for (; i < n; i += step) {{
{index_walk}    KilnElement<Index>(i{offset_args}{pass}{uniform_pass});
  }}
}}

// The vector loop: kKilnVec elements of one innermost row per thread and step, each input read
// with one aligned load of kKilnVec values (or one value where it broadcasts along that row) and
// the output written with one store. The host launches it only when every input's innermost
// stride is 0 or 1, the innermost dim and the other strides are multiples of kKilnVec, and the
// pointers are aligned, so that a vector never crosses a row.
constexpr int kKilnVec = {vec};
template <typename T, int N>
struct alignas(sizeof(T) * N) KilnVec {{
  T v[N];
}};

__device__ __forceinline__ void KilnEltwiseVec(const KilnEltwiseDims& p, const long long (&strides)[{k}][8]{params}) {{
  using Index = unsigned int;
  const Index vectors = Index(p.n) / kKilnVec;
  const Index step = Index(gridDim.x) * Index(blockDim.x);
{uniform_loads}{vector_setup}  for (Index v = Index(blockIdx.x) * Index(blockDim.x) + Index(threadIdx.x); v < vectors; v += step) {{
    const Index i = v * kKilnVec;
{vector_walk}{vector_loads}    KilnVec<{out_type}, kKilnVec> r;
#pragma unroll
    for (int j = 0; j < kKilnVec; ++j) r.v[j] = KilnCompute({vector_args});
    *reinterpret_cast<KilnVec<{out_type}, kKilnVec>*>(out + i) = r;
  }}
}}

struct KilnEltwiseStrides {{
  long long s[{k}][8];
}};
)",
                        fmt::arg("k", num_inputs), fmt::arg("params", params), fmt::arg("body", body),
                        fmt::arg("out_type", out_type), fmt::arg("compute_params", compute_params),
                        fmt::arg("offsets", offsets), fmt::arg("uniform_params", uniform_params),
                        fmt::arg("element_args", element_args), fmt::arg("uniform_loads", uniform_loads),
                        fmt::arg("flat0", FlatOffsets(num_inputs, "i")), fmt::arg("flat1", FlatOffsets(num_inputs, "i + step")),
                        fmt::arg("flat2", FlatOffsets(num_inputs, "i + 2 * step")),
                        fmt::arg("flat3", FlatOffsets(num_inputs, "i + 3 * step")), fmt::arg("pass", pass),
                        fmt::arg("uniform_pass", uniform_pass), fmt::arg("index_walk", index_walk), fmt::arg("vector_walk", vector_walk),
                        fmt::arg("offset_args", offset_args), fmt::arg("vec", EltwiseVectorWidth(program)),
                        fmt::arg("vector_setup", vector_setup), fmt::arg("vector_loads", vector_loads), fmt::arg("vector_args", vector_args));
  for (const char* kernel : {kEltwiseKernel32, kEltwiseKernel64, kEltwiseKernelVector}) {
    const std::string call = kernel == kEltwiseKernelVector ? "KilnEltwiseVec"
                             : kernel == kEltwiseKernel32   ? "KilnEltwise<unsigned int>"
                                                            : "KilnEltwise<long long>";
    source += fmt::format(
        "extern \"C\" __global__ void {0}(const KilnEltwiseDims p, const KilnEltwiseStrides strides{1}) {{\n"
        "  {2}(p, strides.s{3});\n}}\n",
        kernel, params, call, pass);
  }
  return source;
}

int EltwiseVectorWidth(const EltwiseProgram& program) {
  size_t widest = DTypeSize(program.OutputDType());
  for (size_t i = 0; i < program.inputs.size(); ++i)
    if (i >= program.uniform.size() || !program.uniform[i]) widest = std::max(widest, DTypeSize(program.inputs[i]));
  return static_cast<int>(16 / std::max<size_t>(widest, 1));
}

}  // namespace kiln::backend::cuda
