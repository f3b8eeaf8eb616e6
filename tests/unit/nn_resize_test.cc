// The IR op Resize (ONNX's Resize / Upsample): its reference kernel on small tensors against
// values worked out by hand (the comments give the source coordinates and weights; the
// antialiased cubic case is ONNX's reference implementation, onnx.reference), its shape function
// and its errors.
#include <limits>

#include "tests/unit/nn_test_util.h"

namespace kiln {
namespace {

using namespace nntest;
using testutil::ExpectError;
using testutil::ExpectErrorMessage;

ir::AttrMap ResizeAttrs(const std::string& mode, const std::string& ctm,
                        const std::string& nearest = "round_prefer_floor") {
  return Attrs({{"mode", mode}, {"coordinate_transformation_mode", ctm}, {"nearest_mode", nearest}});
}

Tensor Scales(const std::vector<float>& v) { return F32({static_cast<int64_t>(v.size())}, v); }
Tensor Sizes(const std::vector<int64_t>& v) {
  return Tensor::FromVector<int64_t>(DType::kInt64, {static_cast<int64_t>(v.size())}, v);
}

// Runs Resize with constant scales / sizes (and roi), so shape inference sees them and RunOp
// checks its shape against the kernel's.
Tensor Resize(const Tensor& x, const Tensor& target, ir::AttrMap attrs, const Tensor* roi = nullptr) {
  std::vector<Tensor> in = {x, target};
  std::set<int> constants = {1};
  if (roi) {
    in.push_back(*roi);
    constants.insert(2);
  }
  return RunOp("Resize", in, std::move(attrs), 1, constants)[0];
}

TEST(NnResize, NearestModes) {
  const Tensor x = F32({3}, {10, 20, 30});
  // half_pixel, 3 -> 5 (sizes): coords (o + .5) * 3/5 - .5 = -.2, .4, 1, 1.6, 2.2
  ExpectNear(Resize(x, Sizes({5}), ResizeAttrs("nearest", "half_pixel")), {10, 10, 20, 30, 30});
  ExpectNear(Resize(x, Sizes({5}), ResizeAttrs("nearest", "half_pixel", "floor")), {10, 10, 20, 20, 30});
  ExpectNear(Resize(x, Sizes({5}), ResizeAttrs("nearest", "half_pixel", "ceil")), {10, 20, 20, 30, 30});
  // asymmetric, x2: coords 0, .5, 1, 1.5, 2, 2.5: ties go down (prefer_floor) or up (prefer_ceil)
  ExpectNear(Resize(x, Scales({2}), ResizeAttrs("nearest", "asymmetric")), {10, 10, 20, 20, 30, 30});
  ExpectNear(Resize(x, Scales({2}), ResizeAttrs("nearest", "asymmetric", "round_prefer_ceil")),
             {10, 20, 20, 30, 30, 30});
  // tf_half_pixel_for_nn (opset 11): (o + .5) / 2 = .25, .75, 1.25, 1.75, 2.25, 2.75 (clamped)
  ExpectNear(Resize(x, Scales({2}), ResizeAttrs("nearest", "tf_half_pixel_for_nn")), {10, 20, 20, 30, 30, 30});
  // align_corners, 3 -> 5: o * 2/4 = 0, .5, 1, 1.5, 2
  ExpectNear(Resize(x, Sizes({5}), ResizeAttrs("nearest", "align_corners")), {10, 10, 20, 20, 30});
  // "simple" (Resize-10, Upsample): floor when enlarging, ceil when shrinking. 5 -> 3 by .6:
  // coords 0, 1.67, 3.33 -> 0, 2, 4 (ONNX's opset-10 test downsample_nearest).
  const Tensor y = F32({5}, {1, 2, 3, 4, 5});
  ExpectNear(Resize(y, Scales({0.6f}), ResizeAttrs("nearest", "asymmetric", "simple")), {1, 3, 5});
  ExpectNear(Resize(x, Scales({1.5f}), ResizeAttrs("nearest", "asymmetric", "simple")), {10, 10, 20, 30});
}

TEST(NnResize, NearestCopiesEveryDtypeExactly) {
  // [2,2,3] rows doubled along axis 1 (asymmetric floor): rows 0 0 1 1 of each batch.
  std::vector<int64_t> v(12);
  for (size_t i = 0; i < v.size(); ++i) v[i] = (int64_t{1} << 60) + static_cast<int64_t>(i);  // beyond double's 53 bits
  const Tensor x = Tensor::FromVector<int64_t>(DType::kInt64, {2, 2, 3}, v);
  const Tensor y = Resize(x, Scales({1, 2, 1}), ResizeAttrs("nearest", "asymmetric", "floor"));
  const int64_t b = int64_t{1} << 60;
  EXPECT_EQ(testutil::Ints(y), (std::vector<int64_t>{b + 0, b + 1, b + 2, b + 0,  b + 1,  b + 2, b + 3,  b + 4,
                                                     b + 5, b + 3, b + 4, b + 5,  b + 6,  b + 7, b + 8,  b + 6,
                                                     b + 7, b + 8, b + 9, b + 10, b + 11, b + 9, b + 10, b + 11}));
  Tensor s(DType::kString, {2});
  s.strings() = {"a", "b"};
  OneNode n("Resize", {s, Sizes({3})}, ResizeAttrs("nearest", "asymmetric", "floor"), 1, {1});
  const Tensor out = n.Run({s, Sizes({3})})[0];
  EXPECT_EQ(out.strings(), (std::vector<std::string>{"a", "a", "b"}));  // coords 0, .67, 1.33
  const Tensor flags = Tensor::FromVector<bool>(DType::kBool, {2}, {true, false});
  EXPECT_EQ(testutil::Ints(Resize(flags, Scales({2}), ResizeAttrs("nearest", "asymmetric"))),
            (std::vector<int64_t>{1, 1, 0, 0}));
}

TEST(NnResize, LinearCoordinateModes) {
  const Tensor x = F32({2}, {0, 1});
  // half_pixel x2: coords -.25, .25, .75, 1.25 (clamped at the edges)
  ExpectNear(Resize(x, Scales({2}), ResizeAttrs("linear", "half_pixel")), {0, 0.25, 0.75, 1});
  // asymmetric x2: 0, .5, 1, 1.5
  ExpectNear(Resize(x, Scales({2}), ResizeAttrs("linear", "asymmetric")), {0, 0.5, 1, 1});
  // align_corners with a fractional in * scale: ONNX's reference divides by in * scale - 1:
  // 4 * .6 = 2.4 -> 2 outputs, coord of output 1 = 3 / 1.4 = 2.142857
  const Tensor y = F32({4}, {1, 2, 3, 4});
  ExpectNear(Resize(y, Scales({0.6f}), ResizeAttrs("linear", "align_corners")), {1, 3.142857142857143}, 1e-6);
  // half_pixel_symmetric centres the floored canvas: 5 * .5 = 2.5 -> 2, offset 2.5 * (1 - 2/2.5)
  // = .5, coords .5 + 2o + 1 - .5 = 1, 3 (half_pixel: .5, 2.5)
  const Tensor z = F32({5}, {1, 2, 3, 4, 5});
  ExpectNear(Resize(z, Scales({0.5f}), ResizeAttrs("linear", "half_pixel_symmetric")), {2, 4});
  ExpectNear(Resize(z, Scales({0.5f}), ResizeAttrs("linear", "half_pixel")), {1.5, 3.5});
  // pytorch_half_pixel with one output: coord 0 (half_pixel would give 1.5)
  ExpectNear(Resize(y, Sizes({1}), ResizeAttrs("linear", "pytorch_half_pixel")), {1});
  ExpectNear(Resize(y, Sizes({1}), ResizeAttrs("linear", "half_pixel")), {2.5});
}

TEST(NnResize, LinearIsSeparableOverAxes) {
  // [2,2] -> [3,3] align_corners: coords 0, .5, 1 on both axes.
  const Tensor x = F32({2, 2}, {0, 10, 20, 30});
  ExpectNear(Resize(x, Sizes({3, 3}), ResizeAttrs("linear", "align_corners")), {0, 5, 10, 10, 15, 20, 20, 25, 30});
}

TEST(NnResize, Cubic) {
  // Asymmetric x2 over [1, 2, 4, 8]: at coord 1.5 the weights (a = -.75) are -.09375, .59375,
  // .59375, -.09375 on inputs 0..3: -.09375 + 1.1875 + 2.375 - .75 = 2.71875; at .5 the taps -1..2
  // clamp to inputs 0, 0, 1, 2: 1.3125. Integer coords give the input itself.
  const Tensor x = F32({4}, {1, 2, 4, 8});
  ExpectNear(Resize(x, Scales({2}), ResizeAttrs("cubic", "asymmetric")), {1, 1.3125, 2, 2.71875, 4, 6.1875, 8, 8.375});
  // exclude_outside drops the tap at -1 and renormalises: (.59375 + 1.1875 - .375) / 1.09375 = 9/7
  ir::AttrMap ex = ResizeAttrs("cubic", "asymmetric");
  ex.Set("exclude_outside", true);
  ExpectNear(Resize(x, Scales({2}), ex), {1, 9.0 / 7, 2, 2.71875, 4, 6.342857142857143, 8, 8.75}, 1e-6);
  // cubic_coeff_a = -.5 at coord .5: weights -.0625, .5625, .5625, -.0625 -> 1.375 on 1, 1, 2, 4
  ir::AttrMap a5 = ResizeAttrs("cubic", "asymmetric");
  a5.Set("cubic_coeff_a", -0.5);
  EXPECT_NEAR(Resize(x, Scales({2}), a5).DoubleAt(1), -0.0625 + 0.5625 + 1.125 - 0.25, 1e-12);
}

TEST(NnResize, Antialias) {
  // Linear 4 -> 2 (scale .5): the triangle filter is stretched to 4 taps; at coord .5 the distances
  // (j - .5) * .5 for j = -1..2 give weights .25 .75 .75 .25, normalised to 1/8 3/8 3/8 1/8 on
  // inputs 0 0 1 2 (clamped): 1.625; at 2.5: inputs 1 2 3 3: 3.375.
  ir::AttrMap aa = ResizeAttrs("linear", "half_pixel");
  aa.Set("antialias", true);
  ExpectNear(Resize(F32({4}, {1, 2, 3, 4}), Sizes({2}), aa), {1.625, 3.375});
  aa.Set("mode", std::string("cubic"));
  // 8 -> 3: ONNX's reference implementation gives these (symmetric about 4.5).
  ExpectNear(Resize(F32({8}, {1, 2, 3, 4, 5, 6, 7, 8}), Sizes({3}), aa), {1.7880583, 4.5, 7.2119417}, 1e-6);
}

TEST(NnResize, TfCropAndResize) {
  const Tensor x = F32({5}, {1, 2, 3, 4, 5});
  ir::AttrMap a = ResizeAttrs("linear", "tf_crop_and_resize");
  // roi [.25, .75] over 4 pixel spans: coords 1 + o * .5 * 4 / 2 = 1, 2, 3
  Tensor roi = F32({2}, {0.25f, 0.75f});
  ExpectNear(Resize(x, Sizes({3}), a, &roi), {2, 3, 4});
  // roi [-.5, .5]: coords -2, 0, 2; -2 lies outside and takes extrapolation_value
  a.Set("extrapolation_value", 9.0);
  roi = F32({2}, {-0.5f, 0.5f});
  ExpectNear(Resize(x, Sizes({3}), a, &roi), {9, 1, 3});
  a.Set("mode", std::string("nearest"));
  ExpectNear(Resize(x, Sizes({3}), a, &roi), {9, 1, 3});
  // Only the listed axes read roi (2 values per listed axis).
  a.Set("axes", std::vector<int64_t>{1});
  ExpectNear(Resize(F32({2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}), Sizes({3}), a, &roi), {9, 1, 3, 9, 6, 8});
}

TEST(NnResize, IntegersRoundHalfToEvenAndSaturate) {
  // Asymmetric x2 over [1, 2]: 1, 1.5, 2, 2 -> 1.5 rounds to 2 (even); over [0, 1]: .5 rounds to 0.
  ir::AttrMap a = ResizeAttrs("linear", "asymmetric");
  EXPECT_EQ(testutil::Ints(Resize(Tensor::FromVector<int32_t>(DType::kInt32, {2}, {1, 2}), Scales({2}), a)),
            (std::vector<int64_t>{1, 2, 2, 2}));
  EXPECT_EQ(testutil::Ints(Resize(Tensor::FromVector<uint8_t>(DType::kUInt8, {2}, {0, 1}), Scales({2}), a)),
            (std::vector<int64_t>{0, 0, 1, 1}));
  // Cubic overshoot saturates: over [-128, -128, 127, 127] coord 2.5 gives 150.9 -> 127, coord
  // .5 gives -136.0 -> -128, coord 1.5 gives -.5 -> 0.
  const Tensor x = Tensor::FromVector<int8_t>(DType::kInt8, {4}, {-128, -128, 127, 127});
  EXPECT_EQ(testutil::Ints(Resize(x, Scales({2}), ResizeAttrs("cubic", "asymmetric"))),
            (std::vector<int64_t>{-128, -128, -128, 0, 127, 127, 127, 127}));
}

TEST(NnResize, FloatingDtypes) {
  for (const Tensor& x : {Tensor::FromVector<Half>(DType::kFloat16, {2}, {Half(0.0f), Half(1.0f)}),
                          Tensor::FromVector<BFloat16>(DType::kBFloat16, {2}, {BFloat16(0.0f), BFloat16(1.0f)}),
                          Tensor::FromVector<double>(DType::kFloat64, {2}, {0, 1})}) {
    const DType t = x.dtype();
    const Tensor y = Resize(x, Scales({2}), ResizeAttrs("linear", "half_pixel"));
    EXPECT_EQ(y.dtype(), t);
    ExpectNear(y, {0, 0.25, 0.75, 1});
  }
}

TEST(NnResize, AxesAndAspectRatio) {
  // Negative axes count from the back; other axes keep their length.
  ir::AttrMap a = ResizeAttrs("nearest", "asymmetric", "floor");
  a.Set("axes", std::vector<int64_t>{-1});
  ExpectNear(Resize(F32({2, 2}, {1, 2, 3, 4}), Scales({2}), a), {1, 1, 2, 2, 3, 3, 4, 4});
  // [4, 6] into 3x3: not_larger scales both by min(3/4, 3/6) = .5 -> [2, 3]; not_smaller by .75
  // -> [3, 4.5 rounded half up = 5].
  ir::AttrMap k = ResizeAttrs("linear", "half_pixel");
  k.Set("keep_aspect_ratio_policy", std::string("not_larger"));
  EXPECT_EQ(Resize(F32({4, 6}, std::vector<float>(24, 1)), Sizes({3, 3}), k).shape(), (Shape{2, 3}));
  k.Set("keep_aspect_ratio_policy", std::string("not_smaller"));
  std::vector<float> ramp(24);
  for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = static_cast<float>(i);
  // The coordinates divide by the common scale .75: row coords (o + .5) / .75 - .5 = .1667, 1.5,
  // 2.8333; column coords .1667, 1.5, 2.8333, 4.1667, 5.5 (clamped to 5).
  ExpectNear(Resize(F32({4, 6}, ramp), Sizes({3, 3}), k),
             {1.1666667, 2.5, 3.8333333, 5.1666667, 6, 9.1666667, 10.5, 11.833333, 13.166667, 14, 17.166667, 18.5,
              19.833333, 21.166667, 22},
             1e-6);
}

TEST(NnResize, EmptyAndScalarOutputs) {
  const Tensor y = Resize(F32({2, 3}, {1, 2, 3, 4, 5, 6}), Sizes({0, 3}), ResizeAttrs("linear", "half_pixel"));
  EXPECT_EQ(y.shape(), (Shape{0, 3}));
  // 0.4 * 2 = .8 floors to 0.
  EXPECT_EQ(Resize(F32({2}, {1, 2}), Scales({0.4f}), ResizeAttrs("nearest", "half_pixel")).shape(), (Shape{0}));
  const Tensor s = Resize(F32({}, {7}), Scales({}), ResizeAttrs("cubic", "half_pixel"));
  ExpectNear(s, {7});
}

TEST(NnResize, ShapeInference) {
  ir::Graph g;
  const ir::Dim n = g.NewSymbol("n");
  const ir::ValueId x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of({n, 3, ir::kUnknownDim, 8}));
  auto infer = [&](ir::ValueId target, ir::AttrMap attrs) {
    ir::Node& node = g.AddNode("Resize", g.value(target).name + "_resize", {x, target});
    node.attrs = std::move(attrs);
    ir::InferNode(g, node.id);
    return g.ShapeToString(g.value(node.outputs[0]).shape);
  };
  const ir::AttrMap lin = ResizeAttrs("linear", "half_pixel");
  // A scale of 1 keeps the batch symbol; an unknown length times 2 is unknown.
  EXPECT_EQ(infer(g.AddConstant("s", Scales({1, 1, 2, 0.5f})), lin), "[n,3,?,4]");
  // Sizes give the lengths whatever the input's.
  EXPECT_EQ(infer(g.AddConstant("z", Sizes({1, 3, 10, 10})), lin), "[1,3,10,10]");
  // Scales / sizes computed at run time: the resized axes are unknown, the others kept.
  ir::AttrMap axes = lin;
  axes.Set("axes", std::vector<int64_t>{2, 3});
  EXPECT_EQ(infer(g.AddInput("dyn", DType::kInt64, ir::SymShape::Of({2})), axes), "[n,3,?,?]");
  EXPECT_EQ(infer(g.AddInput("all", DType::kFloat32, ir::SymShape::Of({4})), lin), "[?,?,?,?]");
  // An aspect-ratio policy needs every listed axis's input length.
  ir::AttrMap keep = axes;
  keep.Set("keep_aspect_ratio_policy", std::string("not_larger"));
  EXPECT_EQ(infer(g.AddConstant("k", Sizes({5, 5})), keep), "[n,3,?,?]");
}

TEST(NnResize, Errors) {
  const Tensor x = F32({2, 2}, {1, 2, 3, 4});
  const ir::AttrMap lin = ResizeAttrs("linear", "half_pixel");
  // Shape inference rejects what it can see; the kernel the rest, naming the node and op.
  ExpectErrorMessage([&] { Resize(x, Scales({2}), lin); }, {"node 'node' (Resize)", "expected 2 scales", "got 1"});
  ExpectErrorMessage([&] { Resize(x, Scales({2, 0}), lin); }, {"scales must be positive and finite, got 0"});
  ExpectErrorMessage([&] { Resize(x, Sizes({2, -1}), lin); }, {"sizes must be non-negative, got -1"});
  ExpectErrorMessage(
      [&] {
        Resize(x, Scales({2, 2}), ResizeAttrs("bicubic", "half_pixel"));
      },
      {"unknown mode 'bicubic'"});
  ExpectErrorMessage(
      [&] {
        Resize(x, Scales({2, 2}), ResizeAttrs("linear", "tf_crop_and_resize"));
      },
      {"tf_crop_and_resize needs roi"});
  ir::AttrMap rep = lin;
  rep.Set("axes", std::vector<int64_t>{1, -1});
  ExpectErrorMessage([&] { Resize(x, Scales({2, 2}), rep); }, {"axis 1 is repeated"});
  ExpectErrorMessage(
      [&] {
        Resize(Tensor::FromVector<bool>(DType::kBool, {2}, {true, false}), Scales({2}), lin);
      },
      {"linear and cubic resizes need a floating or integer input, got bool"});
  // Run-time scales / sizes: the kernel checks them (shape inference could not).
  OneNode n("Resize", {x, Sizes({2, 2})}, lin);
  ExpectErrorMessage([&] { n.Run({x, Sizes({3})}); }, {"node 'node' (Resize)", "expected 2 sizes"});
  ExpectErrorMessage([&] { n.Run({x, Sizes({2, std::numeric_limits<int64_t>::max()})}); }, {"longer than"});
  // Lengths that fit the checks but not memory fail before anything that large is allocated.
  ExpectError(
      [&] {
        n.Run({x, Sizes({int64_t{1} << 40, int64_t{1} << 40})});
      },
      ErrorCode::kInvalidArgument, {"more than 2^63 elements"});
  ExpectError(
      [&] {
        n.Run({x, Sizes({int64_t{1} << 31, int64_t{1} << 31})});
      },
      ErrorCode::kResourceExhausted, {"bytes"});
  // The per-axis tables of a uint8 output can outgrow the output: checked too.
  const Tensor u8 = Tensor::FromVector<uint8_t>(DType::kUInt8, {1}, {7});
  OneNode tables("Resize", {u8, Sizes({900})}, ResizeAttrs("nearest", "asymmetric"));
  SetMaxTensorBytes(1000);
  ExpectError([&] { tables.Run({u8, Sizes({900})}); }, ErrorCode::kResourceExhausted, {"900 outputs of 1 taps"});
  SetMaxTensorBytes(0);
  EXPECT_EQ(tables.Run({u8, Sizes({900})})[0].num_elements(), 900);
  OneNode empty("Resize", {F32({0, 2}, {}), Sizes({1, 2})}, lin);
  ExpectErrorMessage(
      [&] {
        empty.Run({F32({0, 2}, {}), Sizes({1, 2})});
      },
      {"axis 0 of length 0 cannot be resized to 1"});
}

}  // namespace
}  // namespace kiln
