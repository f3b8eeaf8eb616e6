// The ONNX frontend: an .onnx file. ONNX has no signatures: the one graph is the signature
// "serving_default", with the ONNX graph's input and output names and order.
#include <fmt/format.h>

#include "common/model_budget.h"
#include "frontend/frontend.h"
#include "frontend/onnx/graph_builder.h"
#include "frontend/onnx/onnx_model.h"

namespace kiln::onnxfe {
namespace {

constexpr char kSignatureKey[] = "serving_default";

class OnnxSource final : public frontend::ModelSource {
 public:
  explicit OnnxSource(std::string path) : path_(std::move(path)), model_(LoadOnnxModel(path_)) {}
  const std::string& path() const override { return path_; }
  std::vector<std::string> signature_keys() const override { return {kSignatureKey}; }
  frontend::ImportedSignature Import(const std::string& key) const override {
    if (key != kSignatureKey)
      throw Error(ErrorCode::kNotFound, fmt::format("ONNX model '{}' has no signature '{}'; its only signature is '{}'",
                                                    path_, key, kSignatureKey));
    ModelReadScope budget(path_);
    GraphBuilder builder(model_);
    return {key, builder.Import()};
  }

 private:
  std::string path_;
  OnnxModel model_;
};

class OnnxFrontend final : public frontend::Frontend {
 public:
  std::string name() const override { return "onnx"; }
  std::string format() const override { return "ONNX"; }
  frontend::Detection Detects(const std::string& path) const override {
    return IsOnnxFile(path) ? frontend::Detection::kYes : frontend::Detection::kNo;
  }
  std::unique_ptr<frontend::ModelSource> Open(const std::string& path, const frontend::OpenOptions&) const override {
    return std::make_unique<OnnxSource>(path);
  }
};

const bool registered = [] {
  frontend::RegisterFrontend(std::make_unique<OnnxFrontend>());
  return true;
}();

}  // namespace
}  // namespace kiln::onnxfe
