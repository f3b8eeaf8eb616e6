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
#include <fmt/format.h>
#include <onnx/onnx_pb.h>

#include <limits>
#include <utility>

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

// Adds IR nodes to the graph being imported (through the ImportContext, named after the ONNX
// node) or to a loop body being built (named after `prefix`): Scan-8 runs the loop of Scan-9
// inside the body of its loop over the batch, so one loop builder serves both places.
class Emitter {
 public:
  explicit Emitter(ImportContext& ctx) : ctx_(&ctx), graph_(&ctx.graph()) {}
  Emitter(ir::Graph& graph, std::string prefix) : graph_(&graph), prefix_(std::move(prefix)) {}

  ir::Graph& graph() { return *graph_; }

  std::vector<ir::ValueId> Emit(const std::string& op, std::vector<ir::ValueId> inputs, ir::AttrMap attrs = {},
                                int num_outputs = 1) {
    if (ctx_) return ctx_->Emit(op, std::move(inputs), std::move(attrs), num_outputs);
    ir::Node& n = graph_->AddNode(op, NextName(op), std::move(inputs), num_outputs);
    n.source_op = "Scan";
    n.attrs = std::move(attrs);
    const ir::NodeId id = n.id;
    ir::InferNode(*graph_, id);
    return graph_->node(id).outputs;
  }
  ir::ValueId Emit1(const std::string& op, std::vector<ir::ValueId> inputs, ir::AttrMap attrs = {}) {
    return Emit(op, std::move(inputs), std::move(attrs), 1)[0];
  }
  ir::ValueId Constant(Tensor tensor, const std::string& suffix) {
    if (ctx_) return ctx_->Constant(std::move(tensor), suffix);
    return graph_->AddConstant(NextName(suffix), std::move(tensor));
  }
  ir::ValueId ConstInt64(const std::vector<int64_t>& values, bool scalar, const std::string& suffix) {
    if (ctx_) return ctx_->ConstInt64(values, scalar, suffix);
    if (scalar) return Constant(Tensor::Scalar<int64_t>(DType::kInt64, values.at(0)), suffix);
    return Constant(Tensor::FromVector<int64_t>(DType::kInt64, {static_cast<int64_t>(values.size())}, values), suffix);
  }

 private:
  std::string NextName(const std::string& what) { return fmt::format("{}/{}_{}", prefix_, what, count_++); }

  ImportContext* ctx_ = nullptr;
  ir::Graph* graph_;
  std::string prefix_;
  int count_ = 0;
};

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
void PushEmptyStack(Emitter& e, std::vector<ir::ValueId>& inputs, DType dtype, const std::string& prefix) {
  inputs.push_back(e.Constant(Tensor(dtype, {0}), prefix + "_empty"));
  inputs.push_back(e.ConstInt64({}, false, prefix + "_no_shape"));
}

// The stacked elements as [count, shape...]; `count` is 1-D with one element.
ir::ValueId Unstack(Emitter& e, ir::ValueId values, ir::ValueId shape, ir::ValueId count, const std::string& prefix) {
  const ir::ValueId full = e.Emit1("Concat", {count, shape, e.ConstInt64({0}, true, prefix + "_axis")});
  return e.Emit1("Reshape", {values, full});
}

