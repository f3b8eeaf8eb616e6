// The IR <-> GraphDef codec: exact round trips of graphs with every attribute kind, constants,
// symbolic shapes and (nested, shared) subgraphs; decoded graphs verify and run identically;
// malformed GraphDefs are kDataLoss naming the node, never a crash.
#include "convert/ir_codec.h"

#include <google/protobuf/stubs/logging.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "ir/op_schema.h"
#include "ir/passes/pass.h"
#include "kiln/half.h"
#include "runtime/executor.h"
#include "tests/unit/converted_model_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln::convert {
namespace {

using testing::AddEngineNode;
using testing::AddInferred;
using testing::Out;
using testutil::ExpectError;
using testutil::ExpectErrorMessage;

// The deterministic serialization, so that two encodings compare as bytes.
std::string Bytes(const tfproto::GraphDef& gd) { return testing::DeterministicBytes(gd); }

// ---- deep comparison ----

void ExpectSameTensor(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.dtype(), b.dtype()) << what;
  if (a.dtype() == DType::kInvalid) return;
  ASSERT_EQ(a.shape(), b.shape()) << what;
  if (a.dtype() == DType::kString) {
    EXPECT_EQ(a.strings(), b.strings()) << what;
    return;
  }
  ASSERT_EQ(a.byte_size(), b.byte_size()) << what;
  if (a.byte_size()) {
    EXPECT_EQ(std::memcmp(a.raw_data(), b.raw_data(), a.byte_size()), 0) << what;
  }
}

void ExpectSameGraph(const ir::Graph& a, const ir::Graph& b, const std::string& where);

void ExpectSameAttr(const ir::AttrValue& a, const ir::AttrValue& b, const std::string& what) {
  ASSERT_EQ(a.index(), b.index()) << what << ": attribute type differs";
  if (const auto* d = std::get_if<double>(&a)) {
    const double e = std::get<double>(b);
    EXPECT_EQ(std::memcmp(d, &e, sizeof(double)), 0) << what;  // bit-exact, NaN and -0 included
  } else if (const auto* v = std::get_if<std::vector<double>>(&a)) {
    const auto& w = std::get<std::vector<double>>(b);
    ASSERT_EQ(v->size(), w.size()) << what;
    if (!v->empty()) {
      EXPECT_EQ(std::memcmp(v->data(), w.data(), v->size() * sizeof(double)), 0) << what;
    }
  } else if (const auto* t = std::get_if<Tensor>(&a)) {
    ExpectSameTensor(*t, std::get<Tensor>(b), what);
  } else if (const auto* g = std::get_if<std::shared_ptr<ir::Graph>>(&a)) {
    const auto& h = std::get<std::shared_ptr<ir::Graph>>(b);
    ASSERT_EQ(*g == nullptr, h == nullptr) << what;
    if (*g) ExpectSameGraph(**g, *h, what);
  } else {
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (!std::is_same_v<T, Tensor> && !std::is_same_v<T, std::shared_ptr<ir::Graph>>) {
            EXPECT_TRUE(x == std::get<T>(b)) << what;
          }
        },
        a);
  }
}

std::string ValueKey(const ir::Graph& g, ir::ValueId id) {
  const ir::Value& v = g.value(id);
  if (v.producer == ir::kNoNode) {
    for (size_t i = 0; i < g.inputs().size(); ++i)
      if (g.inputs()[i] == id) return "input#" + std::to_string(i);
    return "dangling";
  }
  return g.node(v.producer).name + ":" + std::to_string(v.output_index);
}

