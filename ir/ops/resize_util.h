// The IR op Resize (ONNX's Resize and Upsample): attribute parsing, output lengths and source
// coordinates, shared by its shape function (ir/ops/nn_math.cc), its reference kernel
// (backend/reference/nn_resize.cc) and the ONNX importer (frontend/onnx/ops/nn_math.cc), so
// that the lengths shape inference promises are the ones the kernel makes. The formulas are
// ONNX's (the operator's documentation and its reference implementation,
// onnx/reference/ops/op_resize.py), in double. See docs/ops/nn.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/attr.h"

namespace kiln::ir::nn {

enum class ResizeMode { kNearest, kLinear, kCubic };
enum class ResizeCoord {
  kHalfPixel,
  kHalfPixelSymmetric,
  kPytorchHalfPixel,
  kAlignCorners,
  kAsymmetric,
  kTfHalfPixelForNn,
  kTfCropAndResize,
};
// kSimple: Resize-10 and Upsample, which have no nearest_mode: floor when the axis is enlarged
// or kept (scale >= 1), ceil when it shrinks (ONNX's opset-10 Resize tests, onnxruntime).
enum class ResizeNearest { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil, kSimple };
enum class ResizeAspect { kStretch, kNotLarger, kNotSmaller };

struct ResizeSpec {
  ResizeMode mode = ResizeMode::kNearest;
  ResizeCoord coord = ResizeCoord::kHalfPixel;
  ResizeNearest nearest = ResizeNearest::kRoundPreferFloor;
  double cubic_coeff_a = -0.75;
  bool exclude_outside = false;
  double extrapolation_value = 0;
  bool antialias = false;     // linear and cubic only
  std::vector<int64_t> axes;  // as given (negative from the back); empty: every axis
  ResizeAspect aspect = ResizeAspect::kStretch;
};

// Each returns false for a name it does not know.
bool ParseResizeMode(const std::string& text, ResizeMode* mode);
bool ParseResizeCoord(const std::string& text, ResizeCoord* coord);
bool ParseResizeNearest(const std::string& text, ResizeNearest* nearest);
bool ParseResizeAspect(const std::string& text, ResizeAspect* aspect);

// The IR attributes of a Resize node (docs/ops/nn.md); "" or what is wrong.
std::string ParseResizeAttrs(const AttrMap& attrs, ResizeSpec* spec);

// `axes` (negative from the back; empty: 0..rank-1) as indices in [0, rank); "" or what is wrong
// (out of range, repeated).
std::string NormalizeResizeAxes(const std::vector<int64_t>& axes, int64_t rank, std::vector<int64_t>* normalized);

// Longest resized length: far beyond any tensor, and doubles up to it are exact integers.
inline constexpr double kMaxResizeLength = 4.0e15;

// One axis of a resize.
struct ResizeAxis {
  int64_t in = 0;                     // input length; -1 when unknown (shape inference)
  int64_t out = 0;                    // output length; -1 when unknown
  double scale = 1;                   // what the coordinate transformations divide by: the given scale, or out / in
  double width = 0;                   // in * scale before flooring (ONNX's `output_width`; out itself with sizes)
  double roi_start = 0, roi_end = 1;  // tf_crop_and_resize only
  bool resized = false;               // listed in axes (the other axes keep their length and values)
};

// The axes of a resize of an input of dims `in` (-1: unknown) by `scales` or `sizes` (one value per
// entry of `axes`, normalized): floor(in * scale) with scales; with sizes, the sizes themselves
// (stretch), or round_half_up(s * in) with s the smallest (not_larger) or largest (not_smaller)
// size / in over the axes. Lengths that depend on an unknown input length are -1. "" or what is
// wrong (a scale that is not positive and finite, a negative size, a length beyond
// kMaxResizeLength, a non-empty resize of an empty axis).
std::string ResizeOutputAxes(const std::vector<int64_t>& in, const std::vector<int64_t>& axes,
                             const std::vector<double>* scales, const std::vector<int64_t>* sizes, ResizeAspect aspect,
                             std::vector<ResizeAxis>* out);

// The source coordinate of output index `x` on axis `a` (ONNX's coordinate_transformation_mode
// formulas). tf_crop_and_resize's result may lie outside [0, in - 1] (extrapolation).
double ResizeSourceCoord(ResizeCoord coord, const ResizeAxis& a, int64_t x);

// True when the axis is left exactly as it is: not listed in axes, or scale 1 at the same length
// with a transformation that maps every index to itself (tf_half_pixel_for_nn shifts by half a
// pixel; tf_crop_and_resize's roi may crop).
bool ResizeAxisIsIdentity(ResizeCoord coord, const ResizeAxis& a);

}  // namespace kiln::ir::nn
