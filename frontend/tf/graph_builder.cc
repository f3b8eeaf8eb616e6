#include "frontend/tf/graph_builder.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "common/custom_ops.h"
#include "common/proto/tf.pb.h"
#include "frontend/tf/custom_op_import.h"
#include "ir/op_schema.h"

namespace kiln::tf {
namespace {

bool IsCallOp(const std::string& op) { return op == "StatefulPartitionedCall" || op == "PartitionedCall"; }

// Ops that create a lookup table resource (a handle the LookupTable* ops take).
bool IsTableHandleOp(const std::string& op) {
  return op == "HashTableV2" || op == "MutableHashTableV2" || op == "MutableHashTableOfTensorsV2" ||
         op == "MutableDenseHashTableV2";
}

// Ops that write a resource variable. TensorFlow orders the reads and writes of one variable in a
// function by control edges (automatic control dependencies): a read after a write has a control
// input on that write.
bool IsVariableWrite(const std::string& op) {
  return op == "AssignVariableOp" || op == "AssignAddVariableOp" || op == "AssignSubVariableOp";
}

// "a:b:c" -> {"a","b","c"}
std::vector<std::string> SplitRef(const std::string& ref) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t colon = ref.find(':', start);
    parts.push_back(ref.substr(start, colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return parts;
}

int ParseIndex(const std::string& s, const std::string& ref) {
  try {
    size_t used = 0;
    int v = std::stoi(s, &used);
    // Output indices index a node's outputs; none has anywhere near this many, and a larger one
    // would size per-node tables from the file.
    constexpr int kMaxOutputIndex = 1 << 16;
    if (used == s.size() && v >= 0 && v <= kMaxOutputIndex) return v;
  } catch (const std::exception&) {
  }
  throw Error(ErrorCode::kInvalidArgument, fmt::format("malformed tensor reference '{}'", ref));
}

tfproto::AttrValue ToAttrValue(const TfAttrDefault& value) {
  tfproto::AttrValue attr;
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, int64_t>)
          attr.set_i(v);
        else if constexpr (std::is_same_v<T, float>)
          attr.set_f(v);
        else if constexpr (std::is_same_v<T, bool>)
          attr.set_b(v);
        else if constexpr (std::is_same_v<T, std::string>)
          attr.set_s(v);
        else if constexpr (std::is_same_v<T, DType>)
          attr.set_type(static_cast<int>(v));
        else
          for (int64_t i : v) attr.mutable_list()->add_i(i);
      },
      value);
  return attr;
}

}  // namespace

struct GraphBuilder::Scope {
  ir::Graph* graph = nullptr;
  const tfproto::FunctionDef* function = nullptr;  // nullptr: the outer GraphDef
  std::string label;                               // for messages
  std::string prefix;  // names of this scope's nodes in the flat TF graph: "" outside, "call/" in a call
  bool flat = true;    // false in control-flow bodies, which the flat TF graph does not hold
  std::map<std::string, const tfproto::NodeDef*> nodes;
  std::map<std::string, TfValue> args;                      // function arguments by name
  std::map<std::string, std::vector<TfValue>> outputs;      // imported nodes' flat outputs
  std::set<std::string> poisoned;                           // nodes that could not be imported
  // Variable writes imported so far, by node name: the variable and the value it holds after the
  // write. Reads ordered after a write (by a control edge) see that value instead of the frozen one.
  std::map<std::string, std::pair<const Tensor*, ir::ValueId>> writes;
};

GraphBuilder::GraphBuilder(const SavedModelBundle& bundle, VariableReader& variables)
    : bundle_(bundle), variables_(variables) {
  const tfproto::MetaGraphDef& meta = *bundle_.meta_graph;
  for (const tfproto::FunctionDef& f : meta.graph_def().library().function()) functions_[f.signature().name()] = &f;
  for (const tfproto::OpDef& op : meta.meta_info_def().stripped_op_list().op()) op_defs_[op.name()] = &op;
  MapCapturedVariables();
}

GraphBuilder::~GraphBuilder() = default;

