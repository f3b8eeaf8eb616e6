// ONNX Loop and Scan -> IR While.
//
// Loop(M?, cond?, v_initial...) runs
//   for (i = 0; (M absent || i < M) && (cond absent || c); ++i) { c, v... = body(i, c, v...) }
// (with cond absent, the body's condition output is ignored). The IR While carries
//   [i (int64), c (bool), v..., outer values the body reads..., M (int64)]
// Its `cond` subgraph computes Less(i, M) && c; its `body` is the imported ONNX body with M
// appended as an input and its outputs re-declared as [i + 1, c', v'..., captured..., M].
// Scan outputs (body outputs after the loop-carried ones, stacked along a new first axis) are two
// more loop-carried values each, before M (AddStackInputs), reshaped to [iterations, shape...]
// after the loop.
#include <onnx/onnx_pb.h>

#include <limits>
#include <utility>

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

// A stacked output of a While (Loop and Scan outputs): carried as the elements so far, flattened
// and concatenated (starting empty), and the last element's shape; reshaped after the loop.
// The two body inputs, in the body's input order at the point of the call.
ir::ValueId AddStackInputs(ir::Graph& body, DType dtype, const std::string& prefix) {
  const ir::ValueId values = body.AddInput(prefix + "_values", dtype, ir::SymShape::Of({ir::kUnknownDim}));
  body.AddInput(prefix + "_shape", DType::kInt64, ir::SymShape::Of({ir::kUnknownDim}));
  return values;
}

// The two carried values after element `y`: the values with y appended, and y's shape.
std::pair<ir::ValueId, ir::ValueId> AppendToStack(ir::Graph& body, ir::ValueId values, ir::ValueId y,
                                                  const std::string& prefix) {
  const ir::ValueId flat_shape =
      body.AddConstant(prefix + "_flat", Tensor::FromVector<int64_t>(DType::kInt64, {1}, {-1}));
  const ir::ValueId axis0 = body.AddConstant(prefix + "_axis", Tensor::Scalar<int64_t>(DType::kInt64, 0));
  const ir::ValueId flat = AddInferred(body, "Reshape", prefix + "_flatten", {y, flat_shape});
  ir::AttrMap shape_attrs;
  shape_attrs.Set("out_type", DType::kInt64);
  return {AddInferred(body, "Concat", prefix + "_append", {values, flat, axis0}),
          AddInferred(body, "Shape", prefix + "_shape_of", {y}, shape_attrs)};
}

// The While's initial values of a stack: no elements, no shape.
void PushEmptyStack(ImportContext& ctx, std::vector<ir::ValueId>& inputs, DType dtype, const std::string& prefix) {
  inputs.push_back(ctx.Constant(Tensor(dtype, {0}), prefix + "_empty"));
  inputs.push_back(ctx.ConstInt64({}, false, prefix + "_no_shape"));
}

// The stacked elements as [count, shape...]; `count` is 1-D with one element.
ir::ValueId Unstack(ImportContext& ctx, ir::ValueId values, ir::ValueId shape, ir::ValueId count,
                    const std::string& prefix) {
  const ir::ValueId full = ctx.Emit1("Concat", {count, shape, ctx.ConstInt64({0}, true, prefix + "_axis")});
  return ctx.Emit1("Reshape", {values, full});
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

  // Scan outputs: stacked (AddStackInputs).
  std::vector<std::pair<ir::ValueId, ir::ValueId>> scan_outputs;  // in the body: (values', shape')
  std::vector<DType> scan_dtypes;
  for (int k = 0; k < scans; ++k) {
    const ir::ValueId y = bg.outputs()[static_cast<size_t>(1 + n + k)];
    const std::string prefix = fmt::format("loop/scan{}", k);
    const ir::ValueId values = AddStackInputs(bg, bg.value(y).dtype, prefix);
    scan_outputs.push_back(AppendToStack(bg, values, y, prefix));
    scan_dtypes.push_back(bg.value(y).dtype);
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
    bg.AddOutput(fmt::format("scan{}_values", k), scan_outputs[static_cast<size_t>(k)].first);
    bg.AddOutput(fmt::format("scan{}_shape", k), scan_outputs[static_cast<size_t>(k)].second);
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
  for (int k = 0; k < scans; ++k) PushEmptyStack(ctx, inputs, scan_dtypes[static_cast<size_t>(k)], fmt::format("scan{}", k));
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
    ctx.SetOutput(n + k, Unstack(ctx, outs[at], outs[at + 1], iterations, fmt::format("scan{}", k)));
  }
}
KILN_ONNX_IMPORTER("Loop", ImportLoop);

