// LoadModel: a SavedModel whose signatures are imported into the IR on first use, optimized
// by the pass pipeline and run by the reference executor.
#include <mutex>

#include <fmt/format.h>

#include "backend/reference/kernel.h"
#include "frontend/onnx/graph_builder.h"
#include "frontend/onnx/onnx_model.h"
#include "frontend/tf/graph_builder.h"
#include "frontend/tf/saved_model.h"
#include "ir/passes/pass.h"
#include "kiln/model.h"
#include "convert/converted_model.h"
#include "convert/kiln_file.h"
#include "runtime/converted_model_loader.h"
#include "runtime/executor.h"
#include "runtime/pipeline.h"
#include "runtime/signature_io.h"

namespace kiln {

std::string TensorSpec::ShapeString() const {
  if (!rank_known) return "<unknown rank>";
  std::vector<std::string> parts;
  for (int64_t d : dims) parts.push_back(d < 0 ? "?" : std::to_string(d));
  return fmt::format("[{}]", fmt::join(parts, ","));
}

namespace runtime {
namespace {

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
    std::vector<Tensor> ordered = BindInputs(key_, inputs_, inputs);
    std::vector<Tensor> outs = executor_->Run(std::move(ordered));
    std::map<std::string, Tensor> named;
    for (size_t i = 0; i < outs.size(); ++i) named[outputs_[i].name] = std::move(outs[i]);
    return named;
  }

 private:
  std::string key_;
  std::shared_ptr<ir::Graph> graph_;
  std::vector<TensorSpec> inputs_, outputs_;
  size_t num_nodes_ = 0;
  std::unique_ptr<ReferenceExecutor> executor_;
};

// An ONNX model: one signature, "serving_default", imported at load time (ONNX has no
// signatures; its graph inputs and outputs keep their ONNX names and order).
class OnnxModelFile final : public Model {
 public:
  OnnxModelFile(std::string path, const LoadOptions& options) : path_(std::move(path)) {
    ir::Graph graph = onnxfe::ImportOnnxFile(path_);
    OptimizeImportedGraph(graph, options.verify_ir);
    signature_ = std::make_unique<SavedModelSignature>(kOnnxSignatureKey, std::move(graph));
  }
  const std::string& dir() const override { return path_; }
  std::vector<std::string> signature_keys() const override { return {kOnnxSignatureKey}; }
  const Signature& signature(const std::string& key) const override {
    if (key != kOnnxSignatureKey)
      throw Error(ErrorCode::kNotFound, fmt::format("ONNX model '{}' has no signature '{}'; its only signature is '{}'",
                                                    path_, key, kOnnxSignatureKey));
    return *signature_;
  }

 private:
  static constexpr char kOnnxSignatureKey[] = "serving_default";
  std::string path_;
  std::unique_ptr<Signature> signature_;
};

class SavedModel final : public Model {
 public:
  SavedModel(std::string dir, const LoadOptions& options)
      : options_(options), bundle_(tf::LoadSavedModel(dir, options.tags)), variables_(dir) {}

  const std::string& dir() const override { return bundle_.dir; }
  std::vector<std::string> signature_keys() const override { return tf::SignatureKeys(bundle_); }

  const Signature& signature(const std::string& key) const override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = signatures_.find(key);
    if (it != signatures_.end()) return *it->second;
    tf::FindSignature(bundle_, key);  // kNotFound listing the keys
    tf::GraphBuilder builder(bundle_, variables_);
    ir::Graph graph = builder.ImportSignature(key);
    OptimizeImportedGraph(graph, options_.verify_ir);
    auto sig = std::make_unique<SavedModelSignature>(key, std::move(graph));
    const Signature& ref = *sig;
    signatures_[key] = std::move(sig);
    return ref;
  }

 private:
  LoadOptions options_;
  tf::SavedModelBundle bundle_;
  mutable tf::VariableReader variables_;
  mutable std::mutex mutex_;
  mutable std::map<std::string, std::unique_ptr<Signature>> signatures_;
};

}  // namespace
}  // namespace runtime

std::unique_ptr<Model> LoadModel(const std::string& dir, const LoadOptions& options) {
  if (onnxfe::IsOnnxFile(dir)) return std::make_unique<runtime::OnnxModelFile>(dir, options);
  if (convert::IsConvertedModel(dir)) return runtime::LoadConvertedModel(dir, options);
  if (convert::IsKilnFile(dir)) return runtime::LoadConvertedModel(dir, options);  // by magic bytes, or the .kiln extension
  return std::make_unique<runtime::SavedModel>(dir, options);
}

}  // namespace kiln