void GraphBuilder::MapCapturedVariables() {
  // The outer graph calls each signature wrapper with [user args..., captured resources...];
  // the object graph's bound_inputs say which variable each captured input is.
  const tfproto::GraphDef& graph = bundle_.meta_graph->graph_def();
  for (const tfproto::NodeDef& node : graph.node()) {
    if (!IsCallOp(node.op())) continue;
    auto f = node.attr().find("f");
    if (f == node.attr().end()) continue;
    const std::string& fname = f->second.func().name();
    auto fdef = functions_.find(fname);
    if (fdef == functions_.end()) continue;
    const auto& concrete = bundle_.meta_graph->object_graph_def().concrete_functions();
    if (concrete.find(fname) == concrete.end()) continue;
    std::vector<CapturedValue> captures = ResolveCaptures(bundle_, variables_, fname);
    const int n_args = fdef->second->signature().input_arg_size();
    const int first_capture = n_args - static_cast<int>(captures.size());
    for (size_t j = 0; j < captures.size(); ++j) {
      const int input_index = first_capture + static_cast<int>(j);
      if (input_index < 0 || input_index >= node.input_size()) continue;
      std::string ref = node.input(input_index);
      const std::string producer = NodeOfRef(ref);
      const CapturedValue& c = captures[j];
      if (c.kind == CapturedValue::Kind::kUnsupported) {
        outer_unsupported_.try_emplace(producer, c.unsupported_reason);
        continue;
      }
      if (c.kind == CapturedValue::Kind::kConstant) continue;  // constants import as Const nodes
      TfValue v;
      if (c.kind == CapturedValue::Kind::kTable)
        v.table = c.table;
      else
        v.resource = c.value;
      v.resource_name = c.name;
      outer_resources_[producer] = v;
    }
  }
}

std::string GraphBuilder::NodeOfRef(const std::string& ref) const {
  std::string r = ref[0] == '^' ? ref.substr(1) : ref;
  return r.substr(0, r.find(':'));
}

ir::Graph& GraphBuilder::current_graph() { return *scopes_.back()->graph; }

std::string GraphBuilder::UniqueNodeName(const std::string& base) { return node_names_.Claim(current_graph(), base); }

const tfproto::AttrValue* GraphBuilder::FindAttr(const tfproto::NodeDef& node, const std::string& name) {
  auto it = node.attr().find(name);
  if (it != node.attr().end()) return &it->second;
  // Attributes stripped on save: the model's own OpDef first, then Kiln's built-in defaults.
  auto& cache = default_attrs_[node.op()];
  auto cached = cache.find(name);
  if (cached != cache.end()) return &cached->second;
  auto op_def = op_defs_.find(node.op());
  if (op_def != op_defs_.end()) {
    for (const auto& attr : op_def->second->attr())
      if (attr.name() == name && attr.has_default_value()) return &(cache[name] = attr.default_value());
  }
  if (const TfOpSpec* spec = TfImporters().Find(node.op()))
    for (const auto& [attr_name, value] : spec->defaults)
      if (attr_name == name) return &(cache[name] = ToAttrValue(value));
  return nullptr;
}

int GraphBuilder::FlatOutputIndex(const tfproto::NodeDef& node, const std::string& arg, int index) {
  auto count_of = [&](const std::string& number_attr, const std::string& type_list_attr) -> int {
    if (!number_attr.empty()) {
      const tfproto::AttrValue* a = FindAttr(node, number_attr);
      return a ? static_cast<int>(a->i()) : 1;
    }
    if (!type_list_attr.empty()) {
      const tfproto::AttrValue* a = FindAttr(node, type_list_attr);
      return a ? a->list().type_size() : 1;
    }
    return 1;
  };
  auto walk = [&](const auto& args, auto name_of, auto number_of, auto list_of) -> int {
    int flat = 0;
    for (const auto& a : args) {
      if (name_of(a) == arg) return flat + index;
      flat += count_of(number_of(a), list_of(a));
    }
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("node '{}' ({}) has no output named '{}'", node.name(), node.op(), arg));
  };
  if (auto it = op_defs_.find(node.op()); it != op_defs_.end() && it->second->output_arg_size() > 0) {
    return walk(
        it->second->output_arg(), [](const auto& a) { return a.name(); }, [](const auto& a) { return a.number_attr(); },
        [](const auto& a) { return a.type_list_attr(); });
  }
  if (auto it = functions_.find(node.op()); it != functions_.end()) {
    return walk(
        it->second->signature().output_arg(), [](const auto& a) { return a.name(); },
        [](const auto& a) { return a.number_attr(); }, [](const auto& a) { return a.type_list_attr(); });
  }
  if (const TfOpSpec* spec = TfImporters().Find(node.op()); spec && !spec->outputs.empty()) {
    return walk(
        spec->outputs, [](const TfOutputArg& a) { return a.name; }, [](const TfOutputArg& a) { return a.number_attr; },
        [](const TfOutputArg& a) { return a.type_list_attr; });
  }
  return index;  // a single output arg (possibly a list): the index is the flat index
}

