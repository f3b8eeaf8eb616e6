// Static lookup tables in a SavedModel. tf.saved_model.save and Keras' model.export write a
// tf.lookup.StaticHashTable as a resource object with two functions: `_create_resource` (a
// HashTableV2 node) and `_initialize` (LookupTableImportV2, or InitializeTableV2, of keys and
// values that are constants the function captures). Nothing of it is in the checkpoint, and
// `__saved_model_init_op` only calls `_initialize`, so the table's contents are read from there.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <set>

#include "frontend/tf/importer.h"
#include "frontend/tf/saved_model.h"

namespace kiln::tf {
namespace {

// Tables whose contents change at run time (inserts, removals) or come from a checkpoint.
const std::set<std::string> kMutableTableOps = {"MutableHashTableV2",        "MutableHashTableOfTensorsV2",
                                                "MutableDenseHashTableV2",   "MutableHashTable",
                                                "MutableHashTableOfTensors", "MutableDenseHashTable"};
const std::set<std::string> kStaticTableOps = {"HashTableV2", "HashTable"};
const std::set<std::string> kImportOps = {"LookupTableImportV2", "InitializeTableV2", "LookupTableImport",
                                          "InitializeTable"};
const std::set<std::string> kFileInitOps = {"InitializeTableFromTextFileV2", "InitializeTableFromTextFile",
                                            "InitializeTableFromDataset"};

struct Context {
  const SavedModelBundle& bundle;
  int id;            // the resource's object-graph node
  std::string user;  // the function that captures it, for messages
  std::string Where() const { return fmt::format("SavedModel '{}': lookup table (object node {})", bundle.dir, id); }
};

// The concrete function of the resource's child function `local_name`, or "" when it has none.
std::string ChildFunction(const Context& c, const std::string& local_name) {
  const tfproto::SavedObjectGraph& graph = c.bundle.meta_graph->object_graph_def();
  for (const auto& child : graph.nodes(c.id).children()) {
    if (child.local_name() != local_name) continue;
    const int f = child.node_id();
    if (f < 0 || f >= graph.nodes_size() || graph.nodes(f).kind_case() != tfproto::SavedObject::kFunction ||
        graph.nodes(f).function().concrete_functions_size() == 0)
      throw Error(ErrorCode::kDataLoss,
                  fmt::format("{}: its '{}' is not a function with a concrete function", c.Where(), local_name));
    return graph.nodes(f).function().concrete_functions(0);
  }
  return "";
}

const tfproto::FunctionDef& FindFunction(const Context& c, const std::string& name) {
  for (const tfproto::FunctionDef& f : c.bundle.meta_graph->graph_def().library().function())
    if (f.signature().name() == name) return f;
  throw Error(ErrorCode::kDataLoss, fmt::format("{}: function '{}' is not in the library", c.Where(), name));
}

DType AttrDType(const tfproto::NodeDef& node, const std::string& name) {
  auto it = node.attr().find(name);
  return it == node.attr().end() ? DType::kInvalid : DTypeFromTf(it->second.type());
}

// The node name (or function argument) a function-internal reference "node:output:index" names.
std::string NodeOf(const std::string& ref) { return ref.substr(0, ref.find(':')); }

// The constant that reference `ref` of initializer `fdef` (concrete function `fname`) carries:
// an argument bound to a captured constant, or a Const node (through Identity nodes).
Tensor ConstantOf(const Context& c, const tfproto::FunctionDef& fdef, const std::string& fname, std::string ref,
                  const char* what) {
  for (int depth = 0; depth < 64; ++depth) {
    const std::string name = NodeOf(ref);
    const auto& sig = fdef.signature();
    for (int i = 0; i < sig.input_arg_size(); ++i) {
      if (sig.input_arg(i).name() != name) continue;
      const auto& functions = c.bundle.meta_graph->object_graph_def().concrete_functions();
      auto it = functions.find(fname);
      const int bound = it == functions.end() ? 0 : it->second.bound_inputs_size();
      const int k = i - (sig.input_arg_size() - bound);
      if (k < 0)
        throw UnsupportedError(
            fmt::format("{}: its {} are an argument of '{}' that is not bound to a constant", c.Where(), what, fname));
      return *CapturedConstant(c.bundle, it->second.bound_inputs(k), fname);
    }
    const tfproto::NodeDef* node = nullptr;
    for (const tfproto::NodeDef& n : fdef.node_def())
      if (n.name() == name) node = &n;
    if (node && node->op() == "Const") {
      auto v = node->attr().find("value");
      if (v == node->attr().end() || !v->second.has_tensor())
        throw Error(ErrorCode::kDataLoss, fmt::format("{}: Const '{}' has no tensor value", c.Where(), name));
      return DecodeTensorProto(v->second.tensor(), fmt::format("{}: constant '{}'", c.Where(), name));
    }
    if (!node || node->op() != "Identity" || node->input_size() < 1)
      throw UnsupportedError(fmt::format("{}: its {} ('{}' in '{}') are computed at load time, not constants",
                                         c.Where(), what, ref, fname));
    ref = node->input(0);
  }
  throw UnsupportedError(fmt::format("{}: its {} pass through more than 64 Identity nodes", c.Where(), what));
}

bool SameElement(const Tensor& t, int64_t a, int64_t b) {
  if (t.dtype() == DType::kString) return t.strings()[static_cast<size_t>(a)] == t.strings()[static_cast<size_t>(b)];
  const size_t w = DTypeSize(t.dtype());
  const char* p = static_cast<const char*>(t.raw_data());
  return std::memcmp(p + static_cast<size_t>(a) * w, p + static_cast<size_t>(b) * w, w) == 0;
}

std::string ElementText(const Tensor& t, int64_t i) {
  if (t.dtype() == DType::kString) return fmt::format("'{}'", t.strings()[static_cast<size_t>(i)]);
  if (IsFloating(t.dtype())) return fmt::format("{}", t.DoubleAt(i));
  if (t.dtype() == DType::kBool) return t.IntAt(i) ? "true" : "false";
  return fmt::format("{}", t.IntAt(i));
}

// Rows `order` of the flat tensor t, as a vector.
Tensor Rows(const Tensor& t, const std::vector<int64_t>& order) {
  Tensor out(t.dtype(), {static_cast<int64_t>(order.size())});
  if (t.dtype() == DType::kString) {
    for (size_t i = 0; i < order.size(); ++i) out.strings()[i] = t.strings()[static_cast<size_t>(order[i])];
    return out;
  }
  const size_t w = DTypeSize(t.dtype());
  for (size_t i = 0; i < order.size(); ++i)
    std::memcpy(static_cast<char*>(out.raw_data()) + i * w,
                static_cast<const char*>(t.raw_data()) + static_cast<size_t>(order[i]) * w, w);
  return out;
}

// TensorFlow's HashTable import: a key given twice must have one value (else the table fails to
// initialise); the table holds each key once.
LookupTable BuildTable(const Context& c, LookupTable table) {
  const Tensor& keys = table.keys;
  const Tensor& values = table.values;
  if (keys.shape() != values.shape())
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{} '{}': keys of shape {} and values of shape {} (expected "
                            "one value per key)",
                            c.Where(), table.name, ShapeToString(keys.shape()), ShapeToString(values.shape())));
  const int64_t n = keys.num_elements();
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (keys.dtype() == DType::kString) {
    const auto& s = keys.strings();
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return s[static_cast<size_t>(a)] < s[static_cast<size_t>(b)]; });
  } else {
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return keys.IntAt(a) < keys.IntAt(b); });
  }
  std::vector<int64_t> unique;
  for (int64_t row : order) {
    if (!unique.empty() && SameElement(keys, unique.back(), row)) {
      if (!SameElement(values, unique.back(), row))
        throw Error(ErrorCode::kInvalidArgument,
                    fmt::format("{} '{}': key {} has the values {} and {} (TensorFlow refuses to initialise such a "
                                "table)",
                                c.Where(), table.name, ElementText(keys, row), ElementText(values, unique.back()),
                                ElementText(values, row)));
      continue;
    }
    unique.push_back(row);
  }
  table.keys = Rows(keys, unique);
  table.values = Rows(values, unique);
  return table;
}

