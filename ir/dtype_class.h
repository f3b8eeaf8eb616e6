// Classes of dtypes that an op accepts, combined as a bit mask (e.g. kFloat | kSigned). The IR
// schemas, the reference kernels' dtype dispatch and the importers' dtype checks share them.
#pragma once

#include <string>

#include "kiln/dtype.h"

namespace kiln::ir {

enum DTypeClass : unsigned {
  kFloat = 1,     // float16, bfloat16, float32, float64
  kSigned = 2,    // int8..int64
  kUnsigned = 4,  // uint8..uint64
  kBoolT = 8,
  kStringT = 16,
  kComplexT = 32,  // complex64, complex128: outside kAll, only for the ops that list it
  kInt = kSigned | kUnsigned,
  kNumeric = kFloat | kInt,
  kAll = kNumeric | kBoolT,
};

// Whether `dtype` belongs to one of the classes in `mask`.
bool InClass(DType dtype, unsigned mask);

// The mask as the object of "expected ...": "a floating-point dtype", "a numeric or bool dtype".
std::string DTypeClassName(unsigned mask);

// The mask as a list of class names: "floating-point, signed integer".
std::string DTypeClassList(unsigned mask);

}  // namespace kiln::ir
