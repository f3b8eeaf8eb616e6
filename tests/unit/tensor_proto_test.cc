// DecodeTensorProto: tensor_content, typed fields, the fill rule and malformed protos.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/model_budget.h"
#include "common/proto/tensor_proto.h"
#include "common/proto/tf.pb.h"
#include "frontend/tf/importer.h"
#include "kiln/half.h"
#include "tests/unit/test_util.h"

namespace kiln::tf {
namespace {

using testutil::ExpectError;

tfproto::TensorProto Proto(DType dtype, const Shape& shape) {
  tfproto::TensorProto p;
  p.set_dtype(static_cast<int>(dtype));
  for (int64_t d : shape) p.mutable_tensor_shape()->add_dim()->set_size(d);
  return p;
}

template <typename T>
std::vector<T> Values(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.num_elements());
}

TEST(TensorProto, FloatValues) {
  auto p = Proto(DType::kFloat32, {2, 2});
  for (float v : {1.f, 2.f, 3.f, 4.f}) p.add_float_val(v);
  const Tensor t = DecodeTensorProto(p, "c");
  EXPECT_EQ(t.dtype(), DType::kFloat32);
  EXPECT_EQ(t.shape(), (Shape{2, 2}));
  EXPECT_EQ(Values<float>(t), (std::vector<float>{1, 2, 3, 4}));
}

TEST(TensorProto, FillRepeatsLastValue) {
  auto p = Proto(DType::kFloat32, {5});
  p.add_float_val(1.5f);
  p.add_float_val(-2.f);
  EXPECT_EQ(Values<float>(DecodeTensorProto(p, "c")), (std::vector<float>{1.5f, -2, -2, -2, -2}));

  auto s = Proto(DType::kInt64, {2, 3});
  s.add_int64_val(7);  // scalar broadcast, as tf.fill / tf.ones store it
  EXPECT_EQ(Values<int64_t>(DecodeTensorProto(s, "c")), std::vector<int64_t>(6, 7));
}

TEST(TensorProto, FillWithNoValuesIsZeros) {
  auto p = Proto(DType::kFloat64, {3});
  EXPECT_EQ(Values<double>(DecodeTensorProto(p, "c")), (std::vector<double>{0, 0, 0}));
  auto s = Proto(DType::kString, {2});
  const Tensor st = DecodeTensorProto(s, "c");
  EXPECT_EQ(st.strings(), (std::vector<std::string>{"", ""}));
}

TEST(TensorProto, ExtraValuesAreIgnored) {
  auto p = Proto(DType::kInt32, {2});
  for (int v : {1, 2, 3}) p.add_int_val(v);
  EXPECT_EQ(Values<int32_t>(DecodeTensorProto(p, "c")), (std::vector<int32_t>{1, 2}));
}

TEST(TensorProto, Scalar) {
  auto p = Proto(DType::kInt32, {});
  p.add_int_val(-9);
  const Tensor t = DecodeTensorProto(p, "c");
  EXPECT_EQ(t.rank(), 0);
  EXPECT_EQ(t.num_elements(), 1);
  EXPECT_EQ(t.data<int32_t>()[0], -9);
}

TEST(TensorProto, ZeroElements) {
  auto p = Proto(DType::kFloat32, {0, 4});
  p.add_float_val(1.f);
  const Tensor t = DecodeTensorProto(p, "c");
  EXPECT_EQ(t.shape(), (Shape{0, 4}));
  EXPECT_EQ(t.num_elements(), 0);
}

TEST(TensorProto, TensorContent) {
  auto p = Proto(DType::kInt16, {3});
  const int16_t raw[3] = {-1, 300, 7};
  p.set_tensor_content(std::string(reinterpret_cast<const char*>(raw), sizeof(raw)));
  p.add_int_val(99);  // ignored when tensor_content is set
  EXPECT_EQ(Values<int16_t>(DecodeTensorProto(p, "c")), (std::vector<int16_t>{-1, 300, 7}));
}

TEST(TensorProto, TensorContentSizeMismatch) {
  auto p = Proto(DType::kFloat32, {2, 3});
  p.set_tensor_content(std::string(20, '\0'));
  ExpectError([&] { DecodeTensorProto(p, "node 'my_const'"); }, ErrorCode::kDataLoss,
              {"node 'my_const'", "tensor_content", "20", "24"});
}

TEST(TensorProto, IntegerFields) {
  auto i8 = Proto(DType::kInt8, {3});
  for (int v : {-128, 5, 127}) i8.add_int_val(v);
  EXPECT_EQ(Values<int8_t>(DecodeTensorProto(i8, "c")), (std::vector<int8_t>{-128, 5, 127}));
  auto u8 = Proto(DType::kUInt8, {2});
  for (int v : {0, 255}) u8.add_int_val(v);
  EXPECT_EQ(Values<uint8_t>(DecodeTensorProto(u8, "c")), (std::vector<uint8_t>{0, 255}));
  auto u16 = Proto(DType::kUInt16, {1});
  u16.add_int_val(65535);
  EXPECT_EQ(Values<uint16_t>(DecodeTensorProto(u16, "c")), (std::vector<uint16_t>{65535}));
  auto u32 = Proto(DType::kUInt32, {2});
  u32.add_uint32_val(4000000000u);
  EXPECT_EQ(Values<uint32_t>(DecodeTensorProto(u32, "c")), (std::vector<uint32_t>{4000000000u, 4000000000u}));
  auto u64 = Proto(DType::kUInt64, {1});
  u64.add_uint64_val(18000000000000000000ull);
  EXPECT_EQ(Values<uint64_t>(DecodeTensorProto(u64, "c")), (std::vector<uint64_t>{18000000000000000000ull}));
  auto i64 = Proto(DType::kInt64, {2});
  i64.add_int64_val(-(int64_t{1} << 40));
  i64.add_int64_val(3);
  EXPECT_EQ(Values<int64_t>(DecodeTensorProto(i64, "c")), (std::vector<int64_t>{-(int64_t{1} << 40), 3}));
}

TEST(TensorProto, Bool) {
  auto p = Proto(DType::kBool, {3});
  p.add_bool_val(true);
  p.add_bool_val(false);
  EXPECT_EQ(Values<uint8_t>(DecodeTensorProto(p, "c")), (std::vector<uint8_t>{1, 0, 0}));
}

TEST(TensorProto, HalfAndBFloat16) {
  auto h = Proto(DType::kFloat16, {3});
  h.add_half_val(Half::FromFloat(1.5f));
  h.add_half_val(Half::FromFloat(-2.f));
  const Tensor ht = DecodeTensorProto(h, "c");
  EXPECT_EQ(ht.dtype(), DType::kFloat16);
  EXPECT_EQ(ht.DoubleAt(0), 1.5);
  EXPECT_EQ(ht.DoubleAt(1), -2.0);
  EXPECT_EQ(ht.DoubleAt(2), -2.0);

  auto b = Proto(DType::kBFloat16, {2});
  b.add_half_val(BFloat16::FromFloat(3.5f));
  b.add_half_val(0xbf80);  // -1.0
  const Tensor bt = DecodeTensorProto(b, "c");
  EXPECT_EQ(bt.dtype(), DType::kBFloat16);
  EXPECT_EQ(Values<uint16_t>(bt), (std::vector<uint16_t>{0x4060, 0xbf80}));

  auto old = Proto(DType::kBFloat16, {1});
  old.add_int_val(0x4060);  // very old writers put bfloat16 in int_val
  EXPECT_EQ(DecodeTensorProto(old, "c").DoubleAt(0), 3.5);
}

TEST(TensorProto, Complex) {
  auto p = Proto(DType::kComplex64, {3});
  for (float v : {1.f, 2.f, 3.f, 4.f}) p.add_scomplex_val(v);
  const Tensor t = DecodeTensorProto(p, "c");
  EXPECT_EQ(t.dtype(), DType::kComplex64);
  const float* f = t.data<float>();
  EXPECT_EQ(std::vector<float>(f, f + 6), (std::vector<float>{1, 2, 3, 4, 3, 4}));  // fill repeats (3, 4)

  auto d = Proto(DType::kComplex128, {2});
  d.add_dcomplex_val(-1.0);
  d.add_dcomplex_val(0.5);
  const Tensor dt = DecodeTensorProto(d, "c");
  const double* g = dt.data<double>();
  EXPECT_EQ(std::vector<double>(g, g + 4), (std::vector<double>{-1, 0.5, -1, 0.5}));
}

TEST(TensorProto, Strings) {
  auto p = Proto(DType::kString, {3});
  p.add_string_val("a");
  p.add_string_val(std::string("b\0c", 3));
  const Tensor t = DecodeTensorProto(p, "c");
  EXPECT_EQ(t.dtype(), DType::kString);
  EXPECT_EQ(t.strings(), (std::vector<std::string>{"a", std::string("b\0c", 3), std::string("b\0c", 3)}));
  auto s = Proto(DType::kString, {});
  s.add_string_val("scalar");
  EXPECT_EQ(DecodeTensorProto(s, "c").strings(), (std::vector<std::string>{"scalar"}));
}

TEST(TensorProto, Malformed) {
  auto neg = Proto(DType::kFloat32, {2, -1});
  ExpectError([&] { DecodeTensorProto(neg, "const 'x'"); }, ErrorCode::kDataLoss, {"const 'x'", "negative"});
  auto unk = Proto(DType::kFloat32, {});
  unk.mutable_tensor_shape()->set_unknown_rank(true);
  ExpectError([&] { DecodeTensorProto(unk, "const 'x'"); }, ErrorCode::kDataLoss, {"const 'x'", "unknown rank"});
  auto huge = Proto(DType::kFloat32, {int64_t{1} << 40, int64_t{1} << 40});
  huge.add_float_val(1.f);
  ExpectError([&] { DecodeTensorProto(huge, "const 'x'"); }, ErrorCode::kDataLoss, {"const 'x'"});
  auto bad_dtype = Proto(DType::kFloat32, {1});
  bad_dtype.set_dtype(99);
  ExpectError([&] { DecodeTensorProto(bad_dtype, "const 'x'"); }, ErrorCode::kUnimplemented, {"const 'x'", "99"});
  auto res = Proto(DType::kResource, {1});
  ExpectError([&] { DecodeTensorProto(res, "const 'x'"); }, ErrorCode::kUnimplemented, {"const 'x'", "resource"});
  auto odd = Proto(DType::kComplex64, {1});
  odd.add_scomplex_val(1.f);
  ExpectError([&] { DecodeTensorProto(odd, "const 'x'"); }, ErrorCode::kDataLoss, {"const 'x'", "odd"});
}

}  // namespace
}  // namespace kiln::tf