void ExpectSameValue(const ir::Graph& a, ir::ValueId va, const ir::Graph& b, ir::ValueId vb, const std::string& what) {
  const ir::Value& x = a.value(va);
  const ir::Value& y = b.value(vb);
  EXPECT_EQ(x.name, y.name) << what;
  EXPECT_EQ(x.dtype, y.dtype) << what;
  EXPECT_EQ(x.shape.rank_known, y.shape.rank_known) << what;
  EXPECT_EQ(x.shape.dims, y.shape.dims) << what;  // same symbol ids (created in the same order)
  for (size_t d = 0; d < x.shape.dims.size() && d < y.shape.dims.size(); ++d) {
    const ir::Dim dim = x.shape.dims[d];
    if (dim <= ir::kFirstSymbol) {
      // Same symbol name, through whichever table knows it (branches use their parent's).
      std::string na, nb;
      try {
        na = a.SymbolName(dim);
        nb = b.SymbolName(y.shape.dims[d]);
      } catch (const std::out_of_range&) {
      }
      EXPECT_EQ(na, nb) << what;
    }
  }
  ASSERT_EQ(x.constant == nullptr, y.constant == nullptr) << what << ": constant presence";
  if (x.constant) ExpectSameTensor(*x.constant, *y.constant, what + " constant");
}

void ExpectSameGraph(const ir::Graph& a, const ir::Graph& b, const std::string& where) {
  ASSERT_EQ(a.input_names(), b.input_names()) << where;
  for (size_t i = 0; i < a.inputs().size(); ++i)
    ExpectSameValue(a, a.inputs()[i], b, b.inputs()[i], where + " input " + a.input_names()[i]);
  const std::vector<ir::NodeId> oa = a.TopologicalOrder(), ob = b.TopologicalOrder();
  ASSERT_EQ(oa.size(), ob.size()) << where;
  for (size_t k = 0; k < oa.size(); ++k) {
    const ir::Node& x = a.node(oa[k]);
    const ir::Node& y = b.node(ob[k]);
    const std::string what = where + " node " + x.name;
    EXPECT_EQ(x.name, y.name) << what;
    EXPECT_EQ(x.op, y.op) << what;
    EXPECT_EQ(x.source_op, y.source_op) << what;
    ASSERT_EQ(x.inputs.size(), y.inputs.size()) << what;
    for (size_t i = 0; i < x.inputs.size(); ++i) EXPECT_EQ(ValueKey(a, x.inputs[i]), ValueKey(b, y.inputs[i])) << what;
    ASSERT_EQ(x.outputs.size(), y.outputs.size()) << what;
    for (size_t i = 0; i < x.outputs.size(); ++i)
      ExpectSameValue(a, x.outputs[i], b, y.outputs[i], what + " output " + std::to_string(i));
    ASSERT_EQ(x.attrs.all().size(), y.attrs.all().size()) << what;
    for (const auto& [name, value] : x.attrs.all()) {
      auto it = y.attrs.all().find(name);
      ASSERT_NE(it, y.attrs.all().end()) << what << " attr " << name;
      ExpectSameAttr(value, it->second, what + " attr " + name);
    }
  }
  ASSERT_EQ(a.output_names(), b.output_names()) << where;
  for (size_t i = 0; i < a.outputs().size(); ++i)
    EXPECT_EQ(ValueKey(a, a.outputs()[i]), ValueKey(b, b.outputs()[i])) << where << " output " << a.output_names()[i];
}

ir::Graph RoundTrip(const ir::Graph& g) {
  const tfproto::GraphDef gd = EncodeIrGraph(g);
  // Through the wire format, as saved_model.pb would be.
  tfproto::GraphDef parsed;
  EXPECT_TRUE(parsed.ParseFromString(Bytes(gd)));
  ir::Graph back = DecodeIrGraph(parsed);
  // Deterministic and stable: encoding the decoded graph gives the same bytes.
  EXPECT_EQ(Bytes(EncodeIrGraph(back)), Bytes(gd));
  EXPECT_EQ(Bytes(EncodeIrGraph(g)), Bytes(gd));
  return back;
}

void ExpectSameOutputs(std::shared_ptr<const ir::Graph> a, std::shared_ptr<const ir::Graph> b,
                       const std::vector<Tensor>& inputs) {
  runtime::ReferenceExecutor ea(std::move(a)), eb(std::move(b));
  const std::vector<Tensor> ra = ea.Run(inputs), rb = eb.Run(inputs);
  ASSERT_EQ(ra.size(), rb.size());
  for (size_t i = 0; i < ra.size(); ++i) ExpectSameTensor(ra[i], rb[i], "output " + std::to_string(i));
}