TfValue GraphBuilder::Resolve(Scope& scope, const std::string& ref) {
  std::vector<std::string> parts = SplitRef(ref);
  std::string node_name;
  int flat = 0;
  if (scope.function) {
    if (parts.size() == 1) {
      auto arg = scope.args.find(parts[0]);
      if (arg == scope.args.end())
        throw Error(ErrorCode::kInvalidArgument,
                    fmt::format("function '{}': '{}' is neither an argument nor a node output", scope.label, ref));
      return arg->second;
    }
    node_name = parts[0];
    auto node = scope.nodes.find(node_name);
    if (node == scope.nodes.end())
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("function '{}': reference '{}' names no node", scope.label, ref));
    flat = FlatOutputIndex(*node->second, parts[1], parts.size() > 2 ? ParseIndex(parts[2], ref) : 0);
  } else {
    node_name = parts[0];
    flat = parts.size() > 1 ? ParseIndex(parts[1], ref) : 0;
  }
  if (scope.poisoned.count(node_name)) return TfValue{};
  auto out = scope.outputs.find(node_name);
  if (out == scope.outputs.end())
    throw Error(ErrorCode::kInternal, fmt::format("{}: node '{}' used before it was imported", scope.label, node_name));
  if (flat >= static_cast<int>(out->second.size()))
    throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: '{}' refers to output {} but node '{}' has {} outputs",
                                                         scope.label, ref, flat, node_name, out->second.size()));
  return out->second[static_cast<size_t>(flat)];
}

std::vector<TfValue> GraphBuilder::ImportInScope(Scope& scope, const std::vector<std::string>& wanted) {
  // The scope is current (its graph receives emitted nodes) for exactly the duration of the import.
  scopes_.push_back(&scope);
  struct Current {
    std::vector<Scope*>& stack;
    ~Current() { stack.pop_back(); }
  } current{scopes_};
  return ImportScope(scope, wanted);
}

std::vector<TfValue> GraphBuilder::ImportScope(Scope& scope, const std::vector<std::string>& wanted) {
  // Iterative post-order DFS over data inputs: imports exactly the nodes `wanted` needs.
  enum class State { kVisiting, kDone };
  std::map<std::string, State> state;
  for (const auto& [name, outs] : scope.outputs) state[name] = State::kDone;
  for (const std::string& ref : wanted) {
    if (ref.empty() || ref[0] == '^') continue;
    const std::string root = NodeOfRef(ref);
    if (scope.function && scope.args.count(SplitRef(ref)[0]) && SplitRef(ref).size() == 1) continue;
    std::vector<std::pair<std::string, bool>> stack{{root, false}};
    while (!stack.empty()) {
      auto [name, expanded] = stack.back();
      stack.pop_back();
      auto st = state.find(name);
      if (expanded) {
        ImportNode(scope, *scope.nodes.at(name));
        state[name] = State::kDone;
        continue;
      }
      if (st != state.end()) {
        if (st->second == State::kVisiting)
          throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: node '{}' is part of a cycle", scope.label, name));
        continue;
      }
      auto node = scope.nodes.find(name);
      if (node == scope.nodes.end())
        throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: no node named '{}'", scope.label, name));
      state[name] = State::kVisiting;
      stack.push_back({name, true});
      const tfproto::NodeDef& def = *node->second;
      for (int i = def.input_size() - 1; i >= 0; --i) {
        const std::string& in = def.input(i);
        if (in.empty()) continue;
        // Control inputs do not matter for inference, except a variable write that a read or a
        // later write of the variable is ordered after: it gives the value that one sees.
        if (in[0] == '^' && !OrderedAfterWrite(scope, def, in.substr(1))) continue;
        std::vector<std::string> parts = SplitRef(in[0] == '^' ? in.substr(1) : in);
        if (scope.function && parts.size() == 1 && scope.args.count(parts[0])) continue;
        const std::string dep = parts[0];
        auto dst = state.find(dep);
        if (dst != state.end() && dst->second == State::kDone) continue;
        if (dst != state.end() && dst->second == State::kVisiting)
          throw Error(
              ErrorCode::kInvalidArgument,
              fmt::format("{}: node '{}' is part of a cycle (TF1 control flow is not supported)", scope.label, dep));
        stack.push_back({dep, false});
      }
    }
  }
  std::vector<TfValue> values;
  for (const std::string& ref : wanted) values.push_back(Resolve(scope, ref));
  return values;
}

