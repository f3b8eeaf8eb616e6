// IR <-> GraphDef codec (the encoding is described in ir_codec.h).
#include "frontend/tf/ir_codec.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <queue>
#include <set>
#include <stdexcept>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "frontend/tf/importer.h"

namespace kiln::tf {
namespace {

using google::protobuf::RepeatedPtrField;

constexpr char kPlaceholderOp[] = "Placeholder";
constexpr char kEngineIrOp[] = "Engine";
constexpr char kReservedPrefix[] = "_kiln_";

constexpr char kAttrInputIndex[] = "_kiln_input_index";
constexpr char kAttrInputName[] = "_kiln_input_name";
constexpr char kAttrOutputIndex[] = "_kiln_output_index";
constexpr char kAttrOutputDtypes[] = "_kiln_output_dtypes";
constexpr char kAttrOutputShapes[] = "_kiln_output_shapes";
constexpr char kAttrOutputConstants[] = "_kiln_output_constants";
constexpr char kAttrSourceOp[] = "_kiln_source_op";
constexpr char kAttrKinds[] = "_kiln_attr_kinds";

constexpr char kKindF64[] = "f64";
constexpr char kKindF64s[] = "f64s";
constexpr char kKindStrs[] = "strs";
constexpr char kKindTypes[] = "types";

constexpr int kMaxDType = static_cast<int>(DType::kUInt64);

bool IsReserved(const std::string& name) { return name.rfind(kReservedPrefix, 0) == 0; }

std::string TensorRef(const std::string& node, int index) { return fmt::format("{}:{}", node, index); }

// proto3 `string` fields (node, op, attribute, symbol and function names) must be UTF-8: a parser
// rejects the whole file otherwise. (Attribute values are `bytes` and take anything.)
bool IsUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += len;
  }
  return true;
}

void CheckUtf8(const std::string& s, const std::string& what) {
  if (!IsUtf8(s))
    throw Error(ErrorCode::kInvalidArgument, fmt::format("{} is not valid UTF-8 and cannot be stored in a GraphDef", what));
}

// ---------------------------------------------------------------------------------------------
// Tensors
// ---------------------------------------------------------------------------------------------

void EncodeTensor(const Tensor& t, tfproto::TensorProto* proto, const std::string& what) {
  if (t.dtype() == DType::kInvalid) return;  // an undefined tensor: dtype 0, nothing else
  if (t.dtype() == DType::kResource || t.dtype() == DType::kVariant)
    throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: a {} tensor cannot be encoded", what, DTypeName(t.dtype())));
  proto->set_dtype(static_cast<int>(t.dtype()));
  for (int64_t d : t.shape()) proto->mutable_tensor_shape()->add_dim()->set_size(d);
  if (t.dtype() == DType::kString) {
    for (const std::string& s : t.strings()) proto->add_string_val(s);
    return;
  }
  const size_t bytes = t.byte_size();
  if (bytes == 0) return;
  if (!t.is_host())
    throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: tensor is on {}, not on the host", what, t.device().ToString()));
  proto->set_tensor_content(static_cast<const char*>(t.raw_data()), bytes);
}

// ---------------------------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------------------------

class Encoder {
 public:
  tfproto::GraphDef Encode(const ir::Graph& graph) {
    tfproto::GraphDef gd;
    library_ = gd.mutable_library();
    EncodeGraph(graph, {}, "graph", "", gd.mutable_node(), nullptr);
    return gd;
  }

