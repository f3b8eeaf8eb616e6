// cpu-int8-residual: a tensor that a cpu.QuantizeS8 quantizes for an int8 layer and that int8
// convolutions also add as a residual (a ResNet block's input: read by its first convolution and
// by the Add after its last) is added in its 8-bit form: the convolutions' add post-op reads the
// quantized tensor with its scale and zero point (alpha * (q - beta), cpu_ops.h). The quantize is
// then the tensor's only reader, so cpu-int8-output (after this pass) lets the producer write the
// 8-bit values itself, and the float tensor is never stored: a quarter of the bytes each block
// writes and reads. The sum then sees the quantized value instead of the float one, as in
// TensorRT's INT8 residual connections and the CUDA backend's (docs/cuda-backend.md).
//
// Channels-last convolutions only: their residual operand is read in the result's own layout, as
// oneDNN's binary post-op reads 8-bit operands (the kernel does not reorder them).
#include <fmt/format.h>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/int8.h"
#include "backend/cpu/passes/passes.h"
#include "ir/graph_util.h"

namespace kiln::backend::cpu {
namespace {

// Index of the add post-op that reads input `input` of fused node `n` (input >= FirstAddInput).
size_t AddPostOpIndex(const std::vector<PostOp>& ops, size_t input, size_t first_add) {
  size_t add = first_add;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].kind != PostOpKind::kAdd) continue;
    if (add++ == input) return i;
  }
  return ops.size();
}

// True when `reader` reads `x` only as residual operands and is an int8 channels-last convolution.
bool AddsAsInt8Residual(const ir::Graph& g, const ir::Node& reader, ir::ValueId x) {
  if (reader.op != kFusedConv2D || reader.inputs.size() < 2) return false;
  const DType a = g.value(reader.inputs[0]).dtype;
  if (a != DType::kInt8 && a != DType::kUInt8) return false;
  if (reader.attrs.GetOr<std::string>("data_format", "NHWC") != "NHWC") return false;
  const size_t first_add = static_cast<size_t>(FirstAddInput(reader));
  for (size_t i = 0; i < reader.inputs.size(); ++i)
    if (reader.inputs[i] == x && i < first_add) return false;
  return true;
}

class Int8ResidualPass final : public CountingPass {
 public:
  std::string name() const override { return "cpu-int8-residual"; }

  bool Run(ir::Graph& g) override {
    bool changed = false;
    const auto consumers = g.Consumers();
    const size_t num_nodes = g.nodes().size();
    for (size_t i = 0; i < num_nodes; ++i) {
      const ir::Node& q = g.node(static_cast<ir::NodeId>(i));
      if (q.removed || q.op != kQuantizeS8) continue;
      const ir::ValueId x = q.inputs[0], quantized = q.outputs[0];
      if (g.value(x).dtype != DType::kFloat32 || ir::IsGraphOutput(g, x)) continue;
      const std::vector<ir::NodeId>& readers = consumers[static_cast<size_t>(x)];
      bool all_residual = readers.size() > 1;
      for (ir::NodeId r : readers)
        if (r != q.id && !AddsAsInt8Residual(g, g.node(r), x)) all_residual = false;
      if (!all_residual) continue;
      const QuantizeParams p = QuantizeParamsOf(q);
      if (!(p.inv_scale > 0)) continue;
      for (ir::NodeId r : readers) {
        if (r == q.id) continue;
        ir::Node& reader = g.node(r);
        std::vector<PostOp> ops = ReadPostOps(reader);
        const size_t first_add = static_cast<size_t>(FirstAddInput(reader));
        for (size_t in = first_add; in < reader.inputs.size(); ++in) {
          if (reader.inputs[in] != x) continue;
          const size_t op = AddPostOpIndex(ops, in, first_add);
          if (op == ops.size())
            throw Error(ErrorCode::kInternal,
                        fmt::format("node '{}' ({}): input {} has no add post-op", reader.name, reader.op, in));
          ops[op].alpha = 1.0 / static_cast<double>(p.inv_scale);
          ops[op].beta = p.zero_point;
          reader.inputs[in] = quantized;
        }
        WritePostOps(reader.attrs, ops);
      }
      ++rewrites_;
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakeInt8ResidualPass() { return std::make_unique<Int8ResidualPass>(); }

}  // namespace kiln::backend::cpu