// ONNX Scan (9 on) -> IR While over t in [0, T), T the scan inputs' length along their axes. The
// While carries [t, true, states..., scan inputs..., captured..., (values, shape) per scan
// output, T]; its body takes each scan input's element t (T - 1 - t when reversed) with Gather,
// runs the imported ONNX body through an If whose condition is true, and appends the scan output
// elements as Loop does. After the loop the stacked outputs are reversed and moved to their axes.
void ImportScan(ImportContext& ctx) {
  const onnx::GraphProto& body = ctx.attr_graph("body");
  const int m = static_cast<int>(ctx.attr_int("num_scan_inputs"));
  const int n = ctx.num_inputs() - m;  // state variables
  if (m < 1 || n < 0) ctx.Invalid(fmt::format("num_scan_inputs {} with {} inputs", m, ctx.num_inputs()));
  const int k_out = body.output_size() - n;  // scan outputs
  if (body.input_size() != n + m || k_out < 0)
    ctx.Invalid(fmt::format("the body takes {} inputs and returns {} outputs; expected {} inputs ({} states, {} scan "
                            "elements) and at least {} outputs",
                            body.input_size(), body.output_size(), n + m, n, m, n));
  if (ctx.num_outputs() != body.output_size())
    ctx.Invalid(fmt::format("{} outputs; the body returns {}", ctx.num_outputs(), body.output_size()));
  auto per = [&](const char* name, int count) {
    std::vector<int64_t> v = ctx.has_attr(name) ? ctx.attr_ints(name) : std::vector<int64_t>(static_cast<size_t>(count), 0);
    if (static_cast<int>(v.size()) != count)
      ctx.Invalid(fmt::format("{} has {} values; expected {}", name, v.size(), count));
    return v;
  };
  std::vector<int64_t> in_axes = per("scan_input_axes", m), in_dirs = per("scan_input_directions", m),
                       out_axes = per("scan_output_axes", k_out), out_dirs = per("scan_output_directions", k_out);
  for (int64_t d : in_dirs)
    if (d != 0 && d != 1) ctx.Invalid(fmt::format("scan_input_directions must be 0 or 1, got {}", d));
  for (int64_t d : out_dirs)
    if (d != 0 && d != 1) ctx.Invalid(fmt::format("scan_output_directions must be 0 or 1, got {}", d));
  std::vector<ir::SymShape> in_shapes;
  for (int j = 0; j < m; ++j) {
    const ir::SymShape s = ctx.input_shape(n + j);
    if (!s.rank_known || s.rank() < 1) ctx.Unsupported(fmt::format("scan input {} needs a known rank of at least 1", j));
    int64_t& axis = in_axes[static_cast<size_t>(j)];
    if (axis < -s.rank() || axis >= s.rank())
      ctx.Invalid(fmt::format("scan_input_axes[{}] = {} is out of range for rank {}", j, axis, s.rank()));
    if (axis < 0) axis += s.rank();
    in_shapes.push_back(s);
  }
  if (ctx.validate_only()) return;

  // The ONNX body: states, then one element of each scan input (its scan axis removed).
  std::vector<SubgraphInput> explicit_inputs;
  for (int s = 0; s < n; ++s) explicit_inputs.push_back({ctx.input_dtype(s), LoopCarriedShape(ctx.input_shape(s))});
  for (int j = 0; j < m; ++j) {
    std::vector<ir::Dim> dims = in_shapes[static_cast<size_t>(j)].dims;
    dims.erase(dims.begin() + in_axes[static_cast<size_t>(j)]);
    explicit_inputs.push_back({ctx.input_dtype(n + j), ir::SymShape::Of(std::vector<ir::Dim>(dims.size(), ir::kUnknownDim))});
  }
  ImportedSubgraph sub = ctx.ImportSubgraph(body, explicit_inputs, ctx.FreeNames(body));
  const ir::Graph& inner = *sub.graph;
  const int captured = static_cast<int>(sub.captured.size());
  std::vector<DType> out_dtypes;
  std::vector<int> out_ranks;
  for (int k = 0; k < k_out; ++k) {
    const ir::Value& y = inner.value(inner.outputs()[static_cast<size_t>(n + k)]);
    if (!y.shape.rank_known && out_axes[static_cast<size_t>(k)] != 0)
      ctx.Unsupported(fmt::format("scan output {} has an unknown rank and scan_output_axes {}", k,
                                  out_axes[static_cast<size_t>(k)]));
    out_dtypes.push_back(y.dtype);
    out_ranks.push_back(y.shape.rank_known ? y.shape.rank() + 1 : -1);
  }
  for (int s = 0; s < n; ++s)
    if (inner.value(inner.outputs()[static_cast<size_t>(s)]).dtype != ctx.input_dtype(s))
      ctx.Invalid(fmt::format("state {} enters as {} but the body returns {}", s, DTypeName(ctx.input_dtype(s)),
                              DTypeName(inner.value(inner.outputs()[static_cast<size_t>(s)]).dtype)));

  // The While body.
  auto w = std::make_shared<ir::Graph>();
  const ir::ValueId t = w->AddInput("scan/t", DType::kInt64, ir::SymShape::Scalar());
  const ir::ValueId c = w->AddInput("scan/c", DType::kBool, ir::SymShape::Scalar());
  std::vector<ir::ValueId> states, full, caps, stacks;
  for (int s = 0; s < n; ++s)
    states.push_back(w->AddInput(fmt::format("scan/state{}", s), ctx.input_dtype(s), LoopCarriedShape(ctx.input_shape(s))));
  for (int j = 0; j < m; ++j)
    full.push_back(w->AddInput(fmt::format("scan/input{}", j), ctx.input_dtype(n + j), in_shapes[static_cast<size_t>(j)]));
  for (int q = 0; q < captured; ++q) {
    const ir::Value& v = inner.value(inner.inputs()[static_cast<size_t>(n + m + q)]);
    caps.push_back(w->AddInput(fmt::format("scan/captured{}", q), v.dtype, v.shape));
  }
  for (int k = 0; k < k_out; ++k)
    stacks.push_back(AddStackInputs(*w, out_dtypes[static_cast<size_t>(k)], fmt::format("scan/out{}", k)));
  const ir::ValueId total = w->AddInput("scan/T", DType::kInt64, ir::SymShape::Scalar());
  const ir::ValueId one = w->AddConstant("scan/one", Tensor::Scalar<int64_t>(DType::kInt64, 1));
  const ir::ValueId last = AddInferred(*w, "Sub", "scan/last", {total, one});
  const ir::ValueId back = AddInferred(*w, "Sub", "scan/from_end", {last, t});
  std::vector<ir::ValueId> call = states;
  for (int j = 0; j < m; ++j) {
    const ir::ValueId axis = w->AddConstant(fmt::format("scan/axis{}", j),
                                            Tensor::Scalar<int64_t>(DType::kInt64, in_axes[static_cast<size_t>(j)]));
    call.push_back(AddInferred(*w, "Gather", fmt::format("scan/element{}", j),
                               {full[static_cast<size_t>(j)], in_dirs[static_cast<size_t>(j)] ? back : t, axis}));
  }
  call.insert(call.end(), caps.begin(), caps.end());
  call.insert(call.begin(), w->AddConstant("scan/true", Tensor::Scalar<bool>(DType::kBool, true)));
  ir::Node& body_call = w->AddNode("If", "scan/body", std::move(call), static_cast<int>(inner.outputs().size()));
  body_call.source_op = "Scan";
  body_call.attrs.Set("then_branch", sub.graph);
  body_call.attrs.Set("else_branch", sub.graph);
  const ir::NodeId call_id = body_call.id;
  ir::InferNode(*w, call_id);
  const std::vector<ir::ValueId> results = w->node(call_id).outputs;
  w->AddOutput("t", AddInferred(*w, "Add", "scan/next", {t, one}));
  w->AddOutput("c", c);
  for (int s = 0; s < n; ++s) w->AddOutput(fmt::format("state{}", s), results[static_cast<size_t>(s)]);
  for (int j = 0; j < m; ++j) w->AddOutput(fmt::format("input{}", j), full[static_cast<size_t>(j)]);
  for (int q = 0; q < captured; ++q) w->AddOutput(fmt::format("captured{}", q), caps[static_cast<size_t>(q)]);
  for (int k = 0; k < k_out; ++k) {
    const auto [values, shape] = AppendToStack(*w, stacks[static_cast<size_t>(k)], results[static_cast<size_t>(n + k)],
                                               fmt::format("scan/out{}", k));
    w->AddOutput(fmt::format("out{}_values", k), values);
    w->AddOutput(fmt::format("out{}_shape", k), shape);
  }
  w->AddOutput("T", total);

  // The condition: t < T.
  auto cond = std::make_shared<ir::Graph>();
  std::vector<ir::ValueId> cond_inputs;
  for (ir::ValueId v : w->inputs()) {
    const ir::Value& wv = w->value(v);
    cond_inputs.push_back(cond->AddInput(wv.name, wv.dtype, wv.shape));
  }
  cond->AddOutput("continue", AddInferred(*cond, "Less", "scan/in_range", {cond_inputs.front(), cond_inputs.back()}));

  // T: the first scan input's length along its axis.
  ir::AttrMap shape_attrs;
  shape_attrs.Set("out_type", DType::kInt64);
  const ir::ValueId in0_shape = ctx.Emit1("Shape", {ctx.input(n)}, shape_attrs);
  const ir::ValueId length =
      ctx.Emit1("Gather", {in0_shape, ctx.ConstInt64({in_axes[0]}, true, "axis0_index"), ctx.ConstInt64({0}, true, "dim_axis")});
  std::vector<ir::ValueId> inputs = {ctx.ConstInt64({0}, true, "t0"), ctx.Constant(Tensor::Scalar<bool>(DType::kBool, true), "true")};
  for (int s = 0; s < n + m; ++s) inputs.push_back(ctx.input(s));
  inputs.insert(inputs.end(), sub.captured.begin(), sub.captured.end());
  for (int k = 0; k < k_out; ++k) PushEmptyStack(ctx, inputs, out_dtypes[static_cast<size_t>(k)], fmt::format("out{}", k));
  inputs.push_back(length);
  ir::AttrMap attrs;
  attrs.Set("cond", cond);
  attrs.Set("body", w);
  const int vars = static_cast<int>(inputs.size());
  std::vector<ir::ValueId> outs = ctx.Emit("While", std::move(inputs), std::move(attrs), vars);
  for (int s = 0; s < n; ++s) ctx.SetOutput(s, outs[static_cast<size_t>(2 + s)]);
  const ir::ValueId count = ctx.Emit1("Reshape", {length, ctx.ConstInt64({1}, false, "count_shape")});
  for (int k = 0; k < k_out; ++k) {
    const size_t at = static_cast<size_t>(2 + n + m + captured + 2 * k);
    ir::ValueId y = Unstack(ctx, outs[at], outs[at + 1], count, fmt::format("out{}", k));
    if (out_dirs[static_cast<size_t>(k)] == 1) y = ctx.Emit1("Reverse", {y, ctx.ConstInt64({0}, false, fmt::format("out{}_rev", k))});
    int64_t axis = out_axes[static_cast<size_t>(k)];
    const int rank = out_ranks[static_cast<size_t>(k)];
    if (axis != 0) {
      if (axis < -rank || axis >= rank)
        ctx.Invalid(fmt::format("scan_output_axes[{}] = {} is out of range for rank {}", k, axis, rank));
      if (axis < 0) axis += rank;
      std::vector<int64_t> perm;
      for (int64_t d = 1; d <= axis; ++d) perm.push_back(d);
      perm.push_back(0);
      for (int64_t d = axis + 1; d < rank; ++d) perm.push_back(d);
      y = ctx.Emit1("Transpose", {y, ctx.ConstInt64(perm, false, fmt::format("out{}_perm", k))});
    }
    ctx.SetOutput(n + k, y);
  }
}
KILN_ONNX_IMPORTER("Scan", ImportScan);

}  // namespace

}  // namespace kiln::onnxfe
