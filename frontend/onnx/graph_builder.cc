// ONNX GraphProto -> IR graph (see graph_builder.h).
#include "frontend/onnx/graph_builder.h"

#include "common/custom_ops.h"
#include "frontend/onnx/custom_op_import.h"

#include <onnx/onnx_pb.h>

#include <set>

#include <fmt/format.h>

#include "frontend/onnx/op_versions.h"
#include "kiln/error.h"

namespace kiln::onnxfe {

struct GraphBuilder::Scope {
  ir::Graph* graph = nullptr;
  std::string label;  // for messages: "the main graph" or "subgraph 'then_branch' of node 'x'"
  std::map<std::string, ir::ValueId> values;  // ONNX value name -> IR value (kNoValue: poisoned)
  // Names this graph itself defines (its inputs, initializers and node outputs): ONNX graphs are
  // in single static assignment form, so a second definition is an invalid model, not a value
  // that silently replaces the first.
  std::map<std::string, std::string> defined_by;  // name -> what defined it, for messages

  void Define(const std::string& name, const std::string& what) {
    auto [it, added] = defined_by.emplace(name, what);
    if (!added)
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("{}: value '{}' is defined twice, by {} and by {} (ONNX graphs assign each name once)",
                              label, name, it->second, what));
  }
};

namespace {

bool IsDefaultDomain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

// Besides the default domain Kiln imports the ops of ai.onnx.preview.training that are formulas
// (Adagrad, Adam, Momentum: frontend/onnx/ops/training.cc). Their importers are registered as
// "<domain>.<op_type>"; default-domain ops under their op_type.
constexpr const char* kTrainingDomain = "ai.onnx.preview.training";
std::string ImporterKey(const onnx::NodeProto& node) {
  return IsDefaultDomain(node.domain()) ? node.op_type() : node.domain() + "." + node.op_type();
}

std::string NodeLabel(const onnx::NodeProto& node, int index) {
  return node.name().empty() ? fmt::format("{}_{}", node.op_type(), index) : node.name();
}

}  // namespace

GraphBuilder::GraphBuilder(const OnnxModel& model) : model_(model) {}
GraphBuilder::~GraphBuilder() = default;

ir::Graph& GraphBuilder::current_graph() {
  if (scopes_.empty()) throw Error(ErrorCode::kInternal, "ONNX import: no current graph");
  return *scopes_.back()->graph;
}

std::string GraphBuilder::UniqueNodeName(const std::string& base) { return node_names_.Claim(current_graph(), base); }

ir::ValueId GraphBuilder::Lookup(Scope& scope, const std::string& name) const {
  auto it = scope.values.find(name);
  if (it != scope.values.end()) return it->second;
  throw Error(ErrorCode::kInvalidArgument,
              fmt::format("ONNX model '{}': {} reads value '{}', which no earlier node, input or initializer defines "
                          "(ONNX graphs must be topologically sorted)",
                          model_.path, scope.label, name));
}

namespace {

// dtype and shape of a ValueInfoProto (graph input/output); symbols via `symbol_of`.
template <typename SymbolFn>
std::pair<DType, ir::SymShape> ReadValueInfo(const onnx::ValueInfoProto& info, const std::string& path, SymbolFn symbol_of) {
  if (!info.has_type() || !info.type().has_tensor_type())
    throw Error(ErrorCode::kUnimplemented,
                fmt::format("ONNX model '{}': input '{}' is not a tensor (sequence, map and optional inputs are not "
                            "supported)",
                            path, info.name()));
  const onnx::TypeProto::Tensor& tt = info.type().tensor_type();
  const DType dtype = DTypeFromOnnx(tt.elem_type());
  if (dtype == DType::kInvalid)
    throw Error(ErrorCode::kUnimplemented, fmt::format("ONNX model '{}': input '{}' has element type {}, which Kiln does "
                                                       "not support",
                                                       path, info.name(), OnnxTypeName(tt.elem_type())));
  ir::SymShape shape;
  if (tt.has_shape()) {
    shape.rank_known = true;
    for (const onnx::TensorShapeProto::Dimension& d : tt.shape().dim()) {
      if (d.has_dim_value() && d.dim_value() >= 0) shape.dims.push_back(d.dim_value());
      else if (d.has_dim_param() && !d.dim_param().empty()) shape.dims.push_back(symbol_of(d.dim_param()));
      else shape.dims.push_back(ir::kUnknownDim);
    }
  }
  return {dtype, shape};
}

}  // namespace

