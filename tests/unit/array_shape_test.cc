// Array family: reshapes, permutes, joins/splits, tiles, broadcasts, shape queries, generators.
#include "tests/unit/array_test_util.h"
#include "tests/unit/cpu_test_util.h"

namespace kiln {
namespace {

using namespace array_test;
using ir::SymShape;

// ---- Reshape ----

TEST(ArrayReshape, MinusOne) {
  auto r = RunOp("Reshape", {Iota({2, 3}), Vec({3, -1})});
  ExpectTensor(r->outputs[0], DType::kFloat32, {3, 2}, {0, 1, 2, 3, 4, 5});
  EXPECT_EQ(ShapeOf(*r), "[3,2]");  // constant target: static shape
  r = RunOp("Reshape", {Iota({2, 3}), Vec({-1})}, {}, 1, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kFloat32, {6}, {0, 1, 2, 3, 4, 5});
  r = RunOp("Reshape", {Iota({2, 3, 4}), I64({2}, {-1, 4})});
  EXPECT_EQ(ShapeOf(*r), "[6,4]");
}

TEST(ArrayReshape, ZeroSized) {
  // As TensorFlow: zero dims in the target let the -1 be inferred from the other dims.
  auto r = RunOp("Reshape", {Iota({0, 6}), Vec({0, -1})});
  EXPECT_EQ(ShapeToString(r->outputs[0].shape()), "[0,6]");
  r = RunOp("Reshape", {Iota({0, 6}), Vec({-1, 3})});
  EXPECT_EQ(ShapeToString(r->outputs[0].shape()), "[0,3]");
  r = RunOp("Reshape", {Iota({2, 0}), Vec({-1})}, {}, 1, Mode::kDynamic);
  EXPECT_EQ(ShapeToString(r->outputs[0].shape()), "[0]");
}

TEST(ArrayReshape, Errors) {
  // Statically (constant target) and at run time (dynamic target) with the same message.
  ExpectError([] { RunOp("Reshape", {Iota({2, 3}), Vec({4, -1})}); }, "cannot reshape [2,3] (6 elements) to [4,-1]");
  ExpectError([] { RunOp("Reshape", {Iota({2, 3}), Vec({4, -1})}, {}, 1, Mode::kDynamic); },
              "node 'node' (Reshape): cannot reshape [2,3] (6 elements) to [4,-1]");
  ExpectError([] { RunOp("Reshape", {Iota({2, 3}), Vec({4, 2})}, {}, 1, Mode::kUnknown); }, "cannot reshape [2,3] (6 elements) to [4,2]");
  ExpectError([] { RunOp("Reshape", {Iota({2, 3}), Vec({-1, -1})}, {}, 1, Mode::kDynamic); }, "more than one -1");
}

// A BERT-style Reshape whose target is computed at run time from Shape + StridedSlice + Pack
// keeps the symbolic batch dim.
TEST(ArrayReshape, SymbolicTargetFromShape) {
  ir::Graph g;
  const ir::Dim batch = g.NewSymbol("batch");
  const ir::ValueId x = g.AddInput("x", DType::kFloat32, SymShape::Of({batch, 128, 768}));
  ir::Node& shape = g.AddNode("Shape", "shape", {x});
  ir::InferNode(g, shape.id);
  const ir::ValueId shape_out = g.node(shape.id).outputs[0];
  EXPECT_EQ(g.value(shape_out).constant, nullptr);
  EXPECT_EQ(g.ShapeToString(g.value(shape_out).shape), "[3]");
  const ir::ValueId b = g.AddConstant("b", Vec({0})), e = g.AddConstant("e", Vec({1})), s = g.AddConstant("s", Vec({1}));
  ir::Node& ss = g.AddNode("StridedSlice", "ss", {shape_out, b, e, s});
  ss.attrs.Set("shrink_axis_mask", int64_t{1});
  ir::InferNode(g, ss.id);
  const ir::ValueId bdim = g.node(ss.id).outputs[0];
  EXPECT_EQ(g.ShapeToString(g.value(bdim).shape), "[]");
  ir::Node& pack = g.AddNode("Pack", "pack",
                             {bdim, g.AddConstant("c128", Scalar(128)), g.AddConstant("c12", Scalar(12)), g.AddConstant("c64", Scalar(64))});
  ir::InferNode(g, pack.id);
  ir::Node& reshape = g.AddNode("Reshape", "reshape", {x, g.node(pack.id).outputs[0]});
  ir::InferNode(g, reshape.id);
  EXPECT_EQ(g.ShapeToString(g.value(g.node(reshape.id).outputs[0]).shape), g.ShapeToString(SymShape::Of({batch, 128, 12, 64})));

  // A constant target with -1: the symbol is recovered when the other dims cancel out.
  ir::Node& r2 = g.AddNode("Reshape", "r2", {x, g.AddConstant("t2", Vec({-1, 128, 768}))});
  ir::InferNode(g, r2.id);
  EXPECT_EQ(g.value(g.node(r2.id).outputs[0]).shape.dims, (std::vector<ir::Dim>{batch, 128, 768}));
  ir::Node& r3 = g.AddNode("Reshape", "r3", {x, g.AddConstant("t3", Vec({-1, 768}))});
  ir::InferNode(g, r3.id);
  EXPECT_EQ(g.value(g.node(r3.id).outputs[0]).shape.dims, (std::vector<ir::Dim>{ir::kUnknownDim, 768}));
}

// Inputs that are constant expressions not yet folded count as constants; Range(0, n, 1) keeps a
// symbolic n.
TEST(ArrayShapeInference, UnfoldedConstantsAndSymbolicRange) {
  ir::Graph g;
  const ir::Dim b = g.NewSymbol("b"), s = g.NewSymbol("s");
  const ir::ValueId x = g.AddInput("x", DType::kFloat32, SymShape::Of({b, s, 64}));
  ir::Node& perm = g.AddNode("Concat", "perm", {g.AddConstant("p0", Vec({2, 0})), g.AddConstant("p1", Vec({1})), g.AddConstant("ax", Scalar(0))});
  ir::InferNode(g, perm.id);
  ASSERT_EQ(g.value(g.node(perm.id).outputs[0]).constant, nullptr);
  ir::Node& t = g.AddNode("Transpose", "t", {x, g.node(perm.id).outputs[0]});
  ir::InferNode(g, t.id);
  EXPECT_EQ(g.value(g.node(t.id).outputs[0]).shape.dims, (std::vector<ir::Dim>{64, b, s}));

  ir::Node& shape = g.AddNode("Shape", "shape", {x});
  ir::InferNode(g, shape.id);
  ir::Node& seq = g.AddNode("Gather", "seq", {g.node(shape.id).outputs[0], g.AddConstant("i1", Scalar(1)), g.AddConstant("a0", Scalar(0))});
  ir::InferNode(g, seq.id);
  ir::Node& range = g.AddNode("Range", "range", {g.AddConstant("zero", Scalar(0)), g.node(seq.id).outputs[0], g.AddConstant("one", Scalar(1))});
  ir::InferNode(g, range.id);
  EXPECT_EQ(g.value(g.node(range.id).outputs[0]).shape.dims, (std::vector<ir::Dim>{s}));
  // Rank is constant as soon as the rank is known.
  ir::Node& rank = g.AddNode("Rank", "rank", {x});
  ir::InferNode(g, rank.id);
  ASSERT_NE(g.value(g.node(rank.id).outputs[0]).constant, nullptr);
  EXPECT_EQ(g.value(g.node(rank.id).outputs[0]).constant->IntAt(0), 3);
}

// What the ONNX importer writes for Expand (BroadcastTo to BroadcastArgs(Shape(x), target), the
// target's -1s replaced by Select(Equal(t, -1), 1, t)) and for Reshape's zeros (Select(Equal(t,
// 0), (Shape(x) ++ zeros)[:len(t)], t)) keeps the symbols: a dim is never negative, and a Select
// whose two branches agree needs no condition.
TEST(ArrayShapeInference, OnnxExpandAndReshapeWithZerosKeepSymbols) {
  ir::Graph g;
  const ir::Dim b = g.NewSymbol("b"), s = g.NewSymbol("s");
  const ir::ValueId ids = g.AddInput("ids", DType::kInt64, SymShape::Of({b, s}));
  const ir::ValueId row = g.AddInput("row", DType::kFloat32, SymShape::Of({1, s}));
  auto add = [&](const char* op, const char* name, std::vector<ir::ValueId> inputs) {
    ir::Node& n = g.AddNode(op, name, std::move(inputs));
    ir::InferNode(g, n.id);
    return g.node(n.id).outputs[0];
  };
  // Expand(row, Shape(ids)).
  const ir::ValueId target = add("Shape", "target", {ids});
  const ir::ValueId is_minus_one = add("Equal", "is_minus_one", {target, g.AddConstant("m1", Vec({-1}))});
  const ir::ValueId fixed = add("Select", "fixed", {is_minus_one, g.AddConstant("ones", Vec({1, 1})), target});
  const ir::ValueId args = add("BroadcastArgs", "args", {add("Shape", "row_shape", {row}), fixed});
  const ir::ValueId expanded = add("BroadcastTo", "expand", {row, args});
  EXPECT_EQ(g.value(expanded).shape.dims, (std::vector<ir::Dim>{b, s}));
  // Reshape(x [b, s, 384], [b, s, 12, 32] with 0 for "copy").
  const ir::ValueId x = g.AddInput("x", DType::kFloat32, SymShape::Of({b, s, 384}));
  const ir::ValueId xs = add("Shape", "xs", {x});
  const ir::ValueId want = add("Concat", "want",
                               {add("Slice", "b_dim", {xs, g.AddConstant("z", Vec({0})), g.AddConstant("one", Vec({1}))}),
                                g.AddConstant("zero_rest", Vec({0, 12, 32})), g.AddConstant("ax", Scalar(0))});
  const ir::ValueId padded = add("Concat", "padded", {xs, add("ZerosLike", "pad", {want}), g.AddConstant("ax2", Scalar(0))});
  const ir::ValueId dims =
      add("Slice", "dims", {padded, g.AddConstant("z2", Vec({0})), add("Shape", "target_len", {want})});
  const ir::ValueId is_zero = add("Equal", "is_zero", {want, g.AddConstant("zero", Vec({0}))});
  const ir::ValueId resolved = add("Select", "resolved", {is_zero, dims, want});
  EXPECT_EQ(g.value(add("Reshape", "reshape", {x, resolved})).shape.dims, (std::vector<ir::Dim>{b, s, 12, 32}));
}

// tf2onnx's einsum lowering: the batch dims of two operands' shapes joined by an elementwise Max
// (it cannot prove them equal) before the product is reshaped back: Max of a dim with itself is
// that dim, so the reshape keeps [b, 4, 128, 128] (and with it the attention scores' shape).
TEST(ArrayShapeInference, MaxOfEqualDimsKeepsTheSymbol) {
  ir::Graph g;
  const ir::Dim b = g.NewSymbol("b");
  auto add = [&](const char* op, const char* name, std::vector<ir::ValueId> inputs) {
    ir::Node& n = g.AddNode(op, name, std::move(inputs));
    ir::InferNode(g, n.id);
    return g.node(n.id).outputs[0];
  };
  const ir::ValueId q = g.AddInput("q", DType::kFloat32, SymShape::Of({b, 4, 128, 16}));
  const ir::ValueId k = g.AddInput("k", DType::kFloat32, SymShape::Of({b, 4, 128, 16}));
  const ir::ValueId product = g.AddInput("product", DType::kFloat32, SymShape::Of({ir::kUnknownDim, 128, 128}));
  const ir::ValueId batch_axes = g.AddConstant("batch_axes", Vec({0, 1}));
  const ir::ValueId qb = add("Gather", "qb", {add("Shape", "qs", {q}), batch_axes, g.AddConstant("a0", Scalar(0))});
  const ir::ValueId kb = add("Gather", "kb", {add("Shape", "ks", {k}), batch_axes, g.AddConstant("a1", Scalar(0))});
  const ir::ValueId batch = add("Maximum", "batch", {qb, kb});
  const ir::ValueId target = add("Concat", "target", {batch, g.AddConstant("rest", Vec({128, 128})), g.AddConstant("ax", Scalar(0))});
  EXPECT_EQ(g.value(add("Reshape", "scores", {product, target})).shape.dims, (std::vector<ir::Dim>{b, 4, 128, 128}));
  // A maximum with a constant no dim is below is the dim; other maxima stay unknown.
  const ir::ValueId floor0 = add("Maximum", "floor0", {qb, g.AddConstant("zeros", Vec({0, 0}))});
  const ir::ValueId floor1 = add("Maximum", "floor1", {qb, g.AddConstant("ones", Vec({1, 1}))});
  const ir::ValueId t0 = add("Concat", "t0", {floor0, g.AddConstant("rest0", Vec({128, 128})), g.AddConstant("ax0", Scalar(0))});
  const ir::ValueId t1 = add("Concat", "t1", {floor1, g.AddConstant("rest1", Vec({128, 128})), g.AddConstant("ax1", Scalar(0))});
  EXPECT_EQ(g.value(add("Reshape", "r0", {product, t0})).shape.dims, (std::vector<ir::Dim>{b, 4, 128, 128}));
  EXPECT_EQ(g.value(add("Reshape", "r1", {product, t1})).shape.dims,
            (std::vector<ir::Dim>{ir::kUnknownDim, 4, 128, 128}));
}

// ---- Transpose ----

TEST(ArrayTranspose, Values) {
  auto r = RunOp("Transpose", {Iota({2, 3}), Vec({1, 0})});
  ExpectTensor(r->outputs[0], DType::kFloat32, {3, 2}, {0, 3, 1, 4, 2, 5});
  r = RunOp("Transpose", {Iota({2, 3}), Vec({-1, 0})}, {}, 1, Mode::kDynamic);  // negative perm entries count from the end
  ExpectTensor(r->outputs[0], DType::kFloat32, {3, 2}, {0, 3, 1, 4, 2, 5});
  r = RunOp("Transpose", {Iota({2, 3, 4}), I64({3}, {2, 0, 1})});
  ExpectTensor(r->outputs[0], DType::kFloat32, {4, 2, 3},
               {0, 4, 8, 12, 16, 20, 1, 5, 9, 13, 17, 21, 2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23});
  ExpectError([] { RunOp("Transpose", {Iota({2, 3}), Vec({0, 0})}, {}, 1, Mode::kDynamic); }, "is not a permutation");
  ExpectError([] { RunOp("Transpose", {Iota({2, 3}), Vec({0, 1, 2})}); }, "perm has 3 entries but the input has rank 2");
}

// ---- Concat / Pack / Unpack / Split ----

TEST(ArrayConcat, Axes) {
  auto r = RunOp("Concat", {Iota({2, 2}), F32({2, 1}, {10, 11}), Scalar(1)}, {}, 1, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 3}, {0, 1, 10, 2, 3, 11});
  ir::Graph g;
  const ir::Dim b = g.NewSymbol("b");
  const ir::ValueId x = g.AddInput("x", DType::kFloat32, SymShape::Of({b, 2}));
  const ir::ValueId y = g.AddInput("y", DType::kFloat32, SymShape::Of({b, 3}));
  ir::Node& n = g.AddNode("Concat", "c", {x, y, g.AddConstant("axis", Scalar(-1))});
  ir::InferNode(g, n.id);
  EXPECT_EQ(g.value(g.node(n.id).outputs[0]).shape.dims, (std::vector<ir::Dim>{b, 5}));
  ExpectError([] { RunOp("Concat", {Iota({2, 2}), Iota({3, 1}), Scalar(1)}, {}, 1, Mode::kDynamic); }, "does not match input 0");
}

TEST(ArrayPack, AxisAndUnpack) {
  auto r = RunOp("Pack", {F32({2}, {1, 2}), F32({2}, {3, 4})}, Attrs({{"axis", int64_t{0}}}), 1, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 2}, {1, 2, 3, 4});
  r = RunOp("Pack", {F32({2}, {1, 2}), F32({2}, {3, 4})}, Attrs({{"axis", int64_t{-1}}}), 1, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 2}, {1, 3, 2, 4});
  r = RunOp("Unpack", {Iota({2, 3})}, Attrs({{"axis", int64_t{1}}}), 3);
  ExpectTensor(r->outputs[0], DType::kFloat32, {2}, {0, 3});
  ExpectTensor(r->outputs[2], DType::kFloat32, {2}, {2, 5});
  ExpectError([] { RunOp("Unpack", {Iota({2, 3})}, Attrs({{"axis", int64_t{1}}}), 2); }, "but the node has 2 outputs");
}

