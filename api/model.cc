// LoadModel: a source model (through its frontend) whose signatures are imported into the IR on
// first use, optimized by the pass pipeline and run by the reference executor; or a converted
// model (converted SavedModel, .kiln file) with its engines.
#include <mutex>

#include <fmt/format.h>

#include "api/converted_model_loader.h"
#include "api/import_pipeline.h"
#include "api/model_format.h"
#include "api/signature_io.h"
#include "frontend/frontend.h"
#include "kiln/model.h"
#include "runtime/executor.h"

namespace kiln {

std::string TensorSpec::ShapeString() const {
  if (!rank_known) return "<unknown rank>";
  std::vector<std::string> parts;
  for (int64_t d : dims) parts.push_back(d < 0 ? "?" : std::to_string(d));
  return fmt::format("[{}]", fmt::join(parts, ","));
}

namespace api {
namespace {

using runtime::ReferenceExecutor;

class SavedModelSignature final : public Signature {
 public:
  SavedModelSignature(std::string key, ir::Graph graph)
      : key_(std::move(key)), graph_(std::make_shared<ir::Graph>(std::move(graph))) {
    inputs_ = SpecsOf(*graph_, graph_->inputs(), graph_->input_names());
    outputs_ = SpecsOf(*graph_, graph_->outputs(), graph_->output_names());
    num_nodes_ = graph_->NumLiveNodes();
    executor_ = std::make_unique<ReferenceExecutor>(graph_);
  }
  const std::string& key() const override { return key_; }
  const std::vector<TensorSpec>& inputs() const override { return inputs_; }
  const std::vector<TensorSpec>& outputs() const override { return outputs_; }
  size_t num_nodes() const override { return num_nodes_; }

  std::map<std::string, Tensor> Run(const std::map<std::string, Tensor>& inputs) const override {
    return NameOutputs(outputs_, executor_->Run(BindInputs(key_, inputs_, inputs)));
  }

 private:
  std::string key_;
  std::shared_ptr<ir::Graph> graph_;
  std::vector<TensorSpec> inputs_, outputs_;
  size_t num_nodes_ = 0;
  std::unique_ptr<ReferenceExecutor> executor_;
};

// A source model (SavedModel, ONNX): signatures imported through its frontend on first use.
class SourceModel final : public Model {
 public:
  SourceModel(std::unique_ptr<frontend::ModelSource> source, const LoadOptions& options)
      : options_(options), source_(std::move(source)) {}

  const std::string& dir() const override { return source_->path(); }
  std::vector<std::string> signature_keys() const override { return source_->signature_keys(); }

  const Signature& signature(const std::string& key) const override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = signatures_.find(key);
    if (it != signatures_.end()) return *it->second;
    frontend::ImportedSignature imported = source_->Import(key);  // kNotFound listing the keys
    OptimizeImportedGraph(imported.graph, options_.verify_ir);
    auto sig = std::make_unique<SavedModelSignature>(key, std::move(imported.graph));
    const Signature& ref = *sig;
    signatures_[key] = std::move(sig);
    return ref;
  }

 private:
  LoadOptions options_;
  std::unique_ptr<frontend::ModelSource> source_;
  mutable std::mutex mutex_;
  mutable std::map<std::string, std::unique_ptr<Signature>> signatures_;
};

}  // namespace
}  // namespace api

std::unique_ptr<Model> LoadModel(const std::string& dir, const LoadOptions& options) {
  const api::DetectedModel detected = api::DetectModel(dir);
  if (detected.format != api::ModelFormat::kSource) return api::LoadConvertedModel(dir, options);
  frontend::OpenOptions open;
  open.tags = options.tags;
  return std::make_unique<api::SourceModel>(detected.frontend->Open(dir, open), options);
}

}  // namespace kiln