 private:
  // Encodes `graph` into `out`. `enclosing`: the graphs around it, nearest first (for symbols).
  // `fn_prefix`: prefix of the names of functions created for its subgraphs. `signature`, when
  // given, receives the informational input/output args.
  void EncodeGraph(const ir::Graph& graph, const std::vector<const ir::Graph*>& enclosing, const std::string& label,
                   const std::string& fn_prefix, RepeatedPtrField<tfproto::NodeDef>* out, tfproto::OpDef* signature) {
    std::vector<const ir::Graph*> chain{&graph};
    chain.insert(chain.end(), enclosing.begin(), enclosing.end());

    // Names: node names are kept; placeholders and output sinks get free names.
    std::set<std::string> taken;
    for (const ir::Node& n : graph.nodes()) {
      if (n.removed) continue;
      if (!taken.insert(n.name).second)
        throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: two nodes are named '{}'", label, n.name));
    }
    auto unique = [&](const std::string& base) {
      std::string name = base;
      for (int k = 1; taken.count(name); ++k) name = fmt::format("{}_{}", base, k);
      taken.insert(name);
      return name;
    };

    std::map<ir::ValueId, std::string> input_nodes;  // graph input value -> placeholder name
    for (size_t i = 0; i < graph.inputs().size(); ++i) {
      const ir::Value& v = graph.value(graph.inputs()[i]);
      const std::string& input_name = graph.input_names()[i];
      CheckUtf8(input_name, fmt::format("{}: the name of input {}", label, i));
      tfproto::NodeDef* nd = out->Add();
      nd->set_name(unique(input_name));
      nd->set_op(kPlaceholderOp);
      auto& attrs = *nd->mutable_attr();
      attrs["dtype"].set_type(static_cast<int>(v.dtype));
      EncodeShape(v.shape, chain, attrs["shape"].mutable_shape());
      attrs[kAttrInputIndex].set_i(static_cast<int64_t>(i));
      attrs[kAttrInputName].set_s(input_name);
      input_nodes[v.id] = nd->name();
      if (signature) {
        auto* arg = signature->add_input_arg();
        arg->set_name(nd->name());
        arg->set_type(static_cast<int>(v.dtype));
      }
    }

    auto ref = [&](ir::ValueId id, const std::string& reader) -> std::string {
      if (id < 0 || static_cast<size_t>(id) >= graph.num_values())
        throw Error(ErrorCode::kInternal, fmt::format("{}: {} reads value {}, which does not exist", label, reader, id));
      const ir::Value& v = graph.value(id);
      if (v.producer == ir::kNoNode) {
        auto it = input_nodes.find(id);
        if (it == input_nodes.end())
          throw Error(ErrorCode::kInternal,
                      fmt::format("{}: {} reads '{}', which is neither a graph input nor a node output", label, reader, v.name));
        return TensorRef(it->second, 0);
      }
      const ir::Node& p = graph.node(v.producer);
      if (p.removed)
        throw Error(ErrorCode::kInternal,
                    fmt::format("{}: {} reads '{}' of removed node '{}'", label, reader, v.name, p.name));
      return TensorRef(p.name, v.output_index);
    };

    for (ir::NodeId id : graph.TopologicalOrder()) {
      const ir::Node& n = graph.node(id);
      const std::string what = fmt::format("{}: node '{}' ({})", label, n.name, n.op);
      CheckUtf8(n.name, fmt::format("{}: a node name", label));
      CheckUtf8(n.op, what + ": the op name");
      if (n.op == kPlaceholderOp || n.op == kOutputNodeDefOp || n.op == kEngineNodeDefOp)
        throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: the op name is reserved by the graph encoding", what));
      tfproto::NodeDef* nd = out->Add();
      nd->set_name(n.name);
      nd->set_op(n.op == kEngineIrOp ? kEngineNodeDefOp : n.op);
      for (ir::ValueId in : n.inputs) nd->add_input(ref(in, fmt::format("node '{}'", n.name)));
      auto& attrs = *nd->mutable_attr();
      std::vector<std::string> kinds;
      for (const auto& [name, value] : n.attrs.all()) {
        if (IsReserved(name))
          throw Error(ErrorCode::kInvalidArgument,
                      fmt::format("{}: attribute '{}' uses the reserved prefix '{}'", what, name, kReservedPrefix));
        CheckUtf8(name, what + ": an attribute name");
        EncodeAttr(value, name, n, chain, fn_prefix, what, attrs[name], kinds);
      }
      if (!kinds.empty()) {
        auto* list = attrs[kAttrKinds].mutable_list();
        for (const std::string& k : kinds) list->add_s(k);
      }
      auto* dtypes = attrs[kAttrOutputDtypes].mutable_list();
      auto* shapes = attrs[kAttrOutputShapes].mutable_list();
      bool any_constant = false;
      for (ir::ValueId out_id : n.outputs) {
        const ir::Value& v = graph.value(out_id);
        dtypes->add_type(static_cast<int>(v.dtype));
        EncodeShape(v.shape, chain, shapes->add_shape());
        any_constant = any_constant || v.constant != nullptr;
      }
      if (any_constant && n.op != "Constant") {
        auto* list = attrs[kAttrOutputConstants].mutable_list();
        for (ir::ValueId out_id : n.outputs) {
          const ir::Value& v = graph.value(out_id);
          tfproto::TensorProto* t = list->add_tensor();
          if (v.constant) EncodeTensor(*v.constant, t, fmt::format("{}: constant of output {}", what, v.output_index));
        }
      }
      if (!n.source_op.empty()) attrs[kAttrSourceOp].set_s(n.source_op);
    }

    for (size_t i = 0; i < graph.outputs().size(); ++i) {
      const std::string& output_name = graph.output_names()[i];
      CheckUtf8(output_name, fmt::format("{}: the name of output {}", label, i));
      const ir::ValueId id = graph.outputs()[i];
      tfproto::NodeDef* nd = out->Add();
      nd->set_name(unique("kiln_output/" + output_name));
      nd->set_op(kOutputNodeDefOp);
      nd->add_input(ref(id, fmt::format("graph output '{}'", output_name)));
      auto& attrs = *nd->mutable_attr();
      attrs["name"].set_s(output_name);
      attrs["T"].set_type(static_cast<int>(graph.value(id).dtype));
      attrs[kAttrOutputIndex].set_i(static_cast<int64_t>(i));
      if (signature) {
        auto* arg = signature->add_output_arg();
        arg->set_name(output_name);
        arg->set_type(static_cast<int>(graph.value(id).dtype));
      }
    }
  }