TEST(ArraySplit, EvenAndSizes) {
  auto r = RunOp("Split", {Iota({2, 4}), Scalar(1)}, {}, 2);
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 2}, {0, 1, 4, 5});
  ExpectTensor(r->outputs[1], DType::kFloat32, {2, 2}, {2, 3, 6, 7});
  // SplitV with one -1 size.
  r = RunOp("Split", {Iota({2, 4}), Scalar(-1), Vec({1, -1})}, {}, 2);
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 1}, {0, 4});
  ExpectTensor(r->outputs[1], DType::kFloat32, {2, 3}, {1, 2, 3, 5, 6, 7});
  EXPECT_EQ(ShapeOf(*r, 1), "[2,3]");
  r = RunOp("Split", {Iota({2, 4}), Scalar(1), Vec({3, 0, 1})}, {}, 3, Mode::kDynamic);
  EXPECT_EQ(ShapeToString(r->outputs[1].shape()), "[2,0]");
  ExpectTensor(r->outputs[2], DType::kFloat32, {2, 1}, {3, 7});
  ExpectError([] { RunOp("Split", {Iota({2, 4}), Scalar(1)}, {}, 3, Mode::kDynamic); }, "is not divisible by num_split 3");
  ExpectError([] { RunOp("Split", {Iota({2, 4}), Scalar(1), Vec({1, 1})}, {}, 2, Mode::kDynamic); }, "must sum to dimension 1");
}

