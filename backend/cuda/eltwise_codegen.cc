#include "backend/cuda/eltwise_codegen.h"

#include <fmt/format.h>

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
    body += fmt::format(fmt::runtime(uniform(i) ? "  const auto v{0} = ew::Load<{1}>(u{0});\n"
                                                : "  const auto v{0} = ew::Load<{1}>(in{0}[o{0}]);\n"),
                        i, CudaTypeName(program.inputs[i]));
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
  body += fmt::format("  out[i] = ew::Store<{}>(v{});\n", CudaTypeName(out_dtype), last);

  std::string params, offsets, offset_args, flat_offsets, walk;
  for (size_t i = 0; i < num_inputs; ++i) {
    params += fmt::format(", const {}* __restrict__ in{}", CudaTypeName(program.inputs[i]), i);
    offsets += fmt::format(", Index o{}", i);
    offset_args += fmt::format(", o{}", i);
    flat_offsets += fmt::format(", i * Index(strides[{}][0])", i);
    walk += fmt::format("        o{0} += c * Index(strides[{0}][d]);\n", i);
  }
  params += fmt::format(", {}* __restrict__ out", CudaTypeName(out_dtype));
  std::string zero;
  for (size_t i = 0; i < num_inputs; ++i) zero += fmt::format("      Index o{} = 0;\n", i);
  std::string pass;  // the pointers, passed on
  for (size_t i = 0; i < num_inputs; ++i) pass += fmt::format(", in{}", i);
  pass += ", out";
  std::string element_pass = pass;  // and the uniform values, to each element
  // Uniform inputs: loaded once at the kernel's start, passed to every element by value.
  std::string uniform_loads, uniform_params;
  for (size_t i = 0; i < num_inputs; ++i) {
    if (!uniform(i)) continue;
    uniform_loads += fmt::format("  const {0} u{1} = in{1}[0];\n", CudaTypeName(program.inputs[i]), i);
    uniform_params += fmt::format(", const {} u{}", CudaTypeName(program.inputs[i]), i);
    element_pass += fmt::format(", u{}", i);
  }

  std::string source = kPrologue;
  source += fmt::format(R"(
struct KilnEltwiseDims {{
  long long n;
  int rank;
  long long dims[8];
  unsigned int magic[8];
  unsigned int shift[8];
}};

template <typename Index>
__device__ __forceinline__ Index KilnDiv(Index x, const KilnEltwiseDims& p, int d) {{
  if constexpr (sizeof(Index) == 4) {{
    return (__umulhi(x, p.magic[d]) + x) >> p.shift[d];
  }} else {{
    return x / Index(p.dims[d]);
  }}
}}

template <typename Index>
__device__ __forceinline__ void KilnElement(Index i{3}{1}{14}) {{
{2}}}

template <typename Index>
__device__ __forceinline__ void KilnEltwise(const KilnEltwiseDims& p, const long long (&strides)[{0}][8]{1}) {{
  const Index n = Index(p.n);
  const Index step = Index(gridDim.x) * Index(blockDim.x);
  Index i = Index(blockIdx.x) * Index(blockDim.x) + Index(threadIdx.x);
{13}  if (p.rank == 1) {{  // every input contiguous or a scalar: no index arithmetic
    // Four elements a grid's stride apart per iteration: four independent loads per input in
    // flight, each still coalesced across the warp.
    for (; i + 3 * step < n; i += 4 * step) {{
      KilnElement<Index>(i{4}{5});
      KilnElement<Index>(i + step{10}{5});
      KilnElement<Index>(i + 2 * step{11}{5});
      KilnElement<Index>(i + 3 * step{12}{5});
    }}
    for (; i < n; i += step) KilnElement<Index>(i{4}{5});
    return;
  }}
  for (; i < n; i += step) {{
{6}    {{
      Index rest = i;
      for (int d = p.rank - 1; d >= 0; --d) {{
        const Index q = KilnDiv<Index>(rest, p, d);
        const Index c = rest - q * Index(p.dims[d]);
        rest = q;
{7}      }}
    }}
    KilnElement<Index>(i{8}{5});
  }}
}}

struct KilnEltwiseStrides {{
  long long s[{0}][8];
}};
)",
                        num_inputs, params, body, offsets, flat_offsets, element_pass, zero, walk, offset_args, "",
                        FlatOffsets(num_inputs, "i + step"), FlatOffsets(num_inputs, "i + 2 * step"),
                        FlatOffsets(num_inputs, "i + 3 * step"), uniform_loads, uniform_params);
  std::string args = pass;
  for (const char* kernel : {kEltwiseKernel32, kEltwiseKernel64})
    source += fmt::format(
        "extern \"C\" __global__ void {0}(const KilnEltwiseDims p, const KilnEltwiseStrides strides{1}) {{\n"
        "  KilnEltwise<{2}>(p, strides.s{3});\n}}\n",
        kernel, params, kernel == kEltwiseKernel32 ? "unsigned int" : "long long", args);
  return source;
}

}  // namespace kiln::backend::cuda
