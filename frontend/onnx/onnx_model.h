// Reading an ONNX model file (the ModelProto schema shipped by Debian's libonnx-dev).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "kiln/dtype.h"
#include "kiln/tensor.h"

namespace onnx {
class ModelProto;
class TensorProto;
}  // namespace onnx

namespace kiln::onnxfe {

// The oldest default-domain opset Kiln imports; older models are refused with a hint to upgrade them.
inline constexpr int64_t kMinOpset = 13;

struct OnnxModel {
  std::string path;      // the .onnx file
  std::string base_dir;  // directory external data locations are relative to
  std::shared_ptr<const onnx::ModelProto> proto;
  int64_t opset = 0;                      // version of the default ("" / "ai.onnx") domain
  std::map<std::string, int64_t> opsets;  // every imported domain -> version
};

// True when `path` is a regular file that parses as an ONNX ModelProto header (checked by
// name: a ".onnx" suffix; the parse happens in LoadOnnxModel). Never throws.
bool IsOnnxFile(const std::string& path);

// Parses the model. kNotFound naming the path when it does not exist; kDataLoss when it does
// not parse as an ONNX model; kUnimplemented for opsets older than kMinOpset (with a hint to
// upgrade it with onnx.version_converter) or for unknown domains used by nodes.
OnnxModel LoadOnnxModel(const std::string& path);

// ONNX TensorProto.DataType -> Kiln dtype (kInvalid for types Kiln does not hold).
DType DTypeFromOnnx(int32_t onnx_type);
// The ONNX name of a TensorProto.DataType value ("FLOAT", "INT64", ...), for messages.
std::string OnnxTypeName(int32_t onnx_type);

// Decodes a TensorProto (raw_data or the typed fields; external data read from `base_dir`,
// refusing locations outside it). Errors name `what` (an initializer or attribute).
Tensor DecodeOnnxTensor(const onnx::TensorProto& proto, const std::string& base_dir, const std::string& what);

}  // namespace kiln::onnxfe
