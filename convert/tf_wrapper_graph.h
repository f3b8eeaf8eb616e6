// The MetaGraphDef a converted SavedModel's saved_model.pb holds, which TensorFlow can load (with
// Kiln's op library, python/tf_op): one `KilnSignatureOp` node runs the converted signature
// (engines and native segments, through Kiln) on Placeholders for the signature's inputs, and
// Identity nodes name its outputs. The op finds the converted model through the SavedModel's
// main op, `KilnRegisterModel`, which TensorFlow's loaders (Python's and TF Serving's) run once at
// load with the absolute path of the asset kiln/conversion.json (a string Const listed in
// asset_file_def): it records DIR under `model_id`, which KilnSignatureOp looks up, so the model
// keeps working wherever it is copied. Kiln itself reads the converted graph from
// assets/kiln/graph.pb (convert/converted_model.h).
#pragma once

#include "common/proto/tf.pb.h"
#include "ir/graph.h"

namespace kiln::convert {

inline constexpr char kTfSignatureOp[] = "KilnSignatureOp";
inline constexpr char kTfRegisterModelOp[] = "KilnRegisterModel";
// The marker of saved_model.pb's meta graph in this layout.
inline constexpr char kTfLoadableMetaGraphVersion[] = "kiln-converted-2";

// `tags`, `signature_key` and `signature` (TensorInfo dtypes and shapes; names are replaced) of
// the converted model whose graph is `graph`; `model_id` identifies its content (models with the
// same id are the same model). kInvalidArgument when a graph input or output has no dtype
// TensorFlow can carry.
tfproto::MetaGraphDef MakeTfLoadableMetaGraph(const std::vector<std::string>& tags, const std::string& signature_key,
                                              const tfproto::SignatureDef& signature, const ir::Graph& graph,
                                              const std::string& model_id);

}  // namespace kiln::convert
