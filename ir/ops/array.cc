// The array op family: shape manipulation, slicing, gathers and reductions. The shape
// functions live in array_shape.cc, array_index.cc, array_reduce.cc and array_scatter.cc;
// docs/ops/array.md documents every op.
#include "ir/op_schema.h"

namespace kiln::ir {

void RegisterArrayShapeOps(OpRegistry& registry);    // array_shape.cc
void RegisterArrayIndexOps(OpRegistry& registry);    // array_index.cc
void RegisterArrayReduceOps(OpRegistry& registry);   // array_reduce.cc
void RegisterArrayScatterOps(OpRegistry& registry);  // array_scatter.cc
void RegisterTextOps(OpRegistry& registry);          // text.cc (string ops)
void RegisterLookupOps(OpRegistry& registry);        // lookup.cc (static lookup tables)

void RegisterArrayOps(OpRegistry& registry) {
  RegisterArrayShapeOps(registry);
  RegisterArrayIndexOps(registry);
  RegisterArrayReduceOps(registry);
  RegisterArrayScatterOps(registry);
  RegisterTextOps(registry);
  RegisterLookupOps(registry);
}

}  // namespace kiln::ir