void GraphBuilder::ImportNode(Scope& scope, const tfproto::NodeDef& node) {
  const std::string& op = node.op();
  auto poison = [&](const std::string& reason) {
    if (!reason.empty()) unsupported_.push_back({node.name(), op, reason});
    scope.poisoned.insert(node.name());
  };

  if (!scope.function) {
    // Resource handles of the outer graph: the signature functions' captures say what they are.
    if (op == "VarHandleOp" || IsTableHandleOp(op)) {
      auto it = outer_resources_.find(node.name());
      if (it != outer_resources_.end()) {
        scope.outputs[node.name()] = {it->second};
        return;
      }
      auto why = outer_unsupported_.find(node.name());
      if (why != outer_unsupported_.end()) return poison(why->second);
      return poison(op == "VarHandleOp" ? "a variable handle that no signature function captures"
                                        : "a lookup table that no signature function captures (Kiln reads a table's "
                                          "contents from the SavedModel's object graph, which TF1 SavedModels lack)");
    }
    if (op == "Placeholder")
      throw Error(
          ErrorCode::kInvalidArgument,
          fmt::format("the signature depends on placeholder '{}', which is not one of its inputs", node.name()));
  }

  std::vector<TfValue> inputs;
  bool any_poisoned = false;
  for (const std::string& in : node.input()) {
    if (in.empty() || in[0] == '^') continue;
    TfValue v = Resolve(scope, in);
    if (v.value == ir::kNoValue && !v.is_resource()) any_poisoned = true;
    inputs.push_back(std::move(v));
  }
  if (any_poisoned) {
    // Still report this node if its own op is unsupported, so one error lists every op type.
    if (IsVariableWrite(op)) return poison("");
    if (!IsCallOp(op) && !functions_.count(op)) {
      if (FindCustomOp(TfCustomOpKey(op))) return poison("");
      const TfOpSpec* spec = TfImporters().Find(op);
      if (!spec) return poison("no importer for this op");
      try {
        ImportContext check(*this, node, inputs, /*validate_only=*/true);
        spec->import(check);
      } catch (const UnsupportedError& e) {
        return poison(e.what());
      } catch (const Error&) {
        // Checks that need the missing inputs cannot run; the first error stands.
      }
    }
    return poison("");
  }

  if (IsVariableWrite(op) || (op == "ReadVariableOp" && !inputs.empty() && inputs[0].is_resource())) {
    std::string reason;
    const ir::ValueId written = LastWrite(scope, node, inputs, &reason);
    if (!reason.empty()) return poison(reason);
    if (IsVariableWrite(op)) return ImportVariableWrite(scope, node, inputs, written);
    if (written != ir::kNoValue) {
      // A read after a write: the written value. The flat TF graph reads it as an Identity.
      ImportContext ctx(*this, node, inputs, /*validate_only=*/false);
      const ir::ValueId v = ctx.Emit1("Identity", {written});
      scope.outputs[node.name()] = {TfValue{v, nullptr, nullptr, ""}};
      tfproto::NodeDef identity;
      identity.set_name(node.name());
      identity.set_op("Identity");
      (*identity.mutable_attr())["T"].set_type(static_cast<int>(inputs[0].resource->dtype()));
      RecordFlat(scope, identity, {TfValue{written, nullptr, nullptr, ""}}, scope.outputs[node.name()]);
      return;
    }
  }

  if (TakesVariables(op) && !IsVariableWrite(op)) {
    // A function run before this node that is given the same variable and writes variables may
    // have written it: Kiln does not follow writes out of a function, so this node would read the
    // saved value.
    if (const std::string before = WrittenInsideBefore(scope, node, inputs); !before.empty())
      return poison(
          fmt::format("is ordered after '{}', given the same variable, whose function writes variables; "
                      "Kiln does not follow writes out of a function",
                      before));
  }
  if (op != "ReadVariableOp") {
    // Ordered after a write of a variable it is given that could not be imported: that write's
    // reason stands for this node too.
    for (const std::string& in : node.input())
      if (!in.empty() && in[0] == '^' && scope.poisoned.count(in.substr(1)) &&
          OrderedAfterWrite(scope, node, in.substr(1)))
        return poison("");
    // Function bodies, loop bodies and ResourceGather read the saved value of a variable they are
    // given; after a write of it in the same call that would be stale.
    if (const std::string var = VariableWrittenBefore(scope, node, inputs); !var.empty())
      return poison(
          fmt::format("uses variable '{}' after a write of it in the same call; only ReadVariableOp "
                      "reads see the written value",
                      var));
  }

  std::string function_name;
  if (IsCallOp(op)) {
    const tfproto::AttrValue* f = FindAttr(node, "f");
    if (!f) return poison("call without an 'f' attribute");
    function_name = f->func().name();
  } else if (functions_.count(op)) {
    function_name = op;
  }
  if (!function_name.empty()) {
    if (!functions_.count(function_name))
      return poison(fmt::format("calls function '{}', which is not in the library", function_name));
    std::vector<TfValue> outs = ImportCall(scope, node, function_name, std::move(inputs));
    for (const TfValue& v : outs)
      if (v.value == ir::kNoValue && !v.is_resource()) return poison("");
    scope.outputs[node.name()] = std::move(outs);
    return;
  }

  // A plugin's op (include/kiln/custom_op.h) takes precedence, also over a built-in op of that name.
  if (const std::shared_ptr<const CustomOp> custom = FindCustomOp(TfCustomOpKey(op))) {
    try {
      ImportContext ctx(*this, node, inputs, /*validate_only=*/false);
      ImportCustomOp(ctx, node, *custom);
      scope.outputs[node.name()] = ctx.outputs();
      RecordFlat(scope, node, inputs, ctx.outputs());
    } catch (const UnsupportedError& e) {
      poison(e.what());
    }
    return;
  }
  const TfOpSpec* spec = TfImporters().Find(op);
  if (!spec) return poison("no importer for this op (a plugin can add it: kiln --plugin)");
  try {
    ImportContext check(*this, node, inputs, /*validate_only=*/true);
    spec->import(check);
    ImportContext ctx(*this, node, inputs, /*validate_only=*/false);
    spec->import(ctx);
    scope.outputs[node.name()] = ctx.outputs();
    RecordFlat(scope, node, inputs, ctx.outputs());
  } catch (const UnsupportedError& e) {
    poison(e.what());
  }
}