// ---- Squeeze / ExpandDims / Tile / BroadcastTo ----

TEST(ArraySqueeze, AxesAndExpandDims) {
  auto r = RunOp("Squeeze", {Iota({1, 2, 1, 3})});
  EXPECT_EQ(ShapeToString(r->outputs[0].shape()), "[2,3]");
  r = RunOp("Squeeze", {Iota({1, 2, 1, 3})}, Attrs({{"axes", std::vector<int64_t>{-2}}}));
  EXPECT_EQ(ShapeToString(r->outputs[0].shape()), "[1,2,3]");
  ExpectError([] { RunOp("Squeeze", {Iota({1, 2})}, Attrs({{"axes", std::vector<int64_t>{1}}})); }, "expected size 1, got 2");
  r = RunOp("ExpandDims", {Iota({2, 3}), Scalar(-1)});
  EXPECT_EQ(ShapeToString(r->outputs[0].shape()), "[2,3,1]");
  r = RunOp("ExpandDims", {Iota({2, 3}), Scalar(0)}, {}, 1, Mode::kDynamic);
  EXPECT_EQ(ShapeToString(r->outputs[0].shape()), "[1,2,3]");
}

TEST(ArrayTile, Multiples) {
  auto r = RunOp("Tile", {I32({2, 2}, {1, 2, 3, 4}), Vec({1, 2})});
  ExpectTensor(r->outputs[0], DType::kInt32, {2, 4}, {1, 2, 1, 2, 3, 4, 3, 4});
  r = RunOp("Tile", {I32({2, 2}, {1, 2, 3, 4}), Vec({2, 1})}, {}, 1, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kInt32, {4, 2}, {1, 2, 3, 4, 1, 2, 3, 4});
  // Found by the ONNX fuzzer under UBSan: shape inference multiplied a dim by its multiple
  // without checking, so 2 * 2^62 overflowed before the kernel's own check.
  ExpectError([] { RunOp("Tile", {I32({2, 2}, {1, 2, 3, 4}), I64({2}, {int64_t{1} << 62, 4})}); }, "overflows int64");
}