void ImportLoop(ImportContext& ctx) {
  const onnx::GraphProto& body = ctx.attr_graph("body");
  const int n = ctx.num_inputs() - 2;  // loop-carried values
  if (n < 0)
    ctx.Invalid(fmt::format("expects at least 2 inputs (M, cond; either may be \"\"), got {}", ctx.num_inputs()));
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

  std::vector<SubgraphInput> explicit_inputs = {{DType::kInt64, ir::SymShape::Scalar()},
                                                {DType::kBool, ir::SymShape::Scalar()}};
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
  const ir::ValueId next_c =
      has_cond ? bg.outputs()[0] : bg.AddConstant("loop/true", Tensor::Scalar<bool>(DType::kBool, true));
  std::vector<ir::ValueId> body_outputs(bg.outputs().begin(), bg.outputs().end());
  bg.ClearOutputs();
  bg.AddOutput("iteration", next_i);
  bg.AddOutput("condition", next_c);
  for (int k = 0; k < n; ++k) bg.AddOutput(fmt::format("v{}", k), body_outputs[static_cast<size_t>(1 + k)]);
  for (int k = 0; k < captured; ++k)
    bg.AddOutput(fmt::format("captured{}", k), bg.inputs()[static_cast<size_t>(2 + n + k)]);
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
  std::vector<ir::ValueId> inputs = {
      ctx.ConstInt64({0}, true, "iteration0"),
      has_cond ? ctx.input(1) : ctx.Constant(Tensor::Scalar<bool>(DType::kBool, true), "true")};
  for (int k = 0; k < n; ++k) inputs.push_back(ctx.input(2 + k));
  inputs.insert(inputs.end(), sub.captured.begin(), sub.captured.end());
  Emitter e(ctx);
  for (int k = 0; k < scans; ++k)
    PushEmptyStack(e, inputs, scan_dtypes[static_cast<size_t>(k)], fmt::format("scan{}", k));
  inputs.push_back(has_m ? ctx.input(0) : ctx.ConstInt64({std::numeric_limits<int64_t>::max()}, true, "no_trip_count"));
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
    ctx.SetOutput(n + k, Unstack(e, outs[at], outs[at + 1], iterations, fmt::format("scan{}", k)));
  }
}
KILN_ONNX_IMPORTER("Loop", ImportLoop);

// Dimension `axis` of `x`'s shape, as an int64 scalar.
ir::ValueId DimOf(Emitter& e, ir::ValueId x, int64_t axis) {
  ir::AttrMap shape_attrs;
  shape_attrs.Set("out_type", DType::kInt64);
  const ir::ValueId shape = e.Emit1("Shape", {x}, shape_attrs);
  return e.Emit1("Gather", {shape, e.ConstInt64({axis}, true, "dim_index"), e.ConstInt64({0}, true, "dim_axis")});
}

// One Scan-9 loop: the form an ONNX Scan-9 node gives, or (Scan-8) the loop over one batch
// element's sequence and the loop over the batch around it.
struct ScanLoop {
  // Inputs: states, one element of each scan input, captured values; outputs: states, then one
  // element of each scan output.
  std::shared_ptr<ir::Graph> body;
  std::vector<ir::ValueId> states, inputs, captured;          // in the emitter's graph
  std::vector<int64_t> in_axes, in_dirs, out_axes, out_dirs;  // in_axes within range, not negative
  // The number of steps (an int64 scalar), when not the first scan input's length along its axis.
  ir::ValueId steps = ir::kNoValue;
};