ir::Graph GraphBuilder::Import() {
  const onnx::GraphProto& g = model_.proto->graph();
  ir::Graph graph;
  Scope scope;
  scope.graph = &graph;
  scope.label = "the main graph";
  scopes_.push_back(&scope);
  struct Pop {
    std::vector<Scope*>& s;
    ~Pop() { s.pop_back(); }
  } pop{scopes_};

  std::set<std::string> initializer_names;
  for (const onnx::TensorProto& t : g.initializer()) initializer_names.insert(t.name());
  // Graph inputs first (in model order), so the IR input order is the model's.
  for (const onnx::ValueInfoProto& in : g.input()) {
    if (initializer_names.count(in.name())) continue;  // IR version < 4: initializers are also listed as inputs
    auto [dtype, shape] = ReadValueInfo(in, model_.path, [&](const std::string& param) {
      auto it = symbols_.find(param);
      if (it != symbols_.end()) return it->second;
      return symbols_[param] = graph.NewSymbol(param);
    });
    scope.Define(in.name(), "a graph input");
    scope.values[in.name()] = graph.AddInput(in.name(), dtype, shape);
  }
  ImportGraphBody(scope, g);
  if (!unsupported_.empty()) throw UnsupportedOpsError(unsupported_);
  std::set<std::string> output_names;
  for (const onnx::ValueInfoProto& out : g.output()) {
    if (!output_names.insert(out.name()).second)
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("ONNX model '{}': the graph output '{}' is listed twice", model_.path, out.name()));
    graph.AddOutput(out.name(), Lookup(scope, out.name()));
  }
  return graph;
}

void GraphBuilder::ImportGraphBody(Scope& scope, const onnx::GraphProto& g) {
  if (g.sparse_initializer_size() > 0)
    throw Error(ErrorCode::kUnimplemented, fmt::format("ONNX model '{}': {} has sparse initializers, which are not "
                                                       "supported",
                                                       model_.path, scope.label));
  for (const onnx::TensorProto& t : g.initializer()) {
    Tensor tensor = DecodeOnnxTensor(t, model_.base_dir, fmt::format("initializer '{}'", t.name()));
    const std::string name = node_names_.Claim(*scope.graph, t.name());
    scope.Define(t.name(), "an initializer");
    scope.values[t.name()] = scope.graph->AddConstant(name, std::move(tensor));
  }
  for (int i = 0; i < g.node_size(); ++i) ImportNode(scope, g.node(i), i);
}

void GraphBuilder::ImportNode(Scope& scope, const onnx::NodeProto& node, int index) {
  const std::string label = NodeLabel(node, index);
  for (const std::string& out : node.output())
    if (!out.empty()) scope.Define(out, fmt::format("node '{}' ({})", label, node.op_type()));
  auto poison = [&](const std::string& reason) {
    if (!reason.empty()) unsupported_.push_back({label, node.op_type(), reason});
    for (const std::string& out : node.output())
      if (!out.empty()) scope.values[out] = ir::kNoValue;
  };
  // A plugin's op (include/kiln/custom_op.h) takes precedence, also over a built-in op of that name.
  const std::shared_ptr<const CustomOp> custom = FindCustomOp(OnnxCustomOpKey(node.domain(), node.op_type()));
  const ImporterFn import = custom ? nullptr : OnnxImporters().Find(ImporterKey(node));
  if (!custom && !IsDefaultDomain(node.domain()) && !(node.domain() == kTrainingDomain && import))
    return poison(fmt::format("op domain '{}' is not supported (only the default ONNX domain and Adagrad, Adam and "
                              "Momentum of ai.onnx.preview.training; a plugin can add ops of other domains: kiln "
                              "--plugin)",
                              node.domain()));

  std::vector<ir::ValueId> inputs;
  bool any_poisoned = false;
  for (const std::string& in : node.input()) {
    if (in.empty()) {
      inputs.push_back(ir::kNoValue);
      continue;
    }
    const ir::ValueId v = Lookup(scope, in);
    if (v == ir::kNoValue) any_poisoned = true;
    inputs.push_back(v);
  }
  if (custom) {
    try {
      ImportContext ctx(*this, node, label, inputs, /*validate_only=*/any_poisoned);
      ImportCustomOp(ctx, node, *custom);
      if (any_poisoned) return poison("");
      for (int i = 0; i < node.output_size(); ++i)
        if (!node.output(i).empty()) scope.values[node.output(i)] = ctx.outputs().at(static_cast<size_t>(i));
    } catch (const UnsupportedError& e) {
      return poison(e.what());
    }
    return;
  }
  if (!import) return poison("no importer for this op");
  if (!IsDefaultDomain(node.domain())) {
    const auto version = model_.opsets.find(node.domain());
    if (version == model_.opsets.end() || version->second != 1)
      return poison(fmt::format("{} needs the model to import version 1 of domain '{}' (opset_import), got {}",
                                node.op_type(), node.domain(),
                                version == model_.opsets.end() ? std::string("none") : std::to_string(version->second)));
  } else if (const int64_t oldest = OldestExactOpset(node.op_type()); model_.opset < oldest) {
    return poison(fmt::format("{} at opset {}: Kiln imports this op from opset {} on (its meaning or inputs differ "
                              "before); upgrade the model with onnx.version_converter",
                              node.op_type(), model_.opset, oldest));
  }
  if (any_poisoned) {
    // Still report this node if it is unsupported itself, so one error lists every op type.
    try {
      ImportContext check(*this, node, label, inputs, /*validate_only=*/true);
      import(check);
    } catch (const UnsupportedError& e) {
      return poison(e.what());
    } catch (const Error&) {
    }
    return poison("");
  }
  try {
    ImportContext ctx(*this, node, label, inputs, /*validate_only=*/false);
    import(ctx);
    const std::vector<ir::ValueId>& outs = ctx.outputs();
    for (int i = 0; i < node.output_size(); ++i) {
      const std::string& name = node.output(i);
      if (name.empty()) continue;
      if (i >= static_cast<int>(outs.size()) || outs[static_cast<size_t>(i)] == ir::kNoValue)
        throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): the importer did not set output {} ('{}')", label,
                                                      node.op_type(), i, name));
      scope.values[name] = outs[static_cast<size_t>(i)];
    }
  } catch (const UnsupportedError& e) {
    return poison(e.what());
  }
}

