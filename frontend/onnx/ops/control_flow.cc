// ONNX Loop -> IR While.
//
// Loop(M?, cond?, v_initial...) runs
//   for (i = 0; (M absent || i < M) && (cond absent || c); ++i) { c, v... = body(i, c, v...) }
// (with cond absent, the body's condition output is ignored). The IR While carries
//   [i (int64), c (bool), v..., outer values the body reads..., M (int64)]
// Its `cond` subgraph computes Less(i, M) && c; its `body` is the imported ONNX body with M
// appended as an input and its outputs re-declared as [i + 1, c', v'..., captured..., M].
// Scan outputs (body outputs after the loop-carried ones, stacked along a new first axis) are two
// more loop-carried values each, before M: the values so far flattened and concatenated (starting
// empty), and the last value's shape; after the loop the flat values are reshaped to
// [iterations, shape...]. (Element shapes may differ between iterations only in ways ONNX forbids.)
#include <onnx/onnx_pb.h>

#include <limits>

#include <fmt/format.h>

#include "frontend/onnx/importer.h"
#include "ir/op_schema.h"

namespace kiln::onnxfe {
namespace {

ir::ValueId AddInferred(ir::Graph& g, const std::string& op, const std::string& name, std::vector<ir::ValueId> inputs,
                        ir::AttrMap attrs = {}) {
  ir::Node& n = g.AddNode(op, name, std::move(inputs));
  n.source_op = "Loop";
  n.attrs = std::move(attrs);
  const ir::NodeId id = n.id;
  ir::InferNode(g, id);
  return g.node(id).outputs[0];
}

// Rank kept, every dim unknown: loop-carried values may change size between iterations.
ir::SymShape LoopCarriedShape(const ir::SymShape& s) {
  if (!s.rank_known) return s;
  return ir::SymShape::Of(std::vector<ir::Dim>(s.dims.size(), ir::kUnknownDim));
}

void ImportLoop(ImportContext& ctx) {
  const onnx::GraphProto& body = ctx.attr_graph("body");
  const int n = ctx.num_inputs() - 2;  // loop-carried values
  if (n < 0) ctx.Invalid(fmt::format("expects at least 2 inputs (M, cond; either may be \"\"), got {}", ctx.num_inputs()));
  if (body.input_size() != n + 2)
    ctx.Invalid(fmt::format("the body takes {} inputs; expected {} (iteration number, condition, {} loop-carried)",
                            body.input_size(), n + 2, n));
  if (body.output_size() < n + 1)
    ctx.Invalid(fmt::format("the body returns {} outputs; expected at least {} (condition, {} loop-carried)",
                            body.output_size(), n + 1, n));
  const int scans = body.output_size() - n - 1;
  if (ctx.validate_only()) return;

  const bool has_m = ctx.has_input(0), has_cond = ctx.has_input(1);
  if (has_m && ctx.input_dtype(0) != DType::kInt64)
    ctx.Invalid(fmt::format("M must be int64, got {}", DTypeName(ctx.input_dtype(0))));
  if (has_cond && ctx.input_dtype(1) != DType::kBool)
    ctx.Invalid(fmt::format("cond must be bool, got {}", DTypeName(ctx.input_dtype(1))));

  std::vector<SubgraphInput> explicit_inputs = {{DType::kInt64, ir::SymShape::Scalar()}, {DType::kBool, ir::SymShape::Scalar()}};
  for (int k = 0; k < n; ++k)
    explicit_inputs.push_back({ctx.input_dtype(2 + k), LoopCarriedShape(ctx.input_shape(2 + k))});
  ImportedSubgraph sub = ctx.ImportSubgraph(body, explicit_inputs, ctx.FreeNames(body));
  ir::Graph& bg = *sub.graph;
  const int captured = static_cast<int>(sub.captured.size());
  for (int k = 0; k < n; ++k) {
    const ir::Value& out = bg.value(bg.outputs()[static_cast<size_t>(1 + k)]);
    if (out.dtype != explicit_inputs[static_cast<size_t>(2 + k)].dtype)
      ctx.Invalid(fmt::format("loop-carried value {} enters as {} but the body returns {}", k,
                              DTypeName(explicit_inputs[static_cast<size_t>(2 + k)].dtype), DTypeName(out.dtype)));
  }

  // Scan outputs: the flat values so far and the last value's shape, carried.
  std::vector<ir::ValueId> scan_outputs;  // in the body: [flat values', shape'] per scan output
  std::vector<DType> scan_dtypes;
  for (int k = 0; k < scans; ++k) {
    const ir::ValueId y = bg.outputs()[static_cast<size_t>(1 + n + k)];
    const DType dtype = bg.value(y).dtype;
    const ir::ValueId flat_in = bg.AddInput(fmt::format("loop/scan{}_values", k), dtype, ir::SymShape::Of({ir::kUnknownDim}));
    bg.AddInput(fmt::format("loop/scan{}_shape", k), DType::kInt64, ir::SymShape::Of({ir::kUnknownDim}));
    const ir::ValueId minus_one = bg.AddConstant(fmt::format("loop/scan{}_flat", k), Tensor::FromVector<int64_t>(DType::kInt64, {1}, {-1}));
    const ir::ValueId axis0 = bg.AddConstant(fmt::format("loop/scan{}_axis", k), Tensor::Scalar<int64_t>(DType::kInt64, 0));
    const ir::ValueId flat = AddInferred(bg, "Reshape", fmt::format("loop/scan{}_flatten", k), {y, minus_one});
    scan_outputs.push_back(AddInferred(bg, "Concat", fmt::format("loop/scan{}_append", k), {flat_in, flat, axis0}));
    ir::AttrMap shape_attrs;
    shape_attrs.Set("out_type", DType::kInt64);
    scan_outputs.push_back(AddInferred(bg, "Shape", fmt::format("loop/scan{}_shape_of", k), {y}, shape_attrs));
    scan_dtypes.push_back(dtype);
  }

  // The body: append M, re-declare the outputs.
  const ir::ValueId m_in = bg.AddInput("loop/M", DType::kInt64, ir::SymShape::Scalar());
  const ir::ValueId one = bg.AddConstant("loop/one", Tensor::Scalar<int64_t>(DType::kInt64, 1));
  const ir::ValueId next_i = AddInferred(bg, "Add", "loop/next_iteration", {bg.inputs()[0], one});
  const ir::ValueId next_c = has_cond ? bg.outputs()[0] : bg.AddConstant("loop/true", Tensor::Scalar<bool>(DType::kBool, true));
  std::vector<ir::ValueId> body_outputs(bg.outputs().begin(), bg.outputs().end());
  bg.ClearOutputs();
  bg.AddOutput("iteration", next_i);
  bg.AddOutput("condition", next_c);
  for (int k = 0; k < n; ++k) bg.AddOutput(fmt::format("v{}", k), body_outputs[static_cast<size_t>(1 + k)]);
  for (int k = 0; k < captured; ++k) bg.AddOutput(fmt::format("captured{}", k), bg.inputs()[static_cast<size_t>(2 + n + k)]);
  for (int k = 0; k < scans; ++k) {
    bg.AddOutput(fmt::format("scan{}_values", k), scan_outputs[static_cast<size_t>(2 * k)]);
    bg.AddOutput(fmt::format("scan{}_shape", k), scan_outputs[static_cast<size_t>(2 * k + 1)]);
  }
  bg.AddOutput("M", m_in);

  // The condition: i < M && c, over the same variables.
  auto cond = std::make_shared<ir::Graph>();
  std::vector<ir::ValueId> cond_inputs;
  for (ir::ValueId v : bg.inputs()) {
    const ir::Value& bv = bg.value(v);
    cond_inputs.push_back(cond->AddInput(bv.name, bv.dtype, LoopCarriedShape(bv.shape)));
  }
  const ir::ValueId in_range = AddInferred(*cond, "Less", "loop/in_range", {cond_inputs.front(), cond_inputs.back()});
  cond->AddOutput("continue", AddInferred(*cond, "LogicalAnd", "loop/continue", {in_range, cond_inputs[1]}));

  // The While node.
  std::vector<ir::ValueId> inputs = {ctx.ConstInt64({0}, true, "iteration0"),
                                     has_cond ? ctx.input(1) : ctx.Constant(Tensor::Scalar<bool>(DType::kBool, true), "true")};
  for (int k = 0; k < n; ++k) inputs.push_back(ctx.input(2 + k));
  inputs.insert(inputs.end(), sub.captured.begin(), sub.captured.end());
  for (int k = 0; k < scans; ++k) {
    inputs.push_back(ctx.Constant(Tensor(scan_dtypes[static_cast<size_t>(k)], {0}), fmt::format("scan{}_empty", k)));
    inputs.push_back(ctx.ConstInt64({}, false, fmt::format("scan{}_no_shape", k)));
  }
  inputs.push_back(has_m ? ctx.input(0)
                         : ctx.ConstInt64({std::numeric_limits<int64_t>::max()}, true, "no_trip_count"));
  ir::AttrMap attrs;
  attrs.Set("cond", cond);
  attrs.Set("body", sub.graph);
  const int vars = static_cast<int>(inputs.size());
  std::vector<ir::ValueId> outs = ctx.Emit("While", std::move(inputs), std::move(attrs), vars);
  for (int k = 0; k < n; ++k) ctx.SetOutput(k, outs[static_cast<size_t>(2 + k)]);
  // Each scan output: its flat values as [iterations, last shape...].
  const ir::ValueId iterations = ctx.Emit1("Reshape", {outs[0], ctx.ConstInt64({1}, false, "count_shape")});
  for (int k = 0; k < scans; ++k) {
    const size_t at = static_cast<size_t>(2 + n + captured + 2 * k);
    const ir::ValueId shape =
        ctx.Emit1("Concat", {iterations, outs[at + 1], ctx.ConstInt64({0}, true, fmt::format("scan{}_axis", k))});
    ctx.SetOutput(n + k, ctx.Emit1("Reshape", {outs[at], shape}));
  }
}
KILN_ONNX_IMPORTER("Loop", ImportLoop);

}  // namespace

}  // namespace kiln::onnxfe