// The loop of ONNX Scan (9 on) -> IR While over t in [0, T), T the first scan input's length
// along its axis (or `loop.steps`).
// The While carries [t, true, states..., scan inputs..., captured..., (values, shape) per scan
// output, T]; its body takes each scan input's element t (T - 1 - t when reversed) with Gather,
// runs `loop.body` through an If whose condition is true, and appends the scan output elements as
// Loop does. After the loop the stacked outputs are reversed and moved to their axes. Returns the
// final states, then the scan outputs.
std::vector<ir::ValueId> EmitScanLoop(ImportContext& ctx, Emitter& e, const ScanLoop& loop) {
  const ir::Graph& inner = *loop.body;
  const ir::Graph& outer = e.graph();
  const int n = static_cast<int>(loop.states.size()), m = static_cast<int>(loop.inputs.size());
  const int captured = static_cast<int>(loop.captured.size());
  const int k_out = static_cast<int>(inner.outputs().size()) - n;
  std::vector<DType> out_dtypes;
  std::vector<int> out_ranks;
  for (int k = 0; k < k_out; ++k) {
    const ir::Value& y = inner.value(inner.outputs()[static_cast<size_t>(n + k)]);
    if (!y.shape.rank_known && loop.out_axes[static_cast<size_t>(k)] != 0)
      ctx.Unsupported(fmt::format("scan output {} has an unknown rank and scan_output_axes {}", k,
                                  loop.out_axes[static_cast<size_t>(k)]));
    out_dtypes.push_back(y.dtype);
    out_ranks.push_back(y.shape.rank_known ? y.shape.rank() + 1 : -1);
  }
  for (int s = 0; s < n; ++s) {
    const DType in = outer.value(loop.states[static_cast<size_t>(s)]).dtype;
    const DType out = inner.value(inner.outputs()[static_cast<size_t>(s)]).dtype;
    if (out != in)
      ctx.Invalid(fmt::format("state {} enters as {} but the body returns {}", s, DTypeName(in), DTypeName(out)));
  }

  // The While body.
  auto w = std::make_shared<ir::Graph>();
  const ir::ValueId t = w->AddInput("scan/t", DType::kInt64, ir::SymShape::Scalar());
  const ir::ValueId c = w->AddInput("scan/c", DType::kBool, ir::SymShape::Scalar());
  std::vector<ir::ValueId> states, full, caps, stacks;
  for (int s = 0; s < n; ++s) {
    const ir::Value& v = outer.value(loop.states[static_cast<size_t>(s)]);
    states.push_back(w->AddInput(fmt::format("scan/state{}", s), v.dtype, LoopCarriedShape(v.shape)));
  }
  for (int j = 0; j < m; ++j) {
    const ir::Value& v = outer.value(loop.inputs[static_cast<size_t>(j)]);
    full.push_back(w->AddInput(fmt::format("scan/input{}", j), v.dtype, v.shape));
  }
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
    const ir::ValueId axis = w->AddConstant(
        fmt::format("scan/axis{}", j), Tensor::Scalar<int64_t>(DType::kInt64, loop.in_axes[static_cast<size_t>(j)]));
    call.push_back(AddInferred(*w, "Gather", fmt::format("scan/element{}", j),
                               {full[static_cast<size_t>(j)], loop.in_dirs[static_cast<size_t>(j)] ? back : t, axis}));
  }
  call.insert(call.end(), caps.begin(), caps.end());
  call.insert(call.begin(), w->AddConstant("scan/true", Tensor::Scalar<bool>(DType::kBool, true)));
  ir::Node& body_call = w->AddNode("If", "scan/body", std::move(call), static_cast<int>(inner.outputs().size()));
  body_call.source_op = "Scan";
  body_call.attrs.Set("then_branch", loop.body);
  body_call.attrs.Set("else_branch", loop.body);
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

  // T: the first scan input's length along its axis, unless given.
  const ir::ValueId length = loop.steps != ir::kNoValue ? loop.steps : DimOf(e, loop.inputs.at(0), loop.in_axes[0]);
  std::vector<ir::ValueId> inputs = {e.ConstInt64({0}, true, "t0"),
                                     e.Constant(Tensor::Scalar<bool>(DType::kBool, true), "true")};
  inputs.insert(inputs.end(), loop.states.begin(), loop.states.end());
  inputs.insert(inputs.end(), loop.inputs.begin(), loop.inputs.end());
  inputs.insert(inputs.end(), loop.captured.begin(), loop.captured.end());
  for (int k = 0; k < k_out; ++k)
    PushEmptyStack(e, inputs, out_dtypes[static_cast<size_t>(k)], fmt::format("out{}", k));
  inputs.push_back(length);
  ir::AttrMap attrs;
  attrs.Set("cond", cond);
  attrs.Set("body", w);
  const int vars = static_cast<int>(inputs.size());
  std::vector<ir::ValueId> outs = e.Emit("While", std::move(inputs), std::move(attrs), vars);
  std::vector<ir::ValueId> results_out(outs.begin() + 2, outs.begin() + 2 + n);
  const ir::ValueId count = e.Emit1("Reshape", {length, e.ConstInt64({1}, false, "count_shape")});
  for (int k = 0; k < k_out; ++k) {
    const size_t at = static_cast<size_t>(2 + n + m + captured + 2 * k);
    ir::ValueId y = Unstack(e, outs[at], outs[at + 1], count, fmt::format("out{}", k));
    if (loop.out_dirs[static_cast<size_t>(k)] == 1)
      y = e.Emit1("Reverse", {y, e.ConstInt64({0}, false, fmt::format("out{}_rev", k))});
    int64_t axis = loop.out_axes[static_cast<size_t>(k)];
    const int rank = out_ranks[static_cast<size_t>(k)];
    if (axis != 0) {
      if (axis < -rank || axis >= rank)
        ctx.Invalid(fmt::format("scan_output_axes[{}] = {} is out of range for rank {}", k, axis, rank));
      if (axis < 0) axis += rank;
      std::vector<int64_t> perm;
      for (int64_t d = 1; d <= axis; ++d) perm.push_back(d);
      perm.push_back(0);
      for (int64_t d = axis + 1; d < rank; ++d) perm.push_back(d);
      y = e.Emit1("Transpose", {y, e.ConstInt64(perm, false, fmt::format("out{}_perm", k))});
    }
    results_out.push_back(y);
  }
  return results_out;
}