Tensor HalfTensor(const std::vector<float>& values) {
  Tensor t(DType::kFloat16, {static_cast<int64_t>(values.size())});
  for (size_t i = 0; i < values.size(); ++i) t.data<uint16_t>()[i] = Half::FromFloat(values[i]);
  return t;
}

// A graph with every attribute kind, constants of several dtypes, symbolic / unknown dims, an
// unknown-rank input, a removed node and graph outputs that are an input and a constant.
std::shared_ptr<ir::Graph> BigGraph() {
  auto g = std::make_shared<ir::Graph>();
  const ir::Dim batch = g->NewSymbol("batch");
  const ir::ValueId x = g->AddInput("x", DType::kFloat32, ir::SymShape::Of({batch, 3}));
  const ir::ValueId z = g->AddInput("z", DType::kInt64, ir::SymShape::Unknown());
  const ir::ValueId w = g->AddInput("w/with:odd chars", DType::kBool, ir::SymShape::Of({ir::kUnknownDim, 2}));

  const ir::ValueId c_f32 = g->AddConstant("c/f32", Tensor::FromVector<float>(DType::kFloat32, {3}, {0.5f, -1.25f, 3.0f}));
  const ir::ValueId c_i64 =
      g->AddConstant("c/i64", Tensor::FromVector<int64_t>(DType::kInt64, {2}, {std::numeric_limits<int64_t>::min(), 42}));
  const ir::ValueId c_bool = g->AddConstant("c/bool", Tensor::FromVector<uint8_t>(DType::kBool, {2, 1}, {1, 0}));
  const ir::ValueId c_half = g->AddConstant("c/half", HalfTensor({1.5f, -0.0f, 65504.0f}));
  Tensor strings(DType::kString, {2});
  strings.strings() = {"hello", std::string("a\0b\xff", 4)};
  const ir::ValueId c_str = g->AddConstant("c/str", strings);
  g->AddConstant("c/empty", Tensor(DType::kFloat32, {0, 3}));
  g->AddConstant("c/scalar", Tensor::Scalar<double>(DType::kFloat64, -1e-300));

  const ir::NodeId add = AddInferred(*g, "Add", "add", {x, c_f32});
  g->node(add).source_op = "AddV2";
  ir::AttrMap lrelu_attrs;
  lrelu_attrs.Set("alpha", 0.1);  // not representable as a float: must come back exactly
  const ir::NodeId lrelu = AddInferred(*g, "LeakyRelu", "lrelu", {Out(*g, add)}, lrelu_attrs);

  auto side = std::make_shared<ir::Graph>();
  side->AddOutput("k", side->AddConstant("k", Tensor::Scalar<int32_t>(DType::kInt32, 7)));
  ir::AttrMap all;
  all.Set("i", int64_t{-7});
  all.Set("b_true", true);
  all.Set("b_false", false);
  static constexpr char kBytes[] = "text with \0 nul and \xfe bytes";
  all.Set("s", std::string(kBytes, sizeof(kBytes) - 1));
  all.Set("s_empty", std::string());
  all.Set("type", DType::kBFloat16);
  all.Set("type_invalid", DType::kInvalid);
  all.Set("ints", std::vector<int64_t>{1, -2, 3000000000000});
  all.Set("ints_empty", std::vector<int64_t>{});
  all.Set("strs", std::vector<std::string>{"a", "", "c"});
  all.Set("strs_empty", std::vector<std::string>{});
  all.Set("types", std::vector<DType>{DType::kFloat16, DType::kInt8});
  all.Set("types_empty", std::vector<DType>{});
  all.Set("f", 1.0 / 3.0);
  all.Set("f_nan", std::numeric_limits<double>::quiet_NaN());
  all.Set("f_negzero", -0.0);
  all.Set("f_inf", -std::numeric_limits<double>::infinity());
  all.Set("fs", std::vector<double>{0.1, 1e308, -5e-324});
  all.Set("fs_empty", std::vector<double>{});
  all.Set("tensor", HalfTensor({2.0f, 0.5f}));
  all.Set("tensor_str", strings);
  all.Set("tensor_undefined", Tensor());
  all.Set("graph", side);
  all.Set("graph_null", std::shared_ptr<ir::Graph>());
  const ir::NodeId ident = AddInferred(*g, "Identity", "ident", {Out(*g, lrelu)}, all);

  ir::AttrMap cast_attrs;
  cast_attrs.Set("to", DType::kFloat32);
  const ir::NodeId cast = AddInferred(*g, "Cast", "cast_half", {c_half}, cast_attrs);
  const ir::NodeId add2 = AddInferred(*g, "Add", "add2", {Out(*g, ident), Out(*g, cast)});
  // A non-Constant node whose output is a known constant (shape of a static tensor).
  const ir::NodeId shape = AddInferred(*g, "Shape", "shape", {c_f32});
  EXPECT_NE(g->ConstantOf(Out(*g, shape)), nullptr);
  const ir::NodeId zid = AddInferred(*g, "Identity", "z_id", {z});
  const ir::NodeId wid = AddInferred(*g, "Identity", "w_id", {w});
  const ir::NodeId bid = AddInferred(*g, "Identity", "bool_id", {c_bool});
  const ir::NodeId sid = AddInferred(*g, "Identity", "str_id", {c_str});
  // A removed node: not written, not decoded.
  const ir::NodeId dead = AddInferred(*g, "Identity", "dead", {x});
  g->node(dead).removed = true;

  g->AddOutput("out", Out(*g, add2));
  g->AddOutput("x_passthrough", x);
  g->AddOutput("int_const", c_i64);
  g->AddOutput("out_again", Out(*g, add2));
  g->AddOutput("shape", Out(*g, shape));
  g->AddOutput("z", Out(*g, zid));
  g->AddOutput("w", Out(*g, wid));
  g->AddOutput("bools", Out(*g, bid));
  g->AddOutput("strs", Out(*g, sid));
  return g;
}