  void EncodeShape(const ir::SymShape& shape, const std::vector<const ir::Graph*>& chain,
                   tfproto::TensorShapeProto* proto) {
    if (!shape.rank_known) {
      proto->set_unknown_rank(true);
      return;
    }
    for (ir::Dim d : shape.dims) {
      auto* dim = proto->add_dim();
      if (ir::IsStatic(d)) {
        dim->set_size(d);
        continue;
      }
      dim->set_size(-1);
      if (d == ir::kUnknownDim) continue;
      if (const std::string* name = FindSymbol(d, chain)) {
        CheckUtf8(*name, fmt::format("symbol '{}'", *name));
        dim->set_name(*name);
      }
    }
  }

  // The name of symbol `d`: the graph's own table first, then the enclosing graphs'.
  static const std::string* FindSymbol(ir::Dim d, const std::vector<const ir::Graph*>& chain) {
    for (const ir::Graph* g : chain) {
      try {
        return &g->SymbolName(d);
      } catch (const std::out_of_range&) {
      }
    }
    return nullptr;
  }

  void EncodeAttr(const ir::AttrValue& value, const std::string& name, const ir::Node& node,
                  const std::vector<const ir::Graph*>& chain, const std::string& fn_prefix, const std::string& what,
                  tfproto::AttrValue& out, std::vector<std::string>& kinds) {
    const std::string attr_what = fmt::format("{} attribute '{}'", what, name);
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, int64_t>) {
            out.set_i(v);
          } else if constexpr (std::is_same_v<T, bool>) {
            out.set_b(v);
          } else if constexpr (std::is_same_v<T, std::string>) {
            out.set_s(v);
          } else if constexpr (std::is_same_v<T, DType>) {
            out.set_type(static_cast<int>(v));
          } else if constexpr (std::is_same_v<T, double>) {
            EncodeTensor(Tensor::Scalar<double>(DType::kFloat64, v), out.mutable_tensor(), attr_what);
            kinds.push_back(name + ":" + kKindF64);
          } else if constexpr (std::is_same_v<T, std::vector<double>>) {
            EncodeTensor(Tensor::FromVector<double>(DType::kFloat64, {static_cast<int64_t>(v.size())}, v),
                         out.mutable_tensor(), attr_what);
            kinds.push_back(name + ":" + kKindF64s);
          } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
            auto* list = out.mutable_list();
            for (int64_t x : v) list->add_i(x);
          } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            auto* list = out.mutable_list();
            for (const std::string& x : v) list->add_s(x);
            if (v.empty()) kinds.push_back(name + ":" + kKindStrs);
          } else if constexpr (std::is_same_v<T, std::vector<DType>>) {
            auto* list = out.mutable_list();
            for (DType x : v) list->add_type(static_cast<int>(x));
            if (v.empty()) kinds.push_back(name + ":" + kKindTypes);
          } else if constexpr (std::is_same_v<T, Tensor>) {
            EncodeTensor(v, out.mutable_tensor(), attr_what);
          } else if constexpr (std::is_same_v<T, std::shared_ptr<ir::Graph>>) {
            auto* func = out.mutable_func();
            if (v) func->set_name(EncodeSubgraph(*v, chain, fn_prefix + node.name + "__" + name));
          } else {
            static_assert(sizeof(T) == 0, "unhandled IR attribute type");
          }
        },
        value);
  }

  std::string EncodeSubgraph(const ir::Graph& graph, const std::vector<const ir::Graph*>& enclosing,
                             const std::string& base) {
    if (auto it = functions_.find(&graph); it != functions_.end()) return it->second;
    std::string name = base;
    for (int k = 1; function_names_.count(name); ++k) name = fmt::format("{}_{}", base, k);
    function_names_.insert(name);
    functions_[&graph] = name;
    tfproto::FunctionDef* fd = library_->add_function();
    fd->mutable_signature()->set_name(name);
    EncodeGraph(graph, enclosing, fmt::format("function '{}'", name), name + "/", fd->mutable_node_def(),
                fd->mutable_signature());
    return name;
  }

  tfproto::FunctionDefLibrary* library_ = nullptr;
  std::map<const ir::Graph*, std::string> functions_;
  std::set<std::string> function_names_;
};

// ---------------------------------------------------------------------------------------------
// Decoder
// ---------------------------------------------------------------------------------------------

// Named symbols of one graph being decoded.
struct SymbolTable {
  ir::Graph* graph = nullptr;
  std::map<std::string, ir::Dim> by_name;
};

class Decoder {
  // A tensor reference: NodeDef position and output index.
  struct Ref {
    int pos;
    int index;
  };

 public:
  explicit Decoder(const tfproto::GraphDef& gd) : gd_(gd) {
    for (const tfproto::FunctionDef& f : gd.library().function()) {
      const std::string& name = f.signature().name();
      if (!functions_.emplace(name, &f).second)
        throw Error(ErrorCode::kDataLoss, fmt::format("graph library: two functions are named '{}'", name));
    }
  }

