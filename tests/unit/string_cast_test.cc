// Cast to and from strings (ONNX's Cast / CastLike with STRING): the text of numbers (numpy's str,
// as ONNX's reference writes it), the numbers texts hold, and the Cast kernel's errors.
#include "backend/reference/string_cast.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tests/unit/nn_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

using reference::FormatElement;
using reference::ParseElement;
using testutil::Attrs;

template <typename T>
std::vector<std::string> Texts(DType dtype, const std::vector<T>& values) {
  const Tensor t = Tensor::FromVector<T>(dtype, {static_cast<int64_t>(values.size())}, values);
  std::vector<std::string> out;
  for (int64_t i = 0; i < t.num_elements(); ++i) out.push_back(FormatElement(t, i));
  return out;
}

TEST(StringCast, FloatsAsNumpyWritesThem) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  // The shortest text that reads back as the same float32; positional in [1e-4, 1e6).
  EXPECT_EQ(
      Texts<float>(DType::kFloat32, {0.9767611f, 0.039187793f, 0.5f, 3.0f, -0.0f, 0.0f, 123456.7f, 999999.0f}),
      (std::vector<std::string>{"0.9767611", "0.039187793", "0.5", "3.0", "-0.0", "0.0", "123456.7", "999999.0"}));
  EXPECT_EQ(Texts<float>(DType::kFloat32, {1e6f, 1234567.0f, 1e-4f, 1.5e-5f, 3.4e38f, 1e-45f, kInf, -kInf, NAN}),
            (std::vector<std::string>{"1e+06", "1.234567e+06", "1e-04", "1.5e-05", "3.4e+38", "1e-45", "inf", "-inf",
                                      "nan"}));
  // float64: positional up to 1e16; the shortest round trip of the double.
  EXPECT_EQ(Texts<double>(DType::kFloat64, {0.1, 1.0 / 3, 1e15, 9999999999999998.0, 1e16, 1e-4, 5e-324}),
            (std::vector<std::string>{"0.1", "0.3333333333333333", "1000000000000000.0", "9999999999999998.0", "1e+16",
                                      "0.0001", "5e-324"}));
  // float16: its own shortest digits (65504 is 6.55e+04: three digits tell it apart), positional below 1e3.
  Tensor h(DType::kFloat16, {4});
  const float hv[] = {0.1f, 999.5f, 1000.0f, 65504.0f};
  for (int i = 0; i < 4; ++i) h.data<Half>()[i] = Half(hv[i]);
  std::vector<std::string> ht;
  for (int64_t i = 0; i < 4; ++i) ht.push_back(FormatElement(h, i));
  EXPECT_EQ(ht, (std::vector<std::string>{"0.1", "999.5", "1e+03", "6.55e+04"}));
}

TEST(StringCast, IntegersAndBools) {
  EXPECT_EQ(Texts<int8_t>(DType::kInt8, {-128, 0, 127}), (std::vector<std::string>{"-128", "0", "127"}));
  EXPECT_EQ(Texts<uint64_t>(DType::kUInt64, {18446744073709551615ull}),
            (std::vector<std::string>{"18446744073709551615"}));
  EXPECT_EQ(Texts<bool>(DType::kBool, {true, false}), (std::vector<std::string>{"True", "False"}));
}

// Parses each text into a one-element tensor of `dtype`; "" or the error.
std::string Parse(const std::string& text, DType dtype, double* value = nullptr) {
  Tensor t(dtype, {1});
  const std::string error = ParseElement(text, t, 0);
  if (value && error.empty()) *value = t.DoubleAt(0);
  return error;
}