bool GraphBuilder::OrderedAfterWrite(const Scope& scope, const tfproto::NodeDef& node,
                                     const std::string& control) const {
  if (!TakesVariables(node.op())) return false;
  auto it = scope.nodes.find(control);
  if (it == scope.nodes.end() || !IsVariableWrite(it->second->op()) || it->second->input_size() < 1) return false;
  // Only a write of a variable `node` is given: writes of other variables do not change what it
  // reads, and need not be imported.
  return GivenRef(node, it->second->input(0));
}

bool GraphBuilder::GivenRef(const tfproto::NodeDef& node, const std::string& ref) {
  // "node:0" and "node" name the same tensor in a GraphDef.
  auto plain = [](const std::string& r) {
    return r.size() > 2 && r.compare(r.size() - 2, 2, ":0") == 0 && SplitRef(r).size() == 2 ? r.substr(0, r.size() - 2)
                                                                                            : r;
  };
  const std::string want = plain(ref);
  for (const std::string& in : node.input())
    if (!in.empty() && in[0] != '^' && plain(in) == want) return true;
  return false;
}

bool GraphBuilder::RunsVariableWrites(const tfproto::NodeDef& node, std::set<std::string>& seen) const {
  std::vector<std::string> names;
  if (functions_.count(node.op())) names.push_back(node.op());
  for (const char* attr : {"f", "then_branch", "else_branch", "cond", "body"}) {
    auto a = node.attr().find(attr);
    if (a != node.attr().end() && a->second.has_func()) names.push_back(a->second.func().name());
  }
  for (const std::string& name : names) {
    auto f = functions_.find(name);
    if (f == functions_.end() || !seen.insert(name).second) continue;
    for (const tfproto::NodeDef& inner : f->second->node_def())
      if (IsVariableWrite(inner.op()) || RunsVariableWrites(inner, seen)) return true;
  }
  return false;
}