  ir::Graph DecodeTop() { return DecodeGraph(gd_.node(), "graph", {}); }

 private:
  ir::Graph DecodeGraph(const RepeatedPtrField<tfproto::NodeDef>& nodes, const std::string& label,
                        const std::vector<SymbolTable*>& enclosing) {
    ir::Graph graph;
    SymbolTable symbols;
    symbols.graph = &graph;
    std::vector<SymbolTable*> chain{&symbols};
    chain.insert(chain.end(), enclosing.begin(), enclosing.end());

    std::map<std::string, int> by_name;  // NodeDef name -> position
    std::vector<int> placeholders, regular, sinks;
    for (int i = 0; i < nodes.size(); ++i) {
      const tfproto::NodeDef& nd = nodes.Get(i);
      if (!by_name.emplace(nd.name(), i).second)
        throw Error(ErrorCode::kDataLoss, fmt::format("{}: two nodes are named '{}'", label, nd.name()));
      if (nd.op() == kPlaceholderOp) placeholders.push_back(i);
      else if (nd.op() == kOutputNodeDefOp) sinks.push_back(i);
      else regular.push_back(i);
    }
    auto fail = [&](const tfproto::NodeDef& nd, const std::string& reason) -> Error {
      return Error(ErrorCode::kDataLoss, fmt::format("{}: node '{}' ({}): {}", label, nd.name(), nd.op(), reason));
    };

    // Produced values per NodeDef position (filled as nodes are added).
    std::vector<std::vector<ir::ValueId>> produced(static_cast<size_t>(nodes.size()));
    std::vector<bool> is_regular(static_cast<size_t>(nodes.size()), false);
    for (int i : regular) is_regular[static_cast<size_t>(i)] = true;

    // ---- graph inputs ----
    std::vector<int> input_order(placeholders.size(), -1);
    for (int pos : placeholders) {
      const tfproto::NodeDef& nd = nodes.Get(pos);
      if (nd.input_size() != 0) throw fail(nd, "a placeholder has inputs");
      const int64_t index = GetInt(nd, kAttrInputIndex, fail);
      if (index < 0 || index >= static_cast<int64_t>(placeholders.size()))
        throw fail(nd, fmt::format("input index {} is out of range (the graph has {} inputs)", index, placeholders.size()));
      if (input_order[static_cast<size_t>(index)] != -1)
        throw fail(nd, fmt::format("input index {} is used twice", index));
      input_order[static_cast<size_t>(index)] = pos;
    }
    for (int pos : input_order) {
      const tfproto::NodeDef& nd = nodes.Get(pos);
      const DType dtype = ToDType(GetAttr(nd, "dtype", tfproto::AttrValue::kType, fail).type(), [&](const std::string& r) {
        return fail(nd, "attribute 'dtype': " + r);
      });
      const auto& shape_attr = GetAttr(nd, "shape", tfproto::AttrValue::kShape, fail);
      ir::SymShape shape = DecodeShape(shape_attr.shape(), chain, [&](const std::string& r) { return fail(nd, r); });
      std::string name = nd.name();
      if (nd.attr().count(kAttrInputName)) name = GetAttr(nd, kAttrInputName, tfproto::AttrValue::kS, fail).s();
      produced[static_cast<size_t>(pos)] = {graph.AddInput(name, dtype, std::move(shape))};
    }

    // ---- nodes, in a topological order (stable on file position) ----
    auto parse_ref = [&](const tfproto::NodeDef& nd, const std::string& ref) -> Ref {
      if (!ref.empty() && ref[0] == '^') throw fail(nd, fmt::format("control input '{}' is not supported", ref));
      const size_t colon = ref.rfind(':');
      if (colon != std::string::npos && colon + 1 < ref.size() && ref.size() - colon - 1 <= 9 &&
          std::all_of(ref.begin() + static_cast<long>(colon) + 1, ref.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        if (auto it = by_name.find(ref.substr(0, colon)); it != by_name.end())
          return {it->second, std::stoi(ref.substr(colon + 1))};
      }
      if (auto it = by_name.find(ref); it != by_name.end()) return {it->second, 0};
      throw fail(nd, fmt::format("input '{}' names no node", ref));
    };
    std::vector<int> num_outputs(static_cast<size_t>(nodes.size()), 0);
    for (int pos : placeholders) num_outputs[static_cast<size_t>(pos)] = 1;
    std::vector<std::vector<Ref>> refs(static_cast<size_t>(nodes.size()));
    for (int pos : regular) {
      const tfproto::NodeDef& nd = nodes.Get(pos);
      if (nd.op().empty()) throw fail(nd, "the op is empty");
      num_outputs[static_cast<size_t>(pos)] =
          GetAttr(nd, kAttrOutputDtypes, tfproto::AttrValue::kList, fail).list().type_size();
    }
    for (int pos : regular) {
      const tfproto::NodeDef& nd = nodes.Get(pos);
      for (const std::string& r : nd.input()) refs[static_cast<size_t>(pos)].push_back(parse_ref(nd, r));
    }
    std::vector<int> pending(static_cast<size_t>(nodes.size()), 0);
    std::vector<std::vector<int>> users(static_cast<size_t>(nodes.size()));
    for (int pos : regular) {
      const tfproto::NodeDef& nd = nodes.Get(pos);
      for (const Ref& r : refs[static_cast<size_t>(pos)]) {
        const tfproto::NodeDef& producer = nodes.Get(r.pos);
        if (producer.op() == kOutputNodeDefOp)
          throw fail(nd, fmt::format("reads output sink '{}', which has no outputs", producer.name()));
        if (r.index < 0 || r.index >= num_outputs[static_cast<size_t>(r.pos)])
          throw fail(nd, fmt::format("reads output {} of '{}', which has {} outputs", r.index, producer.name(),
                                     num_outputs[static_cast<size_t>(r.pos)]));
        if (is_regular[static_cast<size_t>(r.pos)]) {
          ++pending[static_cast<size_t>(pos)];
          users[static_cast<size_t>(r.pos)].push_back(pos);
        }
      }
    }
    std::priority_queue<int, std::vector<int>, std::greater<>> ready;
    for (int pos : regular)
      if (pending[static_cast<size_t>(pos)] == 0) ready.push(pos);
    size_t added = 0;
    while (!ready.empty()) {
      const int pos = ready.top();
      ready.pop();
      AddNode(graph, chain, pos, nodes.Get(pos), refs[static_cast<size_t>(pos)], produced, fail);
      ++added;
      for (int u : users[static_cast<size_t>(pos)])
        if (--pending[static_cast<size_t>(u)] == 0) ready.push(u);
    }
    if (added != regular.size()) {
      for (int pos : regular)
        if (pending[static_cast<size_t>(pos)] != 0) throw fail(nodes.Get(pos), "the node is part of a cycle");
    }

    // ---- graph outputs ----
    std::vector<int> output_order(sinks.size(), -1);
    for (int pos : sinks) {
      const tfproto::NodeDef& nd = nodes.Get(pos);
      const int64_t index = GetInt(nd, kAttrOutputIndex, fail);
      if (index < 0 || index >= static_cast<int64_t>(sinks.size()))
        throw fail(nd, fmt::format("output index {} is out of range (the graph has {} outputs)", index, sinks.size()));
      if (output_order[static_cast<size_t>(index)] != -1) throw fail(nd, fmt::format("output index {} is used twice", index));
      output_order[static_cast<size_t>(index)] = pos;
    }
    for (int pos : output_order) {
      const tfproto::NodeDef& nd = nodes.Get(pos);
      if (nd.input_size() != 1) throw fail(nd, fmt::format("an output sink has {} inputs, expected 1", nd.input_size()));
      const Ref r = parse_ref(nd, nd.input(0));
      const tfproto::NodeDef& producer = nodes.Get(r.pos);
      if (producer.op() == kOutputNodeDefOp) throw fail(nd, fmt::format("reads output sink '{}'", producer.name()));
      const auto& values = produced[static_cast<size_t>(r.pos)];
      if (r.index < 0 || static_cast<size_t>(r.index) >= values.size())
        throw fail(nd, fmt::format("reads output {} of '{}', which has {} outputs", r.index, producer.name(), values.size()));
      graph.AddOutput(GetAttr(nd, "name", tfproto::AttrValue::kS, fail).s(), values[static_cast<size_t>(r.index)]);
    }
    return graph;
  }

  template <typename Fail>
  void AddNode(ir::Graph& graph, const std::vector<SymbolTable*>& chain, int pos, const tfproto::NodeDef& nd,
               const std::vector<Ref>& refs, std::vector<std::vector<ir::ValueId>>& produced, Fail&& fail) {
    std::vector<ir::ValueId> inputs;
    for (const Ref& r : refs) inputs.push_back(produced[static_cast<size_t>(r.pos)][static_cast<size_t>(r.index)]);

    // Attribute kinds the proto form does not tell apart.
    std::map<std::string, std::string> kinds;
    if (nd.attr().count(kAttrKinds)) {
      for (const std::string& entry : GetAttr(nd, kAttrKinds, tfproto::AttrValue::kList, fail).list().s()) {
        const size_t colon = entry.rfind(':');
        if (colon == std::string::npos) throw fail(nd, fmt::format("malformed attribute kind '{}'", entry));
        const std::string name = entry.substr(0, colon);
        if (!nd.attr().count(name)) throw fail(nd, fmt::format("attribute kind '{}' names a missing attribute", entry));
        kinds[name] = entry.substr(colon + 1);
      }
    }

    // Attributes, in sorted order (protobuf map order is unspecified).
    std::vector<std::string> names;
    for (const auto& [name, value] : nd.attr()) names.push_back(name);
    std::sort(names.begin(), names.end());
    ir::AttrMap attrs;
    for (const std::string& name : names) {
      if (IsReserved(name)) continue;  // the codec's own (unknown ones are from newer writers)
      auto kind_it = kinds.find(name);
      attrs.Set(name, DecodeAttr(nd, name, nd.attr().at(name), kind_it == kinds.end() ? "" : kind_it->second, chain, fail));
    }

    const auto& dtypes = GetAttr(nd, kAttrOutputDtypes, tfproto::AttrValue::kList, fail).list();
    const auto& shapes = GetAttr(nd, kAttrOutputShapes, tfproto::AttrValue::kList, fail).list();
    const int n = dtypes.type_size();
    if (shapes.shape_size() != n)
      throw fail(nd, fmt::format("'{}' has {} entries but '{}' has {}", kAttrOutputShapes, shapes.shape_size(),
                                 kAttrOutputDtypes, n));
    std::vector<std::shared_ptr<const Tensor>> constants(static_cast<size_t>(n));
    if (nd.attr().count(kAttrOutputConstants)) {
      const auto& list = GetAttr(nd, kAttrOutputConstants, tfproto::AttrValue::kList, fail).list();
      if (list.tensor_size() != n)
        throw fail(nd, fmt::format("'{}' has {} entries, expected {}", kAttrOutputConstants, list.tensor_size(), n));
      for (int i = 0; i < n; ++i) {
        Tensor t = DecodeTensor(list.tensor(i), nd, fmt::format("constant of output {}", i), fail);
        if (t.dtype() != DType::kInvalid) constants[static_cast<size_t>(i)] = std::make_shared<const Tensor>(std::move(t));
      }
    }

    const std::string op = nd.op() == kEngineNodeDefOp ? std::string(kEngineIrOp) : nd.op();
    if (op == "Constant") {
      if (n != 1) throw fail(nd, fmt::format("a Constant node has {} outputs", n));
      auto it = attrs.all().find("value");
      if (it == attrs.all().end() || !std::holds_alternative<Tensor>(it->second))
        throw fail(nd, "a Constant node has no tensor attribute 'value'");
      constants[0] = std::make_shared<const Tensor>(std::get<Tensor>(it->second));
    }

    std::string source_op;
    if (nd.attr().count(kAttrSourceOp)) source_op = GetAttr(nd, kAttrSourceOp, tfproto::AttrValue::kS, fail).s();

    std::vector<DType> out_dtypes;
    std::vector<ir::SymShape> out_shapes;
    for (int i = 0; i < n; ++i) {
      out_dtypes.push_back(ToDType(dtypes.type(i), [&](const std::string& r) {
        return fail(nd, fmt::format("output {}: {}", i, r));
      }));
      out_shapes.push_back(DecodeShape(shapes.shape(i), chain, [&](const std::string& r) {
        return fail(nd, fmt::format("output {}: {}", i, r));
      }));
    }

    ir::Node& node = graph.AddNode(op, nd.name(), std::move(inputs), n);
    node.attrs = std::move(attrs);
    node.source_op = std::move(source_op);
    const std::vector<ir::ValueId> outs = node.outputs;
    for (int i = 0; i < n; ++i) {
      ir::Value& v = graph.value(outs[static_cast<size_t>(i)]);
      v.dtype = out_dtypes[static_cast<size_t>(i)];
      v.shape = std::move(out_shapes[static_cast<size_t>(i)]);
      v.constant = std::move(constants[static_cast<size_t>(i)]);
    }
    produced[static_cast<size_t>(pos)] = outs;
  }

  template <typename Fail>
  ir::AttrValue DecodeAttr(const tfproto::NodeDef& nd, const std::string& name, const tfproto::AttrValue& a,
                           const std::string& kind, const std::vector<SymbolTable*>& chain, Fail&& fail) {
    const std::string what = fmt::format("attribute '{}'", name);
    auto bad = [&](const std::string& reason) { return fail(nd, fmt::format("{}: {}", what, reason)); };
    if (!kind.empty() && kind != kKindF64 && kind != kKindF64s && kind != kKindStrs && kind != kKindTypes)
      throw bad(fmt::format("unknown attribute kind '{}'", kind));
    if ((kind == kKindF64 || kind == kKindF64s) && a.value_case() != tfproto::AttrValue::kTensor)
      throw bad(fmt::format("marked '{}' but is not a tensor", kind));
    if ((kind == kKindStrs || kind == kKindTypes) && a.value_case() != tfproto::AttrValue::kList)
      throw bad(fmt::format("marked '{}' but is not a list", kind));
    switch (a.value_case()) {
      case tfproto::AttrValue::kI: return a.i();
      case tfproto::AttrValue::kB: return a.b();
      case tfproto::AttrValue::kS: return a.s();
      case tfproto::AttrValue::kType: return ToDType(a.type(), bad);
      case tfproto::AttrValue::kTensor: {
        Tensor t = DecodeTensor(a.tensor(), nd, what, fail);
        if (kind == kKindF64) {
          if (t.dtype() != DType::kFloat64 || t.rank() != 0) throw bad("marked 'f64' but is not a float64 scalar");
          return *t.data<double>();
        }
        if (kind == kKindF64s) {
          if (t.dtype() != DType::kFloat64 || t.rank() != 1) throw bad("marked 'f64s' but is not a rank-1 float64 tensor");
          const double* p = t.data<double>();
          return std::vector<double>(p, p + t.num_elements());
        }
        return t;
      }
      case tfproto::AttrValue::kFunc: {
        const std::string& fn = a.func().name();
        if (fn.empty()) return std::shared_ptr<ir::Graph>();
        return DecodeFunction(fn, chain, [&](const std::string& reason) { return bad(reason); });
      }
      case tfproto::AttrValue::kList: {
        const auto& l = a.list();
        if (l.f_size() || l.b_size() || l.shape_size() || l.tensor_size() || l.func_size())
          throw bad("a list of floats, bools, shapes, tensors or functions is not an IR attribute");
        const int kinds_present = (l.i_size() > 0) + (l.s_size() > 0) + (l.type_size() > 0);
        if (kinds_present > 1) throw bad("a list mixes element types");
        if (kind == kKindStrs || l.s_size() > 0) {
          if (kind == kKindTypes || l.i_size() || l.type_size()) throw bad("list does not match its kind");
          return std::vector<std::string>(l.s().begin(), l.s().end());
        }
        if (kind == kKindTypes || l.type_size() > 0) {
          if (l.i_size()) throw bad("list does not match its kind");
          std::vector<DType> types;
          for (int t : l.type()) types.push_back(ToDType(t, bad));
          return types;
        }
        return std::vector<int64_t>(l.i().begin(), l.i().end());
      }
      default:
        throw bad(fmt::format("has a form (value case {}) that is not an IR attribute", static_cast<int>(a.value_case())));
    }
  }

  template <typename Bad>
  std::shared_ptr<ir::Graph> DecodeFunction(const std::string& name, const std::vector<SymbolTable*>& enclosing, Bad&& bad) {
    if (auto it = decoded_.find(name); it != decoded_.end()) return it->second;
    auto fit = functions_.find(name);
    if (fit == functions_.end()) throw bad(fmt::format("function '{}' is not in the graph's library", name));
    if (!in_progress_.insert(name).second) throw bad(fmt::format("function '{}' contains itself", name));
    const tfproto::FunctionDef& f = *fit->second;
    auto graph = std::make_shared<ir::Graph>(DecodeGraph(f.node_def(), fmt::format("function '{}'", name), enclosing));
    in_progress_.erase(name);
    decoded_[name] = graph;
    return graph;
  }

  template <typename Fail>
  Tensor DecodeTensor(const tfproto::TensorProto& proto, const tfproto::NodeDef& nd, const std::string& what, Fail&& fail) {
    if (proto.dtype() == 0) {
      if (proto.has_tensor_shape() || !proto.tensor_content().empty() || proto.string_val_size())
        throw fail(nd, fmt::format("{}: an undefined tensor has contents", what));
      return Tensor();
    }
    if (proto.dtype() < 0 || proto.dtype() > kMaxDType)
      throw fail(nd, fmt::format("{}: tensor dtype {} is not a Kiln dtype", what, proto.dtype()));
    // The encoder writes every element (tensor_content, or one string_val per string): check the
    // element count against what the file holds before anything is allocated, so a corrupt
    // shape cannot ask for an absurd allocation.
    const DType dtype = static_cast<DType>(proto.dtype());
    if (proto.tensor_shape().unknown_rank()) throw fail(nd, fmt::format("{}: tensor has an unknown rank", what));
    uint64_t n = 1;
    bool zero = false, overflow = false;
    for (const auto& d : proto.tensor_shape().dim()) {
      if (d.size() < 0) throw fail(nd, fmt::format("{}: tensor has a negative dimension {}", what, d.size()));
      if (d.size() == 0) zero = true;
      else if (n > (uint64_t{1} << 62) / static_cast<uint64_t>(d.size())) overflow = true;
      else n *= static_cast<uint64_t>(d.size());
    }
    if (zero) n = 0;
    else if (overflow) throw fail(nd, fmt::format("{}: tensor shape overflows", what));
    if (dtype == DType::kString) {
      if (static_cast<uint64_t>(proto.string_val_size()) != n)
        throw fail(nd, fmt::format("{}: string tensor of {} elements has {} values", what, n, proto.string_val_size()));
    } else {
      const uint64_t elem = DTypeSize(dtype);
      if (elem == 0) throw fail(nd, fmt::format("{}: tensor of dtype {} cannot be decoded", what, DTypeName(dtype)));
      const uint64_t have = proto.tensor_content().size();
      if (have % elem != 0 || have / elem != n)
        throw fail(nd, fmt::format("{}: tensor of {} {} elements has {} content bytes", what, n, DTypeName(dtype), have));
    }
    try {
      return DecodeTensorProto(proto, what);
    } catch (const Error& e) {
      throw fail(nd, e.what());
    }
  }

  template <typename Bad>
  static DType ToDType(int value, Bad&& bad) {
    if (value < 0 || value > kMaxDType) throw bad(fmt::format("dtype {} is not a Kiln dtype", value));
    return static_cast<DType>(value);
  }

  template <typename Bad>
  ir::SymShape DecodeShape(const tfproto::TensorShapeProto& proto, const std::vector<SymbolTable*>& chain, Bad&& bad) {
    if (proto.unknown_rank()) {
      if (proto.dim_size() != 0) throw bad("a shape of unknown rank has dimensions");
      return ir::SymShape::Unknown();
    }
    std::vector<ir::Dim> dims;
    for (const auto& d : proto.dim()) {
      if (d.size() >= 0) {
        dims.push_back(d.size());
      } else if (d.size() == -1) {
        dims.push_back(d.name().empty() ? ir::kUnknownDim : Symbol(d.name(), chain));
      } else {
        throw bad(fmt::format("dimension size {} is invalid", d.size()));
      }
    }
    return ir::SymShape::Of(std::move(dims));
  }

  // A named symbol: from this graph's table, else an enclosing graph's, else a new one here.
  static ir::Dim Symbol(const std::string& name, const std::vector<SymbolTable*>& chain) {
    for (SymbolTable* t : chain)
      if (auto it = t->by_name.find(name); it != t->by_name.end()) return it->second;
    SymbolTable& own = *chain.front();
    const ir::Dim d = own.graph->NewSymbol(name);
    own.by_name[name] = d;
    return d;
  }

  template <typename Fail>
  static const tfproto::AttrValue& GetAttr(const tfproto::NodeDef& nd, const std::string& name,
                                           tfproto::AttrValue::ValueCase expected, Fail&& fail) {
    auto it = nd.attr().find(name);
    if (it == nd.attr().end()) throw fail(nd, fmt::format("attribute '{}' is missing", name));
    if (it->second.value_case() != expected) throw fail(nd, fmt::format("attribute '{}' has the wrong type", name));
    return it->second;
  }

  template <typename Fail>
  static int64_t GetInt(const tfproto::NodeDef& nd, const std::string& name, Fail&& fail) {
    return GetAttr(nd, name, tfproto::AttrValue::kI, fail).i();
  }

  const tfproto::GraphDef& gd_;
  std::map<std::string, const tfproto::FunctionDef*> functions_;
  std::map<std::string, std::shared_ptr<ir::Graph>> decoded_;
  std::set<std::string> in_progress_;
};

}  // namespace