TEST(StringCast, ParsesNumbers) {
  double v = 0;
  for (const auto& [text, want] : std::vector<std::pair<std::string, double>>{
           {"3.14", 3.14}, {" 1000 ", 1000}, {"1e-5", 1e-5}, {"1E8", 1e8}, {"+2.5", 2.5}, {"-.5", -0.5}, {"5.", 5}}) {
    ASSERT_EQ(Parse(text, DType::kFloat64, &v), "") << text;
    EXPECT_EQ(v, want) << text;
  }
  // ONNX's special values in any case; out-of-range values become inf / 0 as strtod gives them.
  for (const std::string text : {"INF", "+inf", "Infinity", "1e400"}) {
    ASSERT_EQ(Parse(text, DType::kFloat32, &v), "") << text;
    EXPECT_EQ(v, std::numeric_limits<double>::infinity()) << text;
  }
  ASSERT_EQ(Parse("-INF", DType::kFloat32, &v), "");
  EXPECT_EQ(v, -std::numeric_limits<double>::infinity());
  ASSERT_EQ(Parse("NaN", DType::kFloat64, &v), "");
  EXPECT_TRUE(std::isnan(v));
  ASSERT_EQ(Parse("1e-400", DType::kFloat64, &v), "");
  EXPECT_EQ(v, 0);
  // float32 is rounded once, from the text (not through double).
  ASSERT_EQ(Parse("0.47892547", DType::kFloat32, &v), "");
  EXPECT_EQ(static_cast<float>(v), 0.47892547f);
  // Integers: whole numbers exactly, decimals truncated toward zero, within the type's range.
  ASSERT_EQ(Parse("9007199254740993", DType::kInt64, &v), "");
  Tensor big(DType::kInt64, {1});
  ASSERT_EQ(ParseElement("9007199254740993", big, 0), "");
  EXPECT_EQ(big.data<int64_t>()[0], 9007199254740993);
  for (const auto& [text, want] :
       std::vector<std::pair<std::string, double>>{{"100.5", 100}, {"-7.9", -7}, {"1e3", 1000}, {"+4", 4}, {"-0", 0}}) {
    ASSERT_EQ(Parse(text, DType::kInt32, &v), "") << text;
    EXPECT_EQ(v, want) << text;
  }
  ASSERT_EQ(Parse("255", DType::kUInt8, &v), "");
  EXPECT_EQ(v, 255);
  // Bools: true / false in any case, or a number (non-zero is true).
  for (const auto& [text, want] :
       std::vector<std::pair<std::string, double>>{{"True", 1}, {"FALSE", 0}, {"0", 0}, {"2.5", 1}, {"0.0", 0}}) {
    ASSERT_EQ(Parse(text, DType::kBool, &v), "") << text;
    EXPECT_EQ(v, want) << text;
  }
  // float16 through double.
  ASSERT_EQ(Parse("0.1", DType::kFloat16, &v), "");
  EXPECT_EQ(v, static_cast<double>(static_cast<float>(Half(0.1f))));
}

TEST(StringCast, RejectsWhatIsNotANumber) {
  EXPECT_EQ(Parse("Hello World!", DType::kFloat32), "is not a number");
  EXPECT_EQ(Parse("  ", DType::kFloat32), "is empty");
  EXPECT_EQ(Parse("1.5x", DType::kFloat64), "is not a number");
  EXPECT_EQ(Parse("+-1", DType::kFloat64), "is not a number");
  EXPECT_EQ(Parse("0x10", DType::kFloat64), "is not a number");
  EXPECT_EQ(Parse("256", DType::kUInt8), "is out of range");
  EXPECT_EQ(Parse("-1", DType::kUInt32), "is out of range");
  EXPECT_EQ(Parse("-1.5", DType::kUInt32), "is out of range");
  EXPECT_EQ(Parse("99999999999999999999", DType::kInt64), "is out of range");
  EXPECT_EQ(Parse("1e30", DType::kInt64), "is out of range");
  EXPECT_EQ(Parse("inf", DType::kInt32), "is not a finite number");
  EXPECT_EQ(Parse("maybe", DType::kBool), "is neither true, false nor a number");
}

TEST(StringCast, CastKernelBothWays) {
  Tensor s(DType::kString, {2, 2});
  s.strings() = {"0.5", "-2", "INF", "1e3"};
  const Tensor f = nntest::RunOp("Cast", {s}, Attrs({{"to", DType::kFloat32}, {"truncate", false}}))[0];
  EXPECT_EQ(testutil::Doubles(f), (std::vector<double>{0.5, -2, std::numeric_limits<double>::infinity(), 1000}));
  const Tensor back = nntest::RunOp("Cast", {f}, Attrs({{"to", DType::kString}, {"truncate", false}}))[0];
  EXPECT_EQ(back.dtype(), DType::kString);
  EXPECT_EQ(back.shape(), (Shape{2, 2}));
  EXPECT_EQ(back.strings(), (std::vector<std::string>{"0.5", "-2.0", "inf", "1000.0"}));
  const Tensor same = nntest::RunOp("Cast", {s}, Attrs({{"to", DType::kString}, {"truncate", false}}))[0];
  EXPECT_EQ(same.strings(), s.strings());
  s.strings()[3] = "four";
  testutil::ExpectError(
      [&] {
        nntest::RunOp("Cast", {s}, Attrs({{"to", DType::kFloat64}, {"truncate", false}}));
      },
      ErrorCode::kInvalidArgument, {"node", "Cast", "cannot cast element 3 to float64: 'four' is not a number"});
}

}  // namespace
}  // namespace kiln