std::string GraphBuilder::WrittenInsideBefore(const Scope& scope, const tfproto::NodeDef& node,
                                              const std::vector<TfValue>& inputs) const {
  // The references of the variables `node` is given (its data inputs in order are `inputs`).
  std::vector<std::string> variables;
  size_t k = 0;
  for (const std::string& in : node.input()) {
    if (in.empty() || in[0] == '^') continue;
    if (k < inputs.size() && inputs[k].is_resource()) variables.push_back(in);
    ++k;
  }
  if (variables.empty()) return "";
  for (const std::string& in : node.input()) {
    if (in.empty() || in[0] != '^') continue;
    auto it = scope.nodes.find(in.substr(1));
    if (it == scope.nodes.end() || IsVariableWrite(it->second->op())) continue;
    const tfproto::NodeDef& before = *it->second;
    bool shares = false;
    for (const std::string& ref : variables) shares = shares || GivenRef(before, ref);
    std::set<std::string> seen;
    if (shares && RunsVariableWrites(before, seen)) return before.name();
  }
  return "";
}

ir::ValueId GraphBuilder::LastWrite(const Scope& scope, const tfproto::NodeDef& node,
                                    const std::vector<TfValue>& inputs, std::string* reason) const {
  if (inputs.empty() || !inputs[0].is_resource()) {
    *reason = "uses a variable that Kiln does not hold (only variables the signature captures are frozen)";
    return ir::kNoValue;
  }
  ir::ValueId last = ir::kNoValue;
  for (const std::string& in : node.input()) {
    if (in.empty() || in[0] != '^' || !OrderedAfterWrite(scope, node, in.substr(1))) continue;
    const std::string write = in.substr(1);
    if (scope.poisoned.count(write)) {
      *reason = fmt::format("is ordered after the variable write '{}', which Kiln could not import", write);
      return ir::kNoValue;
    }
    auto w = scope.writes.find(write);
    if (w == scope.writes.end() || w->second.first != inputs[0].resource.get()) continue;  // another variable
    if (last != ir::kNoValue) {
      // Automatic control dependencies order a node after the one latest write of a variable.
      *reason = fmt::format("is ordered after several writes of variable '{}' (expected the latest one only)",
                            inputs[0].resource_name);
      return ir::kNoValue;
    }
    last = w->second.second;
  }
  return last;
}

bool GraphBuilder::TakesVariables(const std::string& op) const {
  static const std::set<std::string> kOps = {"ReadVariableOp", "ResourceGather", "If",
                                             "StatelessIf",    "While",          "StatelessWhile"};
  return IsVariableWrite(op) || kOps.count(op) || IsCallOp(op) || functions_.count(op);
}

std::string GraphBuilder::VariableWrittenBefore(const Scope& scope, const tfproto::NodeDef& node,
                                                const std::vector<TfValue>& inputs) const {
  for (const std::string& in : node.input()) {
    if (in.empty() || in[0] != '^') continue;
    auto w = scope.writes.find(in.substr(1));
    if (w == scope.writes.end()) continue;
    for (const TfValue& v : inputs)
      if (v.is_resource() && v.resource.get() == w->second.first) return v.resource_name;
  }
  return "";
}

void GraphBuilder::ImportVariableWrite(Scope& scope, const tfproto::NodeDef& node, const std::vector<TfValue>& inputs,
                                       ir::ValueId before) {
  const Tensor& variable = *inputs[0].resource;
  if (inputs.size() != 2 || inputs[1].value == ir::kNoValue)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("node '{}' ({}): expected a variable and a value, got {} inputs", node.name(), node.op(),
                            inputs.size()));
  ImportContext ctx(*this, node, inputs, /*validate_only=*/false);
  if (ctx.input_dtype(1) != variable.dtype())
    ctx.Invalid(fmt::format("writes a {} value to variable '{}' of dtype {}", DTypeName(ctx.input_dtype(1)),
                            inputs[0].resource_name, DTypeName(variable.dtype())));
  ir::ValueId value = inputs[1].value;
  if (node.op() != "AssignVariableOp") {
    if (before == ir::kNoValue) before = ctx.Constant(variable, "before");
    value = ctx.Emit1(node.op() == "AssignAddVariableOp" ? "Add" : "Sub", {before, value}, {}, "value");
  }
  scope.writes[node.name()] = {inputs[0].resource.get(), value};
  scope.outputs[node.name()] = {};
}

