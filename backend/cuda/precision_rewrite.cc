#include "backend/cuda/precision_rewrite.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "ir/graph_util.h"
#include "ir/op_schema.h"
#include "kiln/half.h"

namespace kiln::backend::cuda {
namespace {

// Finite float32 constants beyond float16's range saturate to its largest finite value instead of
// rounding to infinity (as TensorRT clamps such weights): graphs written for float32 use -1e9 as
// "minus infinity" in attention masks, (1 - mask) * -1e9, where an infinite constant gives
// 0 * inf = NaN for every kept position. Infinities and NaNs stay what they are.
float SaturatedToFloat16Range(float x) {
  constexpr float kMax = 65504.0f;
  return std::isfinite(x) ? std::clamp(x, -kMax, kMax) : x;
}

Tensor Narrow(const Tensor& t, DType low) {
  Tensor out(low, t.shape());
  const float* src = t.data<float>();
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    if (low == DType::kFloat16)
      out.data<Half>()[i] = Half(SaturatedToFloat16Range(src[i]));
    else
      out.data<BFloat16>()[i] = BFloat16(src[i]);
  }
  return out;
}

// Div(x, c) for a float32 constant c of one element (finite, not zero) becomes Mul(x, 1/c): a
// multiplication instead of an IEEE division per element (GELU's x / sqrt(2), attention's
// scaling). The two differ by at most an ulp of float32 before the result is stored in 16 bits,
// where an ulp is 8192 (float16) or 65536 (bfloat16) times larger; 1/c itself is rounded to the
// low type as c would have been.
void DivisionsByConstantsAsProducts(ir::Graph& graph, ir::NameGen& names) {
  for (ir::NodeId id : graph.TopologicalOrder()) {
    ir::Node& n = graph.node(id);
    if (n.op != "Div" || n.inputs.size() != 2) continue;
    const Tensor* c = graph.ConstantOf(n.inputs[1]);
    if (!c || c->dtype() != DType::kFloat32 || c->num_elements() != 1 ||
        graph.value(n.inputs[0]).dtype != DType::kFloat32)
      continue;
    const float divisor = c->data<float>()[0];
    if (!std::isfinite(divisor) || divisor == 0.0f || !std::isfinite(1.0f / divisor)) continue;
    Tensor reciprocal(DType::kFloat32, c->shape());
    reciprocal.data<float>()[0] = 1.0f / divisor;
    const ir::ValueId r = graph.AddConstant(names.Make(n.name + "/reciprocal"), std::move(reciprocal));
    ir::Node& node = graph.node(id);  // AddConstant may have moved the node table
    node.op = "Mul";
    node.inputs[1] = r;
  }
}

}  // namespace

int NarrowFloat32(ir::Graph& graph, DType low) {
  if (low != DType::kFloat16 && low != DType::kBFloat16)
    throw Error(ErrorCode::kInternal, fmt::format("NarrowFloat32: {} is not a 16-bit float type", DTypeName(low)));
  ir::NameGen names(graph);
  DivisionsByConstantsAsProducts(graph, names);
  int changed = 0;
  std::vector<bool> float32_output;
  for (ir::ValueId out : graph.outputs()) float32_output.push_back(graph.value(out).dtype == DType::kFloat32);
  // Every float32 value produced inside the segment (constants converted) becomes `low`.
  for (ir::NodeId id : graph.TopologicalOrder()) {
    ir::Node& n = graph.node(id);
    if (n.op == "Constant") {
      ir::Value& v = graph.value(n.outputs[0]);
      if (v.dtype != DType::kFloat32) continue;
      Tensor narrowed = Narrow(n.attrs.Get<Tensor>("value"), low);
      v.constant = std::make_shared<const Tensor>(narrowed);
      v.dtype = low;
      n.attrs.Set("value", std::move(narrowed));
      ++changed;
      continue;
    }
    if (n.op == "Cast" && n.attrs.Type("to") == DType::kFloat32) n.attrs.Set("to", low);
    if (n.attrs.Has("out_dtype") && n.attrs.Type("out_dtype") == DType::kFloat32) n.attrs.Set("out_dtype", low);
    for (ir::ValueId out : n.outputs)
      if (graph.value(out).dtype == DType::kFloat32) {
        graph.value(out).dtype = low;
        ++changed;
      }
  }
  // Inputs: cast down where the engine starts.
  for (ir::ValueId in : std::vector<ir::ValueId>(graph.inputs())) {
    if (graph.value(in).dtype != DType::kFloat32) continue;
    const std::string name = names.Make(graph.value(in).name + "/to_low");
    ir::Node& cast = graph.AddNode("Cast", name, {in}, 1);
    cast.attrs.Set("to", low);
    const ir::NodeId cast_id = cast.id;
    const ir::ValueId narrowed = cast.outputs[0];
    for (ir::Node& n : graph.nodes()) {
      if (n.removed || n.id == cast_id) continue;
      for (ir::ValueId& v : n.inputs)
        if (v == in) v = narrowed;
    }
    for (ir::ValueId& v : graph.mutable_outputs())
      if (v == in) v = narrowed;
    ir::InferNode(graph, cast_id);
  }
  // Outputs: cast back up where it ends (the engine's interface keeps float32).
  for (size_t i = 0; i < graph.outputs().size(); ++i) {
    ir::ValueId& out = graph.mutable_outputs()[i];
    if (!float32_output[i]) continue;
    const std::string name = names.Make(graph.value(out).name + "/to_float32");
    ir::Node& cast = graph.AddNode("Cast", name, {out}, 1);
    cast.attrs.Set("to", DType::kFloat32);
    const ir::NodeId cast_id = cast.id;
    out = graph.node(cast_id).outputs[0];
    ir::InferNode(graph, cast_id);
  }
  // The dtypes must still agree with every op's rules.
  for (ir::NodeId id : graph.TopologicalOrder())
    if (graph.node(id).op != "Constant") ir::InferNode(graph, id);
  return changed;
}

}  // namespace kiln::backend::cuda