std::vector<Tensor> BigInputs() {
  return {Tensor::FromVector<float>(DType::kFloat32, {2, 3}, {1, -2, 3, -4, 5, -6}),
          Tensor::FromVector<int64_t>(DType::kInt64, {3}, {7, 8, 9}),
          Tensor::FromVector<uint8_t>(DType::kBool, {1, 2}, {1, 0})};
}

TEST(IrCodec, RoundTripsEveryAttributeKindConstantsAndShapes) {
  auto g = BigGraph();
  ir::Verify(*g);
  auto back = std::make_shared<ir::Graph>(RoundTrip(*g));
  ExpectSameGraph(*g, *back, "graph");
  EXPECT_EQ(back->NumLiveNodes(), g->NumLiveNodes());
  EXPECT_EQ(back->nodes().size(), g->NumLiveNodes());  // the removed node is gone
  ir::Verify(*back);
  // The symbol survives by name.
  const ir::Dim d = back->value(back->inputs()[0]).shape.dims[0];
  EXPECT_EQ(back->SymbolName(d), "batch");
  // Constants are reachable as AddConstant makes them: value and attribute share the tensor.
  const ir::Value& c = back->value(back->node(0).outputs[0]);
  ASSERT_NE(c.constant, nullptr);
  EXPECT_EQ(c.constant->raw_data(), back->node(0).attrs.Get<Tensor>("value").raw_data());
  ExpectSameOutputs(g, back, BigInputs());
}

