// Test helpers for the array-family tests: build a one-node IR graph, run shape inference and
// the reference kernel, and compare results with hand-computed values.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backend/reference/kernel.h"
#include "ir/graph.h"
#include "ir/op_schema.h"
#include "kiln/tensor.h"
#include "tests/unit/test_util.h"

namespace kiln::array_test {

template <typename T>
Tensor Make(DType dtype, Shape shape, std::vector<T> values) {
  return Tensor::FromVector<T>(dtype, std::move(shape), values);
}
inline Tensor F32(Shape shape, std::vector<float> v) { return Make<float>(DType::kFloat32, std::move(shape), std::move(v)); }
inline Tensor F64(Shape shape, std::vector<double> v) { return Make<double>(DType::kFloat64, std::move(shape), std::move(v)); }
inline Tensor I32(Shape shape, std::vector<int32_t> v) { return Make<int32_t>(DType::kInt32, std::move(shape), std::move(v)); }
inline Tensor I64(Shape shape, std::vector<int64_t> v) { return Make<int64_t>(DType::kInt64, std::move(shape), std::move(v)); }
inline Tensor U8(Shape shape, std::vector<uint8_t> v) { return Make<uint8_t>(DType::kUInt8, std::move(shape), std::move(v)); }
inline Tensor Bool(Shape shape, std::vector<bool> v) {
  Tensor t(DType::kBool, std::move(shape));
  for (size_t i = 0; i < v.size(); ++i) t.data<bool>()[i] = v[i];
  return t;
}
// 1-D int32 vector / int32 scalar (shapes, axes, ...).
inline Tensor Vec(std::vector<int32_t> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return I32({n}, std::move(v));
}
inline Tensor Scalar(int32_t v) { return I32({}, {v}); }
// 0, 1, 2, ... as float32 of a shape.
inline Tensor Iota(Shape shape) {
  Tensor t(DType::kFloat32, std::move(shape));
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = static_cast<float>(i);
  return t;
}

// How the inputs reach the node.
enum class Mode {
  kConst,    // input 0 is a graph input with its static shape; the others are constants
  kDynamic,  // every input is a graph input with its static shape
  kUnknown,  // every input is a graph input of unknown shape (shape inference cannot fail)
};

struct OpRun {
  ir::Graph graph;
  ir::NodeId node = ir::kNoNode;
  std::vector<Tensor> outputs;
  const ir::Value& out(int i = 0) const { return graph.value(graph.node(node).outputs.at(static_cast<size_t>(i))); }
};

// Builds the node, infers it and (when `run`) runs the reference kernel. When an output's
// inferred shape is fully static, checks that the kernel produced exactly that shape and dtype.
inline std::unique_ptr<OpRun> RunOp(const std::string& op, std::vector<Tensor> inputs, ir::AttrMap attrs = {}, int num_outputs = 1,
                                    Mode mode = Mode::kConst, bool run = true) {
  auto r = std::make_unique<OpRun>();
  std::vector<ir::ValueId> ids;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string name = "in" + std::to_string(i);
    if (mode == Mode::kConst && i > 0) {
      ids.push_back(r->graph.AddConstant(name, inputs[i]));
    } else {
      ir::SymShape s = mode == Mode::kUnknown ? ir::SymShape::Unknown()
                                               : ir::SymShape::Of(std::vector<ir::Dim>(inputs[i].shape().begin(), inputs[i].shape().end()));
      ids.push_back(r->graph.AddInput(name, inputs[i].dtype(), s));
    }
  }
  ir::Node& n = r->graph.AddNode(op, "node", ids, num_outputs);
  n.attrs = std::move(attrs);
  r->node = n.id;
  ir::InferNode(r->graph, r->node);
  if (!run) return r;
  r->outputs = reference::RunReferenceKernel(r->graph.node(r->node), inputs, nullptr);
  for (int i = 0; i < num_outputs; ++i) {
    const ir::Value& v = r->out(i);
    EXPECT_EQ(v.dtype, r->outputs[static_cast<size_t>(i)].dtype()) << op << " output " << i;
    if (auto s = v.shape.ToStatic()) {
      EXPECT_EQ(ShapeToString(*s), ShapeToString(r->outputs[static_cast<size_t>(i)].shape())) << op << " output " << i;
    }
  }
  return r;
}

using testutil::Attrs;
using testutil::Doubles;
using testutil::Ints;

inline void ExpectTensor(const Tensor& t, DType dtype, const Shape& shape, const std::vector<double>& values) {
  EXPECT_EQ(DTypeName(t.dtype()), DTypeName(dtype));
  EXPECT_EQ(ShapeToString(t.shape()), ShapeToString(shape));
  EXPECT_EQ(Doubles(t), values);
}

// Expects `fn` to throw a kiln::Error whose message contains `needle`.
template <typename Fn>
void ExpectError(Fn&& fn, const std::string& needle) {
  testutil::ExpectErrorMessage(std::forward<Fn>(fn), {needle});
}

inline std::string ShapeOf(const OpRun& r, int i = 0) { return r.graph.ShapeToString(r.out(i).shape); }

}  // namespace kiln::array_test
