// cpu.Cast: converts a tensor to float32 with the elementwise table's conversion
// (ir::elementwise::CastValue, as the reference Cast), in blocks split over oneDNN's OpenMP team
// (parallel_blocks.h); each block's loop is a plain conversion the compiler vectorizes.
#include <fmt/format.h>


#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel_blocks.h"
#include "ir/ops/elementwise_cast.h"
#include "kiln/half.h"

namespace kiln::backend::cpu {
namespace {

template <typename S>
void CastToFloat(const S* in, float* out, int64_t n) {
  ForBlocks(n, [&](int64_t begin, int64_t count) {
    for (int64_t i = begin; i < begin + count; ++i) out[i] = ir::elementwise::CastValue<float, S>(in[i], false);
  });
}

class CastKernel final : public Kernel {
 public:
  CastKernel(const ir::Graph& graph, const ir::Node& node)
      : from_(graph.value(node.inputs.at(0)).dtype), name_(node.name) {}

  std::string Describe() const override { return fmt::format("cast({}->float32)", DTypeName(from_)); }

  void Run(std::span<const Tensor> in, Tensor& out, ExecContext&) const override {
    const Tensor& x = in[0];
    if (x.dtype() != from_ || out.dtype() != DType::kFloat32 || x.num_elements() != out.num_elements())
      throw Error(ErrorCode::kInternal,
                  fmt::format("node '{}': cast of {} {} into {} {}", name_, DTypeName(x.dtype()),
                              ShapeToString(x.shape()), DTypeName(out.dtype()), ShapeToString(out.shape())));
    float* o = out.data<float>();
    const int64_t n = x.num_elements();
    switch (from_) {
      case DType::kBool:
        return CastToFloat(x.data<bool>(), o, n);
      case DType::kInt8:
        return CastToFloat(x.data<int8_t>(), o, n);
      case DType::kUInt8:
        return CastToFloat(x.data<uint8_t>(), o, n);
      case DType::kInt16:
        return CastToFloat(x.data<int16_t>(), o, n);
      case DType::kUInt16:
        return CastToFloat(x.data<uint16_t>(), o, n);
      case DType::kInt32:
        return CastToFloat(x.data<int32_t>(), o, n);
      case DType::kUInt32:
        return CastToFloat(x.data<uint32_t>(), o, n);
      case DType::kInt64:
        return CastToFloat(x.data<int64_t>(), o, n);
      case DType::kUInt64:
        return CastToFloat(x.data<uint64_t>(), o, n);
      case DType::kFloat16:
        return CastToFloat(x.data<Half>(), o, n);
      case DType::kBFloat16:
        return CastToFloat(x.data<BFloat16>(), o, n);
      case DType::kFloat64:
        return CastToFloat(x.data<double>(), o, n);
      default:
        throw Error(ErrorCode::kInternal, fmt::format("node '{}': no CPU cast from {}", name_, DTypeName(from_)));
    }
  }

 private:
  DType from_;
  std::string name_;
};

}  // namespace

std::unique_ptr<Kernel> MakeCastKernel(const ir::Graph& graph, const ir::Node& node) {
  return std::make_unique<CastKernel>(graph, node);
}

}  // namespace kiln::backend::cpu
