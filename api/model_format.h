// The one place that decides what a model path is: a converted SavedModel, a .kiln file, or a
// source model one of the registered frontends reads (SavedModel, ONNX).
#pragma once

#include <string>

#include "frontend/frontend.h"

namespace kiln::api {

enum class ModelFormat { kSource, kConvertedSavedModel, kKilnFile };

struct DetectedModel {
  ModelFormat format = ModelFormat::kSource;
  const frontend::Frontend* frontend = nullptr;  // for kSource
  std::string Describe() const;                  // "SavedModel", "ONNX", "converted SavedModel", ".kiln file"
};

// kNotFound when the path does not exist; kInvalidArgument when no frontend reads it.
DetectedModel DetectModel(const std::string& path);

// Opens a source model with its frontend (DetectModel's kSource).
std::unique_ptr<frontend::ModelSource> OpenSource(const std::string& path, const std::vector<std::string>& tags);

}  // namespace kiln::api
