// cpu.Select: out = cond ? x : y with numpy broadcasting of all three (inputs x, y, cond). Dims of
// size 1 are dropped and dims every input walks contiguously together are merged, then rows of
// the innermost dim split over oneDNN's OpenMP team when the build has OpenMP (the reference
// kernel walks every element on one thread: a BERT attention mask's Select was a third of a
// call). Any dtype of 1, 2, 4 or 8 bytes: elements are copied, never converted.
#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "backend/cpu/broadcast_walk.h"
#include "backend/cpu/kernels.h"

namespace kiln::backend::cpu {
namespace {

template <typename T>
void SelectRows(const BroadcastWalk& w, const T* x, const T* y, const bool* c, T* out) {
  const int64_t sx = w.strides[0].back(), sy = w.strides[1].back(), sc = w.strides[2].back();
  ForEachRowChunk<3>(w, [&](int64_t at, int64_t len, const std::array<int64_t, 3>& off) {
    T* o = out + at;
    const T* px = x + off[0];
    const T* py = y + off[1];
    const bool* pc = c + off[2];
    if (sx == 1 && sy == 0 && sc == 1) {  // a tensor or a scalar, by a full mask (attention)
      const T v = *py;
      for (int64_t j = 0; j < len; ++j) o[j] = pc[j] ? px[j] : v;
    } else {
      for (int64_t j = 0; j < len; ++j) o[j] = pc[j * sc] ? px[j * sx] : py[j * sy];
    }
  });
}

class SelectKernel final : public Kernel {
 public:
  SelectKernel(const ir::Graph& graph, const ir::Node& node) : elem_(DTypeSize(graph.value(node.inputs.at(0)).dtype)) {
    if (elem_ != 1 && elem_ != 2 && elem_ != 4 && elem_ != 8)
      throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): no CPU select kernel for dtype {}", node.name,
                                                    node.op, DTypeName(graph.value(node.inputs[0]).dtype)));
  }

  std::string Describe() const override { return "select-rows"; }

  void Run(std::span<const Tensor> in, Tensor& out, ExecContext&) const override {
    if (out.num_elements() == 0) return;
    const BroadcastWalk w = CollapsedBroadcastWalk(out.shape(), in.first(3), "select");
    const bool* c = in[2].data<bool>();
    auto run = [&]<typename T>() {
      SelectRows<T>(w, static_cast<const T*>(in[0].raw_data()), static_cast<const T*>(in[1].raw_data()), c,
                    static_cast<T*>(out.raw_data()));
    };
    switch (elem_) {
      case 1:
        run.operator()<uint8_t>();
        break;
      case 2:
        run.operator()<uint16_t>();
        break;
      case 4:
        run.operator()<uint32_t>();
        break;
      default:
        run.operator()<uint64_t>();
        break;
    }
  }

 private:
  size_t elem_;
};

}  // namespace

std::unique_ptr<Kernel> MakeSelectKernel(const ir::Graph& graph, const ir::Node& node) {
  return std::make_unique<SelectKernel>(graph, node);
}

}  // namespace kiln::backend::cpu
