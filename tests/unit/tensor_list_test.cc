// TensorList ops (lists held as dense tensors [num_elements, *element_shape]): Reserve with
// unknown dims, SetItem fixing the element shape, GetItem / Stack / Length / PushBack, Split,
// Scatter / ScatterIntoExistingList, Resize, PopBack, TF's
// checks, the refusal of elements of different shapes, and a While loop that fills a list whose
// element shape is only known at run time (as Keras' recurrent layers do).
#include "runtime/executor.h"
#include "tests/unit/array_test_util.h"

namespace kiln {
namespace {

using namespace array_test;

ir::AttrMap Dtype(DType t) { return Attrs({{"element_dtype", t}}); }

TEST(TensorList, ReserveLeavesUnknownDimsOpen) {
  // (RunOp's first input is a graph input: a run-time element shape of length 2.)
  auto r = RunOp("TensorListReserve", {Vec({-1, 5}), Scalar(3)}, Dtype(DType::kFloat32));
  EXPECT_EQ(ShapeOf(*r), "[3,?,?]");
  ExpectTensor(r->outputs[0], DType::kFloat32, {3, 0, 5}, {});
  {
    ir::Graph g;  // a constant element shape: its known dims are kept
    ir::Node& n =
        g.AddNode("TensorListReserve", "reserve", {g.AddConstant("es", Vec({-1, 5})), g.AddConstant("n", Scalar(3))});
    n.attrs = Dtype(DType::kFloat32);
    const ir::NodeId id = n.id;
    ir::InferNode(g, id);
    EXPECT_EQ(g.ShapeToString(g.value(g.node(id).outputs[0]).shape), "[3,?,5]");
  }
  // A scalar -1 element shape: unknown rank.
  r = RunOp("TensorListReserve", {Scalar(-1), Scalar(2)}, Dtype(DType::kInt32));
  EXPECT_EQ(ShapeOf(*r), "<unknown rank>");
  ExpectTensor(r->outputs[0], DType::kInt32, {2, 0}, {});
  r = RunOp("TensorListReserve", {Vec({2}), Scalar(2)}, Dtype(DType::kFloat32));
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 2}, {0, 0, 0, 0});
  ExpectError(
      [] {
        RunOp("TensorListReserve", {Vec({2}), Scalar(-1)}, Dtype(DType::kFloat32));
      },
      "num_elements is -1, expected >= 0");
  ExpectError(
      [] {
        RunOp("TensorListReserve", {Vec({-2}), Scalar(1)}, Dtype(DType::kFloat32));
      },
      "element_shape has dim -2, expected >= -1");
}

TEST(TensorList, SetItemFixesTheElementShapeOfAnUnsetList) {
  Tensor list(DType::kFloat32, {3, 0, 2});  // Reserve([-1, 2], 3) before its first write
  auto r = RunOp("TensorListSetItem", {list, Scalar(1), F32({2, 2}, {1, 2, 3, 4})});
  ExpectTensor(r->outputs[0], DType::kFloat32, {3, 2, 2}, {0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0});
  // A second write keeps the others.
  r = RunOp("TensorListSetItem", {r->outputs[0], Scalar(2), F32({2, 2}, {5, 6, 7, 8})});
  ExpectTensor(r->outputs[0], DType::kFloat32, {3, 2, 2}, {0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8});
  // Shape inference: the item's shape, the list's length.
  r = RunOp("TensorListSetItem", {list, Scalar(0), F32({2, 2}, {1, 2, 3, 4})}, {}, 1, Mode::kDynamic, false);
  EXPECT_EQ(ShapeOf(*r), "[3,2,2]");
}

TEST(TensorList, SetItemRefusesElementsOfAnotherShape) {
  ExpectError(
      [] {
        RunOp("TensorListSetItem", {Iota({3, 2}), Scalar(0), F32({3}, {1, 2, 3})});
      },
      "node 'node' (TensorListSetItem): the list holds elements of shape [2] and the item has shape [3]");
  ExpectError(
      [] {
        RunOp("TensorListSetItem", {Iota({3, 2}), Scalar(3), F32({2}, {1, 2})});
      },
      "index 3 is out of range for a list of 3 elements");
  ExpectError(
      [] {
        RunOp("TensorListSetItem", {Iota({3, 2}), Scalar(-1), F32({2}, {1, 2})});
      },
      "index -1 is out of range");
  ExpectError(
      [] {
        RunOp("TensorListSetItem", {Iota({3, 2}), Scalar(0), I32({2}, {1, 2})});
      },
      "the list holds float32 elements but the item is int32");
}