tfproto::GraphDef EncodeIrGraph(const ir::Graph& graph) { return Encoder().Encode(graph); }

ir::Graph DecodeIrGraph(const tfproto::GraphDef& graph_def) { return Decoder(graph_def).DecodeTop(); }

namespace {

// Entries of the top-level nodes of `op`, ordered by their index attribute.
template <typename Value>
std::vector<std::string> Ordered(const tfproto::GraphDef& gd, const char* op, const char* index_attr, Value&& value) {
  std::vector<std::pair<int64_t, std::string>> entries;
  for (const tfproto::NodeDef& nd : gd.node()) {
    if (nd.op() != op) continue;
    auto it = nd.attr().find(index_attr);
    if (it == nd.attr().end() || it->second.value_case() != tfproto::AttrValue::kI)
      throw Error(ErrorCode::kDataLoss, fmt::format("graph: node '{}' ({}) has no integer attribute '{}'", nd.name(), op, index_attr));
    entries.emplace_back(it->second.i(), value(nd));
  }
  std::sort(entries.begin(), entries.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].first != static_cast<int64_t>(i))
      throw Error(ErrorCode::kDataLoss, fmt::format("graph: the '{}' attributes of the {} nodes are not 0..{}", index_attr,
                                                    op, entries.size() - 1));
    out.push_back(std::move(entries[i].second));
  }
  return out;
}

}  // namespace

std::vector<std::string> EncodedInputTensors(const tfproto::GraphDef& graph_def) {
  return Ordered(graph_def, kPlaceholderOp, kAttrInputIndex, [](const tfproto::NodeDef& nd) { return TensorRef(nd.name(), 0); });
}

std::vector<std::string> EncodedOutputTensors(const tfproto::GraphDef& graph_def) {
  return Ordered(graph_def, kOutputNodeDefOp, kAttrOutputIndex, [](const tfproto::NodeDef& nd) {
    if (nd.input_size() != 1)
      throw Error(ErrorCode::kDataLoss, fmt::format("graph: output node '{}' has {} inputs, expected 1", nd.name(), nd.input_size()));
    return nd.input(0);
  });
}

}  // namespace kiln::tf