TEST(ArrayReshape, ATargetWhoseDimsOverflowIsAnError) {
  // Found by the ONNX fuzzer under UBSan: with a -1 and a symbolic input, shape inference
  // multiplied the target's dims without checking.
  cputest::Builder b;
  const ir::ValueId x = b.Input("x", {b.Symbol("n"), 4});
  const ir::ValueId target = b.Const("t", I64({3}, {-1, int64_t{1} << 62, 4}));
  try {
    b.Op("Reshape", "r", {x, target});
    ADD_FAILURE() << "an overflowing target shape was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("overflows int64"), std::string::npos) << e.what();
  }
}

TEST(ArrayBroadcast, ToAndArgs) {
  auto r = RunOp("BroadcastTo", {F32({3}, {1, 2, 3}), Vec({2, 3})});
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 3}, {1, 2, 3, 1, 2, 3});
  r = RunOp("BroadcastTo", {F32({2, 1}, {1, 2}), Vec({2, 3})}, {}, 1, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 3}, {1, 1, 1, 2, 2, 2});
  ExpectError([] { RunOp("BroadcastTo", {F32({3}, {1, 2, 3}), Vec({2, 4})}, {}, 1, Mode::kDynamic); },
              "cannot broadcast a tensor of shape [3] to shape [2,4]");
  r = RunOp("BroadcastArgs", {Vec({5, 1, 3}), Vec({4, 1})}, {}, 1, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kInt32, {3}, {5, 4, 3});
  ExpectError([] { RunOp("BroadcastArgs", {Vec({2}), Vec({3})}, {}, 1, Mode::kDynamic); }, "incompatible shapes: [2] vs. [3]");
}