// `s` without its first `count` axes (Scan-8's batch axis, then the scan axis of a scan input),
// every dim unknown: the body must take any sizes.
ir::SymShape WithoutLeadingAxes(const ir::SymShape& s, int count) {
  if (!s.rank_known) return s;
  return ir::SymShape::Of(std::vector<ir::Dim>(s.dims.size() - static_cast<size_t>(count), ir::kUnknownDim));
}

// A `count`-value attribute of 0/1 flags, all 0 when absent.
std::vector<int64_t> DirectionFlags(ImportContext& ctx, const char* name, int count) {
  std::vector<int64_t> v =
      ctx.has_attr(name) ? ctx.attr_ints(name) : std::vector<int64_t>(static_cast<size_t>(count), 0);
  if (static_cast<int>(v.size()) != count)
    ctx.Invalid(fmt::format("{} has {} values; expected {}", name, v.size(), count));
  for (int64_t d : v)
    if (d != 0 && d != 1) ctx.Invalid(fmt::format("{} must be 0 or 1, got {}", name, d));
  return v;
}

// Scan-8's sequence_lens: int64, 1-D, and when it is a constant one length per batch element,
// each in [1, sequence length] (onnxruntime's rule; the spec gives none). A length computed at run time
// above the sequence length fails when the scan reads past the sequence, one below 1 when its
// scan outputs' first row is read (PadWithZeroRows); with no scan outputs it runs no step.
void CheckSequenceLengths(ImportContext& ctx, int first_scan_input) {
  if (!ctx.has_input(0)) return;
  if (ctx.input_dtype(0) != DType::kInt64)
    ctx.Invalid(fmt::format("sequence_lens must be int64, got {}", DTypeName(ctx.input_dtype(0))));
  const ir::SymShape shape = ctx.input_shape(0);
  if (shape.rank_known && shape.rank() != 1)
    ctx.Invalid(fmt::format("sequence_lens has rank {}; expected 1 (one length per batch element)", shape.rank()));
  const Tensor* lens = ctx.constant_input(0);
  if (!lens) return;
  const ir::SymShape x = ctx.input_shape(first_scan_input);
  const ir::Dim batch = x.rank_known && x.rank() >= 1 ? x.dims[0] : ir::kUnknownDim;
  const ir::Dim length = x.rank_known && x.rank() >= 2 ? x.dims[1] : ir::kUnknownDim;
  if (ir::IsStatic(batch) && lens->num_elements() != batch)
    ctx.Invalid(fmt::format("sequence_lens has shape {}; expected one length per batch element ({})",
                            ShapeToString(lens->shape()), ir::IsStatic(batch) ? std::to_string(batch) : "batch"));
  const std::vector<int64_t> values = ctx.constant_ints(0, "sequence_lens");
  for (size_t b = 0; b < values.size(); ++b)
    if (values[b] < 1 || (ir::IsStatic(length) && values[b] > length))
      ctx.Invalid(fmt::format("sequence_lens[{}] = {} is not in [1, {}] (the scan inputs' length)", b, values[b],
                              ir::IsStatic(length) ? std::to_string(length) : "sequence length"));
}

