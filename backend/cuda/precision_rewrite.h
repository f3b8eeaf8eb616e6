// Reduced-precision engines: a copy of a segment whose float32 values are float16 or bfloat16
// inside. Segment inputs are cast down where the engine starts and outputs cast back up where it
// ends (the engine's interface keeps the segment's dtypes), float32 constants are converted once,
// and Casts to float32 inside become casts to the low type. Matrix products, convolutions,
// reductions and softmax still accumulate in float32 (their kernels do), so only storage
// between kernels is narrowed, as TensorRT's FP16 mode does. Divisions by a one-element float32
// constant become products with its reciprocal (exact to an ulp of float32, far below the
// storage's rounding).
#pragma once

#include "ir/graph.h"
#include "kiln/dtype.h"

namespace kiln::backend::cuda {

// Rewrites `graph` in place; `low` is kFloat16 or kBFloat16. Returns how many values changed
// dtype.
int NarrowFloat32(ir::Graph& graph, DType low);

}  // namespace kiln::backend::cuda
