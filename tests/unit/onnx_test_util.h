// Helpers of the ONNX importer unit tests: attributes of hand-built ONNX nodes, the first live
// node of an op in an imported graph, and float32 tensors from values.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::onnxtest {

inline onnx::AttributeProto* NewAttr(onnx::NodeProto& n, const std::string& name,
                                     onnx::AttributeProto::AttributeType type) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(type);
  return a;
}
inline void SetInt(onnx::NodeProto& n, const std::string& name, int64_t v) {
  NewAttr(n, name, onnx::AttributeProto::INT)->set_i(v);
}
inline void SetFloat(onnx::NodeProto& n, const std::string& name, float v) {
  NewAttr(n, name, onnx::AttributeProto::FLOAT)->set_f(v);
}
inline void SetString(onnx::NodeProto& n, const std::string& name, const std::string& v) {
  NewAttr(n, name, onnx::AttributeProto::STRING)->set_s(v);
}
inline void SetInts(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& v) {
  onnx::AttributeProto* a = NewAttr(n, name, onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}
inline void SetFloats(onnx::NodeProto& n, const std::string& name, const std::vector<float>& v) {
  onnx::AttributeProto* a = NewAttr(n, name, onnx::AttributeProto::FLOATS);
  for (float x : v) a->add_floats(x);
}
inline void SetStrings(onnx::NodeProto& n, const std::string& name, const std::vector<std::string>& v) {
  onnx::AttributeProto* a = NewAttr(n, name, onnx::AttributeProto::STRINGS);
  for (const std::string& x : v) a->add_strings(x);
}

// The first node of `op` that no pass removed, or nullptr.
inline const ir::Node* FindOp(const ir::Graph& g, const std::string& op) {
  for (const ir::Node& n : g.nodes())
    if (!n.removed && n.op == op) return &n;
  return nullptr;
}

inline Tensor F32(Shape shape, const std::vector<float>& v) {
  return Tensor::FromVector<float>(DType::kFloat32, std::move(shape), v);
}

}  // namespace kiln::onnxtest