std::vector<std::string> GraphBuilder::FreeNames(const onnx::GraphProto& body) const {
  std::set<std::string> defined;
  std::vector<std::string> free;
  std::set<std::string> seen;
  for (const onnx::ValueInfoProto& in : body.input()) defined.insert(in.name());
  for (const onnx::TensorProto& t : body.initializer()) defined.insert(t.name());
  auto use = [&](const std::string& name) {
    if (!name.empty() && !defined.count(name) && seen.insert(name).second) free.push_back(name);
  };
  for (const onnx::NodeProto& node : body.node()) {
    for (const std::string& in : node.input()) use(in);
    for (const onnx::AttributeProto& a : node.attribute()) {
      if (a.has_g())
        for (const std::string& n : FreeNames(a.g())) use(n);
      for (const onnx::GraphProto& sub : a.graphs())
        for (const std::string& n : FreeNames(sub)) use(n);
    }
    for (const std::string& out : node.output()) defined.insert(out);
  }
  for (const onnx::ValueInfoProto& out : body.output()) use(out.name());
  return free;
}

ImportedSubgraph GraphBuilder::ImportSubgraph(const onnx::GraphProto& body, const std::vector<SubgraphInput>& explicit_inputs,
                                              const std::vector<std::string>& captured_names) {
  Scope& outer = *scopes_.back();
  if (body.input_size() != static_cast<int>(explicit_inputs.size()))
    throw Error(ErrorCode::kInvalidArgument, fmt::format("ONNX model '{}': subgraph '{}' has {} inputs; expected {}",
                                                         model_.path, body.name(), body.input_size(),
                                                         explicit_inputs.size()));
  ImportedSubgraph result;
  result.graph = std::make_shared<ir::Graph>();
  Scope scope;
  scope.graph = result.graph.get();
  scope.label = fmt::format("subgraph '{}'", body.name());
  for (size_t i = 0; i < explicit_inputs.size(); ++i) {
    const std::string& name = body.input(static_cast<int>(i)).name();
    scope.Define(name, "a subgraph input");
    scope.values[name] = result.graph->AddInput(name, explicit_inputs[i].dtype, explicit_inputs[i].shape);
  }
  for (const std::string& name : captured_names) {
    const ir::ValueId outer_value = Lookup(outer, name);
    if (outer_value == ir::kNoValue)
      throw UnsupportedError(fmt::format("subgraph '{}' reads '{}', which could not be imported", body.name(), name));
    const ir::Value& v = outer.graph->value(outer_value);
    // Outer symbols mean nothing inside the subgraph's own symbol table.
    ir::SymShape shape = v.shape;
    for (ir::Dim& d : shape.dims)
      if (!ir::IsStatic(d)) d = ir::kUnknownDim;
    if (v.constant) {
      // Constants are copied in, not passed: the subgraph's shape inference can then read them.
      scope.values[name] = result.graph->AddConstant(name, *v.constant);
      continue;
    }
    scope.values[name] = result.graph->AddInput(name, v.dtype, shape);
    result.captured.push_back(outer_value);
  }
  scopes_.push_back(&scope);
  struct Pop {
    std::vector<Scope*>& s;
    ~Pop() { s.pop_back(); }
  } pop{scopes_};
  const size_t unsupported_before = unsupported_.size();
  ImportGraphBody(scope, body);
  if (unsupported_.size() != unsupported_before)
    throw UnsupportedError(fmt::format("subgraph '{}' uses unsupported ops (listed separately)", body.name()));
  for (const onnx::ValueInfoProto& out : body.output()) result.graph->AddOutput(out.name(), Lookup(scope, out.name()));
  return result;
}

ir::Graph ImportOnnxFile(const std::string& path) {
  OnnxModel model = LoadOnnxModel(path);
  GraphBuilder builder(model);
  return builder.Import();
}

}  // namespace kiln::onnxfe
