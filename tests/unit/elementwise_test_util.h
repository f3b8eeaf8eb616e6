// Helpers for the elementwise unit tests: build a one-node IR graph over host tensors, run shape
// inference and the reference kernel, and read results back.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "backend/reference/kernel.h"
#include "ir/graph.h"
#include "ir/op_schema.h"
#include "kiln/half.h"
#include "kiln/tensor.h"
#include "tests/unit/test_util.h"

namespace kiln::ew_test {

template <typename T>
Tensor Make(DType dtype, Shape shape, const std::vector<double>& values) {
  Tensor t(dtype, std::move(shape));
  EXPECT_EQ(t.num_elements(), static_cast<int64_t>(values.size()));
  for (size_t i = 0; i < values.size(); ++i) {
    if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) t.data<T>()[i] = T(static_cast<float>(values[i]));
    else t.data<T>()[i] = static_cast<T>(values[i]);
  }
  return t;
}
inline Tensor F32(Shape s, const std::vector<double>& v) { return Make<float>(DType::kFloat32, std::move(s), v); }
inline Tensor F64(Shape s, const std::vector<double>& v) { return Make<double>(DType::kFloat64, std::move(s), v); }
inline Tensor F16(Shape s, const std::vector<double>& v) { return Make<Half>(DType::kFloat16, std::move(s), v); }
inline Tensor BF16(Shape s, const std::vector<double>& v) { return Make<BFloat16>(DType::kBFloat16, std::move(s), v); }
inline Tensor I8(Shape s, const std::vector<double>& v) { return Make<int8_t>(DType::kInt8, std::move(s), v); }
inline Tensor U8(Shape s, const std::vector<double>& v) { return Make<uint8_t>(DType::kUInt8, std::move(s), v); }
inline Tensor I32(Shape s, const std::vector<double>& v) { return Make<int32_t>(DType::kInt32, std::move(s), v); }
inline Tensor I64(Shape s, const std::vector<double>& v) { return Make<int64_t>(DType::kInt64, std::move(s), v); }
inline Tensor Bool(Shape s, const std::vector<double>& v) { return Make<bool>(DType::kBool, std::move(s), v); }
inline Tensor Str(Shape s, const std::vector<std::string>& v) {
  Tensor t(DType::kString, std::move(s));
  t.strings() = v;
  return t;
}

using testutil::Doubles;
using testutil::Ints;

// Infers the node's output over inputs of the given dtypes/shapes; returns the output value.
inline ir::Value Infer(const std::string& op, const std::vector<std::pair<DType, ir::SymShape>>& inputs,
                       ir::AttrMap attrs = {}, ir::Graph* graph_out = nullptr) {
  ir::Graph local;
  ir::Graph& g = graph_out ? *graph_out : local;
  std::vector<ir::ValueId> ids;
  for (size_t i = 0; i < inputs.size(); ++i) ids.push_back(g.AddInput("in" + std::to_string(i), inputs[i].first, inputs[i].second));
  const ir::NodeId id = g.AddNode(op, "n", ids).id;
  g.node(id).attrs = std::move(attrs);
  ir::InferNode(g, id);
  return g.value(g.node(id).outputs[0]);
}

// Error message of shape inference (empty when it succeeds).
inline std::string InferError(const std::string& op, const std::vector<std::pair<DType, ir::SymShape>>& inputs,
                              ir::AttrMap attrs = {}) {
  try {
    Infer(op, inputs, std::move(attrs));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Runs shape inference and the reference kernel; checks that the kernel's output agrees with
// the inferred dtype and (static) shape.
inline Tensor RunOp(const std::string& op, std::vector<Tensor> inputs, ir::AttrMap attrs = {}) {
  ir::Graph g;
  std::vector<ir::ValueId> ids;
  for (size_t i = 0; i < inputs.size(); ++i)
    ids.push_back(g.AddInput("in" + std::to_string(i), inputs[i].dtype(), ir::SymShape::Of(inputs[i].shape())));
  const ir::NodeId id = g.AddNode(op, "n", ids).id;
  g.node(id).attrs = std::move(attrs);
  ir::InferNode(g, id);
  std::vector<Tensor> out = reference::RunReferenceKernel(g.node(id), inputs, nullptr);
  EXPECT_EQ(out.size(), 1u);
  const ir::Value& v = g.value(g.node(id).outputs[0]);
  EXPECT_EQ(v.dtype, out[0].dtype()) << op;
  if (auto s = v.shape.ToStatic()) {
    EXPECT_EQ(*s, out[0].shape()) << op;
  }
  return out[0];
}

// Runs only the reference kernel (no shape inference), returning the error message or "".
inline std::string KernelError(const std::string& op, std::vector<Tensor> inputs, ir::AttrMap attrs = {}) {
  ir::Graph g;
  std::vector<ir::ValueId> ids;
  for (size_t i = 0; i < inputs.size(); ++i)
    ids.push_back(g.AddInput("in" + std::to_string(i), inputs[i].dtype(), ir::SymShape::Unknown()));
  const ir::NodeId id = g.AddNode(op, "n", ids).id;
  g.node(id).attrs = std::move(attrs);
  try {
    reference::RunReferenceKernel(g.node(id), inputs, nullptr);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

using testutil::Attrs;

inline ir::SymShape S(std::vector<ir::Dim> dims) { return ir::SymShape::Of(std::move(dims)); }

// Element-wise comparison with a relative tolerance (NaNs must match).
inline void ExpectNear(const std::vector<double>& got, const std::vector<double>& want, double rtol = 1e-6,
                       double atol = 0) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << "element " << i << ": got " << got[i];
      continue;
    }
    if (std::isinf(want[i])) {
      EXPECT_EQ(got[i], want[i]) << "element " << i;
      continue;
    }
    EXPECT_NEAR(got[i], want[i], atol + rtol * std::abs(want[i])) << "element " << i;
  }
}

}  // namespace kiln::ew_test
