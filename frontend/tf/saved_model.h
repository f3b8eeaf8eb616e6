// Reading a SavedModel directory: saved_model.pb, the meta graph for a tag set, signatures,
// and the values captured by concrete functions (variables from the TensorBundle, constants).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/proto/tf.pb.h"
#include "frontend/tf/bundle_reader.h"
#include "frontend/tf/lookup_table.h"
#include "kiln/tensor.h"

namespace kiln::tf {

inline constexpr char kDefaultTag[] = "serve";
inline constexpr char kDefaultSignatureKey[] = "serving_default";
inline constexpr char kInitOpSignatureKey[] = "__saved_model_init_op";

struct SavedModelBundle {
  std::string dir;
  std::shared_ptr<tfproto::SavedModel> proto;
  const tfproto::MetaGraphDef* meta_graph = nullptr;  // the one selected by tags
  std::vector<std::string> tags;
};

// Reads DIR/saved_model.pb (or saved_model.pbtxt) and selects the meta graph whose tag set
// equals `tags` (order-insensitive). Errors: kNotFound for a missing directory/file or no
// matching tag set (the message lists the tag sets that exist), kDataLoss for an unparsable file.
SavedModelBundle LoadSavedModel(const std::string& dir, const std::vector<std::string>& tags);

// Signature keys of the selected meta graph, sorted, without the init-op signature.
std::vector<std::string> SignatureKeys(const SavedModelBundle& bundle);
// kNotFound listing the available keys when `key` does not exist.
const tfproto::SignatureDef& FindSignature(const SavedModelBundle& bundle, const std::string& key);

// One value captured by a concrete function (its bound inputs, in order).
struct CapturedValue {
  enum class Kind { kVariable, kConstant, kTable, kUnsupported };
  Kind kind = Kind::kUnsupported;
  std::string name;                          // variable name / checkpoint key / constant op, for messages
  std::shared_ptr<const Tensor> value;       // the variable's or constant's value
  std::shared_ptr<const LookupTable> table;  // for kTable: a static table's contents
  std::string unsupported_reason;            // for kUnsupported (assets, mutable tables, other resources)
};

// Values of the bound inputs of `concrete_function_name`, in order; empty if the function has
// no entry in the object graph. Variables are read (lazily, once each) from `variables`.
// A variable whose checkpoint entry is missing is kNotFound naming the variable.
std::vector<CapturedValue> ResolveCaptures(const SavedModelBundle& bundle, VariableReader& variables,
                                           const std::string& concrete_function_name);

// The value of the Const node behind object-graph node `id` (a SavedConstant) that
// `concrete_function_name` captures.
std::shared_ptr<const Tensor> CapturedConstant(const SavedModelBundle& bundle, int id,
                                               const std::string& concrete_function_name);

// A captured resource (object-graph node `id`, kind resource): a static lookup table whose
// creator makes a HashTableV2 and whose initializer imports constant keys and values becomes
// kTable with its contents; anything else (mutable tables, tables filled from files, queues) is
// kUnsupported with the reason. Implemented in saved_table.cc.
CapturedValue ResolveTableCapture(const SavedModelBundle& bundle, int id, const std::string& concrete_function_name);

}  // namespace kiln::tf
