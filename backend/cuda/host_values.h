// Shape computations inside CUDA engines, evaluated on the host (TensorRT's shape tensors).
// Models with dynamic dims compute Reshape targets, Range limits and broadcast shapes from
// `Shape` at run time: small int64 arithmetic that only depends on the engine's input shapes.
// Such values are computed on the host, once per set of input shapes, with the reference
// kernels; a device kernel that reads one gets a copy uploaded once for those shapes.
#pragma once

#include <optional>
#include <vector>

#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::backend::cuda {

// Shape, Size, Rank: their value is their input's shape.
bool IsShapeOp(const std::string& op);

// Whether `node`'s outputs depend only on shapes and constants (through Shape ops and small
// integer or bool computations on them), so the CUDA backend can compute them on the host.
bool HostComputable(const ir::Graph& graph, const ir::Node& node);

// Per node of `graph`: computed on the host inside an engine made of `graph`. Unlike
// HostComputable, the segment's inputs are device tensors here, so only values derived from
// constants and Shape ops qualify.
std::vector<bool> HostNodes(const ir::Graph& graph);

// The graph specialised for one set of input shapes: every value's static shape (nullopt where
// not known without running the device kernels) and the host nodes' outputs.
struct Specialization {
  std::vector<std::optional<Shape>> shapes;
  std::vector<Tensor> host_values;  // by value id; undefined for values not computed on the host
};
Specialization Specialize(const ir::Graph& graph, const std::vector<bool>& host_nodes,
                          const std::vector<Shape>& input_shapes);

}  // namespace kiln::backend::cuda
