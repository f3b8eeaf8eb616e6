// The part of the C++ standard library that the elementwise op formulas (ir/ops/elementwise_*.h)
// use, for NVRTC, which has no standard headers: math functions (CUDA's device overloads), type
// traits, numeric_limits and a fixed-size array. Generated kernels are compiled with this header
// standing in for <cmath>, <type_traits>, <limits>, <array>, <cstdint>, <cstring>, <climits>,
// <string>, <string_view> and <cstddef>, so the formulas compile unchanged for the GPU.
// One include guard for all those names (NVRTC sees each name as its own file).
#ifndef KILN_NVRTC_STD_H_
#define KILN_NVRTC_STD_H_

typedef signed char int8_t;
typedef short int16_t;
typedef int int32_t;
typedef long long int64_t;
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
typedef unsigned long size_t;
typedef long ptrdiff_t;

#define CHAR_BIT 8

namespace std {

using ::int16_t;
using ::int32_t;
using ::int64_t;
using ::int8_t;
using ::size_t;
using ::uint16_t;
using ::uint32_t;
using ::uint64_t;
using ::uint8_t;

// <cmath>: CUDA's device overloads live in the global namespace.
using ::abs;
using ::acos;
using ::acosh;
using ::asin;
using ::asinh;
using ::atan;
using ::atan2;
using ::atanh;
using ::ceil;
using ::cos;
using ::cosh;
using ::erf;
using ::erfc;
using ::exp;
using ::expm1;
using ::floor;
using ::fmod;
using ::isfinite;
using ::isinf;
using ::isnan;
using ::log;
using ::log1p;
using ::memcpy;
using ::nearbyint;
using ::pow;
using ::sin;
using ::sinh;
using ::sqrt;
using ::tan;
using ::tanh;
using ::trunc;

// <type_traits>
template <typename T, T v>
struct integral_constant {
  static constexpr T value = v;
};
using true_type = integral_constant<bool, true>;
using false_type = integral_constant<bool, false>;

template <typename A, typename B>
struct is_same : false_type {};
template <typename A>
struct is_same<A, A> : true_type {};
template <typename A, typename B>
inline constexpr bool is_same_v = is_same<A, B>::value;

template <bool B, typename T, typename F>
struct conditional {
  using type = T;
};
template <typename T, typename F>
struct conditional<false, T, F> {
  using type = F;
};
template <bool B, typename T, typename F>
using conditional_t = typename conditional<B, T, F>::type;

template <typename T>
struct remove_cv {
  using type = T;
};
template <typename T>
struct remove_cv<const T> {
  using type = T;
};
template <typename T>
struct remove_cv<volatile T> {
  using type = T;
};
template <typename T>
struct remove_cv<const volatile T> {
  using type = T;
};

template <typename T>
struct integral_info {
  static constexpr bool integral = false, is_signed = false;
  using unsigned_type = void;
};
template <>
struct integral_info<bool> {
  static constexpr bool integral = true, is_signed = false;
  using unsigned_type = bool;
};
template <>
struct integral_info<char> {
  static constexpr bool integral = true, is_signed = (char(-1) < 0);
  using unsigned_type = unsigned char;
};
template <>
struct integral_info<signed char> {
  static constexpr bool integral = true, is_signed = true;
  using unsigned_type = unsigned char;
};
template <>
struct integral_info<unsigned char> {
  static constexpr bool integral = true, is_signed = false;
  using unsigned_type = unsigned char;
};
template <>
struct integral_info<short> {
  static constexpr bool integral = true, is_signed = true;
  using unsigned_type = unsigned short;
};
template <>
struct integral_info<unsigned short> {
  static constexpr bool integral = true, is_signed = false;
  using unsigned_type = unsigned short;
};
template <>
struct integral_info<int> {
  static constexpr bool integral = true, is_signed = true;
  using unsigned_type = unsigned int;
};
template <>
struct integral_info<unsigned int> {
  static constexpr bool integral = true, is_signed = false;
  using unsigned_type = unsigned int;
};
template <>
struct integral_info<long> {
  static constexpr bool integral = true, is_signed = true;
  using unsigned_type = unsigned long;
};
template <>
struct integral_info<unsigned long> {
  static constexpr bool integral = true, is_signed = false;
  using unsigned_type = unsigned long;
};
template <>
struct integral_info<long long> {
  static constexpr bool integral = true, is_signed = true;
  using unsigned_type = unsigned long long;
};
template <>
struct integral_info<unsigned long long> {
  static constexpr bool integral = true, is_signed = false;
  using unsigned_type = unsigned long long;
};

template <typename T>
inline constexpr bool is_integral_v = integral_info<typename remove_cv<T>::type>::integral;
template <typename T>
inline constexpr bool is_floating_point_v =
    is_same_v<typename remove_cv<T>::type, float> || is_same_v<typename remove_cv<T>::type, double>;
template <typename T>
inline constexpr bool is_signed_v = integral_info<typename remove_cv<T>::type>::is_signed || is_floating_point_v<T>;
template <typename T>
inline constexpr bool is_unsigned_v = is_integral_v<T> && !is_signed_v<T>;
template <typename T>
using make_unsigned_t = typename integral_info<typename remove_cv<T>::type>::unsigned_type;

// <limits>: the members the formulas use.
template <typename T>
struct numeric_limits {
  static constexpr T min() { return is_signed_v<T> ? T(T(1) << (sizeof(T) * 8 - 1)) : T(0); }
  static constexpr T max() { return is_signed_v<T> ? T(~min()) : T(~T(0)); }
  static constexpr T epsilon() { return T(0); }
};
template <>
struct numeric_limits<bool> {
  static constexpr bool min() { return false; }
  static constexpr bool max() { return true; }
  static constexpr bool epsilon() { return false; }
};
template <>
struct numeric_limits<float> {
  static constexpr float min() { return 1.17549435e-38f; }
  static constexpr float max() { return 3.40282347e+38f; }
  static constexpr float epsilon() { return 1.19209290e-7f; }
};
template <>
struct numeric_limits<double> {
  static constexpr double min() { return 2.2250738585072014e-308; }
  static constexpr double max() { return 1.7976931348623157e+308; }
  static constexpr double epsilon() { return 2.2204460492503131e-16; }
};

// <array>
template <typename T, size_t N>
struct array {
  T elements[N];
  constexpr T& operator[](size_t i) { return elements[i]; }
  constexpr const T& operator[](size_t i) const { return elements[i]; }
  static constexpr size_t size() { return N; }
};

// <string>, <string_view>: declared only; no device code uses them.
class string;
class string_view;

}  // namespace std

#endif  // KILN_NVRTC_STD_H_
