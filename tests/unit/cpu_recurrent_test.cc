// CPU engine RNN / GRU / LSTM (oneDNN's RNN primitives, backend/cpu/rnn_kernel.cc) against the
// reference executor: every cell (GRU with and without linear_before_reset) x direction x layout
// x optional inputs (B, initial states, LSTM peepholes) x seq length 1 / 5 x batch 1 / 3; a
// dynamic batch; a payload round trip; and the nodes the engine must not claim (clip, other
// activations, input_forget, sequence_lens shorter than the sequence), with their reasons.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/cpu_ops.h"
#include "tests/unit/cpu_test_util.h"

namespace kiln {
namespace {

using namespace cputest;

struct Case {
  std::string op;  // RNN, GRU, LSTM
  bool lbr = false;
  std::string direction = "forward";
  int64_t layout = 0;
  bool bias = false, h0 = false, c0 = false, peephole = false;
  int64_t seq = 5, batch = 3, input = 4, hidden = 6;
  std::vector<std::string> activations;  // empty: the defaults
  bool clip = false, input_forget = false;
  std::vector<int32_t> lens;  // constant sequence_lens when not empty
  bool dynamic_batch = false;

  std::string Name() const {
    return op + (lbr ? "(lbr)" : "") + " " + direction + " layout" + std::to_string(layout) + (bias ? " B" : "") +
           (h0 ? " h0" : "") + (c0 ? " c0" : "") + (peephole ? " P" : "") + " seq" + std::to_string(seq) + " batch" +
           std::to_string(batch);
  }
  int64_t Dirs() const { return direction == "bidirectional" ? 2 : 1; }
  int64_t Gates() const { return op == "LSTM" ? 4 : op == "GRU" ? 3 : 1; }
  Shape X() const { return layout == 1 ? Shape{batch, seq, input} : Shape{seq, batch, input}; }
  Shape State() const { return layout == 1 ? Shape{batch, Dirs(), hidden} : Shape{Dirs(), batch, hidden}; }
};

// The graph: X (and initial_h / initial_c) inputs, constant W, R, B, P, every output a graph output.
Builder Build(const Case& c, uint32_t seed) {
  Builder b;
  const int64_t nd = c.Dirs(), G = c.Gates(), H = c.hidden;
  const Shape x_shape = c.X(), state_shape = c.State();
  std::vector<ir::Dim> x_dims(x_shape.begin(), x_shape.end());
  std::vector<ir::Dim> state_dims(state_shape.begin(), state_shape.end());
  if (c.dynamic_batch) {
    const ir::Dim batch = b.Symbol("batch");
    x_dims[c.layout == 1 ? 0 : 1] = batch;
    state_dims[c.layout == 1 ? 0 : 1] = batch;
  }
  std::vector<ir::ValueId> inputs = {b.Input("x", x_dims),
                                     b.Const("w", RandScaled({nd, G * H, c.input}, seed + 1, 0.6f)),
                                     b.Const("r", RandScaled({nd, G * H, H}, seed + 2, 0.6f))};
  std::vector<std::string> optional;
  if (c.bias) {
    inputs.push_back(b.Const("b", RandScaled({nd, 2 * G * H}, seed + 3, 0.5f)));
    optional.push_back("B");
  }
  if (!c.lens.empty()) {
    inputs.push_back(b.Const("lens", nntest::I32({c.batch}, c.lens)));
    optional.push_back("sequence_lens");
  }
  if (c.h0) {
    inputs.push_back(b.Input("h0", state_dims));
    optional.push_back("initial_h");
  }
  if (c.c0) {
    inputs.push_back(b.Input("c0", state_dims));
    optional.push_back("initial_c");
  }
  if (c.peephole) {
    inputs.push_back(b.Const("p", RandScaled({nd, 3 * H}, seed + 4, 0.5f)));
    optional.push_back("P");
  }
  const int num_outputs = c.op == "LSTM" ? 3 : 2;
  ir::Node& n = b.g->AddNode(c.op, "rec", inputs, num_outputs);
  n.attrs.Set("direction", c.direction);
  n.attrs.Set("hidden_size", H);
  n.attrs.Set("layout", c.layout);
  n.attrs.Set("optional_inputs", optional);
  if (c.op == "GRU") n.attrs.Set("linear_before_reset", c.lbr);
  if (c.op == "LSTM") n.attrs.Set("input_forget", c.input_forget);
  if (!c.activations.empty()) n.attrs.Set("activations", c.activations);
  if (c.clip) n.attrs.Set("clip", 0.5);
  const ir::NodeId id = n.id;
  ir::InferNode(*b.g, id);
  const char* names[] = {"y", "y_h", "y_c"};
  for (int i = 0; i < num_outputs; ++i) b.Output(names[i], b.g->node(id).outputs[static_cast<size_t>(i)]);
  return b;
}

std::vector<Tensor> Inputs(const Case& c, uint32_t seed, int64_t batch) {
  Case k = c;
  k.batch = batch;
  std::vector<Tensor> in = {RandF32(k.X(), seed + 10)};
  if (c.h0) in.push_back(RandScaled(k.State(), seed + 11, 0.8f));
  if (c.c0) in.push_back(RandScaled(k.State(), seed + 12, 0.8f));
  return in;
}

double RelL2(const Tensor& got, const Tensor& want) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < want.num_elements(); ++i) {
    const double d = got.DoubleAt(i) - want.DoubleAt(i);
    num += d * d;
    den += want.DoubleAt(i) * want.DoubleAt(i);
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

// Engine vs reference, FP32: relative L2 <= 1e-5 on every output and the node ran as cpu.<op>
// on a oneDNN primitive.
void Check(const Case& c, uint32_t seed = 7) {
  SCOPED_TRACE(c.Name());
  const Builder b = Build(c, seed);
  std::vector<Shape> shapes = {c.X()};
  if (c.h0) shapes.push_back(c.State());
  if (c.c0) shapes.push_back(c.State());
  const auto engine = CheckAgainstReference(b, ExactProfile(shapes), {Inputs(c, seed, c.batch)}, 1e-5);
  EXPECT_EQ(CountOps(*engine, "cpu." + c.op), 1) << dynamic_cast<const backend::cpu::CpuEngine&>(*engine).Summary();
  for (const auto& s : dynamic_cast<const backend::cpu::CpuEngine&>(*engine).steps())
    if (s.op == "cpu." + c.op) EXPECT_EQ(s.kernel.rfind("onednn:", 0), 0u) << s.kernel;
  runtime::ReferenceExecutor ref(b.g);
  const auto in = Inputs(c, seed, c.batch);
  const auto want = ref.Run(in);
  const auto got = engine->Execute(in);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_LE(RelL2(got[i], want[i]), 1e-5) << "output " << i;
}

TEST(CpuRecurrent, EveryCellDirectionLayoutAndOptionalInput) {
  struct Cell {
    std::string op;
    bool lbr;
  };
  for (const Cell& cell : {Cell{"RNN", false}, Cell{"GRU", false}, Cell{"GRU", true}, Cell{"LSTM", false}})
    for (const char* direction : {"forward", "reverse", "bidirectional"})
      for (int64_t layout : {0, 1})
        for (int variant = 0; variant < 4; ++variant)
          for (auto [seq, batch] : {std::pair<int64_t, int64_t>{1, 1}, {5, 3}}) {
            Case c{cell.op, cell.lbr, direction, layout};
            c.seq = seq;
            c.batch = batch;
            // 0: nothing optional; 1: B and every initial state (and P); 2: B only; 3: initial_h only
            // (LSTM: without initial_c, which the kernel fills with zeros).
            c.bias = variant == 1 || variant == 2;
            c.h0 = variant == 1 || variant == 3;
            c.c0 = variant == 1 && c.op == "LSTM";
            c.peephole = variant == 1 && c.op == "LSTM";
            Check(c);
          }
}

TEST(CpuRecurrent, LstmPeepholesWithoutBias) {
  Case c{"LSTM"};
  c.peephole = true;
  c.c0 = true;
  Check(c);
  c.direction = "bidirectional";
  c.layout = 1;
  Check(c);
}

TEST(CpuRecurrent, RnnReluAndSigmoid) {
  for (const char* act : {"Relu", "Sigmoid"}) {
    Case c{"RNN"};
    c.direction = "bidirectional";
    c.bias = true;
    c.activations = {act, act};
    Check(c);
  }
}

TEST(CpuRecurrent, FullLengthSequenceLensIsClaimed) {
  Case c{"GRU"};
  c.lens = {5, 5, 5};
  Check(c);
}

TEST(CpuRecurrent, LargerLstmStaysWithinBound) {
  Case c{"LSTM"};
  c.direction = "bidirectional";
  c.bias = c.h0 = c.c0 = true;
  c.seq = 32;
  c.batch = 4;
  c.input = 48;
  c.hidden = 64;
  Check(c);
}

TEST(CpuRecurrent, DynamicBatch) {
  Case c{"LSTM"};
  c.bias = c.h0 = c.c0 = true;
  c.layout = 1;
  c.direction = "bidirectional";
  c.dynamic_batch = true;
  const Builder b = Build(c, 3);
  auto range = [&](Case k) {
    Case lo = k, hi = k;
    lo.batch = 1;
    hi.batch = 4;
    return std::vector<backend::InputRange>{
        {lo.X(), k.X(), hi.X()}, {lo.State(), k.State(), hi.State()}, {lo.State(), k.State(), hi.State()}};
  };
  c.batch = 2;
  backend::Profile profile;
  profile.inputs = range(c);
  std::vector<std::vector<Tensor>> sets;
  for (int64_t batch : {1, 2, 3, 4}) sets.push_back(Inputs(c, 3, batch));
  const auto engine = CheckAgainstReference(b, profile, sets, 1e-5);
  EXPECT_EQ(CountOps(*engine, "cpu.LSTM"), 1);
}

TEST(CpuRecurrent, PayloadRoundTrip) {
  Case c{"GRU", true, "bidirectional", 0};
  c.bias = c.h0 = true;
  const Builder b = Build(c, 5);
  const auto profile = ExactProfile({c.X(), c.State()});
  backend::cpu::CpuBackend cpu;
  const auto built = cpu.Compile(*b.g, profile, {});
  const auto loaded =
      cpu.Deserialize(*b.g, profile, {}, dynamic_cast<const backend::cpu::CpuEngine&>(*built).Serialize());
  EXPECT_EQ(CountOps(*loaded, "cpu.GRU"), 1);
  const auto in = Inputs(c, 5, c.batch);
  const auto a = built->Execute(in), l = loaded->Execute(in);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(BitwiseEqual(a[i], l[i])) << "output " << i;
}

// Outputs the engine plans in its arena (Y read by a Relu step), one unused (Y_h) and one a graph
// output (Y_c): the multi-output step writes all three wherever the plan put them.
TEST(CpuRecurrent, OutputsInTheArenaUnusedAndGraphOutputs) {
  Case c{"LSTM", false, "bidirectional", 0};
  c.bias = c.h0 = c.c0 = true;
  Builder b;
  const int64_t nd = c.Dirs(), G = c.Gates(), H = c.hidden;
  const ir::ValueId x = b.Input("x", {c.seq, c.batch, c.input});
  const ir::ValueId h0 = b.Input("h0", {nd, c.batch, H}), c0 = b.Input("c0", {nd, c.batch, H});
  ir::Node& n = b.g->AddNode(
      "LSTM", "rec",
      {x, b.Const("w", RandScaled({nd, G * H, c.input}, 1, 0.6f)), b.Const("r", RandScaled({nd, G * H, H}, 2, 0.6f)),
       b.Const("b", RandScaled({nd, 2 * G * H}, 3, 0.5f)), h0, c0},
      3);
  n.attrs.Set("direction", c.direction);
  n.attrs.Set("hidden_size", H);
  n.attrs.Set("optional_inputs", std::vector<std::string>{"B", "initial_h", "initial_c"});
  const ir::NodeId id = n.id;
  ir::InferNode(*b.g, id);
  const std::vector<ir::ValueId> outs = b.g->node(id).outputs;
  b.Output("relu", b.Op("Relu", "relu", {outs[0]}));
  b.Output("y_c", outs[2]);
  const auto engine = CheckAgainstReference(b, ExactProfile({c.X(), c.State(), c.State()}),
                                            {Inputs(c, 4, c.batch), Inputs(c, 5, c.batch)}, 1e-5);
  EXPECT_EQ(CountOps(*engine, "cpu.LSTM"), 1);
}

// BF16 engines (CPUs with native BF16): LSTM and RNN steps run bf16 primitives (bf16 X, weights,
// h states and Y; f32 cell states and bias) and the engine reports BF16; a GRU step stays f32
// where oneDNN's only bf16 GRU implementation is its "ref" one (the kernels' convention), and says
// why. Every output stays within the BF16 bound (5e-2 relative L2) of the reference, and the
// bf16 steps differ from FP32 (bf16 arithmetic happened).
TEST(CpuRecurrent, Bf16Engines) {
  if (!backend::cpu::HostCpu().native_bf16()) GTEST_SKIP() << "this CPU has no native BF16";
  for (const char* op : {"LSTM", "RNN", "GRU"}) {
    Case c{op, false, "bidirectional", 0};
    c.bias = c.h0 = true;
    c.c0 = c.peephole = c.op == "LSTM";
    c.seq = 16;
    c.batch = 4;
    c.input = 32;
    c.hidden = 32;
    SCOPED_TRACE(c.Name());
    const Builder b = Build(c, 11);
    std::vector<Shape> shapes = {c.X()};
    if (c.h0) shapes.push_back(c.State());
    if (c.c0) shapes.push_back(c.State());
    backend::cpu::CpuBackend cpu;
    backend::CompileOptions options;
    options.precision = Precision::kBF16;
    const auto bf16 = cpu.Compile(*b.g, ExactProfile(shapes), options);
    const auto fp32 = cpu.Compile(*b.g, ExactProfile(shapes), {});
    std::string kernel;
    for (const auto& s : dynamic_cast<const backend::cpu::CpuEngine&>(*bf16).steps())
      if (s.op == "cpu." + c.op) kernel = s.kernel;
    const bool ran_bf16 = kernel.find("[bf16]") != std::string::npos;
    if (c.op != "GRU") EXPECT_TRUE(ran_bf16) << kernel;
    if (!ran_bf16) EXPECT_NE(kernel.find("[f32: "), std::string::npos) << kernel;
    EXPECT_EQ(bf16->precision(), ran_bf16 ? Precision::kBF16 : Precision::kFP32) << bf16->precision_note();
    const auto in = Inputs(c, 11, c.batch);
    const auto want = runtime::ReferenceExecutor(b.g).Run(in);
    const auto got = bf16->Execute(in), got32 = fp32->Execute(in);
    for (size_t i = 0; i < want.size(); ++i) {
      const double err = RelL2(got[i], want[i]);
      EXPECT_LE(err, 5e-2) << "output " << i;
      if (ran_bf16) EXPECT_GT(RelL2(got[i], got32[i]), 1e-5) << "output " << i << ": no bf16 arithmetic";
      std::cout << c.op << " output " << i << " (" << kernel << "): BF16 engine vs reference " << err << "\n";
    }
  }
}

// What oneDNN does not compute stays outside engines, with the reason.
TEST(CpuRecurrent, UnclaimedNodesNameTheReason) {
  struct Unclaimed {
    Case c;
    std::string reason;
  };
  std::vector<Unclaimed> cases;
  {
    Case c{"LSTM"};
    c.clip = true;
    cases.push_back({c, "no cell clip"});
  }
  {
    Case c{"LSTM"};
    c.input_forget = true;
    cases.push_back({c, "input_forget"});
  }
  {
    Case c{"GRU"};
    c.activations = {"HardSigmoid", "Tanh"};
    cases.push_back({c, "activations [HardSigmoid,Tanh]"});
  }
  {
    Case c{"RNN"};
    c.direction = "bidirectional";
    c.activations = {"Tanh", "Relu"};
    cases.push_back({c, "the same in both directions"});
  }
  {
    Case c{"RNN"};
    c.lens = {5, 2, 5};
    cases.push_back({c, "sequence_lens"});
  }
  backend::cpu::CpuBackend cpu;
  for (const Unclaimed& u : cases) {
    SCOPED_TRACE(u.c.Name());
    const Builder b = Build(u.c, 1);
    const ir::Node* rec = nullptr;
    for (const ir::Node& n : b.g->nodes())
      if (n.name == "rec") rec = &n;
    ASSERT_NE(rec, nullptr);
    const auto why = cpu.Unsupported(*b.g, *rec);
    ASSERT_TRUE(why.has_value());
    EXPECT_NE(why->find(u.reason), std::string::npos) << *why;
  }
  // A non-constant W is refused too.
  Case c{"RNN"};
  Builder b = Build(c, 1);
  const ir::ValueId w_input = b.Input("w_in", {1, 6, 4});
  for (size_t i = 0; i < b.g->nodes().size(); ++i) {
    ir::Node& n = b.g->node(static_cast<ir::NodeId>(i));
    if (n.name != "rec") continue;
    n.inputs[1] = w_input;
    const auto why = cpu.Unsupported(*b.g, n);
    ASSERT_TRUE(why.has_value());
    EXPECT_NE(why->find("W is not a constant"), std::string::npos) << *why;
  }
}

}  // namespace
}  // namespace kiln