TEST(TensorList, SetItemGrowsWhenAskedTo) {
  const ir::AttrMap resize = Attrs({{"resize_if_index_out_of_bounds", true}});
  Tensor empty(DType::kFloat32, {0, 0});  // EmptyTensorList / TensorArray(size=0, dynamic_size=True)
  auto r = RunOp("TensorListSetItem", {empty, Scalar(0), F32({2}, {1, 2})}, resize);
  ExpectTensor(r->outputs[0], DType::kFloat32, {1, 2}, {1, 2});
  r = RunOp("TensorListSetItem", {r->outputs[0], Scalar(2), F32({2}, {5, 6})}, resize);
  ExpectTensor(r->outputs[0], DType::kFloat32, {3, 2}, {1, 2, 0, 0, 5, 6});
}

TEST(TensorList, GetItem) {
  auto r = RunOp("TensorListGetItem", {Iota({3, 2}), Scalar(2), Vec({-1})});
  ExpectTensor(r->outputs[0], DType::kFloat32, {2}, {4, 5});
  EXPECT_EQ(ShapeOf(*r), "[2]");
  // An element of a list never written reads as zeros of a fully defined element_shape.
  r = RunOp("TensorListGetItem", {Tensor(DType::kFloat32, {2, 0}), Scalar(1), Vec({3})});
  ExpectTensor(r->outputs[0], DType::kFloat32, {3}, {0, 0, 0});
  ExpectError(
      [] {
        RunOp("TensorListGetItem", {Iota({3, 2}), Scalar(3), Vec({-1})});
      },
      "index 3 is out of range for a list of 3 elements");
  ExpectError(
      [] {
        RunOp("TensorListGetItem", {Iota({3, 2}), Scalar(0), Vec({4})}, {}, 1, Mode::kDynamic);
      },
      "the list's elements have shape [2], incompatible with element_shape [4]");
}

TEST(TensorList, StackChecksNumElementsAndElementShape) {
  auto r = RunOp("TensorListStack", {Iota({3, 2}), Vec({-1})}, Attrs({{"num_elements", int64_t{3}}}));
  ExpectTensor(r->outputs[0], DType::kFloat32, {3, 2}, {0, 1, 2, 3, 4, 5});
  ExpectError(
      [] {
        RunOp("TensorListStack", {Iota({3, 2}), Vec({-1})}, Attrs({{"num_elements", int64_t{2}}}));
      },
      "the list has 3 elements, num_elements says 2");
  ExpectError(
      [] {
        RunOp("TensorListStack", {Iota({3, 2}), Vec({2, 1})});
      },
      "the list's elements have rank 1, element_shape rank 2");
  // Never written, element shape fully defined: zeros.
  r = RunOp("TensorListStack", {Tensor(DType::kFloat32, {2, 0}), Vec({2})}, {}, 1, Mode::kUnknown);
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 2}, {0, 0, 0, 0});
}

TEST(TensorList, LengthAndPushBack) {
  auto r = RunOp("TensorListLength", {Iota({4, 2})}, {}, 1, Mode::kUnknown);
  ExpectTensor(r->outputs[0], DType::kInt32, {}, {4});
  r = RunOp("TensorListPushBack", {Tensor(DType::kFloat32, {0, 0}), F32({2}, {7, 8})}, {}, 1, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kFloat32, {1, 2}, {7, 8});
  r = RunOp("TensorListPushBack", {r->outputs[0], F32({2}, {9, 10})});
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 2}, {7, 8, 9, 10});
  ExpectError(
      [] {
        RunOp("TensorListPushBack", {Iota({1, 2}), F32({1}, {7})});
      },
      "the list holds elements of shape [2] and the item has shape [1]");
}

