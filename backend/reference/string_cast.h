// Cast to and from DT_STRING (ONNX's Cast / CastLike with STRING): the text of one number and
// the number one text holds. Used by the reference Cast kernel (elementwise_other.cc); see
// docs/ops/elementwise.md, "Cast".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kiln/tensor.h"

namespace kiln::reference {

// Element i of a numeric or bool host tensor as text, as ONNX's reference implementation writes
// it (numpy's str, numpy >= 2.3): floats as the shortest decimal that reads back as the same
// value, positional for 1e-4 <= |x| < 10^p with at least one fractional digit ("0.5", "3.0",
// "123456.7"), else scientific ("1e-05", "1.234567e+06"), where p is the type's decimal
// precision (numpy's finfo: 2 for bfloat16, 3 for float16, 6 for float32; float64 keeps numpy's
// older cutoff 1e16); "nan", "inf", "-inf"; integers in decimal; bools "True" / "False".
std::string FormatElement(const Tensor& t, int64_t i);

// Parses `text` into element i of host tensor `out` (numeric or bool). Floats: decimal or
// scientific notation with an optional sign, "inf" / "infinity" / "nan" in any case, leading and
// trailing whitespace ignored; rounded once to the destination type (float16 / bfloat16 through
// double). Integers: a decimal integer, or a decimal number truncated toward zero ("100.5" ->
// 100), which must fit the type. Bools: "true" / "false" in any case, or a number (non-zero is
// true). Returns "" or what is wrong with the text.
std::string ParseElement(std::string_view text, Tensor& out, int64_t i);

}  // namespace kiln::reference
