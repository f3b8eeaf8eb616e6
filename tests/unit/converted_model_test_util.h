// A small converted model (an Engine node with its segment, and an If with subgraphs) and the
// helpers the converted-model, .kiln file and IR codec tests share to build and compare graphs.
#pragma once

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "convert/converted_model.h"
#include "convert/engine_file.h"
#include "ir/op_schema.h"
#include "kiln/version.h"
#include "runtime/executor.h"

namespace kiln::convert::testing {

// The serialized GraphDef, deterministic (map fields sorted) so that two encodings compare as bytes.
inline std::string DeterministicBytes(const tfproto::GraphDef& gd) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  gd.SerializeToCodedStream(&coded);
  return out;
}

// Adds a node and runs its shape function.
inline ir::NodeId AddInferred(ir::Graph& g, const std::string& op, const std::string& name, std::vector<ir::ValueId> in,
                              ir::AttrMap attrs = {}, int outputs = 1) {
  ir::Node& n = g.AddNode(op, name, std::move(in), outputs);
  n.attrs = std::move(attrs);
  const ir::NodeId id = n.id;
  ir::InferNode(g, id);
  return id;
}
inline ir::ValueId Out(const ir::Graph& g, ir::NodeId id, int i = 0) {
  return g.node(id).outputs.at(static_cast<size_t>(i));
}

// Adds an Engine node named `name` that runs `segment` on `input`; its one output has `shape` (set
// before the shape function runs, which keeps it).
inline ir::NodeId AddEngineNode(ir::Graph& g, const std::string& name, const std::string& engine_name,
                                ir::ValueId input, std::shared_ptr<ir::Graph> segment, const ir::SymShape& shape) {
  ir::AttrMap attrs;
  attrs.Set("segment", std::move(segment));
  attrs.Set("engine_name", engine_name);
  ir::Node& e = g.AddNode("Engine", name, {input}, 1);
  e.attrs = attrs;
  const ir::NodeId id = e.id;
  g.value(e.outputs[0]).shape = shape;
  ir::InferNode(g, id);
  return id;
}

// x:[batch,3] float, flag: bool scalar. logits = Engine(x) (segment: Relu(x * 2)); probs = If(flag,
// logits) (then: logits + 1, else: logits).
inline ir::Graph SampleConvertedGraph() {
  ir::Graph g;
  const ir::Dim batch = g.NewSymbol("x.0");
  const ir::ValueId x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of({batch, 3}));
  const ir::ValueId flag = g.AddInput("flag", DType::kBool, ir::SymShape::Scalar());

  auto segment = std::make_shared<ir::Graph>();
  {
    const ir::Dim b = segment->NewSymbol("x.0");
    const ir::ValueId in = segment->AddInput("x", DType::kFloat32, ir::SymShape::Of({b, 3}));
    const ir::ValueId two = segment->AddConstant("model/two", Tensor::Scalar<float>(DType::kFloat32, 2.0f));
    const ir::NodeId mul = AddInferred(*segment, "Mul", "model/mul", {in, two});
    segment->AddOutput("model/relu", Out(*segment, AddInferred(*segment, "Relu", "model/relu", {Out(*segment, mul)})));
  }
  const ir::NodeId engine =
      AddEngineNode(g, "model/KilnEngineOp_000", "KilnEngineOp_000", x, segment, ir::SymShape::Of({batch, 3}));

  auto then_g = std::make_shared<ir::Graph>();
  {
    const ir::ValueId a = then_g->AddInput("a", DType::kFloat32, ir::SymShape::Of({batch, 3}));
    const ir::ValueId one = then_g->AddConstant("one", Tensor::Scalar<float>(DType::kFloat32, 1.0f));
    then_g->AddOutput("r", Out(*then_g, AddInferred(*then_g, "Add", "add", {a, one})));
  }
  auto else_g = std::make_shared<ir::Graph>();
  else_g->AddOutput("r", else_g->AddInput("a", DType::kFloat32, ir::SymShape::Of({batch, 3})));
  ir::AttrMap if_attrs;
  if_attrs.Set("then_branch", then_g);
  if_attrs.Set("else_branch", else_g);
  const ir::NodeId cond = AddInferred(g, "If", "model/cond", {flag, Out(g, engine)}, if_attrs);
  // Output keys sorted, as the frontend adds them.
  g.AddOutput("logits", Out(g, engine));
  g.AddOutput("probs", Out(g, cond));
  return g;
}

inline tfproto::TensorInfo TensorInfoOf(const std::string& name, int dtype, std::vector<int64_t> dims) {
  tfproto::TensorInfo info;
  info.set_name(name);
  info.set_dtype(dtype);
  for (int64_t d : dims) info.mutable_tensor_shape()->add_dim()->set_size(d);
  return info;
}

// SampleConvertedGraph with a signature for its inputs and outputs, a conversion report and
// engine files: two for the engine node, one for a name no node has.
inline ConvertedModel SampleConvertedModel() {
  ConvertedModel m;
  m.tags = {"serve", "gpu"};
  m.signature_key = "serving_default";
  (*m.signature.mutable_inputs())["x"] = TensorInfoOf("serving_default_x:0", 1, {-1, 3});
  (*m.signature.mutable_inputs())["flag"] = TensorInfoOf("serving_default_flag:0", 10, {});
  (*m.signature.mutable_outputs())["logits"] = TensorInfoOf("StatefulPartitionedCall:0", 1, {-1, 3});
  (*m.signature.mutable_outputs())["probs"] = TensorInfoOf("StatefulPartitionedCall:1", 1, {-1, 3});
  m.graph = SampleConvertedGraph();
  m.conversion_json = R"({"precision_mode": "FP32", "ops_converted": 3})";
  EngineHeader h;
  h.kiln_version = KILN_VERSION;
  h.backend = "cpu";
  h.device = "x86-64 avx2";
  h.profile.inputs.push_back({{1, 3}, {4, 3}, {8, 3}});
  h.engine_name = "model/KilnEngineOp_000";
  m.engine_files["model/KilnEngineOp_000"] = {WriteEngineFile(h, "payload-0"),
                                              WriteEngineFile(h, std::string("p\0\1", 3))};
  m.engine_files["plain_engine"] = {WriteEngineFile(h, "other")};
  return m;
}

// Inputs for SampleConvertedGraph: x [2,3] and the If's condition.
inline std::vector<Tensor> SampleConvertedInputs(bool flag) {
  return {Tensor::FromVector<float>(DType::kFloat32, {2, 3}, {1, -2, 3, -4, 5, -6}),
          Tensor::Scalar<bool>(DType::kBool, flag)};
}

// Runs both float graphs with the reference executor on SampleConvertedInputs(flag) and expects
// the same output shapes and bit-identical values.
inline void ExpectSameResults(const ir::Graph& original, const ir::Graph& decoded, bool flag) {
  runtime::ReferenceExecutor ea(std::make_shared<ir::Graph>(original.Clone()));
  runtime::ReferenceExecutor eb(std::make_shared<ir::Graph>(decoded.Clone()));
  const auto ra = ea.Run(SampleConvertedInputs(flag)), rb = eb.Run(SampleConvertedInputs(flag));
  ASSERT_EQ(ra.size(), rb.size());
  for (size_t i = 0; i < ra.size(); ++i) {
    ASSERT_EQ(ra[i].shape(), rb[i].shape());
    for (int64_t k = 0; k < ra[i].num_elements(); ++k) EXPECT_EQ(ra[i].data<float>()[k], rb[i].data<float>()[k]);
  }
}

}  // namespace kiln::convert::testing