TEST(IrCodec, EncodingFollowsTheDocumentedScheme) {
  auto g = BigGraph();
  const tfproto::GraphDef gd = EncodeIrGraph(*g);
  std::map<std::string, const tfproto::NodeDef*> nodes;
  for (const auto& n : gd.node()) nodes[n.name()] = &n;
  ASSERT_TRUE(nodes.count("x"));
  const tfproto::NodeDef& x = *nodes["x"];
  EXPECT_EQ(x.op(), "Placeholder");
  EXPECT_EQ(x.attr().at("dtype").type(), 1);
  EXPECT_EQ(x.attr().at("_kiln_input_index").i(), 0);
  EXPECT_EQ(x.attr().at("shape").shape().dim(0).size(), -1);
  EXPECT_EQ(x.attr().at("shape").shape().dim(0).name(), "batch");
  EXPECT_EQ(x.attr().at("shape").shape().dim(1).size(), 3);
  EXPECT_TRUE(nodes["z"]->attr().at("shape").shape().unknown_rank());
  const tfproto::NodeDef& add = *nodes["add"];
  EXPECT_EQ(add.op(), "Add");
  ASSERT_EQ(add.input_size(), 2);
  EXPECT_EQ(add.input(0), "x:0");
  EXPECT_EQ(add.input(1), "c/f32:0");
  EXPECT_EQ(add.attr().at("_kiln_source_op").s(), "AddV2");
  EXPECT_EQ(add.attr().at("_kiln_output_dtypes").list().type(0), 1);
  EXPECT_EQ(add.attr().at("_kiln_output_shapes").list().shape(0).dim(0).name(), "batch");
  const tfproto::NodeDef& ident = *nodes["ident"];
  EXPECT_EQ(ident.attr().at("i").i(), -7);
  EXPECT_EQ(ident.attr().at("ints").list().i_size(), 3);
  EXPECT_EQ(ident.attr().at("f").tensor().dtype(), 2);  // DT_DOUBLE
  EXPECT_FALSE(ident.attr().at("graph").func().name().empty());
  EXPECT_EQ(nodes["lrelu"]->attr().at("alpha").tensor().dtype(), 2);
  EXPECT_EQ(gd.library().function_size(), 1);
  EXPECT_FALSE(nodes.count("dead"));
  int outputs = 0;
  for (const auto& n : gd.node()) outputs += n.op() == "KilnOutput";
  EXPECT_EQ(outputs, 9);
  EXPECT_EQ(EncodedInputTensors(gd), (std::vector<std::string>{"x:0", "z:0", "w/with:odd chars:0"}));
  const auto outs = EncodedOutputTensors(gd);
  ASSERT_EQ(outs.size(), 9u);
  EXPECT_EQ(outs[0], "add2:0");
  EXPECT_EQ(outs[1], "x:0");
  EXPECT_EQ(outs[2], "c/i64:0");
}

// If with two branches; the then-branch holds a nested If whose two branches are one shared
// graph; the else-branch holds an Engine node with its segment. Branch inputs carry the parent's
// symbol (as the TF frontend makes them).
std::shared_ptr<ir::Graph> ControlFlowGraph() {
  auto g = std::make_shared<ir::Graph>();
  const ir::Dim n = g->NewSymbol("n");
  const ir::ValueId pred = g->AddInput("pred", DType::kBool, ir::SymShape::Scalar());
  const ir::ValueId inner_pred = g->AddInput("inner_pred", DType::kBool, ir::SymShape::Scalar());
  const ir::ValueId v = g->AddInput("v", DType::kFloat32, ir::SymShape::Of({n}));

  auto shared = std::make_shared<ir::Graph>();
  {
    const ir::ValueId a = shared->AddInput("a", DType::kFloat32, ir::SymShape::Of({n}));
    const ir::ValueId k = shared->AddConstant("k", Tensor::Scalar<float>(DType::kFloat32, 10.0f));
    shared->AddOutput("r", Out(*shared, AddInferred(*shared, "Mul", "mul", {a, k})));
  }
  auto then_g = std::make_shared<ir::Graph>();
  {
    const ir::ValueId p = then_g->AddInput("p", DType::kBool, ir::SymShape::Scalar());
    const ir::ValueId a = then_g->AddInput("a", DType::kFloat32, ir::SymShape::Of({n}));
    ir::AttrMap attrs;
    attrs.Set("then_branch", shared);
    attrs.Set("else_branch", shared);
    then_g->AddOutput("r", Out(*then_g, AddInferred(*then_g, "If", "inner_if", {p, a}, attrs)));
  }
  auto else_g = std::make_shared<ir::Graph>();
  {
    else_g->AddInput("p", DType::kBool, ir::SymShape::Scalar());
    const ir::ValueId a = else_g->AddInput("a", DType::kFloat32, ir::SymShape::Of({n}));
    auto segment = std::make_shared<ir::Graph>();
    const ir::Dim sn = segment->NewSymbol("seg.n");
    const ir::ValueId s_in = segment->AddInput("a", DType::kFloat32, ir::SymShape::Of({sn}));
    const ir::ValueId one = segment->AddConstant("one", Tensor::Scalar<float>(DType::kFloat32, 1.0f));
    const ir::NodeId sub = AddInferred(*segment, "Sub", "sub", {s_in, one});
    segment->AddOutput("r", Out(*segment, AddInferred(*segment, "Relu", "relu", {Out(*segment, sub)})));
    const ir::NodeId eid = AddEngineNode(*else_g, "engine", "KilnEngineOp_000", a, segment, ir::SymShape::Of({n}));
    else_g->node(eid).source_op = "KilnEngineOp";
    else_g->AddOutput("r", Out(*else_g, eid));
  }
  ir::AttrMap attrs;
  attrs.Set("then_branch", then_g);
  attrs.Set("else_branch", else_g);
  const ir::NodeId outer = AddInferred(*g, "If", "outer_if", {pred, inner_pred, v}, attrs);
  g->AddOutput("y", Out(*g, outer));
  return g;
}

