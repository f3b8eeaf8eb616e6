// Select, Cast, Clip, AddN, QuantizeAndDequantize and FakeQuant: kernels and shape inference.
#include <cmath>
#include <limits>

#include "tests/unit/elementwise_test_util.h"

namespace kiln::ew_test {
namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();
const int64_t kInt32Min = std::numeric_limits<int32_t>::min();

TEST(ElementwiseSelect, BroadcastsAllThreeInputs) {
  EXPECT_EQ(Doubles(RunOp("Select", {Bool({2, 1}, {1, 0}), F32({2, 3}, {1, 2, 3, 4, 5, 6}), F32({}, {0})})),
            (std::vector<double>{1, 2, 3, 0, 0, 0}));
  const Tensor out = RunOp("Select", {Bool({3}, {1, 0, 1}), I64({2, 1}, {10, 20}), I64({}, {-1})});
  EXPECT_EQ(out.shape(), (Shape{2, 3}));
  EXPECT_EQ(Ints(out), (std::vector<int64_t>{10, -1, 10, 20, -1, 20}));
  EXPECT_EQ(Doubles(RunOp("Select", {Bool({}, {0}), F16({2}, {1, 2}), F16({2}, {3, 4})})), (std::vector<double>{3, 4}));
  const Tensor s = RunOp("Select", {Bool({2}, {0, 1}), Str({2}, {"a", "b"}), Str({2}, {"c", "d"})});
  EXPECT_EQ(s.strings(), (std::vector<std::string>{"c", "b"}));
  EXPECT_EQ(RunOp("Select", {Bool({0}, {}), F32({0}, {}), F32({}, {1})}).shape(), (Shape{0}));
}

TEST(ElementwiseSelect, InferenceAndErrors) {
  ir::Graph g;
  const ir::Dim n = g.NewSymbol("N");
  const ir::Value v = Infer("Select", {{DType::kBool, S({n, 1})}, {DType::kFloat32, S({3})}, {DType::kFloat32, S({})}}, {}, &g);
  EXPECT_EQ(v.dtype, DType::kFloat32);
  EXPECT_EQ(v.shape.dims, (std::vector<ir::Dim>{n, 3}));
  std::string err = InferError("Select", {{DType::kInt32, S({2})}, {DType::kFloat32, S({2})}, {DType::kFloat32, S({2})}});
  EXPECT_NE(err.find("condition ('in0') must be bool, got int32"), std::string::npos) << err;
  err = InferError("Select", {{DType::kBool, S({2})}, {DType::kFloat32, S({2})}, {DType::kInt32, S({2})}});
  EXPECT_NE(err.find("inputs 1 and 2 must have the same dtype, got float32 and int32"), std::string::npos) << err;
  err = InferError("Select", {{DType::kBool, S({3})}, {DType::kFloat32, S({2})}, {DType::kFloat32, S({2})}});
  EXPECT_NE(err.find("cannot be broadcast"), std::string::npos) << err;
}

ir::AttrMap CastTo(DType to, bool truncate = false) { return Attrs({{"to", to}, {"truncate", truncate}}); }

TEST(ElementwiseCast, FloatToInteger) {
  EXPECT_EQ(Ints(RunOp("Cast", {F32({5}, {-1.7, 2.9, 1e10, kNaN, -1e10})}, CastTo(DType::kInt32))),
            (std::vector<int64_t>{-1, 2, kInt32Min, kInt32Min, kInt32Min}));
  EXPECT_EQ(Ints(RunOp("Cast", {F32({3}, {300, -1, 255.9})}, CastTo(DType::kUInt8))), (std::vector<int64_t>{44, 255, 255}));
  EXPECT_EQ(Ints(RunOp("Cast", {F64({2}, {-2.5, 1e15})}, CastTo(DType::kInt64))), (std::vector<int64_t>{-2, 1000000000000000LL}));
  EXPECT_EQ(Ints(RunOp("Cast", {F16({2}, {-3.75, 65504})}, CastTo(DType::kInt32))), (std::vector<int64_t>{-3, 65504}));
  const Tensor u64 = RunOp("Cast", {F64({2}, {1e19, 3})}, CastTo(DType::kUInt64));
  EXPECT_EQ(u64.data<uint64_t>()[0], 10000000000000000000ull);
  EXPECT_EQ(u64.data<uint64_t>()[1], 3ull);
}

TEST(ElementwiseCast, IntegerAndBool) {
  EXPECT_EQ(Ints(RunOp("Cast", {I32({3}, {300, -129, 5})}, CastTo(DType::kInt8))), (std::vector<int64_t>{44, 127, 5}));
  EXPECT_EQ(Ints(RunOp("Cast", {U8({1}, {255})}, CastTo(DType::kInt8))), (std::vector<int64_t>{-1}));
  EXPECT_EQ(Doubles(RunOp("Cast", {I64({1}, {16777217})}, CastTo(DType::kFloat32))), (std::vector<double>{16777216}));
  EXPECT_EQ(Ints(RunOp("Cast", {F32({4}, {0, 0.5, -0.0, kNaN})}, CastTo(DType::kBool))), (std::vector<int64_t>{0, 1, 0, 1}));
  EXPECT_EQ(Ints(RunOp("Cast", {I32({3}, {0, 5, -1})}, CastTo(DType::kBool))), (std::vector<int64_t>{0, 1, 1}));
  EXPECT_EQ(Doubles(RunOp("Cast", {Bool({2}, {1, 0})}, CastTo(DType::kFloat32))), (std::vector<double>{1, 0}));
  EXPECT_EQ(Doubles(RunOp("Cast", {Bool({2}, {1, 0})}, CastTo(DType::kBFloat16))), (std::vector<double>{1, 0}));
  EXPECT_EQ(Ints(RunOp("Cast", {F16({2}, {0, 0.001})}, CastTo(DType::kBool))), (std::vector<int64_t>{0, 1}));
}

TEST(ElementwiseCast, HalfAndBFloat16Rounding) {
  // float -> half: round to nearest even; overflow -> inf.
  EXPECT_EQ(Doubles(RunOp("Cast", {F32({3}, {1.00048828125, 1.00146484375, 70000})}, CastTo(DType::kFloat16))),
            (std::vector<double>{1.0, 1.001953125, kInf}));
  // Truncate=true drops the extra mantissa bits instead of rounding.
  EXPECT_EQ(Doubles(RunOp("Cast", {F32({1}, {1.00146484375})}, CastTo(DType::kFloat16, true))), (std::vector<double>{1.0009765625}));
  EXPECT_EQ(Doubles(RunOp("Cast", {F32({2}, {1.00390625, 1.01171875})}, CastTo(DType::kBFloat16))),
            (std::vector<double>{1.0, 1.015625}));
  EXPECT_EQ(Doubles(RunOp("Cast", {F32({1}, {1.01171875})}, CastTo(DType::kBFloat16, true))), (std::vector<double>{1.0078125}));
  const double x = 1.0 + std::ldexp(1.0, -24) + std::ldexp(1.0, -25);
  EXPECT_EQ(Doubles(RunOp("Cast", {F64({1}, {x})}, CastTo(DType::kFloat32))), (std::vector<double>{1.0 + std::ldexp(1.0, -23)}));
  EXPECT_EQ(Doubles(RunOp("Cast", {F64({1}, {x})}, CastTo(DType::kFloat32, true))), (std::vector<double>{1.0}));
  EXPECT_EQ(Doubles(RunOp("Cast", {F16({1}, {0.333251953125})}, CastTo(DType::kFloat64))), (std::vector<double>{0.333251953125}));
  EXPECT_EQ(Doubles(RunOp("Cast", {BF16({1}, {3})}, CastTo(DType::kFloat16))), (std::vector<double>{3}));
}

TEST(ElementwiseCast, Inference) {
  ir::Graph g;
  const ir::Dim n = g.NewSymbol("N");
  const ir::Value v = Infer("Cast", {{DType::kFloat32, S({n, 2})}}, CastTo(DType::kInt64), &g);
  EXPECT_EQ(v.dtype, DType::kInt64);
  EXPECT_EQ(v.shape.dims, (std::vector<ir::Dim>{n, 2}));
  EXPECT_EQ(Infer("Cast", {{DType::kFloat32, S({2})}}, CastTo(DType::kString)).dtype, DType::kString);  // ONNX's
  const std::string err = InferError("Cast", {{DType::kFloat32, S({2})}}, CastTo(DType::kResource));
  EXPECT_NE(err.find("cannot cast to resource"), std::string::npos) << err;
}

TEST(ElementwiseClip, ClampsWithBroadcasting) {
  ExpectNear(Doubles(RunOp("Clip", {F32({4}, {-2, 0.5, 3, kNaN}), F32({}, {0}), F32({}, {1})})), {0, 0.5, 1, kNaN});
  // Per-element bounds broadcast; lo > hi gives lo (min first, then max, like TensorFlow).
  EXPECT_EQ(Doubles(RunOp("Clip", {F32({2, 2}, {-5, 5, 0.5, 1.5}), F32({2}, {0, 1}), F32({}, {2})})),
            (std::vector<double>{0, 2, 0.5, 1.5}));
  EXPECT_EQ(Doubles(RunOp("Clip", {F32({1}, {5}), F32({}, {3}), F32({}, {1})})), (std::vector<double>{3}));
  EXPECT_EQ(Ints(RunOp("Clip", {I32({3}, {-9, 4, 9}), I32({}, {-1}), I32({}, {5})})), (std::vector<int64_t>{-1, 4, 5}));
  const std::string err = InferError("Clip", {{DType::kFloat32, S({2})}, {DType::kFloat64, S({})}, {DType::kFloat32, S({})}});
  EXPECT_NE(err.find("inputs 0 and 1 must have the same dtype, got float32 and float64"), std::string::npos) << err;
}

TEST(ElementwiseAddN, SumsAnyNumberOfInputs) {
  EXPECT_EQ(Doubles(RunOp("AddN", {F32({3}, {1, 2, 3}), F32({3}, {10, 20, 30}), F32({3}, {0.5, 0.5, 0.5})})),
            (std::vector<double>{11.5, 22.5, 33.5}));
  EXPECT_EQ(Ints(RunOp("AddN", {I8({2}, {100, 1}), I8({2}, {100, 2})})), (std::vector<int64_t>{-56, 3}));
  EXPECT_EQ(Doubles(RunOp("AddN", {F16({2}, {1, 2})})), (std::vector<double>{1, 2}));
  EXPECT_EQ(Doubles(RunOp("AddN", {F32({2, 2}, {1, 2, 3, 4}), F32({2}, {10, 20})})), (std::vector<double>{11, 22, 13, 24}));
  const std::string err = InferError("AddN", {{DType::kFloat32, S({2})}, {DType::kFloat32, S({2})}, {DType::kInt32, S({2})}});
  EXPECT_NE(err.find("inputs 0 and 2 must have the same dtype, got float32 and int32"), std::string::npos) << err;
}

ir::AttrMap Qdq(bool signed_input, int64_t num_bits, bool range_given, const std::string& round_mode = "HALF_TO_EVEN",
                int64_t axis = -1, bool narrow_range = false) {
  return Attrs({{"signed_input", signed_input},
                {"num_bits", num_bits},
                {"range_given", range_given},
                {"round_mode", round_mode},
                {"narrow_range", narrow_range},
                {"axis", axis}});
}

TEST(ElementwiseQuantizeAndDequantize, SignedRangeGiven) {
  // scale = 127 (the max side decides), so min_range becomes -128/127.
  const Tensor x = F32({5}, {-1, -0.5, 0, 0.3, 1});
  ExpectNear(Doubles(RunOp("QuantizeAndDequantize", {x, F32({}, {-1}), F32({}, {1})}, Qdq(true, 8, true))),
             {-1, -64.0 / 127, 0, 38.0 / 127, 1}, 1e-6);
  ExpectNear(Doubles(RunOp("QuantizeAndDequantize", {x, F32({}, {-1}), F32({}, {1})}, Qdq(true, 8, true, "HALF_UP"))),
             {-1, -63.0 / 127, 0, 38.0 / 127, 1}, 1e-6);
  // Range from the data (input min/max ignored), no clamping.
  ExpectNear(Doubles(RunOp("QuantizeAndDequantize", {x, F32({}, {0}), F32({}, {0})}, Qdq(true, 8, false))),
             {-1, -64.0 / 127, 0, 38.0 / 127, 1}, 1e-6);
}

TEST(ElementwiseQuantizeAndDequantize, UnsignedClampsAndPerChannel) {
  ExpectNear(Doubles(RunOp("QuantizeAndDequantize", {F32({4}, {-0.5, 0, 0.2, 2}), F32({}, {0}), F32({}, {1})},
                         Qdq(false, 8, true))),
             {0, 0, 0.2, 1}, 1e-6);
  // axis 1: column 0 has range [-1, 0.25] (scale 128), column 1 [0.5, 2] (scale 127/2).
  ExpectNear(Doubles(RunOp("QuantizeAndDequantize", {F32({2, 2}, {-1, 0.5, 0.25, 2}), F32({2}, {0, 0}), F32({2}, {0, 0})},
                         Qdq(true, 8, false, "HALF_TO_EVEN", 1))),
             {-1, 64.0 / 127, 0.25, 2}, 1e-6);
  std::string err = KernelError("QuantizeAndDequantize", {F32({1}, {0}), F32({}, {1}), F32({}, {-1})}, Qdq(true, 8, true));
  EXPECT_NE(err.find("Invalid range: input_min 1 > input_max -1"), std::string::npos) << err;
  err = InferError("QuantizeAndDequantize", {{DType::kFloat32, S({2})}, {DType::kFloat32, S({})}, {DType::kFloat32, S({})}},
                   Qdq(true, 62, true));
  EXPECT_NE(err.find("num_bits is out of range: 62 with signed_input true"), std::string::npos) << err;
  err = InferError("QuantizeAndDequantize", {{DType::kFloat32, S({2, 3})}, {DType::kFloat32, S({})}, {DType::kFloat32, S({})}},
                   Qdq(true, 8, true, "HALF_TO_EVEN", 1));
  EXPECT_NE(err.find("input_min must be a vector, got shape []"), std::string::npos) << err;
}

ir::AttrMap Fq(int64_t num_bits = 8, bool narrow_range = false, bool divide = false) {
  return Attrs({{"num_bits", num_bits}, {"narrow_range", narrow_range}, {"divide_by_scale", divide}});
}

TEST(ElementwiseFakeQuant, NudgesMinMaxLikeTensorFlow) {
  // min -6, max 6, 8 bits: scale 12/255, zero point 127.5 -> 128, nudged range [-128, 127] * scale.
  const double scale = 12.0 / 255;
  ExpectNear(Doubles(RunOp("FakeQuant", {F32({4}, {0, 6, -10, 1}), F32({}, {-6}), F32({}, {6})}, Fq())),
             {0, 127 * scale, -128 * scale, 21 * scale}, 1e-6);
  // narrow_range: quant range [1, 255], scale 12/254, nudged range exactly [-6, 6].
  ExpectNear(Doubles(RunOp("FakeQuant", {F32({2}, {6, -7}), F32({}, {-6}), F32({}, {6})}, Fq(8, true))), {6, -6}, 1e-6);
  // FakeQuantWithMinMaxVars: divides by the scale; min == max == 0 gives zeros.
  ExpectNear(Doubles(RunOp("FakeQuant", {F32({1}, {0.5}), F32({}, {-1}), F32({}, {1})}, Fq(8, false, true))), {64 * 2.0 / 255}, 1e-6);
  EXPECT_EQ(Doubles(RunOp("FakeQuant", {F32({2}, {0.5, -3}), F32({}, {0}), F32({}, {0})}, Fq(8, false, true))),
            (std::vector<double>{0, 0}));
  // Per channel over the last dim.
  ExpectNear(Doubles(RunOp("FakeQuant", {F32({2, 2}, {0.5, 3, -0.1, 10}), F32({2}, {-1, 0}), F32({2}, {1, 8})}, Fq())),
             {64 * 2.0 / 255, 96 * 8.0 / 255, -13 * 2.0 / 255, 8}, 1e-6);
}

TEST(ElementwiseFakeQuant, Errors) {
  std::string err = InferError("FakeQuant", {{DType::kFloat32, S({2})}, {DType::kFloat32, S({})}, {DType::kFloat32, S({})}}, Fq(17));
  EXPECT_NE(err.find("num_bits must be between 2 and 16, inclusive, got 17"), std::string::npos) << err;
  err = InferError("FakeQuant", {{DType::kFloat16, S({2})}, {DType::kFloat32, S({})}, {DType::kFloat32, S({})}}, Fq());
  EXPECT_NE(err.find("input 0 ('in0') must be float32, got float16"), std::string::npos) << err;
  err = InferError("FakeQuant", {{DType::kFloat32, S({2, 3})}, {DType::kFloat32, S({2})}, {DType::kFloat32, S({2})}}, Fq());
  EXPECT_NE(err.find("per-channel min has 2 elements but the input's last dimension is 3"), std::string::npos) << err;
}

}  // namespace
}  // namespace kiln::ew_test