// A scan output of `steps` rows followed by zero rows up to `rows` rows: Scan-8's outputs for a
// sequence shorter than the scan inputs (the spec leaves those rows undefined; onnxruntime writes
// zeros). The rows' shape is read from the first row, which exists as every length is at least 1.
ir::ValueId PadWithZeroRows(Emitter& e, ir::ValueId y, ir::ValueId steps, ir::ValueId rows, DType dtype) {
  const ir::ValueId axis0 = e.ConstInt64({0}, true, "axis0");
  const ir::ValueId missing = e.Emit1("Reshape", {e.Emit1("Sub", {rows, steps}), e.ConstInt64({1}, false, "one_dim")});
  ir::AttrMap shape_attrs;
  shape_attrs.Set("out_type", DType::kInt64);
  const ir::ValueId row_shape =
      e.Emit1("Shape", {e.Emit1("Gather", {y, e.ConstInt64({0}, true, "row0"), axis0})}, shape_attrs);
  const ir::ValueId zeros =
      e.Emit1("Fill", {e.Emit1("Concat", {missing, row_shape, axis0}), e.Constant(ScalarTensor(dtype, 0), "zero")});
  return e.Emit1("Concat", {y, zeros, axis0});
}

// A Scan body of n states and m scan elements returns the n states and k >= 0 scan outputs,
// which are the node's outputs; returns k.
int CheckScanBody(ImportContext& ctx, const onnx::GraphProto& body, int n, int m) {
  const int k_out = body.output_size() - n;
  if (body.input_size() != n + m || k_out < 0)
    ctx.Invalid(
        fmt::format("the body takes {} inputs and returns {} outputs; expected {} inputs ({} states, {} scan "
                    "elements) and at least {} outputs",
                    body.input_size(), body.output_size(), n + m, n, m, n));
  if (ctx.num_outputs() != body.output_size())
    ctx.Invalid(fmt::format("{} outputs; the body returns {}", ctx.num_outputs(), body.output_size()));
  return k_out;
}