TEST(IrCodec, RoundTripsIfBranchesNestedSubgraphsAndEngines) {
  auto g = ControlFlowGraph();
  ir::Verify(*g);
  const tfproto::GraphDef gd = EncodeIrGraph(*g);
  EXPECT_EQ(gd.library().function_size(), 4);  // then, else, the shared inner branch, the segment
  bool engine_op = false;
  for (const auto& f : gd.library().function())
    for (const auto& n : f.node_def()) engine_op = engine_op || n.op() == "KilnEngineOp";
  EXPECT_TRUE(engine_op);

  auto back = std::make_shared<ir::Graph>(RoundTrip(*g));
  ExpectSameGraph(*g, *back, "graph");
  ir::Verify(*back);
  // The shared branch stays one graph object; the engine node's op is the IR op again.
  const ir::Node& outer = back->node(0);
  const auto& then_g = outer.attrs.Get<std::shared_ptr<ir::Graph>>("then_branch");
  const auto& inner = then_g->node(0);
  EXPECT_EQ(inner.attrs.Get<std::shared_ptr<ir::Graph>>("then_branch"),
            inner.attrs.Get<std::shared_ptr<ir::Graph>>("else_branch"));
  const auto& else_g = outer.attrs.Get<std::shared_ptr<ir::Graph>>("else_branch");
  EXPECT_EQ(else_g->node(0).op, "Engine");
  const auto& segment = else_g->node(0).attrs.Get<std::shared_ptr<ir::Graph>>("segment");
  EXPECT_EQ(segment->SymbolName(segment->value(segment->inputs()[0]).shape.dims[0]), "seg.n");

  const Tensor v = Tensor::FromVector<float>(DType::kFloat32, {3}, {0.5f, 2.0f, -1.0f});
  for (bool p : {true, false})
    for (bool q : {true, false})
      ExpectSameOutputs(g, back, {Tensor::Scalar<bool>(DType::kBool, p), Tensor::Scalar<bool>(DType::kBool, q), v});
}

TEST(IrCodec, DecodesOpsUnknownToThisBuildWithoutShapeInference) {
  ir::Graph g;
  const ir::ValueId x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of({4}));
  ir::Node& n = g.AddNode("FancyFutureOp", "future", {x, x}, 2);
  n.attrs.Set("mode", std::string("fast"));
  const std::vector<ir::ValueId> outs = n.outputs;
  g.value(outs[0]).dtype = DType::kFloat16;
  g.value(outs[0]).shape = ir::SymShape::Of({2, ir::kUnknownDim});
  g.value(outs[1]).dtype = DType::kInt32;  // shape left unknown
  g.AddOutput("a", outs[0]);
  g.AddOutput("b", outs[1]);
  ir::Graph back = RoundTrip(g);
  ExpectSameGraph(g, back, "graph");
}