// ---- Shape / Size / Rank ----

TEST(ArrayShapeOps, ConstantWhenStatic) {
  auto r = RunOp("Shape", {Iota({2, 3})});
  ASSERT_NE(r->out().constant, nullptr);
  EXPECT_EQ(Ints(*r->out().constant), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(r->out().dtype, DType::kInt32);
  ExpectTensor(r->outputs[0], DType::kInt32, {2}, {2, 3});
  r = RunOp("Shape", {Iota({2, 3})}, Attrs({{"out_type", DType::kInt64}}));
  ExpectTensor(*r->out().constant, DType::kInt64, {2}, {2, 3});
  r = RunOp("Size", {Iota({2, 3})});
  ExpectTensor(*r->out().constant, DType::kInt32, {}, {6});
  r = RunOp("Rank", {Iota({2, 3})});
  ExpectTensor(*r->out().constant, DType::kInt32, {}, {2});
  // Unknown dims: not constant, run-time values.
  r = RunOp("Shape", {Iota({4, 5})}, {}, 1, Mode::kUnknown);
  EXPECT_EQ(r->out().constant, nullptr);
  ExpectTensor(r->outputs[0], DType::kInt32, {2}, {4, 5});
  r = RunOp("Size", {Iota({4, 5})}, Attrs({{"out_type", DType::kInt64}}), 1, Mode::kUnknown);
  EXPECT_EQ(r->out().constant, nullptr);
  ExpectTensor(r->outputs[0], DType::kInt64, {}, {20});
}

// ---- generators ----

TEST(ArrayGenerators, FillZerosOnes) {
  auto r = RunOp("Fill", {Vec({2, 2}), F32({}, {7.5f})}, {}, 1, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 2}, {7.5, 7.5, 7.5, 7.5});
  r = RunOp("Fill", {Vec({2, 2}), F32({}, {7.5f})}, {}, 1, Mode::kConst);  // dims is input 0 here: still [?, ?] or better
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 2}, {7.5, 7.5, 7.5, 7.5});
  r = RunOp("ZerosLike", {I32({3}, {1, 2, 3})});
  ExpectTensor(r->outputs[0], DType::kInt32, {3}, {0, 0, 0});
  r = RunOp("OnesLike", {Bool({2}, {false, true})});
  ExpectTensor(r->outputs[0], DType::kBool, {2}, {1, 1});
}

