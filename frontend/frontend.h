// The frontend interface: one implementation per model format (SavedModel, ONNX), each
// registering itself. Everything above the frontends (LoadModel, the converter, the CLI) opens
// models through DetectFrontend / Open and never names a format's reader.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln {
struct TfSourceGraph;  // common/proto/tf_source_graph.h
}

namespace kiln::frontend {

// One signature of a model as an IR graph: graph inputs and outputs carry the signature's
// input and output names, in the signature's order.
struct ImportedSignature {
  std::string key;
  ir::Graph graph;
  std::string method_name = "tensorflow/serving/predict";  // written into converted SavedModels
  // TensorFlow sources: the signature's TF graph and which TF tensor each IR value is, for the
  // per-engine layout of converted SavedModels. nullptr for other formats.
  std::shared_ptr<const TfSourceGraph> tf_source;
};

struct OpenOptions {
  std::vector<std::string> tags{"serve"};  // SavedModel meta-graph tags; ignored by formats without them
};

// An opened model. Import may be called for several keys, also concurrently.
class ModelSource {
 public:
  virtual ~ModelSource() = default;
  virtual const std::string& path() const = 0;
  virtual std::vector<std::string> signature_keys() const = 0;
  // kNotFound listing the keys when `key` is not one of them.
  virtual ImportedSignature Import(const std::string& key) const = 0;
};

// How sure a frontend is that a path is in its format.
enum class Detection {
  kNo,     // certainly not
  kMaybe,  // not recognisably anything; this frontend's reader can say precisely what is missing
  kYes,    // recognised (file name, magic bytes or marker file)
};

class Frontend {
 public:
  virtual ~Frontend() = default;
  virtual std::string name() const = 0;    // "tf", "onnx"
  virtual std::string format() const = 0;  // "SavedModel", "ONNX"
  // Never throws.
  virtual Detection Detects(const std::string& path) const = 0;
  virtual std::unique_ptr<ModelSource> Open(const std::string& path, const OpenOptions& options) const = 0;
};

// Called once per frontend from a static initialiser in the frontend's library.
void RegisterFrontend(std::unique_ptr<const Frontend> frontend);

// The registered frontends, by name.
std::vector<const Frontend*> Frontends();

// The frontend that recognises `path` (kYes), else one that may read it (kMaybe); nullptr when
// none may.
const Frontend* DetectFrontend(const std::string& path);

}  // namespace kiln::frontend