void GraphBuilder::RecordFlat(const Scope& scope, const tfproto::NodeDef& node, const std::vector<TfValue>& inputs,
                              const std::vector<TfValue>& outputs) {
  if (scope.flat) flat_.AddNode(scope.prefix, node, *scope.graph, inputs, outputs);
}

std::vector<TfValue> GraphBuilder::ImportCall(Scope& caller, const tfproto::NodeDef& node,
                                              const std::string& function_name, std::vector<TfValue> inputs) {
  const tfproto::FunctionDef& fdef = *functions_.at(function_name);
  const auto& sig = fdef.signature();
  if (static_cast<int>(inputs.size()) != sig.input_arg_size())
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("node '{}' calls function '{}' with {} inputs; it takes {}", node.name(), function_name,
                            inputs.size(), sig.input_arg_size()));
  if (scopes_.size() > 64)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("functions (calls, branches, loop bodies) nest more than 64 deep at '{}'", function_name));
  Scope scope;
  scope.graph = caller.graph;
  scope.function = &fdef;
  scope.label = "function '" + function_name + "'";
  scope.prefix = caller.prefix + node.name() + "/";
  scope.flat = caller.flat;
  for (const tfproto::NodeDef& n : fdef.node_def()) scope.nodes[n.name()] = &n;
  for (int i = 0; i < sig.input_arg_size(); ++i) scope.args[sig.input_arg(i).name()] = inputs[static_cast<size_t>(i)];
  std::vector<std::string> wanted;
  for (const auto& arg : sig.output_arg()) {
    auto ret = fdef.ret().find(arg.name());
    if (ret == fdef.ret().end())
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("function '{}' has no return value for output '{}'", function_name, arg.name()));
    wanted.push_back(ret->second);
  }
  std::vector<TfValue> outs = ImportInScope(scope, wanted);
  return outs;
}

std::shared_ptr<ir::Graph> GraphBuilder::ImportFunction(const std::string& name, const std::vector<FunctionArg>& args,
                                                        std::vector<TfValue>* resource_outputs) {
  auto it = functions_.find(name);
  if (it == functions_.end())
    throw Error(ErrorCode::kInvalidArgument, fmt::format("function '{}' is not in the library", name));
  const tfproto::FunctionDef& fdef = *it->second;
  const auto& sig = fdef.signature();
  if (static_cast<int>(args.size()) != sig.input_arg_size())
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("function '{}' takes {} arguments, got {}", name, sig.input_arg_size(), args.size()));
  // Branch and loop bodies nest like calls (and share their limit): a hostile model nesting
  // them thousands deep must not exhaust the stack.
  if (scopes_.size() > 64)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("functions (calls, branches, loop bodies) nest more than 64 deep at '{}'", name));
  auto graph = std::make_shared<ir::Graph>();
  Scope scope;
  scope.graph = graph.get();
  scope.function = &fdef;
  scope.label = "function '" + name + "'";
  scope.flat = false;
  flat_.AddFunction(name, functions_);
  for (const tfproto::NodeDef& n : fdef.node_def()) scope.nodes[n.name()] = &n;
  for (int i = 0; i < sig.input_arg_size(); ++i) {
    const FunctionArg& a = args[static_cast<size_t>(i)];
    TfValue v;
    if (a.resource || a.table) {
      v.resource = a.resource;
      v.table = a.table;
      v.resource_name = a.resource_name;
    } else {
      v.value = graph->AddInput(sig.input_arg(i).name(), a.dtype, a.shape);
    }
    scope.args[sig.input_arg(i).name()] = v;
  }
  std::vector<std::string> wanted;
  for (const auto& arg : sig.output_arg()) {
    auto ret = fdef.ret().find(arg.name());
    if (ret == fdef.ret().end())
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("function '{}' has no return value for output '{}'", name, arg.name()));
    wanted.push_back(ret->second);
  }
  std::vector<TfValue> outs = ImportInScope(scope, wanted);
  for (size_t i = 0; i < outs.size(); ++i) {
    const TfValue& v = outs[i];
    if (v.is_resource()) {
      // Resources (variables passed through a loop) are bound, not subgraph outputs.
      if (resource_outputs) resource_outputs->push_back(v);
      continue;
    }
    if (v.value == ir::kNoValue) throw UnsupportedError(fmt::format("function '{}' uses unsupported ops", name));
    graph->AddOutput(sig.output_arg(static_cast<int>(i)).name(), v.value);
  }
  return graph;
}

