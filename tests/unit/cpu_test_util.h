// Helpers for the CPU backend tests: build small IR graphs by hand, compile them with the CPU
// backend and compare against the reference executor.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_engine.h"
#include "ir/graph.h"
#include "ir/op_schema.h"
#include "runtime/executor.h"
#include "tests/unit/nn_test_util.h"

namespace kiln::cputest {

using nntest::ConvAttrs;
using nntest::RandF32;

struct Builder {
  std::shared_ptr<ir::Graph> g = std::make_shared<ir::Graph>();

  ir::ValueId Input(const std::string& name, std::vector<ir::Dim> dims, DType dtype = DType::kFloat32) {
    return g->AddInput(name, dtype, ir::SymShape::Of(std::move(dims)));
  }
  ir::Dim Symbol(const std::string& name) { return g->NewSymbol(name); }
  ir::ValueId Const(const std::string& name, Tensor t) { return g->AddConstant(name, std::move(t)); }
  ir::ValueId Op(const std::string& op, const std::string& name, std::vector<ir::ValueId> inputs, ir::AttrMap attrs = {}) {
    ir::Node& n = g->AddNode(op, name, std::move(inputs), 1);
    n.attrs = std::move(attrs);
    const ir::NodeId id = n.id;
    ir::InferNode(*g, id);
    return g->node(id).outputs[0];
  }
  void Output(const std::string& name, ir::ValueId v) { g->AddOutput(name, v); }
};

// Deterministic values in [-scale, scale) (keeps activations O(1) through deep stacks).
inline Tensor RandScaled(Shape shape, uint32_t seed, float scale) {
  Tensor t = RandF32(std::move(shape), seed);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] *= scale;
  return t;
}

inline backend::Profile ExactProfile(const std::vector<Shape>& shapes) {
  backend::Profile p;
  for (const Shape& s : shapes) p.inputs.push_back({s, s, s});
  return p;
}

// Relative comparison: |got - want| <= tol * (1 + |want|) element by element.
inline void ExpectClose(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  ASSERT_EQ(got.dtype(), want.dtype()) << what;
  ASSERT_EQ(ShapeToString(got.shape()), ShapeToString(want.shape())) << what;
  int bad = 0;
  double worst = 0;
  for (int64_t i = 0; i < want.num_elements(); ++i) {
    const double g = got.DoubleAt(i), w = want.DoubleAt(i);
    const double err = std::abs(g - w) / (1 + std::abs(w));
    worst = std::max(worst, err);
    if (!(err <= tol) && ++bad <= 5) ADD_FAILURE() << what << ": element " << i << ": got " << g << ", want " << w;
  }
  EXPECT_EQ(bad, 0) << what << " (worst relative error " << worst << ")";
}

inline bool BitwiseEqual(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.byte_size() == b.byte_size() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.byte_size()) == 0;
}

// Number of live nodes with op `op` in an engine's optimized graph.
inline int CountOps(const backend::Engine& engine, const std::string& op) {
  const auto& e = dynamic_cast<const backend::cpu::CpuEngine&>(engine);
  int n = 0;
  for (const ir::Node& node : e.graph().nodes()) n += !node.removed && node.op == op;
  return n;
}

inline int64_t PassRewrites(const backend::Engine& engine, const std::string& pass) {
  const auto& e = dynamic_cast<const backend::cpu::CpuEngine&>(engine);
  for (const auto& s : e.pass_stats())
    if (s.pass == pass) return s.rewrites;
  return -1;
}

// MaxPool / AvgPool attributes.
inline ir::AttrMap PoolAttrs(const std::string& format, const std::string& padding, std::vector<int64_t> ksize,
                             std::vector<int64_t> strides, std::vector<int64_t> pads = {}) {
  ir::AttrMap a;
  a.Set("data_format", format);
  a.Set("padding", padding);
  a.Set("ksize", std::move(ksize));
  a.Set("strides", std::move(strides));
  if (!pads.empty()) a.Set("pads", std::move(pads));
  return a;
}

// Every oneDNN-backed step ran on a oneDNN primitive (no reference fallback).
inline void ExpectNoFallback(const backend::Engine& engine) {
  const auto& e = dynamic_cast<const backend::cpu::CpuEngine&>(engine);
  for (const auto& s : e.steps()) EXPECT_EQ(s.kernel.find("fallback"), std::string::npos) << e.Summary();
}

// Compiles `b.g` for `profile`, runs every input set through the engine and the reference
// executor and compares (FP32 within `tol` relative). Returns the engine.
inline std::unique_ptr<backend::Engine> CheckAgainstReference(const Builder& b, const backend::Profile& profile,
                                                              const std::vector<std::vector<Tensor>>& input_sets, double tol = 1e-5,
                                                              backend::CompileOptions options = {}) {
  backend::cpu::CpuBackend cpu;
  auto engine = cpu.Compile(*b.g, profile, options);
  runtime::ReferenceExecutor ref(b.g);
  for (size_t k = 0; k < input_sets.size(); ++k) {
    const auto want = ref.Run(input_sets[k]);
    const auto got = engine->Execute(input_sets[k]);
    EXPECT_EQ(got.size(), want.size());
    for (size_t i = 0; i < std::min(got.size(), want.size()); ++i)
      ExpectClose(got[i], want[i], tol, "input set " + std::to_string(k) + " output " + std::to_string(i));
  }
  ExpectNoFallback(*engine);
  if (std::getenv("KILN_TEST_VERBOSE")) std::cout << dynamic_cast<const backend::cpu::CpuEngine&>(*engine).Summary();
  return engine;
}

}  // namespace kiln::cputest