// for i < n: list[i] = x * (i + 1), with x of shape [B, 2] and B unknown until run time: the
// Reserve's element shape [-1, 2] is refined by the first SetItem inside the loop body, and
// While's shape inference keeps the known dims.
TEST(TensorList, WhileLoopFillsAListWhoseElementShapeIsKnownAtRunTime) {
  auto cond = std::make_shared<ir::Graph>();
  {
    const ir::ValueId i = cond->AddInput("i", DType::kInt32, ir::SymShape::Scalar());
    cond->AddInput("list", DType::kFloat32, ir::SymShape::Of({-1, -1, -1}));
    cond->AddInput("x", DType::kFloat32, ir::SymShape::Of({-1, -1}));
    ir::Node& less = cond->AddNode("Less", "less", {i, cond->AddConstant("n", Scalar(3))}, 1);
    ir::InferNode(*cond, less.id);
    cond->AddOutput("c", less.outputs[0]);
  }
  auto body = std::make_shared<ir::Graph>();
  {
    const ir::ValueId i = body->AddInput("i", DType::kInt32, ir::SymShape::Scalar());
    const ir::ValueId list = body->AddInput("list", DType::kFloat32, ir::SymShape::Of({-1, -1, -1}));
    const ir::ValueId x = body->AddInput("x", DType::kFloat32, ir::SymShape::Of({-1, -1}));
    auto add = [&](const char* op, const char* name, std::vector<ir::ValueId> in, ir::AttrMap attrs = {}) {
      ir::Node& n = body->AddNode(op, name, std::move(in), 1);
      n.attrs = std::move(attrs);
      ir::InferNode(*body, n.id);
      return body->node(n.id).outputs[0];
    };
    const ir::ValueId next = add("Add", "next", {i, body->AddConstant("one", Scalar(1))});
    const ir::ValueId scale = add("Cast", "scale", {next}, Attrs({{"to", DType::kFloat32}, {"truncate", false}}));
    const ir::ValueId item = add("Mul", "item", {x, scale});
    const ir::ValueId set = add("TensorListSetItem", "set", {list, i, item});
    body->AddOutput("i", next);
    body->AddOutput("list", set);
    body->AddOutput("x", x);
  }
  auto g = std::make_shared<ir::Graph>();
  const ir::Dim batch = g->NewSymbol("x.0");
  const ir::ValueId x = g->AddInput("x", DType::kFloat32, ir::SymShape::Of({batch, 2}));
  // (Graph::AddNode may move earlier nodes: keep ids, not references.)
  auto add = [&](const char* op, const char* name, std::vector<ir::ValueId> in, ir::AttrMap attrs, int outs = 1) {
    ir::Node& n = g->AddNode(op, name, std::move(in), outs);
    n.attrs = std::move(attrs);
    ir::InferNode(*g, n.id);
    return g->node(n.id).outputs;
  };
  const ir::ValueId shape = g->AddConstant("shape", Vec({-1, 2})), n = g->AddConstant("n", Scalar(3));
  const ir::ValueId reserve = add("TensorListReserve", "reserve", {shape, n}, Dtype(DType::kFloat32))[0];
  ir::AttrMap loop_attrs;
  loop_attrs.Set("cond", cond);
  loop_attrs.Set("body", body);
  const ir::ValueId zero = g->AddConstant("zero", Scalar(0));
  const ir::ValueId filled = add("While", "loop", {zero, reserve, x}, std::move(loop_attrs), 3)[1];
  const ir::ValueId es = g->AddConstant("es", Vec({-1, 2}));
  const ir::ValueId stacked = add("TensorListStack", "stack", {filled, es}, Attrs({{"num_elements", int64_t{3}}}))[0];
  g->AddOutput("y", stacked);
  EXPECT_EQ(g->ShapeToString(g->value(g->outputs()[0]).shape), "[3,?,2]");

  runtime::ReferenceExecutor exec(g);
  for (int64_t b : {1, 3}) {
    Tensor in(DType::kFloat32, {b, 2});
    for (int64_t k = 0; k < in.num_elements(); ++k) in.data<float>()[k] = static_cast<float>(k + 1);
    const auto out = exec.Run({in});
    ASSERT_EQ(ShapeToString(out[0].shape()), ShapeToString({3, b, 2}));
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t k = 0; k < b * 2; ++k)
        EXPECT_EQ(out[0].data<float>()[i * b * 2 + k], static_cast<float>((k + 1) * (i + 1))) << i << " " << k;
  }
}

