#include "ir/dtype_class.h"

#include <fmt/format.h>

#include <vector>

namespace kiln::ir {

bool InClass(DType dtype, unsigned mask) {
  if (IsFloating(dtype)) return mask & kFloat;
  if (IsSignedInteger(dtype)) return mask & kSigned;
  if (IsInteger(dtype)) return mask & kUnsigned;
  if (dtype == DType::kBool) return mask & kBoolT;
  if (dtype == DType::kString) return mask & kStringT;
  if (dtype == DType::kComplex64 || dtype == DType::kComplex128) return mask & kComplexT;
  return false;
}

std::string DTypeClassName(unsigned mask) {
  if (mask == kFloat) return "a floating-point dtype";
  if (mask == kInt) return "an integer dtype";
  if (mask == kBoolT) return "bool";
  if (mask == kNumeric) return "a numeric (floating-point or integer) dtype";
  if (mask == (kFloat | kSigned)) return "a floating-point or signed integer dtype";
  if (mask == kAll) return "a numeric or bool dtype";
  if (mask == (kAll | kStringT)) return "a numeric, bool or string dtype";
  if (mask == (kNumeric | kStringT)) return "a numeric or string dtype";
  return "a supported dtype";
}

std::string DTypeClassList(unsigned mask) {
  std::vector<std::string> parts;
  if ((mask & kFloat) != 0) parts.push_back("floating-point");
  if ((mask & kInt) == kInt) {
    parts.push_back("integer");
  } else {
    if ((mask & kSigned) != 0) parts.push_back("signed integer");
    if ((mask & kUnsigned) != 0) parts.push_back("unsigned integer");
  }
  if ((mask & kBoolT) != 0) parts.push_back("bool");
  if ((mask & kStringT) != 0) parts.push_back("string");
  if ((mask & kComplexT) != 0) parts.push_back("complex");
  return fmt::format("{}", fmt::join(parts, ", "));
}

}  // namespace kiln::ir
