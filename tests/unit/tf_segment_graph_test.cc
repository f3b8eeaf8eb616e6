// TF-TRT's layout of a converted SavedModel (convert/tf_segment_graph.h): engines replace the TF
// nodes they cover, their readers are rewired, and the layout is refused, with a reason, when an
// engine boundary value is no TF tensor.
#include "convert/tf_segment_graph.h"

#include <gtest/gtest.h>

#include <map>

#include "convert/segment_rewrite.h"
#include "convert/segmenter.h"
#include "ir/op_schema.h"

namespace kiln::convert {
namespace {

tfproto::NodeDef Node(const std::string& name, const std::string& op, std::vector<std::string> inputs) {
  tfproto::NodeDef n;
  n.set_name(name);
  n.set_op(op);
  for (const std::string& in : inputs) n.add_input(in);
  return n;
}

// x -> a = Relu -> b = Neg -> c = Relu -> output; IR nodes a and b become one engine, c stays native.
struct Sample {
  ir::Graph graph;
  TfSourceGraph source;
  Sample() {
    const ir::ValueId x = graph.AddInput("x", DType::kFloat32, ir::SymShape::Of({2, 3}));
    auto add = [&](const char* op, const char* name, ir::ValueId in) {
      const ir::NodeId id = graph.AddNode(op, name, {in}).id;
      ir::InferNode(graph, id);
      return graph.node(id).outputs[0];
    };
    const ir::ValueId a = add("Relu", "a", x);
    const ir::ValueId b = add("Neg", "b", a);
    const ir::NodeId a_node = graph.value(a).producer, b_node = graph.value(b).producer;
    const ir::ValueId c = add("Relu", "c", b);
    graph.AddOutput("out", c);
    Segment segment;
    segment.nodes = {a_node, b_node};
    ReplaceSegments(graph, {segment});

    for (const auto& n : {Node("x_ph", "Placeholder", {}), Node("call/tf_a", "Relu", {"x_ph:0"}),
                          Node("call/tf_b", "Neg", {"call/tf_a:0"}), Node("call/tf_c", "Relu", {"call/tf_b:0"}),
                          Node("unused", "Relu", {"x_ph:0"})})
      *source.graph.add_node() = n;
    source.tensor_of_value = {{"x", "x_ph:0"}, {"a", "call/tf_a:0"}, {"b", "call/tf_b:0"}, {"c", "call/tf_c:0"}};
    source.input_tensors = {"x_ph:0"};
    source.output_tensors = {"call/tf_c:0"};
  }
};

TEST(TfSegmentGraph, EachEngineReplacesTheTfNodesItCovers) {
  Sample s;
  std::string reason;
  const std::optional<TfSegmentedGraph> out =
      SegmentTfGraph(s.source, s.graph, "0123456789abcdef", "serving_default", reason);
  ASSERT_TRUE(out) << reason;
  EXPECT_EQ(out->engines, 1u);
  std::map<std::string, tfproto::NodeDef> nodes;
  for (const auto& n : out->graph.node()) nodes[n.name()] = n;
  // tf_a and tf_b are the engine's now; `unused` was never needed; tf_c stays TensorFlow's.
  ASSERT_EQ(nodes.size(), 3u);
  ASSERT_TRUE(nodes.count("KilnEngineOp_000"));
  const tfproto::NodeDef& engine = nodes.at("KilnEngineOp_000");
  EXPECT_EQ(engine.op(), kTfEngineOp);
  ASSERT_EQ(engine.input_size(), 1);
  EXPECT_EQ(engine.input(0), "x_ph:0");
  EXPECT_EQ(engine.attr().at("engine_name").s(), "KilnEngineOp_000");
  EXPECT_EQ(engine.attr().at("model_id").s(), "0123456789abcdef");
  EXPECT_EQ(engine.attr().at("Tin").list().type_size(), 1);
  EXPECT_EQ(engine.attr().at("Tout").list().type(0), static_cast<int>(DType::kFloat32));
  EXPECT_EQ(engine.attr().at("output_shapes").list().shape(0).dim(1).size(), 3);
  ASSERT_TRUE(nodes.count("call/tf_c"));
  EXPECT_EQ(nodes.at("call/tf_c").input(0), "KilnEngineOp_000:0");
  EXPECT_TRUE(nodes.count("x_ph"));
  EXPECT_EQ(out->inputs, std::vector<std::string>{"x_ph:0"});
  EXPECT_EQ(out->outputs, std::vector<std::string>{"call/tf_c:0"});
}

TEST(TfSegmentGraph, AnEngineOutputThatIsNoTfTensorRefusesTheLayout) {
  Sample s;
  s.source.tensor_of_value.erase("b");  // as if b were inside one TF node's decomposition
  std::string reason;
  EXPECT_FALSE(SegmentTfGraph(s.source, s.graph, "id", "serving_default", reason));
  EXPECT_NE(reason.find("engine 'KilnEngineOp_000' output 'b' is no TensorFlow tensor"), std::string::npos) << reason;
}

TEST(TfSegmentGraph, AnEngineInputThatIsNoTfTensorRefusesTheLayout) {
  Sample s;
  s.source.tensor_of_value.erase("x");
  std::string reason;
  EXPECT_FALSE(SegmentTfGraph(s.source, s.graph, "id", "serving_default", reason));
  EXPECT_NE(reason.find("engine 'KilnEngineOp_000' input 'x' is no TensorFlow tensor"), std::string::npos) << reason;
}

TEST(TfSegmentGraph, TheImportersReasonIsKept) {
  Sample s;
  s.source.unavailable = "function 'cond_true_1' is a control-flow body (If / While), which Kiln imports as a subgraph";
  std::string reason;
  EXPECT_FALSE(SegmentTfGraph(s.source, s.graph, "id", "serving_default", reason));
  EXPECT_EQ(reason, s.source.unavailable);
}

TEST(TfSegmentGraph, ANameTakenByTheTfGraphRefusesTheLayout) {
  Sample s;
  *s.source.graph.add_node() = Node("KilnEngineOp_000", "Relu", {"x_ph:0"});
  std::string reason;
  EXPECT_FALSE(SegmentTfGraph(s.source, s.graph, "id", "serving_default", reason));
  EXPECT_NE(reason.find("'KilnEngineOp_000' is taken"), std::string::npos) << reason;
}

}  // namespace
}  // namespace kiln::convert
