// cpu.Pad: constant padding, row by row: each output row along the last dim is the fill value,
// or the fill around one copied input row. Rows split over oneDNN's OpenMP team when the build
// has OpenMP (the reference kernel maps every element through per-dim index tables, on one
// thread). Any dtype of 1, 2, 4 or 8 bytes: the fill is the constant's own bytes.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "backend/cpu/kernels.h"

namespace kiln::backend::cpu {
namespace {

class PadKernel final : public Kernel {
 public:
  explicit PadKernel(const ir::Graph& graph, const ir::Node& node)
      : pads_(node.attrs.Get<std::vector<int64_t>>("pads")) {
    const DType dtype = graph.value(node.inputs.at(0)).dtype;
    elem_ = DTypeSize(dtype);
    if (elem_ != 1 && elem_ != 2 && elem_ != 4 && elem_ != 8)
      throw Error(ErrorCode::kInternal,
                  fmt::format("node '{}' ({}): no CPU pad kernel for dtype {}", node.name, node.op, DTypeName(dtype)));
    fill_.assign(elem_, 0);
    if (node.inputs.size() == 2) {
      const Tensor* value = graph.ConstantOf(node.inputs[1]);
      if (!value || value->num_elements() != 1 || value->dtype() != dtype)
        throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): the pad value must be a constant {} scalar",
                                                      node.name, node.op, DTypeName(dtype)));
      std::memcpy(fill_.data(), value->raw_data(), elem_);
    }
    zero_fill_ = std::all_of(fill_.begin(), fill_.end(), [](unsigned char b) { return b == 0; });
  }

  std::string Describe() const override { return "pad-rows"; }

  void Run(std::span<const Tensor> in, Tensor& out, ExecContext&) const override {
    const Shape& xs = in[0].shape();
    const Shape& os = out.shape();
    const size_t rank = xs.size();
    if (out.num_elements() == 0) return;
    if (rank == 0) {
      std::memcpy(out.raw_data(), in[0].raw_data(), elem_);
      return;
    }
    const int64_t inner_out = os[rank - 1], inner_in = xs[rank - 1];
    const int64_t before = pads_[2 * (rank - 1)];
    const int64_t rows = out.num_elements() / inner_out;
    const auto* src = static_cast<const unsigned char*>(in[0].raw_data());
    auto* dst = static_cast<unsigned char*>(out.raw_data());
    const size_t esz = elem_;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (out.num_elements() >= (int64_t{1} << 15))
#endif
    for (int64_t row = 0; row < rows; ++row) {
      // The input row this output row copies, or -1 when it lies in the padding of an outer dim.
      int64_t rem = row, src_row = 0, stride = 1;
      bool inside = true;
      for (size_t d = rank - 1; d-- > 0;) {
        const int64_t i = rem % os[d] - pads_[2 * d];
        rem /= os[d];
        if (i < 0 || i >= xs[d]) inside = false;
        src_row += i * stride;
        stride *= xs[d];
      }
      unsigned char* o = dst + static_cast<size_t>(row * inner_out) * esz;
      if (!inside || inner_in == 0) {
        Fill(o, inner_out);
        continue;
      }
      Fill(o, before);
      std::memcpy(o + static_cast<size_t>(before) * esz, src + static_cast<size_t>(src_row * inner_in) * esz,
                  static_cast<size_t>(inner_in) * esz);
      Fill(o + static_cast<size_t>(before + inner_in) * esz, inner_out - before - inner_in);
    }
  }

 private:
  void Fill(unsigned char* p, int64_t n) const {
    if (n <= 0) return;
    if (zero_fill_) {
      std::memset(p, 0, static_cast<size_t>(n) * elem_);
      return;
    }
    for (int64_t i = 0; i < n; ++i) std::memcpy(p + static_cast<size_t>(i) * elem_, fill_.data(), elem_);
  }

  std::vector<int64_t> pads_;  // before / after per dim
  size_t elem_ = 4;
  std::vector<unsigned char> fill_;
  bool zero_fill_ = true;
};

}  // namespace

std::unique_ptr<Kernel> MakePadKernel(const ir::Graph& graph, const ir::Node& node) {
  return std::make_unique<PadKernel>(graph, node);
}

}  // namespace kiln::backend::cpu
