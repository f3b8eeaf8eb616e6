// Writing and reading a converted SavedModel.
//
// Layout of DIR (kiln-converted-2):
//   saved_model.pb                      a SavedModel (schema version 1) with one MetaGraphDef that
//                                       TensorFlow loads with Kiln's op library: the original tags,
//                                       meta_graph_version "kiln-converted-2" (the marker), a graph
//                                       running the signature: the source's TF graph with one
//                                       KilnEngineOp per engine, or one KilnSignatureOp
//                                       (convert/tf_wrapper_graph.h), the signature, and the asset
//                                       kiln/conversion.json through which the op finds DIR.
//   assets/kiln/saved_model.pb.crc32c   its checksum
//   assets/kiln/graph.pb                Kiln's converted graph: a MetaGraphDef with the original
//                                       tags; meta_info_def.meta_graph_version "kiln-converted-1";
//                                       graph_def = convert::EncodeIrGraph(graph); the signature under
//                                       its key, each TensorInfo `name` rewritten to the encoded
//                                       graph's tensor: inputs "<placeholder>:0", outputs the
//                                       tensor the graph output reads ("<node>:<i>"), matched to
//                                       graph inputs / outputs by name (= signature key).
//   assets/kiln/graph.pb.crc32c         its checksum
//   assets/kiln/conversion.json         ConvertedModel::conversion_json, verbatim
//   assets/kiln/engines/<name>_<i>.kiln-engine
//                                       engine_files[name][i], verbatim. <name> is the engine
//                                       node name with every byte outside [A-Za-z0-9_.-] written
//                                       as %XX (so names with '/' stay one file, and the name is
//                                       recovered exactly on read).
// No variables/ directory: weights are frozen into the graph. The older layout (kiln-converted-1,
// models converted before 2026-12-05) had graph.pb's MetaGraphDef in saved_model.pb itself; it is
// still read.
// Every file is written to a temporary name in its directory and renamed into place, and
// saved_model.pb is written last: a failed save never leaves a half-written saved_model.pb. Engine
// files of an earlier save that this one does not write are removed.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/proto/tf.pb.h"
#include "common/proto/tf_source_graph.h"
#include "ir/graph.h"

namespace kiln::convert {

inline constexpr char kConvertedMetaGraphVersion[] = "kiln-converted-1";

struct ConvertedModel {
  std::vector<std::string> tags;    // the original meta graph's tags
  std::string signature_key;        // empty: no signature is written
  tfproto::SignatureDef signature;  // the original signature; tensor names are rewritten on write
                                    // (ReadConvertedModel returns the rewritten names)
  ir::Graph graph;                  // the converted graph (Engine nodes hold their native segments)
  std::string conversion_json;      // stored as assets/kiln/conversion.json
  std::map<std::string, std::vector<std::string>> engine_files;  // engine node name -> engine file bytes
  // Written: the TF graph the signature was imported from (nullptr: none), from which
  // saved_model.pb gets the per-engine layout (convert/tf_wrapper_graph.h). Not read back.
  std::shared_ptr<const TfSourceGraph> tf_source;
  // Read: how saved_model.pb runs the signature in TensorFlow (convert::TfLayoutLine; "" when unrecorded).
  std::string tf_layout;
};

// kInvalidArgument when a signature input or output names no graph input / output, or the graph
// cannot be encoded; errors of the file system name the path. Returns how TensorFlow runs the
// written saved_model.pb (convert::TfLayoutLine).
std::string WriteConvertedModel(const std::string& dir, const ConvertedModel& model);

// True when DIR/saved_model.pb parses and its (single) meta graph carries the
// "kiln-converted-2" (or the older "kiln-converted-1") marker. Never throws.
bool IsConvertedModel(const std::string& dir);

// kNotFound naming the path for a missing saved_model.pb or conversion.json; kDataLoss naming
// the path for an unparsable file or graph; kInvalidArgument when DIR is a SavedModel that Kiln
// did not convert. Engine files are read but not parsed or validated here.
ConvertedModel ReadConvertedModel(const std::string& dir);

}  // namespace kiln::convert
