// Helpers for the nn family's unit tests: build a one-node IR graph, run shape inference and
// the reference kernel, and compare against independently computed values.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "backend/reference/kernel.h"
#include "ir/graph.h"
#include "ir/op_schema.h"
#include "kiln/half.h"
#include "kiln/tensor.h"
#include "tests/unit/test_util.h"

namespace kiln::nntest {

// Deterministic values in [-1, 1).
inline std::vector<float> RandomFloats(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  uint64_t s = seed * 2654435761u + 12345;
  for (auto& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = static_cast<float>(static_cast<double>(s >> 40) / static_cast<double>(1ull << 24) * 2.0 - 1.0);
  }
  return v;
}

inline Tensor F32(Shape shape, const std::vector<float>& v) { return Tensor::FromVector<float>(DType::kFloat32, std::move(shape), v); }
inline Tensor RandF32(Shape shape, uint32_t seed) {
  return F32(shape, RandomFloats(static_cast<size_t>(NumElements(shape)), seed));
}
inline Tensor I32(Shape shape, const std::vector<int32_t>& v) { return Tensor::FromVector<int32_t>(DType::kInt32, std::move(shape), v); }

inline std::vector<float> ToFloats(const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.num_elements()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(t.DoubleAt(static_cast<int64_t>(i)));
  return v;
}

// A one-node graph: inputs listed in `constants` become Constant nodes (so shape functions see
// their values), the rest graph inputs of static shape.
struct OneNode {
  ir::Graph graph;
  ir::NodeId node = ir::kNoNode;

  OneNode(const std::string& op, const std::vector<Tensor>& inputs, ir::AttrMap attrs, int num_outputs = 1,
          std::set<int> constants = {}) {
    std::vector<ir::ValueId> ids;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const std::string name = "in" + std::to_string(i);
      if (constants.count(static_cast<int>(i))) ids.push_back(graph.AddConstant(name, inputs[i]));
      else ids.push_back(graph.AddInput(name, inputs[i].dtype(), ir::SymShape::Of(std::vector<ir::Dim>(inputs[i].shape().begin(), inputs[i].shape().end()))));
    }
    ir::Node& n = graph.AddNode(op, "node", ids, num_outputs);
    n.attrs = std::move(attrs);
    node = n.id;
    ir::InferNode(graph, node);
  }
  const ir::Value& out(int i = 0) const { return graph.value(graph.node(node).outputs.at(static_cast<size_t>(i))); }
  std::vector<Tensor> Run(const std::vector<Tensor>& inputs) const {
    return reference::RunReferenceKernel(graph.node(node), inputs, nullptr);
  }
};

// Runs `op` on `inputs` and checks the inferred dtype/shape agree with the kernel's outputs.
inline std::vector<Tensor> RunOp(const std::string& op, const std::vector<Tensor>& inputs, ir::AttrMap attrs,
                                 int num_outputs = 1, std::set<int> constants = {}) {
  OneNode n(op, inputs, std::move(attrs), num_outputs, std::move(constants));
  std::vector<Tensor> outs = n.Run(inputs);
  for (int i = 0; i < num_outputs; ++i) {
    const ir::Value& v = n.out(i);
    EXPECT_EQ(v.dtype, outs[static_cast<size_t>(i)].dtype()) << op << " output " << i;
    auto st = v.shape.ToStatic();
    EXPECT_TRUE(st.has_value()) << op << " output " << i << " shape not static: " << n.graph.ShapeToString(v.shape);
    if (st) {
      EXPECT_EQ(ShapeToString(*st), ShapeToString(outs[static_cast<size_t>(i)].shape())) << op << " output " << i;
    }
  }
  return outs;
}

inline void ExpectNear(const Tensor& t, const std::vector<double>& expected, double tol = 1e-5) {
  ASSERT_EQ(t.num_elements(), static_cast<int64_t>(expected.size()));
  int bad = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const double got = t.DoubleAt(static_cast<int64_t>(i)), want = expected[i];
    if (!(std::abs(got - want) <= tol * (1 + std::abs(want)))) {
      if (++bad <= 5) ADD_FAILURE() << "element " << i << ": got " << got << ", expected " << want;
    }
  }
  EXPECT_EQ(bad, 0);
}

inline std::vector<double> ToDoubles(const Tensor& t) { return testutil::Doubles(t); }

using testutil::Attrs;

// Conv2D / DepthwiseConv2D attributes.
inline ir::AttrMap ConvAttrs(const std::string& format, const std::string& padding,
                             std::vector<int64_t> strides = {1, 1}, std::vector<int64_t> dilations = {1, 1},
                             std::vector<int64_t> pads = {}) {
  ir::AttrMap a =
      Attrs({{"data_format", format}, {"padding", padding}, {"strides", strides}, {"dilations", dilations}});
  if (!pads.empty()) a.Set("pads", pads);
  return a;
}

// Moves the channel axis of a batch of n images with c channels and s pixels each (as doubles):
// [N, C, S...] to [N, S..., C] where `to_channels_last`, else back.
inline std::vector<double> MoveChannels(const std::vector<double>& x, int64_t n, int64_t c, int64_t s,
                                        bool to_channels_last) {
  std::vector<double> y(x.size());
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < s; ++i) {
        const auto channels_first = static_cast<size_t>((b * c + ch) * s + i);
        const auto channels_last = static_cast<size_t>((b * s + i) * c + ch);
        if (to_channels_last)
          y[channels_last] = x[channels_first];
        else
          y[channels_first] = x[channels_last];
      }
  return y;
}
inline std::vector<double> NCHWtoNHWC(const std::vector<double>& x, int64_t n, int64_t c, int64_t s) {
  return MoveChannels(x, n, c, s, /*to_channels_last=*/true);
}
inline std::vector<double> NHWCtoNCHW(const std::vector<double>& x, int64_t n, int64_t c, int64_t s) {
  return MoveChannels(x, n, c, s, /*to_channels_last=*/false);
}

}  // namespace kiln::nntest
