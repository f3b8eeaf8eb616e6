#include "ir/op_schema.h"

#include <fmt/format.h>

#include <map>
#include <memory>
#include <mutex>

namespace kiln::ir {

void InferContext::SetOutput(int i, DType dtype, SymShape shape) {
  Value& v = graph_.value(node().outputs.at(static_cast<size_t>(i)));
  v.dtype = dtype;
  v.shape = std::move(shape);
}

void InferContext::SetOutputConstant(int i, Tensor value) {
  Value& v = graph_.value(node().outputs.at(static_cast<size_t>(i)));
  v.dtype = value.dtype();
  v.shape = SymShape::Of(Shape(value.shape()));
  v.constant = std::make_shared<const Tensor>(std::move(value));
}

void InferContext::Fail(const std::string& what) const {
  throw Error(ErrorCode::kInvalidArgument, fmt::format("node '{}' ({}): {}", node().name, node().op, what));
}

void OpRegistry::Add(OpSchema schema) {
  if (!schema.infer) throw Error(ErrorCode::kInternal, "IR op " + schema.name + " has no shape function");
  const std::string name = schema.name;
  schemas_.Add(name, std::move(schema));
}

const OpRegistry& BuiltinOps() {
  static const OpRegistry registry = BuildRegistry<OpRegistry>(
      {RegisterCoreOps, RegisterElementwiseOps, RegisterNnOps, RegisterArrayOps, RegisterEngineOps, RegisterCustomOps,
       RegisterTensorListOps});
  return registry;
}

namespace {

// The registered backends' op registries by prefix. Each registry is complete before it is
// published and never changes afterwards, so lookups only lock to find it.
struct BackendRegistries {
  std::mutex mu;
  std::map<std::string, std::unique_ptr<const OpRegistry>, std::less<>> by_prefix;
};

BackendRegistries& Backends() {
  static BackendRegistries backends;
  return backends;
}

}  // namespace

void RegisterBackendOps(std::string_view prefix, void (*add)(OpRegistry& registry)) {
  if (prefix.empty() || prefix.find('.') != std::string_view::npos)
    throw Error(ErrorCode::kInternal, fmt::format("invalid backend op prefix '{}'", prefix));
  BackendRegistries& backends = Backends();
  std::lock_guard<std::mutex> lock(backends.mu);
  if (backends.by_prefix.find(prefix) != backends.by_prefix.end()) return;
  auto registry = std::make_unique<OpRegistry>();
  add(*registry);
  const std::string want = fmt::format("{}.", prefix);
  for (const std::string& name : registry->Names())
    if (!name.starts_with(want) || name.size() == want.size())
      throw Error(ErrorCode::kInternal, fmt::format("backend op '{}' is not named '{}<Op>'", name, want));
  backends.by_prefix.emplace(std::string(prefix), std::move(registry));
}

const OpSchema* FindOp(std::string_view name) {
  const size_t dot = name.find('.');
  if (dot == std::string_view::npos) return BuiltinOps().Find(name);
  BackendRegistries& backends = Backends();
  const OpRegistry* registry = nullptr;
  {
    std::lock_guard<std::mutex> lock(backends.mu);
    auto it = backends.by_prefix.find(name.substr(0, dot));
    if (it == backends.by_prefix.end()) return nullptr;
    registry = it->second.get();
  }
  return registry->Find(name);
}

void InferNode(Graph& graph, NodeId id) {
  const Node& node = graph.node(id);
  const OpSchema* schema = FindOp(node.op);
  if (!schema) throw Error(ErrorCode::kInternal, fmt::format("node '{}': unknown IR op '{}'", node.name, node.op));
  const int n = static_cast<int>(node.inputs.size());
  if (n < schema->min_inputs || (schema->max_inputs >= 0 && n > schema->max_inputs))
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("node '{}' ({}): expected {} to {} inputs, got {}", node.name, node.op,
                            schema->min_inputs, schema->max_inputs < 0 ? std::string("any") : std::to_string(schema->max_inputs), n));
  InferContext ctx(graph, id);
  schema->infer(ctx);
}

SymShape BroadcastShapes(const InferContext& ctx, const SymShape& a, const SymShape& b) {
  if (!a.rank_known || !b.rank_known) return SymShape::Unknown();
  const size_t rank = std::max(a.dims.size(), b.dims.size());
  std::vector<Dim> out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const Dim da = i < rank - a.dims.size() ? 1 : a.dims[i - (rank - a.dims.size())];
    const Dim db = i < rank - b.dims.size() ? 1 : b.dims[i - (rank - b.dims.size())];
    if (da == 1) out[i] = db;
    else if (db == 1) out[i] = da;
    else if (da == db) out[i] = da;
    else if (IsStatic(da) && IsStatic(db))
      ctx.Fail(fmt::format("shapes {} and {} cannot be broadcast", const_cast<InferContext&>(ctx).graph().ShapeToString(a),
                           const_cast<InferContext&>(ctx).graph().ShapeToString(b)));
    else if (IsStatic(da)) out[i] = da;  // the unknown side must be da or 1
    else if (IsStatic(db)) out[i] = db;
    else out[i] = kUnknownDim;
  }
  return SymShape::Of(std::move(out));
}

}  // namespace kiln::ir
