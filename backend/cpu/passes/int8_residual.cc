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
//
// cpu-int8-quantized-add: ONNX Runtime's QDQ models quantize a residual Add's inputs themselves:
//   Add(dq(q(conv_result)), dq(q(r))) [-> Relu]
// with the convolution's result read only by its own quantize-dequantize chain. The convolution
// takes the whole expression as post-ops: its result quantized and dequantized in place (linear
// 1/s, clip to [qmin, qmax], round half to even, linear s: the chain's value), plus r's 8-bit
// tensor (the cpu.QuantizeS8 the int8 layers reading r already have, or a new one) as an 8-bit
// add, plus the ReLU. The float result, the chain's pass over it and the Add's pass are gone;
// the values are the graph's (the chain's division by s becomes a multiplication by 1/s).
#include <fmt/format.h>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/int8.h"
#include "backend/cpu/passes/passes.h"
#include "ir/graph_util.h"
#include "ir/quant_dequant.h"

namespace kiln::backend::cpu {
namespace {

// Index in `ops` of the add post-op that reads input `input` of its fused node (input >= first_add).
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

// True when `target` is computed from `from` (a path of live nodes from one to the other).
bool Reaches(const ir::Graph& g, const std::vector<std::vector<ir::NodeId>>& consumers, ir::ValueId from,
             ir::ValueId target) {
  std::vector<ir::ValueId> stack{from};
  std::vector<bool> seen(consumers.size(), false);
  while (!stack.empty()) {
    const ir::ValueId v = stack.back();
    stack.pop_back();
    if (v == target) return true;
    if (seen[static_cast<size_t>(v)]) continue;
    seen[static_cast<size_t>(v)] = true;
    for (ir::NodeId r : consumers[static_cast<size_t>(v)])
      for (ir::ValueId out : g.node(r).outputs) stack.push_back(out);
  }
  return false;
}

class Int8QuantizedAddPass final : public CountingPass {
 public:
  std::string name() const override { return "cpu-int8-quantized-add"; }

  bool Run(ir::Graph& g) override {
    bool changed = false;
    ir::NameGen names(g);
    auto consumers = g.Consumers();
    const size_t num_nodes = g.nodes().size();
    for (size_t i = 0; i < num_nodes; ++i) {
      const ir::Node& add = g.node(static_cast<ir::NodeId>(i));
      if (add.removed || add.op != "Add" || add.inputs.size() != 2 || add.inputs[0] == add.inputs[1]) continue;
      if (ir::IsGraphOutput(g, add.outputs[0]) || g.value(add.outputs[0]).dtype != DType::kFloat32) continue;
      for (size_t side = 0; side < 2; ++side) {
        if (!Absorb(g, names, consumers, add.id, side)) continue;
        consumers = g.Consumers();
        ++rewrites_;
        changed = true;
        break;
      }
    }
    return changed;
  }

 private:
  // Input `side` of `add_id` is the int8 convolution's quantized result, the other the residual.
  static bool Absorb(ir::Graph& g, ir::NameGen& names, const std::vector<std::vector<ir::NodeId>>& consumers,
                     ir::NodeId add_id, size_t side) {
    const ir::Node& add = g.node(add_id);
    const auto own = ir::MatchQuantDequant(g, add.inputs[side]);
    const auto other = ir::MatchQuantDequant(g, add.inputs[1 - side]);
    if (!own || !other || own->format != ir::QuantFormat::kInt8 || other->format != ir::QuantFormat::kInt8)
      return false;
    const ir::ValueId result = own->source, r = other->source;
    const ir::Node* conv = g.Producer(result);
    if (!conv || conv->removed || conv->outputs.size() != 1 || !AddsAsInt8Residual(g, *conv, r) ||
        conv->attrs.GetOr<bool>("int8_output", false) || ir::IsGraphOutput(g, result))
      return false;
    // The result and every step of its chain feed only the next step, the last only the Add.
    if (consumers[static_cast<size_t>(result)].size() != 1 ||
        consumers[static_cast<size_t>(add.inputs[side])].size() != 1)
      return false;
    for (ir::NodeId n : own->nodes)
      for (ir::ValueId out : g.node(n).outputs)
        if (consumers[static_cast<size_t>(out)].size() != 1 || ir::IsGraphOutput(g, out)) return false;
    const auto& shape = g.value(result).shape;
    if (r == result || g.value(r).dtype != DType::kFloat32 || !ir::SameShape(shape, g.value(r).shape) ||
        !ir::SameShape(shape, g.value(add.outputs[0]).shape) || Reaches(g, consumers, result, r))
      return false;
    const ir::NodeId conv_id = conv->id;
    std::vector<PostOp> ops = ReadPostOps(*conv);
    // AddNode may move the nodes: no references into them from here on.
    ir::ValueId quantized = FindQuantizeS8(g, *other);
    if (quantized == ir::kNoValue) quantized = AddQuantizeS8(g, names, *other);
    const Int8Storage storage = StorageFor(other->qmin, other->qmax);
    // The value the Add leaves, and a ReLU that is its only reader.
    ir::ValueId sum = g.node(add_id).outputs[0];
    const double inv_scale = own->divisor != 0 ? 1.0 / own->divisor : own->inv_scale;
    ops.push_back({PostOpKind::kLinear, inv_scale, 0.0});
    ops.push_back({PostOpKind::kClip, own->qmin, own->qmax});
    ops.push_back({PostOpKind::kRound, 0.0, 0.0});
    ops.push_back({PostOpKind::kLinear, own->scale, 0.0});
    ops.push_back({PostOpKind::kAdd, other->scale, static_cast<double>(storage.zero_point)});
    std::vector<ir::NodeId> removed{add_id};
    if (const auto& readers = consumers[static_cast<size_t>(sum)]; readers.size() == 1) {
      const ir::Node& relu = g.node(readers[0]);
      if (relu.op == "Relu" && relu.inputs.size() == 1 && !ir::IsGraphOutput(g, relu.outputs[0])) {
        ops.push_back({PostOpKind::kRelu, 0.0, 0.0});
        removed.push_back(relu.id);
        sum = relu.outputs[0];
      }
    }
    ir::Node& fused = g.node(conv_id);
    WritePostOps(fused.attrs, ops);
    fused.inputs.push_back(quantized);
    for (ir::NodeId n : removed) g.node(n).removed = true;
    g.ReplaceAllUses(sum, result);
    return true;
  }
};

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
std::unique_ptr<CountingPass> MakeInt8QuantizedAddPass() { return std::make_unique<Int8QuantizedAddPass>(); }

}  // namespace kiln::backend::cpu