// ONNX Scan-8: sequence_lens, then states and scan inputs whose first axis is a batch, scanned
// along axis 1, each batch element on its own (states start from that element's initial values)
// for its sequence length (sequence_lens[b], the scan inputs' length when absent; a reversed scan
// starts at that length's last step).
// -> the loop of Scan-9 over one batch element (scan axis 0 once the batch axis is gone; with
// sequence_lens, that element's length as the number of steps and its scan outputs padded with
// zero rows), inside the body of a Scan-9 loop over the batch that has no states, scans
// sequence_lens too and stacks the inner loop's final states and scan outputs along a new axis 0.
// The body may read the sizes of what it is given, so the batch elements are not merged into one
// run of it.
void ImportScan8(ImportContext& ctx) {
  const onnx::GraphProto& body = ctx.attr_graph("body");
  const int m = static_cast<int>(ctx.attr_int("num_scan_inputs"));
  const int n = ctx.num_inputs() - 1 - m;  // state variables
  if (m < 1 || n < 0)
    ctx.Invalid(fmt::format("num_scan_inputs {} with {} inputs (sequence_lens, then states and scan inputs)", m,
                            ctx.num_inputs()));
  const int k_out = CheckScanBody(ctx, body, n, m);  // scan outputs
  const std::vector<int64_t> directions = DirectionFlags(ctx, "directions", m);
  if (ctx.validate_only()) return;
  CheckSequenceLengths(ctx, 1 + n);
  const bool has_lengths = ctx.has_input(0);

  for (int s = 0; s < n; ++s) {
    const ir::SymShape shape = ctx.input_shape(1 + s);
    if (shape.rank_known && shape.rank() < 1)
      ctx.Invalid(fmt::format("state {} is a scalar; Scan-8 states have a batch axis first", s));
  }
  for (int j = 0; j < m; ++j) {
    const ir::SymShape shape = ctx.input_shape(1 + n + j);
    if (!shape.rank_known) ctx.Unsupported(fmt::format("scan input {} needs a known rank", j));
    if (shape.rank() < 2)
      ctx.Invalid(
          fmt::format("scan input {} has rank {}; Scan-8 scan inputs are [batch, sequence, ...]", j, shape.rank()));
  }

  // The ONNX body: one batch element's states, then one element of each of its scan inputs.
  std::vector<SubgraphInput> explicit_inputs;
  for (int s = 0; s < n; ++s)
    explicit_inputs.push_back({ctx.input_dtype(1 + s), WithoutLeadingAxes(ctx.input_shape(1 + s), 1)});
  for (int j = 0; j < m; ++j)
    explicit_inputs.push_back({ctx.input_dtype(1 + n + j), WithoutLeadingAxes(ctx.input_shape(1 + n + j), 2)});
  ImportedSubgraph sub = ctx.ImportSubgraph(body, explicit_inputs, ctx.FreeNames(body));
  for (int k = 0; k < k_out && has_lengths; ++k)
    if (sub.graph->value(sub.graph->outputs()[static_cast<size_t>(n + k)]).dtype == DType::kString)
      ctx.Unsupported(
          fmt::format("scan output {} is a string tensor; with sequence_lens its rows past a "
                      "sequence's length would be padded, which is done for numbers only",
                      k));

  // The batch loop's body: one batch element's initial states, scan inputs and (with
  // sequence_lens) length, as the batch loop's Gathers give them -> its final states and scan
  // outputs.
  auto element = std::make_shared<ir::Graph>();
  ScanLoop sequence;
  sequence.body = sub.graph;
  for (int s = 0; s < n; ++s)
    sequence.states.push_back(element->AddInput(fmt::format("scan8/state{}", s), ctx.input_dtype(1 + s),
                                                WithoutLeadingAxes(ctx.input_shape(1 + s), 1)));
  for (int j = 0; j < m; ++j) {
    const ir::SymShape shape = ctx.input_shape(1 + n + j);
    sequence.inputs.push_back(
        element->AddInput(fmt::format("scan8/input{}", j), ctx.input_dtype(1 + n + j),
                          ir::SymShape::Of(std::vector<ir::Dim>(shape.dims.begin() + 1, shape.dims.end()))));
  }
  if (has_lengths) sequence.steps = element->AddInput("scan8/length", DType::kInt64, ir::SymShape::Scalar());
  for (size_t q = 0; q < sub.captured.size(); ++q) {
    const ir::Value& v = sub.graph->value(sub.graph->inputs()[static_cast<size_t>(n + m) + q]);
    sequence.captured.push_back(element->AddInput(fmt::format("scan8/captured{}", q), v.dtype, v.shape));
  }
  sequence.in_axes.assign(static_cast<size_t>(m), 0);
  sequence.in_dirs = directions;
  sequence.out_axes.assign(static_cast<size_t>(k_out), 0);
  sequence.out_dirs.assign(static_cast<size_t>(k_out), 0);
  Emitter in_element(*element, ctx.name());
  std::vector<ir::ValueId> finals = EmitScanLoop(ctx, in_element, sequence);
  if (has_lengths) {
    const ir::ValueId rows = DimOf(in_element, sequence.inputs[0], 0);
    for (int k = 0; k < k_out; ++k) {
      ir::ValueId& y = finals[static_cast<size_t>(n + k)];
      y = PadWithZeroRows(in_element, y, sequence.steps, rows, element->value(y).dtype);
    }
  }
  for (size_t i = 0; i < finals.size(); ++i) element->AddOutput(fmt::format("result{}", i), finals[i]);

  // The loop over the batch: every state and scan input, then sequence_lens, is scanned along
  // axis 0.
  ScanLoop batch;
  batch.body = element;
  batch.inputs = ctx.input_values(1);
  if (has_lengths) batch.inputs.push_back(ctx.input(0));
  batch.captured = sub.captured;
  batch.in_axes.assign(batch.inputs.size(), 0);
  batch.in_dirs.assign(batch.inputs.size(), 0);
  batch.out_axes.assign(static_cast<size_t>(n + k_out), 0);
  batch.out_dirs.assign(static_cast<size_t>(n + k_out), 0);
  Emitter here(ctx);
  const std::vector<ir::ValueId> outs = EmitScanLoop(ctx, here, batch);
  for (int i = 0; i < n + k_out; ++i) ctx.SetOutput(i, outs[static_cast<size_t>(i)]);
}

