// Kernels that write an input in place (KernelContext::TakeInput, the TensorList writers) when the
// reference executor releases it: the results equal the copying path's; constants, graph inputs,
// values read again, values a loop body passes through and buffers shared by two tensors are never
// written; and a loop that sets (or appends) one element per step copies O(T) elements, counted by
// reference::ReadInputWriteCounters, where copying the list each step would copy O(T^2).
#include <cstring>
#include <optional>

#include "runtime/executor.h"
#include "tests/unit/array_test_util.h"

namespace kiln {
namespace {

using namespace array_test;

constexpr int kSteps = 200;  // loop steps (list length)
constexpr int kRow = 16;     // floats per element

// Adds nodes to a graph, inferring each one (ids, not references: AddNode may move nodes).
struct Builder {
  ir::Graph& g;
  int count = 0;
  std::vector<ir::ValueId> Add(const char* op, std::vector<ir::ValueId> in, ir::AttrMap attrs = {}, int outs = 1) {
    ir::Node& n = g.AddNode(op, std::string(op) + std::to_string(count++), std::move(in), outs);
    n.attrs = std::move(attrs);
    const ir::NodeId id = n.id;
    ir::InferNode(g, id);
    return g.node(id).outputs;
  }
  ir::ValueId One(const char* op, std::vector<ir::ValueId> in, ir::AttrMap attrs = {}) {
    return Add(op, std::move(in), std::move(attrs))[0];
  }
};

ir::AttrMap F32List() { return Attrs({{"element_dtype", DType::kFloat32}}); }

// What a loop body does with the list it carries.
enum class Body {
  kSetItem,      // list = SetItem(list, i, x * (i + 1))
  kPushBack,     // list = PushBack(list, x * (i + 1))
  kKeepOldList,  // also returns the list before the write as a second loop variable (read twice)
  kPassThrough,  // writes SetItem(list, i, ...) into a second variable; the list itself passes through
};

// while i < kSteps: (i, list, other, x) -> (i + 1, written list, other or old list, x).
std::shared_ptr<ir::Graph> LoopCond() {
  auto cond = std::make_shared<ir::Graph>();
  const ir::ValueId i = cond->AddInput("i", DType::kInt32, ir::SymShape::Scalar());
  cond->AddInput("list", DType::kFloat32, ir::SymShape::Of({-1, -1}));
  cond->AddInput("other", DType::kFloat32, ir::SymShape::Of({-1, -1}));
  cond->AddInput("x", DType::kFloat32, ir::SymShape::Of({-1}));
  Builder b{*cond};
  cond->AddOutput("c", b.One("Less", {i, cond->AddConstant("n", Scalar(kSteps))}));
  return cond;
}

std::shared_ptr<ir::Graph> LoopBody(Body kind) {
  auto body = std::make_shared<ir::Graph>();
  const ir::ValueId i = body->AddInput("i", DType::kInt32, ir::SymShape::Scalar());
  const ir::ValueId list = body->AddInput("list", DType::kFloat32, ir::SymShape::Of({-1, -1}));
  const ir::ValueId other = body->AddInput("other", DType::kFloat32, ir::SymShape::Of({-1, -1}));
  const ir::ValueId x = body->AddInput("x", DType::kFloat32, ir::SymShape::Of({-1}));
  Builder b{*body};
  const ir::ValueId next = b.One("Add", {i, body->AddConstant("one", Scalar(1))});
  const ir::ValueId scale = b.One("Cast", {next}, Attrs({{"to", DType::kFloat32}, {"truncate", false}}));
  const ir::ValueId item = b.One("Mul", {x, scale});
  const ir::ValueId written =
      kind == Body::kPushBack ? b.One("TensorListPushBack", {list, item}) : b.One("TensorListSetItem", {list, i, item});
  body->AddOutput("i", next);
  if (kind == Body::kPassThrough) {
    body->AddOutput("list", list);
    body->AddOutput("other", written);
  } else {
    body->AddOutput("list", written);
    body->AddOutput("other", kind == Body::kKeepOldList ? list : other);
  }
  body->AddOutput("x", x);
  return body;
}

// x [kRow] -> y = Stack(the loop's list), z = Stack(its other variable); `initial` is the list the
// loop starts from (a fresh Reserve when not given).
std::shared_ptr<ir::Graph> LoopGraph(Body kind, std::optional<Tensor> initial_constant = std::nullopt) {
  auto g = std::make_shared<ir::Graph>();
  const ir::ValueId x = g->AddInput("x", DType::kFloat32, ir::SymShape::Of({kRow}));
  Builder b{*g};
  const int length = kind == Body::kPushBack ? 0 : kSteps;
  ir::ValueId list = initial_constant
                         ? g->AddConstant("initial", *initial_constant)
                         : b.One("TensorListReserve",
                                 {g->AddConstant("es", Vec({kRow})), g->AddConstant("n", Scalar(length))}, F32List());
  ir::ValueId other =
      b.One("TensorListReserve", {g->AddConstant("es2", Vec({kRow})), g->AddConstant("n2", Scalar(kSteps))}, F32List());
  ir::AttrMap loop;
  loop.Set("cond", LoopCond());
  loop.Set("body", LoopBody(kind));
  const auto outs = b.Add("While", {g->AddConstant("zero", Scalar(0)), list, other, x}, std::move(loop), 4);
  g->AddOutput("y", b.One("TensorListStack", {outs[1], g->AddConstant("es3", Vec({kRow}))}));
  g->AddOutput("z", b.One("TensorListStack", {outs[2], g->AddConstant("es4", Vec({kRow}))}));
  return g;
}

Tensor RowInput() {
  Tensor x(DType::kFloat32, {kRow});
  for (int k = 0; k < kRow; ++k) x.data<float>()[k] = static_cast<float>(k) - 3.5f;
  return x;
}

// The list a loop of `steps` writes: row i = x * (i + 1), rows past `steps` zeros.
void ExpectWrittenRows(const Tensor& list, int steps, int rows, const Tensor& x) {
  ASSERT_EQ(ShapeToString(list.shape()), ShapeToString({rows, kRow}));
  for (int i = 0; i < rows; ++i)
    for (int k = 0; k < kRow; ++k)
      ASSERT_EQ(list.data<float>()[i * kRow + k], i < steps ? x.data<float>()[k] * static_cast<float>(i + 1) : 0.0f)
          << "row " << i << " col " << k;
}

constexpr int64_t kRowBytes = kRow * sizeof(float);

TEST(InPlaceWrites, SetItemLoopCopiesEachElementOnceNotTheList) {
  runtime::ReferenceExecutor exec(LoopGraph(Body::kSetItem));
  const Tensor x = RowInput();
  reference::ResetInputWriteCounters();
  const auto out = exec.Run({x});
  const auto counters = reference::ReadInputWriteCounters();
  ExpectWrittenRows(out[0], kSteps, kSteps, x);
  // One row per step; copying the list at every step would be kSteps * kSteps rows.
  EXPECT_LE(counters.bytes_copied, 2 * kSteps * kRowBytes)
      << counters.taken << " taken, " << counters.copied << " copied";
  EXPECT_GE(counters.taken, kSteps - 1);
}

TEST(InPlaceWrites, PushBackLoopIsAmortisedLinear) {
  runtime::ReferenceExecutor exec(LoopGraph(Body::kPushBack));
  const Tensor x = RowInput();
  reference::ResetInputWriteCounters();
  const auto out = exec.Run({x});
  const auto counters = reference::ReadInputWriteCounters();
  ExpectWrittenRows(out[0], kSteps, kSteps, x);
  // One row per append, and regrowth by doubling copies fewer than 2 * kSteps rows in all.
  EXPECT_LE(counters.bytes_copied, 3 * kSteps * kRowBytes);
}

TEST(InPlaceWrites, AListReadAgainIsCopiedAndKeepsItsValues) {
  // The body returns the list before the write as well: it cannot be written in place, and the
  // counter shows the copying path's quadratic cost.
  runtime::ReferenceExecutor exec(LoopGraph(Body::kKeepOldList));
  const Tensor x = RowInput();
  reference::ResetInputWriteCounters();
  const auto out = exec.Run({x});
  const auto counters = reference::ReadInputWriteCounters();
  ExpectWrittenRows(out[0], kSteps, kSteps, x);
  ExpectWrittenRows(out[1], kSteps - 1, kSteps, x);  // the list before the last write
  EXPECT_GE(counters.bytes_copied, int64_t{kSteps} * kSteps * kRowBytes);
  EXPECT_GE(counters.copied, kSteps);
}

TEST(InPlaceWrites, AListALoopPassesThroughIsNeverWritten) {
  // The body writes a copy of the list it carries unchanged (a value captured by the loop).
  runtime::ReferenceExecutor exec(LoopGraph(Body::kPassThrough));
  const auto out = exec.Run({RowInput()});
  ExpectWrittenRows(out[0], 0, kSteps, RowInput());  // still all zeros
  // Only the last step's element (each step wrote into a fresh copy of the zero list).
  for (int i = 0; i < kSteps; ++i)
    EXPECT_EQ(out[1].data<float>()[i * kRow + 1], i == kSteps - 1 ? -2.5f * kSteps : 0.0f) << i;
}

TEST(InPlaceWrites, AConstantListIsNeverWritten) {
  Tensor initial(DType::kFloat32, {kSteps, kRow});
  for (int64_t k = 0; k < initial.num_elements(); ++k) initial.data<float>()[k] = 7.0f;
  const Tensor before = initial.Clone();
  auto graph = LoopGraph(Body::kSetItem, initial);
  initial = Tensor();  // the graph's Constant attribute is now the only holder of that buffer
  runtime::ReferenceExecutor exec(graph);
  for (int run = 0; run < 2; ++run) {  // a second run sees the constant unchanged too
    const auto out = exec.Run({RowInput()});
    ExpectWrittenRows(out[0], kSteps, kSteps, RowInput());
  }
  int checked = 0;
  for (const ir::Node& n : graph->nodes()) {
    if (n.op != "Constant" || graph->value(n.outputs[0]).shape.rank() != 2) continue;
    const Tensor& held = n.attrs.Get<Tensor>("value");
    EXPECT_EQ(std::memcmp(held.raw_data(), before.raw_data(), before.byte_size()), 0);
    ++checked;
  }
  EXPECT_EQ(checked, 1);
}

// Memory the test owns, presented as a buffer that owns it: only the executor's pinning of graph
// inputs keeps a kernel from writing it when the caller hands the input over.
class TestOwnedBuffer final : public Buffer {
 public:
  explicit TestOwnedBuffer(std::vector<float>& memory) : memory_(memory) {}
  void* data() override { return memory_.data(); }
  size_t size() const override { return memory_.size() * sizeof(float); }
  Device device() const override { return Device{}; }
  bool owns_memory() const override { return true; }