bool KeyDTypeOk(DType t) { return t == DType::kInt32 || t == DType::kInt64 || t == DType::kString; }
bool ValueDTypeOk(DType t) {
  return t == DType::kString || (t != DType::kResource && t != DType::kVariant && DTypeSize(t) > 0);
}

LookupTable ReadTable(const Context& c) {
  const std::string creator = ChildFunction(c, "_create_resource");
  if (creator.empty()) throw UnsupportedError(fmt::format("{}: a resource without a creator function", c.Where()));
  const tfproto::FunctionDef& create = FindFunction(c, creator);
  const tfproto::NodeDef* made = nullptr;
  std::vector<std::string> ops;
  for (const tfproto::NodeDef& n : create.node_def()) {
    if (kMutableTableOps.count(n.op()))
      throw UnsupportedError(
          fmt::format("{}: a mutable lookup table ({} '{}'), whose contents change at run time; only "
                      "static tables (tf.lookup.StaticHashTable) are supported",
                      c.Where(), n.op(), n.name()));
    if (kStaticTableOps.count(n.op())) made = &n;
    ops.push_back(n.op());
  }
  if (!made)
    throw UnsupportedError(
        fmt::format("{}: a resource that is not a lookup table (its creator runs {}); only static "
                    "lookup tables are supported",
                    c.Where(), fmt::join(ops, ", ")));
  LookupTable table;
  table.name = made->name();
  table.key_dtype = AttrDType(*made, "key_dtype");
  table.value_dtype = AttrDType(*made, "value_dtype");
  if (!KeyDTypeOk(table.key_dtype) || !ValueDTypeOk(table.value_dtype))
    throw UnsupportedError(
        fmt::format("{} '{}': a table from {} to {}; Kiln supports int32, int64 and string keys and "
                    "values of any fixed-size or string dtype",
                    c.Where(), table.name, DTypeName(table.key_dtype), DTypeName(table.value_dtype)));

  const std::string initializer = ChildFunction(c, "_initialize");
  if (initializer.empty())
    throw UnsupportedError(fmt::format("{} '{}': the table has no initializer function", c.Where(), table.name));
  const tfproto::FunctionDef& init = FindFunction(c, initializer);
  const tfproto::NodeDef* import = nullptr;
  for (const tfproto::NodeDef& n : init.node_def()) {
    if (kFileInitOps.count(n.op()))
      throw UnsupportedError(
          fmt::format("{} '{}': the table is filled from a file or dataset ({} '{}'); only tables "
                      "filled from constant keys and values are supported",
                      c.Where(), table.name, n.op(), n.name()));
    if (!kImportOps.count(n.op())) continue;
    if (import)
      throw UnsupportedError(fmt::format("{} '{}': its initializer fills it twice ('{}' and '{}')", c.Where(),
                                         table.name, import->name(), n.name()));
    import = &n;
  }
  if (!import || import->input_size() < 3)
    throw UnsupportedError(
        fmt::format("{} '{}': its initializer '{}' has no LookupTableImportV2 / InitializeTableV2 "
                    "of keys and values",
                    c.Where(), table.name, initializer));
  table.keys = ConstantOf(c, init, initializer, import->input(1), "keys");
  table.values = ConstantOf(c, init, initializer, import->input(2), "values");
  if (table.keys.dtype() != table.key_dtype || table.values.dtype() != table.value_dtype)
    throw Error(ErrorCode::kDataLoss,
                fmt::format("{} '{}': a table from {} to {} is filled with {} keys and {} values", c.Where(),
                            table.name, DTypeName(table.key_dtype), DTypeName(table.value_dtype),
                            DTypeName(table.keys.dtype()), DTypeName(table.values.dtype())));
  return BuildTable(c, std::move(table));
}

}  // namespace

CapturedValue ResolveTableCapture(const SavedModelBundle& bundle, int id, const std::string& concrete_function_name) {
  const Context c{bundle, id, concrete_function_name};
  CapturedValue cv;
  cv.name = fmt::format("resource (object node {})", id);
  try {
    auto table = std::make_shared<LookupTable>(ReadTable(c));
    cv.kind = CapturedValue::Kind::kTable;
    cv.name = table->name;
    cv.table = std::move(table);
  } catch (const UnsupportedError& e) {
    cv.unsupported_reason = e.what();
  }
  return cv;
}

}  // namespace kiln::tf