TEST(IrCodec, NamesThatCollideGetUniquePlaceholderAndOutputNodes) {
  ir::Graph g;
  const ir::ValueId x = g.AddInput("same", DType::kFloat32, ir::SymShape::Of({2}));
  const ir::NodeId id = AddInferred(g, "Identity", "same", {x});
  const ir::NodeId out = AddInferred(g, "Identity", "kiln_output/y", {Out(g, id)});
  g.AddOutput("y", Out(g, out));
  const tfproto::GraphDef gd = EncodeIrGraph(g);
  EXPECT_EQ(EncodedInputTensors(gd), (std::vector<std::string>{"same_1:0"}));
  ir::Graph back = RoundTrip(g);
  ExpectSameGraph(g, back, "graph");
  EXPECT_EQ(back.input_names(), (std::vector<std::string>{"same"}));
}

TEST(IrCodec, EmptyGraphRoundTrips) {
  ir::Graph g;
  ir::Graph back = RoundTrip(g);
  EXPECT_EQ(back.nodes().size(), 0u);
  EXPECT_TRUE(back.inputs().empty());
  EXPECT_TRUE(back.outputs().empty());
}

TEST(IrCodec, EncoderRejectsWhatItCannotRepresent) {
  {
    ir::Graph g;
    const ir::ValueId x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of({2}));
    ir::AttrMap attrs;
    attrs.Set("_kiln_mine", int64_t{1});
    AddInferred(g, "Identity", "id", {x}, attrs);
    ExpectError([&] { EncodeIrGraph(g); }, ErrorCode::kInvalidArgument, {"id"});
  }
  {
    ir::Graph g;
    const ir::ValueId x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of({2}));
    AddInferred(g, "Identity", "bad\xff name", {x});
    ExpectError([&] { EncodeIrGraph(g); }, ErrorCode::kInvalidArgument, {"UTF-8"});
  }
  {
    ir::Graph g;
    const ir::ValueId x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of({2}));
    const ir::NodeId a = AddInferred(g, "Identity", "a", {x});
    const ir::NodeId b = AddInferred(g, "Identity", "b", {Out(g, a)});
    g.AddOutput("y", Out(g, b));
    g.node(a).removed = true;  // b now reads a removed node
    ExpectErrorMessage([&] { EncodeIrGraph(g); }, {"removed"});
  }
}

// ---- malformed input ----

tfproto::NodeDef* FindNode(tfproto::GraphDef& gd, const std::string& name) {
  for (auto& n : *gd.mutable_node())
    if (n.name() == name) return &n;
  return nullptr;
}

template <typename Mutate>
void ExpectDataLoss(Mutate&& mutate, const std::string& word) {
  auto g = BigGraph();
  tfproto::GraphDef gd = EncodeIrGraph(*g);
  mutate(gd);
  ExpectError([&] { DecodeIrGraph(gd); }, ErrorCode::kDataLoss, {word});
}

