// TF-TRT's layout of a converted SavedModel: the signature's TensorFlow graph as Kiln imported it
// (common/proto/tf_source_graph.h) with the nodes each engine covers replaced by one
// `KilnEngineOp` node, so that TensorFlow runs the native parts itself and Kiln runs only the
// engines. The engine node's inputs are the TF tensors its segment reads, and the TF consumers of
// its segment's results read its outputs. The nodes an engine covers are the ones nothing but
// the engine needs any more once its consumers are rewired: a TF node whose IR nodes lie partly
// outside the engine would leave an engine boundary value that is no TF tensor, which is refused.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/proto/tf.pb.h"
#include "common/proto/tf_source_graph.h"
#include "ir/graph.h"

namespace kiln::convert {

inline constexpr char kTfEngineOp[] = "KilnEngineOp";

// A value's IR shape as TensorFlow's (unknown dims -1, unknown rank as such).
tfproto::TensorShapeProto TfShapeProto(const ir::Value& v);

struct TfSegmentedGraph {
  tfproto::GraphDef graph;           // without the model's registration (tf_wrapper_graph.cc adds it)
  std::vector<std::string> inputs;   // per graph input: its Placeholder's tensor
  std::vector<std::string> outputs;  // per graph output: the tensor to return
  size_t engines = 0;                // KilnEngineOp nodes
};

// The per-engine graph of `converted` (the converted IR graph of the signature `source` was
// imported for), or nullopt with `reason` saying why it cannot be made (the caller then runs the
// whole signature in one KilnSignatureOp).
std::optional<TfSegmentedGraph> SegmentTfGraph(const TfSourceGraph& source, const ir::Graph& converted,
                                               const std::string& model_id, const std::string& signature_key,
                                               std::string& reason);

}  // namespace kiln::convert
