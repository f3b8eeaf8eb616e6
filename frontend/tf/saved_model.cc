// SavedModel directory loading: saved_model.pb / .pbtxt, tag-set selection, signatures, and the
// values bound to concrete functions' captured inputs (variables and constants).
#include "frontend/tf/saved_model.h"

#include <fmt/format.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <deque>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <unordered_map>

#include "common/file_checks.h"
#include "common/model_budget.h"
#include "frontend/tf/importer.h"

namespace kiln::tf {
namespace {

namespace fs = std::filesystem;

std::string TagSetString(std::vector<std::string> tags) { return fmt::format("{{{}}}", fmt::join(tags, ", ")); }

std::set<std::string> TagSet(const std::vector<std::string>& tags) { return {tags.begin(), tags.end()}; }

void ParseBinary(const std::string& path, tfproto::SavedModel& proto) {
  RequireRegularFile(path, "SavedModel file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, fmt::format("{}: cannot open for reading", path));
  google::protobuf::io::IstreamInputStream zero_copy(&in);
  google::protobuf::io::CodedInputStream coded(&zero_copy);
  coded.SetTotalBytesLimit(INT_MAX);  // saved_model.pb can exceed the 64 MB default
  if (!proto.ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage() || in.bad())
    throw Error(
        ErrorCode::kDataLoss,
        fmt::format("{}: cannot parse as a SavedModel protobuf (corrupt, truncated or not a SavedModel)", path));
}

// TensorFlow's DataType enum names, in enum order (value = index). Kiln's schema declares dtype
// fields as int32, so text-format files (which spell them DT_FLOAT, ...) are rewritten first.
constexpr const char* kDataTypeNames[] = {
    "DT_INVALID",
    "DT_FLOAT",
    "DT_DOUBLE",
    "DT_INT32",
    "DT_UINT8",
    "DT_INT16",
    "DT_INT8",
    "DT_STRING",
    "DT_COMPLEX64",
    "DT_INT64",
    "DT_BOOL",
    "DT_QINT8",
    "DT_QUINT8",
    "DT_QINT32",
    "DT_BFLOAT16",
    "DT_QINT16",
    "DT_QUINT16",
    "DT_UINT16",
    "DT_COMPLEX128",
    "DT_HALF",
    "DT_RESOURCE",
    "DT_VARIANT",
    "DT_UINT32",
    "DT_UINT64",
    "DT_FLOAT8_E5M2",
    "DT_FLOAT8_E4M3FN",
    "DT_FLOAT8_E4M3FNUZ",
    "DT_FLOAT8_E4M3B11FNUZ",
    "DT_FLOAT8_E5M2FNUZ",
    "DT_INT4",
    "DT_UINT4",
};

std::optional<int> DataTypeNumber(std::string_view name) {
  bool ref = false;
  if (name.size() > 4 && name.substr(name.size() - 4) == "_REF") {
    ref = true;
    name.remove_suffix(4);
  }
  for (size_t i = 0; i < std::size(kDataTypeNames); ++i)
    if (name == kDataTypeNames[i]) return static_cast<int>(i) + (ref ? 100 : 0);
  return std::nullopt;
}

// Kiln's schema declares TensorFlow's enum-typed fields as int32 (DataType everywhere,
// SaverDef.version's CheckpointFormatVersion); text-format files spell them by name. Rewrites
// bare DT_* identifiers, and LEGACY / V1 / V2 as the value of a `version` field, to numbers,
// outside string literals and comments.
std::string NumberEnums(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  const size_t n = text.size();
  const auto is_ident = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  std::string_view last_ident;  // the identifier before the current position
  bool after_colon = false;     // a ':' follows last_ident
  size_t i = 0;
  while (i < n) {
    const char c = text[i];
    if (c == '"' || c == '\'') {  // string literal, with escapes
      const size_t start = i++;
      while (i < n && text[i] != c && text[i] != '\n') i += (text[i] == '\\' && i + 1 < n) ? 2 : 1;
      if (i < n && text[i] == c) ++i;
      out.append(text, start, i - start);
      last_ident = {};
      after_colon = false;
    } else if (c == '#') {  // comment to end of line
      const size_t start = i;
      while (i < n && text[i] != '\n') ++i;
      out.append(text, start, i - start);
    } else if (is_ident(c)) {
      const size_t start = i;
      while (i < n && is_ident(text[i])) ++i;
      const std::string_view word(text.data() + start, i - start);
      std::optional<int> number;
      if (word.substr(0, 3) == "DT_")
        number = DataTypeNumber(word);
      else if (after_colon && last_ident == "version")
        number = word == "LEGACY" ? std::optional<int>(0)
                 : word == "V1"   ? std::optional<int>(1)
                 : word == "V2"   ? std::optional<int>(2)
                                  : std::nullopt;
      if (number)
        out += std::to_string(*number);
      else
        out.append(word);
      last_ident = word;
      after_colon = false;
    } else {
      if (c == ':')
        after_colon = true;
      else if (!std::isspace(static_cast<unsigned char>(c))) {
        last_ident = {};
        after_colon = false;
      }
      out += c;
      ++i;
    }
  }
  return out;
}

void ParseText(const std::string& path, tfproto::SavedModel& proto) {
  RequireRegularFile(path, "SavedModel file");
  std::ifstream in(path);
  if (!in) throw Error(ErrorCode::kNotFound, fmt::format("{}: cannot open for reading", path));
  std::stringstream ss;
  ss << in.rdbuf();
  // Collect the parser's complaints for the message instead of letting it log them.
  struct Collector : google::protobuf::io::ErrorCollector {
    std::string first;
    void AddError(int line, int column,
                  const std::string& message) {  // no override: the signature varies across protobuf versions
      if (first.empty()) first = fmt::format("line {}, column {}: {}", line + 1, column + 1, message);
    }
  } collector;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  // Kiln's schema covers only part of TensorFlow's: skip fields it does not name.
  parser.AllowUnknownField(true);
  parser.AllowUnknownExtension(true);
  parser.AllowFieldNumber(true);
  // SavedModels nest a few dozen messages deep; a file nested thousands deep is hostile and
  // would exhaust the stack.
  parser.SetRecursionLimit(200);
  if (!parser.ParseFromString(NumberEnums(ss.str()), &proto))
    throw Error(ErrorCode::kDataLoss,
                fmt::format("{}: cannot parse as a text-format SavedModel: {}", path,
                            collector.first.empty() ? std::string("unknown error") : collector.first));
}

// saved node id -> checkpoint key, for every variable reachable in both object graphs.
std::unordered_map<int, std::string> CheckpointKeys(const tfproto::SavedObjectGraph& saved,
                                                    const tfproto::TrackableObjectGraph& trackable) {
  std::unordered_map<int, std::string> keys;
  if (saved.nodes_size() == 0 || trackable.nodes_size() == 0) return keys;
  std::vector<bool> visited(static_cast<size_t>(saved.nodes_size()), false);
  std::deque<std::pair<int, int>> queue{{0, 0}};
  visited[0] = true;
  while (!queue.empty()) {
    const auto [s, t] = queue.front();
    queue.pop_front();
    const auto& tnode = trackable.nodes(t);
    for (const auto& attr : tnode.attributes())
      if (attr.name() == "VARIABLE_VALUE") keys.emplace(s, attr.checkpoint_key());
    const auto& snode = saved.nodes(s);
    for (const auto& child : snode.children()) {
      const int sc = child.node_id();
      if (sc < 0 || sc >= saved.nodes_size() || visited[static_cast<size_t>(sc)]) continue;
      for (const auto& tchild : tnode.children()) {
        if (tchild.local_name() != child.local_name()) continue;
        const int tc = tchild.node_id();
        if (tc < 0 || tc >= trackable.nodes_size()) break;
        visited[static_cast<size_t>(sc)] = true;
        queue.emplace_back(sc, tc);
        break;
      }
    }
  }
  return keys;
}

const char* KindName(tfproto::SavedObject::KindCase kind) {
  switch (kind) {
    case tfproto::SavedObject::kUserObject:
      return "user_object";
    case tfproto::SavedObject::kAsset:
      return "asset";
    case tfproto::SavedObject::kFunction:
      return "function";
    case tfproto::SavedObject::kVariable:
      return "variable";
    case tfproto::SavedObject::kBareConcreteFunction:
      return "bare_concrete_function";
    case tfproto::SavedObject::kConstant:
      return "constant";
    case tfproto::SavedObject::kResource:
      return "resource";
    case tfproto::SavedObject::kCapturedTensor:
      return "captured_tensor";
    case tfproto::SavedObject::KIND_NOT_SET:
      return "unknown (no kind set)";
  }
  return "unknown";
}

}  // namespace

SavedModelBundle LoadSavedModel(const std::string& dir, const std::vector<std::string>& tags) {
  ModelReadScope budget(dir);
  std::error_code ec;
  if (!fs::exists(dir, ec))
    throw Error(ErrorCode::kNotFound, fmt::format("SavedModel directory '{}' does not exist", dir));
  if (!fs::is_directory(dir, ec))
    throw Error(ErrorCode::kNotFound, fmt::format("SavedModel path '{}' is not a directory", dir));

  SavedModelBundle bundle;
  bundle.dir = dir;
  bundle.proto = std::make_shared<tfproto::SavedModel>();
  const fs::path pb = fs::path(dir) / "saved_model.pb";
  const fs::path pbtxt = fs::path(dir) / "saved_model.pbtxt";
  std::string source;
  if (fs::exists(pb, ec)) {
    source = pb.string();
    ParseBinary(source, *bundle.proto);
  } else if (fs::exists(pbtxt, ec)) {
    source = pbtxt.string();
    ParseText(source, *bundle.proto);
  } else if (fs::exists(fs::path(dir) / "saved_model.cpb", ec)) {
    throw Error(ErrorCode::kUnimplemented,
                fmt::format("SavedModel '{}' is chunked (saved_model.cpb, written for models over 2 GB); chunked "
                            "SavedModels are not supported",
                            dir));
  } else {
    throw Error(ErrorCode::kNotFound,
                fmt::format("'{}' is not a SavedModel: expected saved_model.pb (or saved_model.pbtxt) in it", dir));
  }
  if (bundle.proto->meta_graphs_size() == 0)
    throw Error(ErrorCode::kDataLoss, fmt::format("{}: the SavedModel contains no MetaGraph", source));

  const std::set<std::string> wanted = TagSet(tags);
  std::vector<std::string> available;
  for (const auto& mg : bundle.proto->meta_graphs()) {
    std::vector<std::string> mg_tags(mg.meta_info_def().tags().begin(), mg.meta_info_def().tags().end());
    if (TagSet(mg_tags) == wanted) {
      bundle.meta_graph = &mg;
      bundle.tags = mg_tags;
      return bundle;
    }
    available.push_back(TagSetString(mg_tags));
  }
  throw Error(ErrorCode::kNotFound, fmt::format("{}: no MetaGraph with tags {}; the SavedModel has: {}", source,
                                                TagSetString(tags), fmt::join(available, ", ")));
}

std::vector<std::string> SignatureKeys(const SavedModelBundle& bundle) {
  std::vector<std::string> keys;
  if (!bundle.meta_graph) return keys;
  for (const auto& [key, sig] : bundle.meta_graph->signature_def())
    if (key != kInitOpSignatureKey) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  return keys;
}

const tfproto::SignatureDef& FindSignature(const SavedModelBundle& bundle, const std::string& key) {
  if (!bundle.meta_graph)
    throw Error(ErrorCode::kFailedPrecondition, "FindSignature: the SavedModelBundle has no selected MetaGraph");
  const auto& sigs = bundle.meta_graph->signature_def();
  auto it = sigs.find(key);
  if (it != sigs.end() && key != kInitOpSignatureKey) return it->second;
  const std::vector<std::string> keys = SignatureKeys(bundle);
  throw Error(ErrorCode::kNotFound,
              fmt::format("SavedModel '{}': signature '{}' not found; available: {}", bundle.dir, key,
                          keys.empty() ? std::string("(none)") : fmt::format("{}", fmt::join(keys, ", "))));
}

std::shared_ptr<const Tensor> CapturedConstant(const SavedModelBundle& bundle, int id,
                                               const std::string& concrete_function_name) {
  const tfproto::SavedObjectGraph& graph = bundle.meta_graph->object_graph_def();
  if (id < 0 || id >= graph.nodes_size() || graph.nodes(id).kind_case() != tfproto::SavedObject::kConstant)
    throw Error(ErrorCode::kDataLoss, fmt::format("SavedModel '{}': function '{}' captures object node {}, which is "
                                                  "not a constant",
                                                  bundle.dir, concrete_function_name, id));
  const std::string& op = graph.nodes(id).constant().operation();
  const tfproto::NodeDef* found = nullptr;
  for (const auto& n : bundle.meta_graph->graph_def().node())
    if (n.name() == op) {
      found = &n;
      break;
    }
  if (!found)
    throw Error(ErrorCode::kNotFound,
                fmt::format("SavedModel '{}': constant captured by '{}' (object node {}) names operation '{}', "
                            "which is not in the graph",
                            bundle.dir, concrete_function_name, id, op));
  auto vit = found->attr().find("value");
  if (found->op() != "Const" || vit == found->attr().end() || !vit->second.has_tensor())
    throw Error(ErrorCode::kDataLoss,
                fmt::format("SavedModel '{}': constant captured by '{}' names node '{}' (op {}), which is not a "
                            "Const with a tensor 'value'",
                            bundle.dir, concrete_function_name, op, found->op()));
  return std::make_shared<const Tensor>(
      DecodeTensorProto(vit->second.tensor(), fmt::format("SavedModel '{}': constant '{}'", bundle.dir, op)));
}

std::vector<CapturedValue> ResolveCaptures(const SavedModelBundle& bundle, VariableReader& variables,
                                           const std::string& concrete_function_name) {
  std::vector<CapturedValue> out;
  if (!bundle.meta_graph) return out;
  const tfproto::SavedObjectGraph& graph = bundle.meta_graph->object_graph_def();
  auto fit = graph.concrete_functions().find(concrete_function_name);
  if (fit == graph.concrete_functions().end()) return out;
  const tfproto::SavedConcreteFunction& fn = fit->second;

  bool have_keys = false;
  std::unordered_map<int, std::string> keys;
  const auto checkpoint_keys = [&]() -> const std::unordered_map<int, std::string>& {
    if (!have_keys) {
      const std::string bytes = variables.ObjectGraphBytes();
      if (bytes.empty()) {
        // The function captures variables, so the checkpoint must exist and describe them.
        const std::filesystem::path index = std::filesystem::path(bundle.dir) / "variables" / "variables.index";
        std::error_code ec;
        if (!std::filesystem::exists(index, ec))
          throw Error(ErrorCode::kNotFound,
                      fmt::format("SavedModel '{}': function '{}' reads variables, but {} does not exist", bundle.dir,
                                  concrete_function_name, index.string()));
        throw Error(ErrorCode::kDataLoss,
                    fmt::format("SavedModel '{}': {} has no _CHECKPOINTABLE_OBJECT_GRAPH entry, so variables cannot be "
                                "matched to the functions that read them",
                                bundle.dir, index.string()));
      }
      tfproto::TrackableObjectGraph trackable;
      if (!trackable.ParseFromString(bytes))
        throw Error(ErrorCode::kDataLoss,
                    fmt::format("SavedModel '{}': the checkpoint's object graph (_CHECKPOINTABLE_OBJECT_GRAPH in "
                                "variables/variables.index) does not parse",
                                bundle.dir));
      keys = CheckpointKeys(graph, trackable);
      have_keys = true;
    }
    return keys;
  };

  for (int j = 0; j < fn.bound_inputs_size(); ++j) {
    const int id = fn.bound_inputs(j);
    if (id < 0 || id >= graph.nodes_size())
      throw Error(
          ErrorCode::kDataLoss,
          fmt::format("SavedModel '{}': function '{}' captures object node {} but the object graph has {} nodes",
                      bundle.dir, concrete_function_name, id, graph.nodes_size()));
    const tfproto::SavedObject& node = graph.nodes(id);
    CapturedValue cv;
    switch (node.kind_case()) {
      case tfproto::SavedObject::kVariable: {
        const tfproto::SavedVariable& var = node.variable();
        const std::string var_desc = var.name().empty() ? fmt::format("object node {}", id)
                                                        : fmt::format("'{}' (object node {})", var.name(), id);
        const auto& ck = checkpoint_keys();
        auto kit = ck.find(id);
        if (kit == ck.end())
          throw Error(ErrorCode::kNotFound,
                      fmt::format("SavedModel '{}': variable {} captured by '{}' has no checkpoint key in the "
                                  "checkpoint's object graph",
                                  bundle.dir, var_desc, concrete_function_name));
        const std::string& key = kit->second;
        std::shared_ptr<const Tensor> value;
        try {
          value = variables.Read(key);
        } catch (const Error& e) {
          if (e.code() != ErrorCode::kNotFound) throw;
          throw Error(ErrorCode::kNotFound, fmt::format("SavedModel '{}': variable {} (checkpoint key '{}') cannot be "
                                                        "read: {}",
                                                        bundle.dir, var_desc, key, e.what()));
        }
        const DType want = DTypeFromTf(var.dtype());
        if (var.dtype() != 0 && want != value->dtype())
          throw Error(
              ErrorCode::kDataLoss,
              fmt::format("SavedModel '{}': variable {} is {} in the object graph but checkpoint key '{}' holds {}",
                          bundle.dir, var_desc, DTypeName(want), key, DTypeName(value->dtype())));
        if (var.has_shape() && !var.shape().unknown_rank()) {
          bool mismatch = var.shape().dim_size() != value->rank();
          for (int d = 0; !mismatch && d < var.shape().dim_size(); ++d) {
            const int64_t size = var.shape().dim(d).size();
            mismatch = size >= 0 && size != value->dim(d);
          }
          if (mismatch) {
            std::vector<int64_t> dims;
            for (const auto& d : var.shape().dim()) dims.push_back(d.size());
            throw Error(ErrorCode::kDataLoss,
                        fmt::format("SavedModel '{}': variable {} has shape {} in the object graph but checkpoint key "
                                    "'{}' holds shape {}",
                                    bundle.dir, var_desc, ShapeToString(dims), key, ShapeToString(value->shape())));
          }
        }
        cv.kind = CapturedValue::Kind::kVariable;
        cv.name = var.name().empty() ? key : var.name();
        cv.value = std::move(value);
        break;
      }
      case tfproto::SavedObject::kConstant: {
        cv.kind = CapturedValue::Kind::kConstant;
        cv.name = node.constant().operation();
        cv.value = CapturedConstant(bundle, id, concrete_function_name);
        break;
      }
      case tfproto::SavedObject::kAsset:
        cv.name = fmt::format("asset (object node {})", id);
        cv.unsupported_reason = "captures an asset file (e.g. a vocabulary); assets are not supported";
        break;
      case tfproto::SavedObject::kResource:
        cv = ResolveTableCapture(bundle, id, concrete_function_name);
        break;
      case tfproto::SavedObject::kCapturedTensor:
        cv.name = node.captured_tensor().name();
        cv.unsupported_reason = fmt::format(
            "captures tensor '{}' computed by concrete function '{}' at load time; captured tensors are not supported",
            node.captured_tensor().name(), node.captured_tensor().concrete_function());
        break;
      default:
        cv.name = fmt::format("object node {}", id);
        cv.unsupported_reason =
            fmt::format("captures an object of kind {}, which cannot be bound as a tensor", KindName(node.kind_case()));
        break;
    }
    out.push_back(std::move(cv));
  }
  return out;
}

}  // namespace kiln::tf
