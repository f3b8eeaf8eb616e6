// How CPU kernels walk operands that broadcast into an output: each input's element stride along
// every output dim (0 where it broadcasts), with dims of size 1 dropped and neighbouring dims that
// every input walks the same way (contiguous together, or broadcast together) merged, so the
// common cases (same shapes, a per-channel or scalar operand) are one or two dims.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kiln/tensor.h"

namespace kiln::backend::cpu {

struct BroadcastWalk {
  std::vector<int64_t> dims;                  // at least one (1 for a single element)
  std::vector<std::vector<int64_t>> strides;  // [input][dim]
};

// The walk of `inputs` into `out`; kInternal (naming `what`) when one does not broadcast into it.
BroadcastWalk CollapsedBroadcastWalk(const Shape& out, std::span<const Tensor> inputs, const char* what);

}  // namespace kiln::backend::cpu
