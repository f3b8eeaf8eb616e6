#include "backend/reference/string_cast.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <type_traits>

#include "backend/reference/dispatch.h"

namespace kiln::reference {
namespace {

// The shortest decimal digits of a finite value (no sign, no trailing zeros) and the exponent of
// the first digit: value = d.ddd x 10^exponent.
struct Digits {
  std::string digits;
  int exponent = 0;
};

// Splits to_chars / printf scientific text ("-9.767611e-01") into digits and exponent.
Digits SplitScientific(std::string_view text) {
  Digits d;
  size_t i = 0;
  if (i < text.size() && text[i] == '-') ++i;
  for (; i < text.size() && text[i] != 'e' && text[i] != 'E'; ++i)
    if (text[i] != '.') d.digits.push_back(text[i]);
  if (i < text.size()) d.exponent = std::atoi(std::string(text.substr(i + 1)).c_str());
  while (d.digits.size() > 1 && d.digits.back() == '0') d.digits.pop_back();
  return d;
}

template <typename F>
Digits ShortestDigits(F v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  return SplitScientific(std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
}

// float16 / bfloat16: the fewest significant digits whose decimal reads back as the same value.
template <typename H>
Digits ShortestHalfDigits(H v) {
  const double x = ToDouble(v);
  char buf[64];
  for (int precision = 1; precision <= 9; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*e", precision - 1, x);
    if (FromDouble<H>(std::strtod(buf, nullptr)).bits == v.bits) break;
  }
  return SplitScientific(buf);
}

// numpy's str() of a float from its shortest digits: positional for 1e-4 <= |value| <
// `max_positional` (10^precision of the type: 1e3 for float16, 1e6 for float32; 1e16 for float64).
std::string NumpyFloatText(double value, const Digits& d, double max_positional) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  std::string s = std::signbit(value) ? "-" : "";
  const double magnitude = std::fabs(value);
  const int k = static_cast<int>(d.digits.size());
  if (magnitude != 0 && (magnitude < 1e-4 || magnitude >= max_positional)) {
    s += d.digits[0];
    if (k > 1) s += "." + d.digits.substr(1);
    return s + fmt::format("e{}{:02d}", d.exponent < 0 ? '-' : '+', std::abs(d.exponent));
  }
  const int e = magnitude == 0 ? 0 : d.exponent;
  if (e < 0) return s + "0." + std::string(static_cast<size_t>(-e - 1), '0') + d.digits;
  if (k <= e + 1) return s + d.digits + std::string(static_cast<size_t>(e + 1 - k), '0') + ".0";
  return s + d.digits.substr(0, static_cast<size_t>(e + 1)) + "." + d.digits.substr(static_cast<size_t>(e + 1));
}

std::string_view Trim(std::string_view s) {
  auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// A leading '+' is allowed (from_chars takes none), but not before another sign.
bool StripPlus(std::string_view& s) {
  if (s.empty() || s[0] != '+') return true;
  s.remove_prefix(1);
  return !s.empty() && s[0] != '+' && s[0] != '-';
}

// A decimal or scientific float, "inf" / "infinity" / "nan" in any case.
template <typename F>
bool ParseFloat(std::string_view s, F* out) {
  if (!StripPlus(s) || s.empty()) return false;
  const char* end = s.data() + s.size();
  const auto r = std::from_chars(s.data(), end, *out, std::chars_format::general);
  if (r.ptr != end) return false;
  if (r.ec == std::errc::result_out_of_range) {  // too large or too small: inf or (sub)zero, as strtod gives
    const std::string text(s);
    char* stop = nullptr;
    if constexpr (std::is_same_v<F, float>)
      *out = std::strtof(text.c_str(), &stop);
    else
      *out = std::strtod(text.c_str(), &stop);
    return true;
  }
  return r.ec == std::errc();
}

template <typename T>
std::string ParseInteger(std::string_view s, T* out) {
  using Wide = std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>;
  std::string_view digits = s;
  if (!StripPlus(digits)) return "is not a number";
  Wide wide = 0;
  const char* end = digits.data() + digits.size();
  std::from_chars_result r{};
  if (std::is_unsigned_v<T> && !digits.empty() && digits[0] == '-') {
    int64_t negative = 0;
    r = std::from_chars(digits.data(), end, negative);
    if (r.ptr == end && r.ec == std::errc() && negative != 0) return "is out of range";
    wide = 0;
  } else {
    r = std::from_chars(digits.data(), end, wide);
  }
  if (r.ptr == end) {
    if (r.ec != std::errc() || wide < static_cast<Wide>(std::numeric_limits<T>::min()) ||
        wide > static_cast<Wide>(std::numeric_limits<T>::max()))
      return "is out of range";
    *out = static_cast<T>(wide);
    return "";
  }
  double d = 0;  // a decimal number: truncated toward zero
  if (!ParseFloat(s, &d)) return "is not a number";
  if (!std::isfinite(d)) return "is not a finite number";
  d = std::trunc(d);
  // [min, max + 1) in double: both bounds are powers of two (or zero), so exact.
  const double lo = static_cast<double>(std::numeric_limits<T>::min());
  const double hi = static_cast<double>(std::numeric_limits<T>::max() / 2 + 1) * 2;
  if (!(d >= lo && d < hi)) return "is out of range";
  *out = static_cast<T>(d);
  return "";
}

}  // namespace

std::string FormatElement(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::kFloat32: {
      const float v = t.data<float>()[i];
      return NumpyFloatText(v, std::isfinite(v) ? ShortestDigits(v) : Digits{}, 1e6);
    }
    case DType::kFloat64: {
      const double v = t.data<double>()[i];
      return NumpyFloatText(v, std::isfinite(v) ? ShortestDigits(v) : Digits{}, 1e16);
    }
    case DType::kFloat16: {
      const Half v = t.data<Half>()[i];
      return NumpyFloatText(ToDouble(v), std::isfinite(ToDouble(v)) ? ShortestHalfDigits(v) : Digits{}, 1e3);
    }
    case DType::kBFloat16: {
      const BFloat16 v = t.data<BFloat16>()[i];
      return NumpyFloatText(ToDouble(v), std::isfinite(ToDouble(v)) ? ShortestHalfDigits(v) : Digits{}, 1e2);
    }
    case DType::kBool:
      return t.data<bool>()[i] ? "True" : "False";
    default:
      break;
  }
  std::string s;
  DispatchInteger(t.dtype(), "Cast", [&]<typename T>() { s = fmt::format("{}", t.data<T>()[i]); });
  return s;
}

std::string ParseElement(std::string_view text, Tensor& out, int64_t i) {
  const std::string_view s = Trim(text);
  if (s.empty()) return "is empty";
  switch (out.dtype()) {
    case DType::kFloat32:
      return ParseFloat(s, &out.data<float>()[i]) ? "" : "is not a number";
    case DType::kFloat64:
      return ParseFloat(s, &out.data<double>()[i]) ? "" : "is not a number";
    case DType::kBool: {
      double d = 0;
      if (EqualsIgnoringCase(s, "true"))
        d = 1;
      else if (!EqualsIgnoringCase(s, "false") && !ParseFloat(s, &d))
        return "is neither true, false nor a number";
      out.data<bool>()[i] = d != 0;
      return "";
    }
    default:
      break;
  }
  std::string error;
  DispatchNumeric(out.dtype(), "Cast", [&]<typename T>() {
    if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
      double d = 0;
      if (!ParseFloat(s, &d))
        error = "is not a number";
      else
        out.data<T>()[i] = FromDouble<T>(d);
    } else if constexpr (std::is_integral_v<T>) {
      error = ParseInteger(s, &out.data<T>()[i]);
    }
  });
  return error;
}

}  // namespace kiln::reference
