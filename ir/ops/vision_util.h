// The IR ops GridSample, RoiAlign and MaxPoolWithArgmax: attribute parsing and the arithmetic
// their shape functions (ir/ops/nn_vision.cc) and reference kernels
// (backend/reference/nn_vision.cc, nn_pool_argmax.cc) share, so that both check the same
// things. The formulas follow ONNX's operator documentation and reference implementation
// (onnx/reference/ops/op_grid_sample.py, op_roi_align.py, op_max_pool.py). See docs/ops/nn.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/attr.h"

namespace kiln::ir::vision {

// ---- GridSample ----

enum class GridMode { kLinear, kNearest, kCubic };
enum class GridPadding { kZeros, kBorder, kReflection };

struct GridSampleSpec {
  GridMode mode = GridMode::kLinear;
  GridPadding padding = GridPadding::kZeros;
  bool align_corners = false;
};

// The most spatial dims GridSample takes (cubic reads 4^r input elements per output element).
inline constexpr int kMaxGridSampleDims = 5;

// The attributes of a GridSample node (mode linear/nearest/cubic, padding_mode
// zeros/border/reflection, align_corners); "" or what is wrong.
std::string ParseGridSampleAttrs(const AttrMap& attrs, GridSampleSpec* spec);

// The input coordinate of normalized grid value `n` on an axis of `length` elements.
double GridDenormalize(double n, int64_t length, bool align_corners);

// `x` reflected into [lo, hi] (repeatedly, as ONNX's reference does); lo when hi == lo.
double GridReflect(double x, double lo, double hi);

// ---- RoiAlign ----

struct RoiAlignSpec {
  bool max = false;        // mode max (else avg)
  bool half_pixel = true;  // coordinate_transformation_mode half_pixel (else output_half_pixel)
  int64_t output_height = 1, output_width = 1;
  int64_t sampling_ratio = 0;  // 0: adaptive
  double spatial_scale = 1;
};

// The attributes of a RoiAlign node; "" or what is wrong.
std::string ParseRoiAlignAttrs(const AttrMap& attrs, RoiAlignSpec* spec);

// ---- MaxPoolWithArgmax ----

struct ArgmaxPoolSpec {
  bool channels_last = false;
  std::vector<int64_t> ksize, strides, dilations;
  std::string padding = "VALID";  // SAME, VALID or EXPLICIT
  std::vector<int64_t> pads;      // [before0, after0, before1, after1, ...] (EXPLICIT)
  int64_t storage_order = 0;      // 0: row-major argmax, 1: column-major over the spatial dims
  bool include_batch_in_index = true;
};

// The attributes of a MaxPoolWithArgmax node for `spatial` spatial dims (1 to 3): every list
// the right length, sizes positive, the effective kernel (k - 1) * dilation + 1 and the pads
// small enough for int64 window arithmetic; "" or what is wrong.
std::string ParseArgmaxPoolAttrs(const AttrMap& attrs, int spatial, ArgmaxPoolSpec* spec);

}  // namespace kiln::ir::vision
