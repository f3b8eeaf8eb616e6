#include "api/model_format.h"

#include <filesystem>

#include <fmt/format.h>

#include "convert/converted_model.h"
#include "convert/kiln_file.h"

namespace kiln::api {

namespace fs = std::filesystem;

std::string DetectedModel::Describe() const {
  switch (format) {
    case ModelFormat::kConvertedSavedModel: return "converted SavedModel";
    case ModelFormat::kKilnFile: return ".kiln file";
    case ModelFormat::kSource: break;
  }
  return frontend ? frontend->format() : "unknown";
}

DetectedModel DetectModel(const std::string& path) {
  std::vector<std::string> formats;
  for (const frontend::Frontend* f : frontend::Frontends()) formats.push_back(f->format());
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw Error(ErrorCode::kNotFound, fmt::format("model '{}' does not exist (Kiln reads {} models, converted SavedModels and .kiln files)",
                                                  path, fmt::join(formats, ", ")));
  // A model is a directory or a regular file (symlinks followed): reading a FIFO or a device
  // would block or never end.
  if (!fs::is_directory(path, ec) && !fs::is_regular_file(path, ec))
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("model '{}' is neither a regular file nor a directory (a pipe, socket or device?)", path));
  if (convert::IsConvertedModel(path)) return {ModelFormat::kConvertedSavedModel};
  if (convert::IsKilnFile(path)) return {ModelFormat::kKilnFile};  // by magic bytes, or the .kiln extension
  if (const frontend::Frontend* f = frontend::DetectFrontend(path)) return {ModelFormat::kSource, f};
  throw Error(ErrorCode::kInvalidArgument, fmt::format("'{}' is not a model Kiln reads (Kiln reads {} models, converted SavedModels and "
                                                       ".kiln files)",
                                                       path, fmt::join(formats, ", ")));
}

std::unique_ptr<frontend::ModelSource> OpenSource(const std::string& path, const std::vector<std::string>& tags) {
  const DetectedModel detected = DetectModel(path);
  if (detected.format != ModelFormat::kSource)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("'{}' is a {}, not a model to convert; convert the original model", path, detected.Describe()));
  frontend::OpenOptions options;
  if (!tags.empty()) options.tags = tags;
  return detected.frontend->Open(path, options);
}

}  // namespace kiln::api