TEST(IrCodec, MalformedGraphsAreDataLossNamingTheNode) {
  ExpectDataLoss([](auto& gd) { FindNode(gd, "add")->mutable_attr()->erase("_kiln_output_dtypes"); }, "'add'");
  ExpectDataLoss([](auto& gd) { FindNode(gd, "add")->mutable_attr()->erase("_kiln_output_shapes"); }, "'add'");
  ExpectDataLoss([](auto& gd) { FindNode(gd, "add")->set_input(1, "nope:0"); }, "'add'");
  ExpectDataLoss([](auto& gd) { FindNode(gd, "add")->set_input(1, "c/f32:5"); }, "'add'");
  ExpectDataLoss([](auto& gd) { FindNode(gd, "add")->set_input(1, "^c/f32"); }, "control input");
  ExpectDataLoss([](auto& gd) { FindNode(gd, "add")->set_input(1, "add2:0"); }, "cycle");
  ExpectDataLoss([](auto& gd) { FindNode(gd, "add")->set_input(1, "kiln_output/out:0"); }, "'add'");
  ExpectDataLoss([](auto& gd) { FindNode(gd, "add")->set_op(""); }, "'add'");
  ExpectDataLoss(
      [](auto& gd) { (*FindNode(gd, "c/f32")->mutable_attr())["value"].mutable_tensor()->set_tensor_content("abc"); },
      "'c/f32'");
  ExpectDataLoss(
      [](auto& gd) {
        // A shape asking for an absurd allocation with few bytes present.
        auto* t = (*FindNode(gd, "c/f32")->mutable_attr())["value"].mutable_tensor();
        t->mutable_tensor_shape()->mutable_dim(0)->set_size(int64_t{1} << 40);
      },
      "'c/f32'");
  ExpectDataLoss([](auto& gd) { FindNode(gd, "c/f32")->mutable_attr()->erase("value"); }, "'c/f32'");
  ExpectDataLoss(
      [](auto& gd) { (*FindNode(gd, "add")->mutable_attr())["_kiln_output_dtypes"].mutable_list()->set_type(0, 999); },
      "'add'");
  ExpectDataLoss(
      [](auto& gd) {
        (*FindNode(gd, "add")->mutable_attr())["_kiln_output_shapes"].mutable_list()->mutable_shape(0)->mutable_dim(0)->set_size(-7);
      },
      "'add'");
  ExpectDataLoss([](auto& gd) { (*FindNode(gd, "ident")->mutable_attr())["f"].set_i(3); }, "'ident'");
  ExpectDataLoss([](auto& gd) { (*FindNode(gd, "ident")->mutable_attr())["odd"].set_f(1.0f); }, "'ident'");
  ExpectDataLoss([](auto& gd) { (*FindNode(gd, "ident")->mutable_attr())["graph"].mutable_func()->set_name("missing"); },
                 "missing");
  ExpectDataLoss([](auto& gd) { *gd.add_node() = *FindNode(gd, "add"); }, "two nodes are named 'add'");
  ExpectDataLoss([](auto& gd) { (*FindNode(gd, "x")->mutable_attr())["_kiln_input_index"].set_i(7); }, "'x'");
  ExpectDataLoss([](auto& gd) { FindNode(gd, "z")->mutable_attr()->erase("_kiln_input_index"); }, "'z'");
  ExpectDataLoss([](auto& gd) { (*FindNode(gd, "kiln_output/out")->mutable_attr())["_kiln_output_index"].set_i(1); },
                 "twice");
  ExpectDataLoss([](auto& gd) { FindNode(gd, "kiln_output/out")->add_input("x:0"); }, "kiln_output/out");
  // A function that contains itself.
  ExpectDataLoss(
      [](auto& gd) {
        auto* f = gd.mutable_library()->mutable_function(0);
        tfproto::NodeDef* n = f->add_node_def();
        n->set_name("loop");
        n->set_op("Identity");
        (*n->mutable_attr())["_kiln_output_dtypes"].mutable_list();
        (*n->mutable_attr())["_kiln_output_shapes"].mutable_list();
        (*n->mutable_attr())["g"].mutable_func()->set_name(f->signature().name());
      },
      "contains itself");
}

// Random byte corruption of a serialized graph: the decoder either succeeds or throws a
// kiln::Error, and never crashes or allocates absurdly.
TEST(IrCodec, CorruptBytesNeverCrash) {
  auto g = ControlFlowGraph();
  const std::string bytes = Bytes(EncodeIrGraph(*BigGraph()));
  const std::string cf = Bytes(EncodeIrGraph(*g));
  google::protobuf::LogSilencer quiet;  // parse errors about invalid UTF-8 are expected
  std::mt19937 rng(1234);
  int decoded = 0, errors = 0;
  for (const std::string* src : {&bytes, &cf}) {
    for (int iter = 0; iter < 1500; ++iter) {
      std::string b = *src;
      const int flips = 1 + static_cast<int>(rng() % 3);
      for (int k = 0; k < flips; ++k) b[rng() % b.size()] ^= static_cast<char>(1 + rng() % 255);
      tfproto::GraphDef gd;
      if (!gd.ParseFromString(b)) continue;
      try {
        ir::Graph back = DecodeIrGraph(gd);
        ++decoded;
      } catch (const Error&) {
        ++errors;
      }
    }
  }
  EXPECT_GT(decoded + errors, 0);
}

}  // namespace
}  // namespace kiln::convert