TEST(TensorList, SplitMakesElementsOfEqualRuns) {
  auto r = RunOp("TensorListSplit", {Iota({4, 2}), Vec({-1, 2}), I64({2}, {2, 2})});
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  EXPECT_EQ(ShapeOf(*r), "[2,2,2]");
  // No lengths: a list of no elements.
  r = RunOp("TensorListSplit", {Tensor(DType::kFloat32, {0, 2}), Scalar(-1), I64({0}, {})});
  ExpectTensor(r->outputs[0], DType::kFloat32, {0, 0, 2}, {});
  // Run-time lengths.
  r = RunOp("TensorListSplit", {Iota({4, 2}), Vec({-1, 2}), I64({4}, {1, 1, 1, 1})}, {}, 1, Mode::kDynamic);
  EXPECT_EQ(ShapeOf(*r), "[4,?,2]");
  ExpectTensor(r->outputs[0], DType::kFloat32, {4, 1, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
}

TEST(TensorList, SplitChecksTheLengths) {
  auto split = [](std::vector<int64_t> lengths, Tensor es = Vec({-1, 2})) {
    const int64_t n = static_cast<int64_t>(lengths.size());
    RunOp("TensorListSplit", {Iota({4, 2}), es, I64({n}, lengths)}, {}, 1, Mode::kDynamic);
  };
  ExpectError([&] { split({1, 3}); }, "lengths[1] is 3 but lengths[0] is 1; Kiln holds a list as one dense tensor");
  ExpectError([&] { split({1, 1}); }, "lengths add up to 2 but the tensor has 4 rows");
  ExpectError([&] { split({3, 3}); }, "lengths[1] = 3 takes rows past the tensor's 4");
  ExpectError([&] { split({5, -1}); }, "lengths[0] = 5 takes rows past the tensor's 4");
  ExpectError([&] { split({-1, 5}); }, "lengths[0] is -1, expected >= 0");
  ExpectError([&] { split({2, 2}, Vec({-1, 3})); }, "element_shape [-1,3] does not fit the tensor of shape [4,2]");
  ExpectError([&] { split({2, 2}, Vec({-1})); }, "element_shape has rank 1 but the tensor has rank 2");
  // The first dim of element_shape is not checked (TensorFlow's rule).
  auto r = RunOp("TensorListSplit", {Iota({4, 2}), Vec({7, 2}), I64({2}, {2, 2})}, {}, 1, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  // Constant lengths are checked at import.
  ExpectError(
      [] {
        RunOp("TensorListSplit", {Iota({4, 2}), Vec({-1, 2}), I64({2}, {1, 3})}, {}, 1, Mode::kConst, false);
      },
      "lengths [1,3] differ");
}

TEST(TensorList, ScatterMakesANewList) {
  // Rows to elements 3, 0, 3 (the later row wins); element 1 and 2 unset (zeros).
  auto r = RunOp("TensorListScatter", {Iota({3, 2}), I32({3}, {3, 0, 3}), Vec({2}), Scalar(-1)});
  ExpectTensor(r->outputs[0], DType::kFloat32, {4, 2}, {2, 3, 0, 0, 0, 0, 4, 5});
  EXPECT_EQ(ShapeOf(*r), "[?,2]");
  r = RunOp("TensorListScatter", {Iota({2, 2}), I32({2, 1}, {1, 0}), Scalar(-1), Scalar(5)});
  ExpectTensor(r->outputs[0], DType::kFloat32, {5, 2}, {2, 3, 0, 1, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(ShapeOf(*r), "[5,2]");
  ExpectError(
      [] {
        RunOp("TensorListScatter", {Iota({2, 2}), I32({2}, {1, 5}), Vec({2}), Scalar(3)});
      },
      "index 5 is out of range for a list of 3 elements");
  ExpectError(
      [] {
        RunOp("TensorListScatter", {Iota({2, 2}), I32({2}, {1, -1}), Vec({2}), Scalar(-1)});
      },
      "indices must not be negative, got -1");
  ExpectError(
      [] {
        RunOp("TensorListScatter", {Iota({2, 2}), I32({3}, {1, 2, 3}), Vec({2}), Scalar(-1)});
      },
      "3 indices for a tensor of 2 rows");
  ExpectError(
      [] {
        RunOp("TensorListScatter", {Iota({2, 2}), I32({2}, {1, 2}), Vec({3}), Scalar(-1)});
      },
      "element_shape does not fit the tensor's rows (dim 0: 3 vs 2)");
  ExpectError(
      [] {
        RunOp("TensorListScatter", {Iota({2, 2}), I32({2}, {1, 2}), Vec({2}), Scalar(-2)});
      },
      "num_elements is -2, expected >= -1");
}

TEST(TensorList, ScatterIntoAnExistingList) {
  Tensor list = F32({3, 2}, {1, 1, 2, 2, 3, 3});
  auto r = RunOp("TensorListScatterIntoExistingList", {list, Iota({2, 2}), I32({2}, {2, 0})});
  ExpectTensor(r->outputs[0], DType::kFloat32, {3, 2}, {2, 3, 2, 2, 0, 1});
  // An index past the end grows the list.
  r = RunOp("TensorListScatterIntoExistingList", {list, Iota({1, 2}), I32({1}, {4})});
  ExpectTensor(r->outputs[0], DType::kFloat32, {5, 2}, {1, 1, 2, 2, 3, 3, 0, 0, 0, 1});
  // A list never written takes the rows' shape; no rows leave it as it was.
  r = RunOp("TensorListScatterIntoExistingList", {Tensor(DType::kFloat32, {2, 0}), Iota({1, 3}), I32({1}, {1})});
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 3}, {0, 0, 0, 0, 1, 2});
  r = RunOp("TensorListScatterIntoExistingList",
            {Tensor(DType::kFloat32, {2, 0}), Tensor(DType::kFloat32, {0, 3}), I32({0}, {})});
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 0}, {});
  ExpectError(
      [&] {
        RunOp("TensorListScatterIntoExistingList", {list, Iota({1, 3}), I32({1}, {0})});
      },
      "the list holds elements of shape [2] and the item has shape [3]");
  ExpectError(
      [&] {
        RunOp("TensorListScatterIntoExistingList", {list, Iota({2, 2}), I32({2, 1}, {0, 1})});
      },
      "indices (input 2) must have rank <= 1");
}

TEST(TensorList, ResizeKeepsOrAddsElements) {
  Tensor list = F32({3, 2}, {1, 1, 2, 2, 3, 3});
  auto r = RunOp("TensorListResize", {list, Scalar(4)});
  ExpectTensor(r->outputs[0], DType::kFloat32, {4, 2}, {1, 1, 2, 2, 3, 3, 0, 0});
  EXPECT_EQ(ShapeOf(*r), "[4,2]");
  r = RunOp("TensorListResize", {list, Scalar(1)});
  ExpectTensor(r->outputs[0], DType::kFloat32, {1, 2}, {1, 1});
  r = RunOp("TensorListResize", {Tensor(DType::kFloat32, {2, 0}), Scalar(5)});
  ExpectTensor(r->outputs[0], DType::kFloat32, {5, 0}, {});
  ExpectError([&] { RunOp("TensorListResize", {list, Scalar(-1)}); }, "size is -1, expected >= 0");
}

TEST(TensorList, PopBack) {
  auto r = RunOp("TensorListPopBack", {F32({3, 2}, {1, 1, 2, 2, 3, 3}), Vec({2})}, {}, 2);
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 2}, {1, 1, 2, 2});
  ExpectTensor(r->outputs[1], DType::kFloat32, {2}, {3, 3});
  EXPECT_EQ(ShapeOf(*r, 0), "[2,2]");
  // An element never written: zeros of a fully defined element_shape, else an error.
  // (Reserve's unknown dims are 0 in the tensor, unknown to shape inference.)
  r = RunOp("TensorListPopBack", {Tensor(DType::kInt32, {2, 0}), Vec({3})}, {}, 2, Mode::kUnknown);
  ExpectTensor(r->outputs[1], DType::kInt32, {3}, {0, 0, 0});
  ExpectError(
      [] {
        RunOp("TensorListPopBack", {Tensor(DType::kInt32, {2, 0}), Vec({-1})}, {}, 2, Mode::kUnknown);
      },
      "the last element was never written and element_shape [-1] is not fully defined");
  ExpectError(
      [] {
        RunOp("TensorListPopBack", {Tensor(DType::kInt32, {0, 2}), Vec({2})}, {}, 2, Mode::kUnknown);
      },
      "trying to pop from an empty list");
}

}  // namespace
}  // namespace kiln