TEST(ArrayRange, Deltas) {
  auto r = RunOp("Range", {Scalar(0), Scalar(10), Scalar(3)});
  ExpectTensor(r->outputs[0], DType::kInt32, {4}, {0, 3, 6, 9});
  r = RunOp("Range", {Scalar(10), Scalar(0), Scalar(-3)}, {}, 1, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kInt32, {4}, {10, 7, 4, 1});
  r = RunOp("Range", {Scalar(1), Scalar(1), Scalar(1)}, {}, 1, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kInt32, {0}, {});
  r = RunOp("Range", {F32({}, {0}), F32({}, {1}), F32({}, {0.25f})}, {}, 1, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kFloat32, {4}, {0, 0.25, 0.5, 0.75});
  // All constant: a static length.
  ir::Graph g;
  ir::Node& n = g.AddNode("Range", "r", {g.AddConstant("a", I64({}, {5})), g.AddConstant("b", I64({}, {-2})), g.AddConstant("c", I64({}, {-2}))});
  ir::InferNode(g, n.id);
  EXPECT_EQ(g.ShapeToString(g.value(g.node(n.id).outputs[0]).shape), "[4]");
  ExpectError([] { RunOp("Range", {Scalar(0), Scalar(10), Scalar(-1)}, {}, 1, Mode::kDynamic); },
              "requires start >= limit when delta < 0: 0/10");
  ExpectError([] { RunOp("Range", {Scalar(0), Scalar(10), Scalar(0)}, {}, 1, Mode::kDynamic); }, "delta must be non-zero");
}

TEST(ArrayInvertPermutation, Values) {
  auto r = RunOp("InvertPermutation", {Vec({2, 0, 1})});
  ExpectTensor(r->outputs[0], DType::kInt32, {3}, {1, 2, 0});
  ExpectError([] { RunOp("InvertPermutation", {Vec({0, 0})}); }, "0 is duplicated in the input");
  ExpectError([] { RunOp("InvertPermutation", {Vec({0, 2})}); }, "2 is not between 0 and 2");
}

}  // namespace
}  // namespace kiln