namespace kiln {
namespace {

// A constant that stores one value for 2^20 elements asks for 4 MiB: counted at its full size
// against the model's budget before it is allocated, together with what the model read before.
TEST(ModelBudget, ConstantsCountAtTheirFullSizeAgainstTheModelsLimit) {
  tfproto::TensorProto splat;
  splat.set_dtype(static_cast<int>(DType::kFloat32));  // TensorFlow's DT_FLOAT
  splat.mutable_tensor_shape()->add_dim()->set_size(int64_t{1} << 20);
  splat.add_float_val(1.5f);
  SetMaxModelBytes(size_t{6} << 20);
  {
    ModelReadScope scope("model_a");
    EXPECT_EQ(tfproto::DecodeTensorProto(splat, "first").num_elements(), int64_t{1} << 20);
    testutil::ExpectError([&] { tfproto::DecodeTensorProto(splat, "node 'second' attribute 'value'"); },
                          ErrorCode::kResourceExhausted,
                          {"node 'second' attribute 'value' needs 4194304 bytes", "model 'model_a' to 8388608 bytes",
                           "6291456 bytes"});
    ModelReadScope inner("model_a again");  // a nested scope adds to the outer one
    testutil::ExpectError([&] { tfproto::DecodeTensorProto(splat, "third"); }, ErrorCode::kResourceExhausted, {"'model_a'"});
  }
  {
    ModelReadScope scope("model_b");  // a new read starts from zero
    EXPECT_NO_THROW(tfproto::DecodeTensorProto(splat, "first"));
  }
  // Outside a read only the per-tensor limit applies.
  EXPECT_NO_THROW(tfproto::DecodeTensorProto(splat, "a"));
  EXPECT_NO_THROW(tfproto::DecodeTensorProto(splat, "b"));
  SetMaxModelBytes(0);
  EXPECT_GT(MaxModelBytes(), size_t{1} << 20);
  EXPECT_LT(MaxModelBytes(), MaxTensorBytes());  // three quarters of physical memory
}

}  // namespace
}  // namespace kiln
