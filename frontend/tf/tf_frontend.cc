// The SavedModel frontend: a directory with saved_model.pb (or .pbtxt); signatures are imported
// on request, variables read from the TensorBundle as the signatures need them.
#include <filesystem>
#include <mutex>

#include "common/model_budget.h"
#include "common/proto/tf_source_graph.h"
#include "frontend/frontend.h"
#include "frontend/tf/graph_builder.h"
#include "frontend/tf/saved_model.h"

namespace kiln::tf {
namespace {

namespace fs = std::filesystem;

class SavedModelSource final : public frontend::ModelSource {
 public:
  SavedModelSource(const std::string& dir, const frontend::OpenOptions& options)
      : bundle_(LoadSavedModel(dir, options.tags)), variables_(dir) {}
  const std::string& path() const override { return bundle_.dir; }
  std::vector<std::string> signature_keys() const override { return SignatureKeys(bundle_); }

  frontend::ImportedSignature Import(const std::string& key) const override {
    const tfproto::SignatureDef& def = FindSignature(bundle_, key);  // kNotFound listing the keys
    std::lock_guard<std::mutex> lock(mutex_);  // the variable reader caches what it read
    ModelReadScope budget(bundle_.dir);
    GraphBuilder builder(bundle_, variables_);
    frontend::ImportedSignature sig;
    sig.key = key;
    sig.graph = builder.ImportSignature(key);
    if (!def.method_name().empty()) sig.method_name = def.method_name();
    sig.tf_source = builder.TakeSourceGraph();
    return sig;
  }

 private:
  SavedModelBundle bundle_;
  mutable std::mutex mutex_;
  mutable VariableReader variables_;
};

class SavedModelFrontend final : public frontend::Frontend {
 public:
  std::string name() const override { return "tf"; }
  std::string format() const override { return "SavedModel"; }
  frontend::Detection Detects(const std::string& path) const override {
    std::error_code ec;
    if (!fs::is_directory(path, ec)) return fs::exists(path, ec) ? frontend::Detection::kNo : frontend::Detection::kMaybe;
    if (fs::exists(fs::path(path) / "saved_model.pb", ec) || fs::exists(fs::path(path) / "saved_model.pbtxt", ec))
      return frontend::Detection::kYes;
    return frontend::Detection::kMaybe;  // LoadSavedModel names the missing file
  }
  std::unique_ptr<frontend::ModelSource> Open(const std::string& path, const frontend::OpenOptions& options) const override {
    return std::make_unique<SavedModelSource>(path, options);
  }
};

const bool registered = [] {
  frontend::RegisterFrontend(std::make_unique<SavedModelFrontend>());
  return true;
}();

}  // namespace
}  // namespace kiln::tf
