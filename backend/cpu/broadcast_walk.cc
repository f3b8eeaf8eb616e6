#include "backend/cpu/broadcast_walk.h"

#include <fmt/format.h>

namespace kiln::backend::cpu {

BroadcastWalk CollapsedBroadcastWalk(const Shape& out, std::span<const Tensor> inputs, const char* what) {
  const size_t k = inputs.size();
  const size_t r = out.size();
  std::vector<std::vector<int64_t>> strides(k, std::vector<int64_t>(r, 0));
  for (size_t i = 0; i < k; ++i) {
    const Shape& s = inputs[i].shape();
    if (s.size() > r)
      throw Error(ErrorCode::kInternal, fmt::format("{}: operand {} of shape {} has more dims than {}", what, i,
                                                    ShapeToString(s), ShapeToString(out)));
    const size_t off = r - s.size();
    int64_t st = 1;
    for (size_t d = s.size(); d-- > 0;) {
      if (s[d] != 1) {
        if (s[d] != out[off + d])
          throw Error(ErrorCode::kInternal, fmt::format("{}: operand {} of shape {} does not broadcast into {}", what,
                                                        i, ShapeToString(s), ShapeToString(out)));
        strides[i][off + d] = st;
      }
      st *= s[d];
    }
  }
  BroadcastWalk w;
  w.strides.resize(k);
  for (size_t d = 0; d < r; ++d) {
    if (out[d] == 1) continue;
    bool merge = !w.dims.empty();
    for (size_t i = 0; merge && i < k; ++i) merge = w.strides[i].back() == strides[i][d] * out[d];
    if (merge) {
      w.dims.back() *= out[d];
      for (size_t i = 0; i < k; ++i) w.strides[i].back() = strides[i][d];
    } else {
      w.dims.push_back(out[d]);
      for (size_t i = 0; i < k; ++i) w.strides[i].push_back(strides[i][d]);
    }
  }
  if (w.dims.empty()) {
    w.dims.push_back(1);
    for (size_t i = 0; i < k; ++i) w.strides[i].push_back(0);
  }
  return w;
}

}  // namespace kiln::backend::cpu
