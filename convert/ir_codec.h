// A lossless codec between Kiln's IR (ir::Graph, including subgraphs held in attributes) and a
// GraphDef, used to store converted graphs in a SavedModel (convert/converted_model).
//
// Encoding of one graph (the top-level GraphDef's `node`, or a FunctionDef's `node_def`):
//   - graph input i  -> NodeDef op "Placeholder": attrs `dtype` (type), `shape` (shape),
//                       `_kiln_input_index` (i) and `_kiln_input_name` (s, the input's name). The
//                       NodeDef is named after the input (made unique with "_1", "_2"... when that
//                       name is taken by a node or an earlier input).
//   - IR node        -> NodeDef named like the node; `op` is the IR op name, except "Engine" which
//                       is written as "KilnEngineOp". Live nodes only, in Graph::TopologicalOrder.
//                       `input` entries are "<producer NodeDef>:<output index>" (always with the
//                       index; graph inputs as "<placeholder>:0").
//   - graph output i -> NodeDef op "KilnOutput" named "kiln_output/<name>" (made unique), one
//                       input (the value), attrs `name` (s), `_kiln_output_index` (i), `T` (type).
//                       It is a sink like TensorFlow's _Retval: it has no outputs of its own.
// Node attributes:
//   int64 -> i, bool -> b, string -> s, DType -> type, vector<int64> -> list.i,
//   vector<string> -> list.s, vector<DType> -> list.type, Tensor -> tensor (TensorProto with
//   tensor_content, strings in string_val; an undefined Tensor is a TensorProto of dtype 0),
//   double -> tensor (scalar DT_DOUBLE, bit-exact), vector<double> -> tensor (rank-1 DT_DOUBLE),
//   shared_ptr<Graph> -> func (NameAttrList naming a FunctionDef in the top-level
//   GraphDef's library; a null graph is a func with an empty name).
//   The forms whose proto does not tell the IR type apart are listed in `_kiln_attr_kinds`
//   (list.s of "<attr name>:<kind>"): kind "f64" (double), "f64s" (vector<double>), and for an
//   EMPTY list "strs" (vector<string>) or "types" (vector<DType>); an unmarked empty list is a
//   vector<int64>. IR attribute names must not start with "_kiln_" (reserved).
// Per node, also: `_kiln_output_dtypes` (list.type) and `_kiln_output_shapes` (list.shape) for
// every output; `_kiln_source_op` (s) when node.source_op is set; `_kiln_output_constants`
// (list.tensor, dtype-0 entries for outputs without one) when a non-Constant node has outputs
// with a known constant. A Constant node's output constant is its `value` attr.
// Shapes: unknown rank -> unknown_rank; a static dim -> size; an anonymous unknown dim ->
//   size -1; a named symbol -> size -1 with dim name = the symbol's name. Symbols are identified
//   by name: decoding re-creates them (Graph::NewSymbol) in order of first appearance (inputs in
//   order, then nodes). A subgraph's symbol is looked up in the subgraph's own table first, then
//   in the enclosing graphs' (If branches carry their parent's symbols); a symbol found in
//   no table is written as an anonymous unknown dim.
// Subgraphs: each distinct Graph object becomes one FunctionDef in the top-level GraphDef's
//   `library.function` (flat, also for nested subgraphs), named "<node>__<attr>" (prefixed by
//   the enclosing function's name and "/" when nested; made unique with "_1", ...). Its
//   `node_def` use this same encoding; its signature lists the inputs and outputs
//   (informational only). A Graph referenced by several attrs is written once and decodes to one
//   shared Graph object.
// Encoding is deterministic (serialize with deterministic map order for byte-identical files).
#pragma once

#include <string>
#include <vector>

#include "frontend/tf/proto/tf.pb.h"
#include "ir/graph.h"

namespace kiln::tf {

inline constexpr char kEngineNodeDefOp[] = "KilnEngineOp";
inline constexpr char kOutputNodeDefOp[] = "KilnOutput";

// Live nodes only (skips node.removed). kInvalidArgument for what cannot be encoded (a reserved
// attribute name, an IR op named like one of the codec's own NodeDef ops, a device tensor);
// kInternal naming the node when a live node reads a value of a removed node.
tfproto::GraphDef EncodeIrGraph(const ir::Graph& graph);

// Rebuilds the graph: same node names, ops, attributes, source ops, value dtypes and shapes,
// symbols (by name), constants, input and output names and order. Runs no shape inference
// (ops may be unknown to this build). kDataLoss naming the node (and function) on anything
// malformed: a missing or mistyped codec attribute, a reference to a missing node or output, a
// cycle, a bad tensor, a missing or recursive function.
ir::Graph DecodeIrGraph(const tfproto::GraphDef& graph_def);

// Tensor names ("<node>:<index>") of an encoded graph's inputs (their placeholders) and outputs
// (the values the KilnOutput nodes read), in graph order. kDataLoss when the indices are not
// 0..n-1.
std::vector<std::string> EncodedInputTensors(const tfproto::GraphDef& graph_def);
std::vector<std::string> EncodedOutputTensors(const tfproto::GraphDef& graph_def);

}  // namespace kiln::tf
