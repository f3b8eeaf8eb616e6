// A TensorFlow signature as Kiln imported it, kept beside the IR so that a converted SavedModel
// can hand TensorFlow its own graph back with each engine in place of the nodes it covers (TF-TRT's
// layout; convert/tf_segment_graph.h). Written by the TF frontend (frontend/tf/flat_graph.h).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/proto/tf.pb.h"
#include "kiln/tensor.h"

namespace kiln {

// The attr of a node in TfSourceGraph::graph that TensorFlow cannot run as it is (it reads a
// variable other than by ReadVariableOp): its value is the reason. Such a node may be covered by
// an engine; the per-engine layout is refused when TensorFlow would have to run it.
inline constexpr char kUnexpressibleAttr[] = "_kiln_unexpressible";

struct TfSourceGraph {
  // The signature's graph with every function call inlined (node names prefixed with the call's
  // scope, "call/inner"), variables read as Const nodes (values in frozen_variables) and control inputs dropped: only
  // the nodes the signature's outputs need. Empty when `unavailable` is set.
  tfproto::GraphDef graph;
  // IR value name (ir::Value::name, as the importer named it) -> the TF tensor ("node:index") it is.
  // Values internal to one TF node's decomposition have none.
  std::map<std::string, std::string> tensor_of_value;
  // Per IR graph input / output (graph order): the Placeholder ("node:0") / the tensor it is.
  std::vector<std::string> input_tensors, output_tensors;
  // The value of each variable read (Const node name -> the variable): its Const node in `graph`
  // has only its dtype, and the value is encoded when a node TensorFlow runs needs it (most reads
  // end up inside engines, and importing for `kiln run` never encodes any).
  std::map<std::string, std::shared_ptr<const Tensor>> frozen_variables;
  // Non-empty: why this signature cannot be given back to TensorFlow segment by segment.
  std::string unavailable;
};

}  // namespace kiln
