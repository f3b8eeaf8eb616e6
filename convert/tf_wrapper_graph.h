// The MetaGraphDef a converted SavedModel's saved_model.pb holds, which TensorFlow can load (with
// Kiln's op library, python/tf_op). For a TensorFlow source it is TF-TRT's layout when that can be
// made (convert/tf_segment_graph.h): the signature's own TF graph, each engine one `KilnEngineOp`
// node, the native parts TensorFlow ops. Otherwise (ONNX sources, or a signature the per-engine
// layout cannot express, for the reason the collection `kiln_tf_layout` records) one
// `KilnSignatureOp` node runs the converted signature (engines and native segments, through Kiln)
// on Placeholders for the signature's inputs. Identity nodes name the outputs in both. The ops find
// the converted model through the SavedModel's main op, `KilnRegisterModel`, which TensorFlow's
// loaders (Python's and TF Serving's) run once at load with the absolute path of the asset
// kiln/conversion.json (a string Const listed in asset_file_def): it records DIR under `model_id`,
// which KilnEngineOp and KilnSignatureOp look up, so the model keeps working wherever it is copied. Kiln itself reads the converted graph from
// assets/kiln/graph.pb (convert/converted_model.h).
#pragma once

#include "common/proto/tf.pb.h"
#include "common/proto/tf_source_graph.h"
#include "ir/graph.h"

namespace kiln::convert {

inline constexpr char kTfSignatureOp[] = "KilnSignatureOp";
inline constexpr char kTfRegisterModelOp[] = "KilnRegisterModel";
// The marker of saved_model.pb's meta graph in this layout.
inline constexpr char kTfLoadableMetaGraphVersion[] = "kiln-converted-2";
// The collection of saved_model.pb's meta graph whose one bytes value says how TensorFlow runs
// the signature (TfLayoutLine).
inline constexpr char kTfLayoutCollection[] = "kiln_tf_layout";

// `tags`, `signature_key` and `signature` (TensorInfo dtypes and shapes; names are replaced) of
// the converted model whose graph is `graph`; `model_id` identifies its content (models with the
// same id are the same model); `source` the TF graph the signature was imported from (nullptr for
// none). kInvalidArgument when a graph input or output has no dtype TensorFlow can carry.
tfproto::MetaGraphDef MakeTfLoadableMetaGraph(const std::vector<std::string>& tags, const std::string& signature_key,
                                              const tfproto::SignatureDef& signature, const ir::Graph& graph,
                                              const std::string& model_id, const TfSourceGraph* source = nullptr);

// The line saved_model.pb's meta graph records about its layout ("" for models written before it
// was recorded): "per-engine: N KilnEngineOp node(s) ..." or "whole signature (KilnSignatureOp): REASON".
std::string TfLayoutLine(const tfproto::MetaGraphDef& meta);

}  // namespace kiln::convert
