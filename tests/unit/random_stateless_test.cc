// TensorFlow's stateless RNG: Philox4x32-10 on Random123's known-answer vectors, counter skips,
// and StatelessRandomGetKeyCounter / StatelessRandom against numbers TensorFlow 2.21 printed
// (tf.raw_ops.StatelessRandomGetKeyCounter, tf.random.stateless_* with seed [1, 2], gamma too); shape
// functions and errors. tests/python/test_tf_random.py compares every dtype with TensorFlow itself.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "backend/reference/philox.h"
#include "tests/unit/nn_test_util.h"

namespace kiln {
namespace {

using nntest::I32;
using nntest::OneNode;
using nntest::RunOp;
using reference::philox::Block;
using reference::philox::Philox;
using testutil::Attrs;
using testutil::ExpectErrorMessage;

TEST(Philox, RandomOneTwoThreeKnownAnswers) {
  // philox4x32-10 test vectors of Random123 (kat_vectors): zeros, ones, digits of pi.
  EXPECT_EQ(Philox({0, 0, 0, 0}, {0, 0}).Next(), (Block{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(Philox({~0u, ~0u, ~0u, ~0u}, {~0u, ~0u}).Next(), (Block{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(Philox({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}).Next(),
            (Block{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(Philox, SkipCarriesThroughTheWholeCounter) {
  Philox a({0xfffffffe, 0xffffffff, 0xffffffff, 7}, {1, 2});
  a.Skip(3);  // the low three words wrap; the carry reaches the top word
  EXPECT_EQ(a.counter(), (Block{1, 0, 0, 8}));
  Philox b({5, 0xffffffff, 0, 0}, {1, 2});
  b.Skip(uint64_t{1} << 32);  // adds to the second word, which carries into the third
  EXPECT_EQ(b.counter(), (Block{5, 0, 1, 0}));
  // Next() advances by one block: n calls equal Skip(n).
  Philox c({0xffffffff, 0, 0, 0}, {3, 4}), d = c;
  c.Next();
  c.Next();
  d.Skip(2);
  EXPECT_EQ(c.counter(), d.counter());
  EXPECT_EQ(c.Next(), d.Next());
}

Tensor U64(Shape shape, const std::vector<uint64_t>& v) {
  return Tensor::FromVector<uint64_t>(DType::kUInt64, std::move(shape), v);
}
Tensor I64(Shape shape, const std::vector<int64_t>& v) {
  return Tensor::FromVector<int64_t>(DType::kInt64, std::move(shape), v);
}

TEST(StatelessRandomGetKeyCounter, MatchesTensorFlow) {
  auto out = RunOp("StatelessRandomGetKeyCounter", {I64({2}, {1, 2})}, {}, 2);
  EXPECT_EQ(out[0].data<uint64_t>()[0], 0x908502c96d2f7fbaull);
  EXPECT_EQ(out[1].data<uint64_t>()[0], 0u);
  EXPECT_EQ(out[1].data<uint64_t>()[1], 0xf7734320619cb60bull);
  // int32 seeds widen with their sign: -1 is all ones.
  out = RunOp("StatelessRandomGetKeyCounter", {I32({2}, {-1, 2})}, {}, 2);
  EXPECT_EQ(out[0].data<uint64_t>()[0], 0xf8b290e519e90c1full);
  EXPECT_EQ(out[1].data<uint64_t>()[1], 0x01ee56199900807dull);
  ExpectErrorMessage([] { RunOp("StatelessRandomGetKeyCounter", {I64({3}, {1, 2, 3})}, {}, 2); }, {"seed", "[2]"});
  ExpectErrorMessage(
      [] {
        RunOp("StatelessRandomGetKeyCounter", {nntest::F32({2}, {1, 2})}, {}, 2);
      },
      {"seed must be int32 or int64", "float32"});
}

// The key and counter of seed [1, 2], alg auto-select (3).
std::vector<Tensor> SeedOneTwo(const Shape& shape) {
  return {I32({static_cast<int64_t>(shape.size())}, std::vector<int32_t>(shape.begin(), shape.end())),
          U64({1}, {0x908502c96d2f7fbaull}), U64({2}, {0, 0xf7734320619cb60bull}),
          Tensor::Scalar<int32_t>(DType::kInt32, 3)};
}

std::vector<Tensor> Draw(const std::string& dist, DType dtype, const Shape& shape, std::vector<Tensor> extra = {}) {
  std::vector<Tensor> in = SeedOneTwo(shape);
  in.insert(in.end(), extra.begin(), extra.end());
  return RunOp("StatelessRandom", in, Attrs({{"distribution", dist}, {"dtype", dtype}}), 1, {0});
}

TEST(StatelessRandom, UniformMatchesTensorFlow) {
  EXPECT_EQ(testutil::Doubles(Draw("uniform", DType::kFloat32, {5})[0]),
            (std::vector<double>{0.8440604209899902, 0.19204533100128174, 0.9962232112884521, 0.16038739681243896,
                                 0.27199018001556396}));
  EXPECT_EQ(testutil::Doubles(Draw("uniform", DType::kFloat64, {3})[0]),
            (std::vector<double>{0.7524837538451801, 0.9697857725627486, 0.17592233912897481}));
  EXPECT_EQ(testutil::Doubles(Draw("uniform", DType::kFloat16, {5})[0]),
            (std::vector<double>{0.54296875, 0.2353515625, 0.060546875, 0.8935546875, 0.1435546875}));
  EXPECT_EQ(testutil::Doubles(Draw("uniform", DType::kBFloat16, {5})[0]),
            (std::vector<double>{0.34375, 0.8828125, 0.484375, 0.1484375, 0.1484375}));
  const Tensor full = Draw("uniform_full_int", DType::kUInt32, {3})[0];
  EXPECT_EQ(std::vector<uint32_t>(full.data<uint32_t>(), full.data<uint32_t>() + 3),
            (std::vector<uint32_t>{0x41ec0a2c, 0x679894f1, 0xebff843e}));
}

TEST(StatelessRandom, UniformIntMatchesTensorFlow) {
  const auto lo32 = Tensor::Scalar<int32_t>(DType::kInt32, -3), hi32 = Tensor::Scalar<int32_t>(DType::kInt32, 4);
  EXPECT_EQ(testutil::Ints(Draw("uniform_int", DType::kInt32, {5}, {lo32, hi32})[0]),
            (std::vector<int64_t>{2, -2, 2, -3, -2}));
  const auto lo64 = Tensor::Scalar<int64_t>(DType::kInt64, -3), hi64 = Tensor::Scalar<int64_t>(DType::kInt64, 4);
  EXPECT_EQ(testutil::Ints(Draw("uniform_int", DType::kInt64, {3}, {lo64, hi64})[0]), (std::vector<int64_t>{-1, 2, 1}));
  ExpectErrorMessage(
      [&] {
        Draw("uniform_int", DType::kInt32, {5}, {hi32, lo32});
      },
      {"Need minval < maxval", "4 >= -3"});
}

TEST(StatelessRandom, NormalsMatchTensorFlow) {
  // Box-Muller through the C library's log and sincos: within 1e-6 of TensorFlow's (the same
  // library gives the same bits).
  nntest::ExpectNear(Draw("normal", DType::kFloat32, {3})[0],
                     {0.544110119342804, 0.20738030970096588, 0.0735643208026886}, 1e-6);
  nntest::ExpectNear(
      Draw("truncated_normal", DType::kFloat64, {5})[0],
      {-0.1423118100189212, 0.7406072461585091, -0.552387756244845, -0.734450092480207, -0.39842023956588357}, 1e-6);
}

TEST(StatelessRandom, GammaMatchesTensorFlow) {
  // One alpha per column: 1 (the exponential), 0.3 (the u^(1/alpha) factor), 2.5; output [2, 3].
  const Tensor alpha = Tensor::FromVector<double>(DType::kFloat64, {3}, {1.0, 0.3, 2.5});
  nntest::ExpectNear(Draw("gamma", DType::kFloat64, {2, 3}, {alpha})[0],
                     {3.4994423583437104, 0.027091866091997333, 2.8368528938621314, 1.7193092981478832,
                      0.00384715787980068, 1.9701487370173971},
                     1e-9);
  ExpectErrorMessage([&] { Draw("gamma", DType::kFloat64, {3, 2}, {alpha}); }, {"must end with", "[3,2]"});
  // Below -2/3 no draw is ever accepted (TensorFlow loops forever): an error instead.
  const Tensor bad = Tensor::FromVector<double>(DType::kFloat64, {1}, {-1.0});
  ExpectErrorMessage([&] { Draw("gamma", DType::kFloat64, {2, 1}, {bad}); }, {"alpha -1", "> -2/3"});
}

TEST(StatelessRandom, TruncatedNormalStaysWithinTwo) {
  const std::vector<double> v = testutil::Doubles(Draw("truncated_normal", DType::kFloat32, {4001})[0]);
  double most = 0;
  for (double x : v) most = std::max(most, std::abs(x));
  EXPECT_LT(most, 2.0);
  EXPECT_GT(most, 1.9);  // many draws reach close to the cut
}

TEST(StatelessRandom, AnEmptyShapeDrawsNothingWhateverTheAlgorithm) {
  std::vector<Tensor> in = SeedOneTwo({0, 3});
  in[3] = Tensor::Scalar<int32_t>(DType::kInt32, 2);  // a run-time alg: the shape function cannot see it
  OneNode n("StatelessRandom", in, Attrs({{"distribution", std::string("uniform")}, {"dtype", DType::kFloat32}}), 1,
            {0});
  EXPECT_EQ(n.Run(in)[0].num_elements(), 0);
}

TEST(StatelessRandom, ErrorsNameWhatIsWrong) {
  const ir::AttrMap uniform = Attrs({{"distribution", std::string("uniform")}, {"dtype", DType::kFloat32}});
  std::vector<Tensor> in = SeedOneTwo({4});
  in[3] = Tensor::Scalar<int32_t>(DType::kInt32, 2);
  OneNode threefry("StatelessRandom", in, uniform, 1, {0});
  ExpectErrorMessage([&] { threefry.Run(in); }, {"unsupported algorithm id 2", "ThreeFry", "Philox"});
  // A constant ThreeFry alg is refused by the shape function.
  ExpectErrorMessage([&] { OneNode("StatelessRandom", in, uniform, 1, {0, 3}); }, {"algorithm id 2"});
  in = SeedOneTwo({4});
  in[2] = U64({1}, {0});
  OneNode short_counter("StatelessRandom", in, uniform, 1, {0});
  ExpectErrorMessage([&] { short_counter.Run(in); }, {"counter", "at least 2"});
  in = SeedOneTwo({4});
  ExpectErrorMessage(
      [&] {
        OneNode("StatelessRandom", in, Attrs({{"distribution", std::string("normal")}, {"dtype", DType::kInt32}}), 1,
                {0});
      },
      {"normal does not draw int32"});
  ExpectErrorMessage(
      [&] {
        OneNode("StatelessRandom", in, Attrs({{"distribution", std::string("poisson")}, {"dtype", DType::kFloat32}}), 1,
                {0});
      },
      {"distribution must be", "poisson"});
  ExpectErrorMessage(
      [&] {
        OneNode("StatelessRandom", in, Attrs({{"distribution", std::string("uniform_int")}, {"dtype", DType::kInt32}}),
                1, {0});
      },
      {"uniform_int takes 6 inputs"});
}

TEST(StatelessRandom, ShapeFunctionKeepsAComputedShape) {
  // shape not constant: the rank is known from its length, the dims are not.
  const std::vector<Tensor> in = SeedOneTwo({2, 3});
  OneNode n("StatelessRandom", in, Attrs({{"distribution", std::string("uniform")}, {"dtype", DType::kFloat64}}));
  EXPECT_EQ(n.out().dtype, DType::kFloat64);
  EXPECT_EQ(n.Run(in)[0].shape(), (Shape{2, 3}));
}

}  // namespace
}  // namespace kiln
