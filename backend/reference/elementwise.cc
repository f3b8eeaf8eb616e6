// Elementwise reference kernels: the shared broadcasting helper. The kernels
// live in elementwise_unary.cc, elementwise_binary.cc, elementwise_other.cc and
// elementwise_quant.cc.
#include "backend/reference/elementwise_common.h"

namespace kiln::reference {
namespace elementwise {

bool MakeBroadcastPlan(const std::vector<Shape>& shapes, BroadcastPlan* plan, std::string* error) {
  size_t rank = 0;
  for (const Shape& s : shapes) rank = std::max(rank, s.size());
  Shape out(rank, 1);
  for (size_t d = 0; d < rank; ++d) {
    bool set = false;
    for (const Shape& s : shapes) {
      if (d < rank - s.size()) continue;
      const int64_t dim = s[d - (rank - s.size())];
      if (dim == 1) continue;
      if (!set) {
        out[d] = dim;
        set = true;
      } else if (out[d] != dim) {
        if (error) {
          std::string list;
          for (size_t k = 0; k < shapes.size(); ++k) {
            if (k) list += k + 1 == shapes.size() ? " and " : ", ";
            list += ShapeToString(shapes[k]);
          }
          *error = fmt::format("shapes {} cannot be broadcast", list);
        }
        return false;
      }
    }
  }
  plan->out_shape = out;
  plan->strides.assign(shapes.size(), std::vector<int64_t>(rank, 0));
  for (size_t k = 0; k < shapes.size(); ++k) {
    const Shape& s = shapes[k];
    int64_t stride = 1;
    for (size_t i = s.size(); i-- > 0;) {
      const size_t d = i + (rank - s.size());
      plan->strides[k][d] = s[i] == 1 ? 0 : stride;
      stride *= s[i];
    }
  }
  return true;
}

BroadcastPlan BroadcastOrFail(const KernelContext& ctx, const std::vector<Shape>& shapes) {
  BroadcastPlan plan;
  std::string error;
  if (!MakeBroadcastPlan(shapes, &plan, &error)) ctx.Fail(error);
  return plan;
}

}  // namespace elementwise

}  // namespace kiln::reference
