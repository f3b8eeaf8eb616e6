// Helpers for the TensorFlow frontend tests: the checkpoint and SavedModel written by TensorFlow
// (tests/data/bundle_fixture), and a fixture that imports a hand-written SavedModel (text format)
// and evaluates the imported graph with the reference kernels.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/reference/kernel.h"
#include "frontend/tf/bundle_reader.h"
#include "frontend/tf/graph_builder.h"
#include "frontend/tf/saved_model.h"
#include "ir/graph.h"
#include "tests/unit/test_util.h"

namespace kiln::tf_test {

// Written by tests/data/make_bundle_fixture.py.
inline std::filesystem::path BundleFixtureDir() { return testutil::SourceDir() / "tests" / "data" / "bundle_fixture"; }

// Each test gets a fresh directory to write its SavedModel into.
class SavedModelTextImport : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testutil::FreshTempDir("kiln_tf_import"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `saved_model_text` (a SavedModel in protobuf text format) and imports its
  // "serving_default" signature.
  ir::Graph ImportSavedModelText(const std::string& saved_model_text) {
    std::ofstream(dir_ / "saved_model.pbtxt") << saved_model_text;
    bundle_ = tf::LoadSavedModel(dir_.string(), {"serve"});
    variables_ = std::make_unique<tf::VariableReader>(dir_.string());
    tf::GraphBuilder builder(bundle_, *variables_);
    return builder.ImportSignature("serving_default");
  }

  // Evaluates every node of a graph with one input `x` with the reference kernels; returns the
  // graph outputs by name.
  static std::map<std::string, Tensor> Evaluate(const ir::Graph& g, const Tensor& x) {
    std::map<ir::ValueId, Tensor> values;
    values[g.inputs().at(0)] = x;
    for (ir::NodeId id : g.TopologicalOrder()) {
      const ir::Node& n = g.node(id);
      if (n.op == "Constant") {
        values[n.outputs[0]] = *g.ConstantOf(n.outputs[0]);
        continue;
      }
      std::vector<Tensor> ins;
      for (ir::ValueId v : n.inputs) ins.push_back(values.at(v));
      std::vector<Tensor> outs = reference::RunReferenceKernel(n, ins, nullptr);
      for (size_t i = 0; i < outs.size(); ++i) values[n.outputs[i]] = outs[i];
    }
    std::map<std::string, Tensor> result;
    for (size_t i = 0; i < g.outputs().size(); ++i) result[g.output_names()[i]] = values.at(g.outputs()[i]);
    return result;
  }

  std::filesystem::path dir_;
  tf::SavedModelBundle bundle_;
  std::unique_ptr<tf::VariableReader> variables_;
};

}  // namespace kiln::tf_test