 private:
  std::vector<float>& memory_;
};

TEST(InPlaceWrites, AGraphInputIsNeverWritten) {
  // list (a graph input) -> Identity -> SetItem(0, x) and a While loop writing every element.
  auto g = std::make_shared<ir::Graph>();
  const ir::ValueId list = g->AddInput("list", DType::kFloat32, ir::SymShape::Of({kSteps, kRow}));
  const ir::ValueId x = g->AddInput("x", DType::kFloat32, ir::SymShape::Of({kRow}));
  Builder b{*g};
  const ir::ValueId alias = b.One("Identity", {list});
  const ir::ValueId set = b.One("TensorListSetItem", {alias, g->AddConstant("zero_index", Scalar(0)), x});
  ir::AttrMap loop;
  loop.Set("cond", LoopCond());
  loop.Set("body", LoopBody(Body::kSetItem));
  const auto outs = b.Add("While", {g->AddConstant("zero", Scalar(0)), set, set, x}, std::move(loop), 4);
  g->AddOutput("y", outs[1]);
  runtime::ReferenceExecutor exec(g);

  std::vector<float> memory(kSteps * kRow, 5.0f);
  const std::vector<float> before = memory;
  {
    Tensor input(DType::kFloat32, {kSteps, kRow}, std::make_shared<TestOwnedBuffer>(memory));
    std::vector<Tensor> inputs;  // (not an initializer list: its elements would stay referenced)
    inputs.push_back(std::move(input));
    inputs.push_back(RowInput());
    const auto out = exec.Run(std::move(inputs));  // the caller keeps no reference
    ExpectWrittenRows(out[0], kSteps, kSteps, RowInput());
  }
  EXPECT_EQ(memory, before);
}

TEST(InPlaceWrites, ABufferSharedByTwoTensorsIsCopied) {
  // reserve -> Identity (alias, a graph output) and SetItem(reserve, 1, x): the write must not
  // show through the alias.
  auto g = std::make_shared<ir::Graph>();
  const ir::ValueId x = g->AddInput("x", DType::kFloat32, ir::SymShape::Of({kRow}));
  Builder b{*g};
  const ir::ValueId reserve =
      b.One("TensorListReserve", {g->AddConstant("es", Vec({kRow})), g->AddConstant("n", Scalar(3))}, F32List());
  const ir::ValueId alias = b.One("Identity", {reserve});
  g->AddOutput("alias", alias);
  g->AddOutput("set", b.One("TensorListSetItem", {reserve, g->AddConstant("one", Scalar(1)), x}));
  runtime::ReferenceExecutor exec(g);
  const auto out = exec.Run({RowInput()});
  ExpectWrittenRows(out[0], 0, 3, RowInput());
  EXPECT_EQ(out[1].data<float>()[kRow + 1], RowInput().data<float>()[1]);
  EXPECT_EQ(out[1].data<float>()[1], 0.0f);
}

TEST(InPlaceWrites, ShrinkThenGrowInPlaceReadsNewElementsAsZeros) {
  // Scatter [4, 2] -> PopBack (shrinks in place) -> Resize to 4 (grows into the same buffer: the
  // popped row must read as zeros) -> PushBack.
  auto g = std::make_shared<ir::Graph>();
  const ir::ValueId t = g->AddInput("t", DType::kFloat32, ir::SymShape::Of({4, 2}));
  Builder b{*g};
  const ir::ValueId es = g->AddConstant("es", Vec({2}));
  const ir::ValueId list =
      b.One("TensorListScatter", {t, g->AddConstant("idx", Vec({0, 1, 2, 3})), es, g->AddConstant("n", Scalar(4))});
  const auto popped = b.Add("TensorListPopBack", {list, es}, {}, 2);
  const ir::ValueId resized = b.One("TensorListResize", {popped[0], g->AddConstant("four", Scalar(4))});
  const ir::ValueId pushed = b.One("TensorListPushBack", {resized, g->AddConstant("item", F32({2}, {9, 10}))});
  g->AddOutput("item", popped[1]);
  g->AddOutput("list", b.One("TensorListStack", {pushed, es}));
  runtime::ReferenceExecutor exec(g);
  reference::ResetInputWriteCounters();
  const auto out = exec.Run({Iota({4, 2})});
  ExpectTensor(out[0], DType::kFloat32, {2}, {6, 7});
  ExpectTensor(out[1], DType::kFloat32, {5, 2}, {0, 1, 2, 3, 4, 5, 0, 0, 9, 10});
  EXPECT_GE(reference::ReadInputWriteCounters().taken, 2);  // PopBack and Resize in place
}

TEST(InPlaceWrites, TakingAnInputTheRegistrationDoesNotListIsAnError) {
  // Identity's kernel lists no input to take: a kernel that tried would be refused (checked in
  // KernelContext, so a kernel cannot write an input its registration does not declare).
  ir::Graph g;
  const ir::ValueId in = g.AddInput("in", DType::kFloat32, ir::SymShape::Of({2}));
  ir::Node& n = g.AddNode("Identity", "id", {in}, 1);
  std::vector<Tensor> inputs{F32({2}, {1, 2})};
  const std::vector<bool> released{true};
  const reference::InputReuse none;
  reference::KernelContext ctx(n, inputs, released, none, nullptr);
  ExpectError([&] { ctx.TakeInput(0); }, "its registration does not list it");
}

}  // namespace
}  // namespace kiln
