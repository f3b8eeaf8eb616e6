// A static lookup table as the TF frontend holds it: the contents a SavedModel gives a
// tf.lookup.StaticHashTable when it loads, sorted by key (the IR's TableLookup takes them so).
#pragma once

#include <string>

#include "kiln/tensor.h"

namespace kiln::tf {

struct LookupTable {
  std::string name;  // the node that creates the table, for messages
  DType key_dtype = DType::kInvalid;
  DType value_dtype = DType::kInvalid;
  Tensor keys;    // [size], ascending, each key once
  Tensor values;  // [size]: values[i] belongs to keys[i]
};

}  // namespace kiln::tf
