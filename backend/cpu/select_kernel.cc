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
  const size_t outer = w.dims.size() - 1;
  const int64_t inner = w.dims.back();
  const int64_t sx = w.strides[0].back(), sy = w.strides[1].back(), sc = w.strides[2].back();
  int64_t rows = 1;
  for (size_t d = 0; d < outer; ++d) rows *= w.dims[d];
  // Tasks of at most kChunk elements of one row, so that one long merged row splits too.
  constexpr int64_t kChunk = 16384;
  const int64_t chunks = (inner + kChunk - 1) / kChunk;
  const int64_t tasks = rows * chunks;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (tasks > 1 && rows * inner >= (int64_t{1} << 15))
#endif
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t row = task / chunks;
    const int64_t begin = (task % chunks) * kChunk, end = std::min(inner, begin + kChunk);
    int64_t ox = 0, oy = 0, oc = 0, rest = row;
    for (size_t d = outer; d-- > 0;) {
      const int64_t i = rest % w.dims[d];
      rest /= w.dims[d];
      ox += i * w.strides[0][d];
      oy += i * w.strides[1][d];
      oc += i * w.strides[2][d];
    }
    T* o = out + row * inner;
    const T* px = x + ox;
    const T* py = y + oy;
    const bool* pc = c + oc;
    if (sx == 1 && sy == 0 && sc == 1) {  // a tensor or a scalar, by a full mask (attention)
      const T v = *py;
      for (int64_t j = begin; j < end; ++j) o[j] = pc[j] ? px[j] : v;
    } else {
      for (int64_t j = begin; j < end; ++j) o[j] = pc[j * sc] ? px[j * sx] : py[j * sy];
    }
  }
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