// ONNX Scan: version 8 (above) or 9 on, whose scan inputs and outputs each have an axis and a
// direction and whose states have no batch axis.
void ImportScan(ImportContext& ctx) {
  if (ctx.opset() < 9) return ImportScan8(ctx);
  const onnx::GraphProto& body = ctx.attr_graph("body");
  const int m = static_cast<int>(ctx.attr_int("num_scan_inputs"));
  const int n = ctx.num_inputs() - m;  // state variables
  if (m < 1 || n < 0) ctx.Invalid(fmt::format("num_scan_inputs {} with {} inputs", m, ctx.num_inputs()));
  const int k_out = CheckScanBody(ctx, body, n, m);  // scan outputs
  auto per = [&](const char* name, int count) {
    std::vector<int64_t> v =
        ctx.has_attr(name) ? ctx.attr_ints(name) : std::vector<int64_t>(static_cast<size_t>(count), 0);
    if (static_cast<int>(v.size()) != count)
      ctx.Invalid(fmt::format("{} has {} values; expected {}", name, v.size(), count));
    return v;
  };
  ScanLoop loop;
  loop.in_axes = per("scan_input_axes", m);
  loop.out_axes = per("scan_output_axes", k_out);
  loop.in_dirs = DirectionFlags(ctx, "scan_input_directions", m);
  loop.out_dirs = DirectionFlags(ctx, "scan_output_directions", k_out);
  std::vector<ir::SymShape> in_shapes;
  for (int j = 0; j < m; ++j) {
    const ir::SymShape s = ctx.input_shape(n + j);
    if (!s.rank_known || s.rank() < 1)
      ctx.Unsupported(fmt::format("scan input {} needs a known rank of at least 1", j));
    int64_t& axis = loop.in_axes[static_cast<size_t>(j)];
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
    dims.erase(dims.begin() + loop.in_axes[static_cast<size_t>(j)]);
    explicit_inputs.push_back(
        {ctx.input_dtype(n + j), ir::SymShape::Of(std::vector<ir::Dim>(dims.size(), ir::kUnknownDim))});
  }
  ImportedSubgraph sub = ctx.ImportSubgraph(body, explicit_inputs, ctx.FreeNames(body));
  loop.body = sub.graph;
  for (int s = 0; s < n; ++s) loop.states.push_back(ctx.input(s));
  for (int j = 0; j < m; ++j) loop.inputs.push_back(ctx.input(n + j));
  loop.captured = sub.captured;
  Emitter here(ctx);
  const std::vector<ir::ValueId> outs = EmitScanLoop(ctx, here, loop);
  for (int i = 0; i < n + k_out; ++i) ctx.SetOutput(i, outs[static_cast<size_t>(i)]);
}
KILN_ONNX_IMPORTER("Scan", ImportScan);

}  // namespace

}  // namespace kiln::onnxfe