ir::Graph GraphBuilder::ImportSignature(const std::string& key) {
  const tfproto::SignatureDef& sig = FindSignature(bundle_, key);
  ir::Graph graph;
  Scope scope;
  scope.graph = &graph;
  scope.label = "graph";
  for (const tfproto::NodeDef& n : bundle_.meta_graph->graph_def().node()) scope.nodes[n.name()] = &n;
  flat_.SetVersions(bundle_.meta_graph->graph_def().versions());

  auto sorted_keys = [](const auto& map) {
    std::vector<std::string> keys;
    for (const auto& [k, v] : map) keys.push_back(k);
    std::sort(keys.begin(), keys.end());
    return keys;
  };
  for (const std::string& name : sorted_keys(sig.inputs())) {
    const tfproto::TensorInfo& info = sig.inputs().at(name);
    if (info.name().empty())
      throw Error(ErrorCode::kUnimplemented,
                  fmt::format("signature '{}' input '{}' is a sparse or composite tensor", key, name));
    DType dtype = DTypeFromTf(info.dtype());
    if (dtype == DType::kInvalid)
      throw Error(ErrorCode::kUnimplemented,
                  fmt::format("signature '{}' input '{}' has unsupported dtype {}", key, name, info.dtype()));
    ir::SymShape shape;
    if (!info.tensor_shape().unknown_rank()) {
      shape.rank_known = true;
      for (int d = 0; d < info.tensor_shape().dim_size(); ++d) {
        int64_t size = info.tensor_shape().dim(d).size();
        shape.dims.push_back(size >= 0 ? size : graph.NewSymbol(fmt::format("{}.{}", name, d)));
      }
    }
    ir::ValueId v = graph.AddInput(name, dtype, shape);
    std::vector<std::string> parts = SplitRef(info.name());
    const int index = parts.size() > 1 ? ParseIndex(parts[1], info.name()) : 0;
    auto placeholder = scope.nodes.find(parts[0]);
    flat_.AddInput(placeholder == scope.nodes.end() ? nullptr : placeholder->second, index, graph, v);
    auto& outs = scope.outputs[parts[0]];
    if (static_cast<int>(outs.size()) <= index) outs.resize(static_cast<size_t>(index) + 1);
    outs[static_cast<size_t>(index)].value = v;
  }

  std::vector<std::string> output_names = sorted_keys(sig.outputs());
  std::vector<std::string> wanted;
  for (const std::string& name : output_names) {
    const tfproto::TensorInfo& info = sig.outputs().at(name);
    if (info.name().empty())
      throw Error(ErrorCode::kUnimplemented,
                  fmt::format("signature '{}' output '{}' is a sparse or composite tensor", key, name));
    wanted.push_back(info.name());
  }
  unsupported_.clear();
  std::vector<TfValue> outs = ImportInScope(scope, wanted);
  if (!unsupported_.empty()) throw UnsupportedOpsError(unsupported_);
  for (size_t i = 0; i < outs.size(); ++i) {
    if (outs[i].is_resource())
      throw Error(ErrorCode::kUnimplemented,
                  fmt::format("signature output '{}' is a resource handle", output_names[i]));
    if (outs[i].value == ir::kNoValue)
      throw Error(ErrorCode::kInternal, fmt::format("signature output '{}' was not imported", output_names[i]));
    graph.AddOutput(output_names[i], outs[i].value);
  }
  flat_.SetOutputs(graph, graph.outputs());
  return graph;
}

}  // namespace kiln::tf
