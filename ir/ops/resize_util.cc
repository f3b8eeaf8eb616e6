#include "ir/ops/resize_util.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace kiln::ir::nn {

bool ParseResizeMode(const std::string& text, ResizeMode* mode) {
  if (text == "nearest")
    *mode = ResizeMode::kNearest;
  else if (text == "linear")
    *mode = ResizeMode::kLinear;
  else if (text == "cubic")
    *mode = ResizeMode::kCubic;
  else
    return false;
  return true;
}

bool ParseResizeCoord(const std::string& text, ResizeCoord* coord) {
  if (text == "half_pixel")
    *coord = ResizeCoord::kHalfPixel;
  else if (text == "half_pixel_symmetric")
    *coord = ResizeCoord::kHalfPixelSymmetric;
  else if (text == "pytorch_half_pixel")
    *coord = ResizeCoord::kPytorchHalfPixel;
  else if (text == "align_corners")
    *coord = ResizeCoord::kAlignCorners;
  else if (text == "asymmetric")
    *coord = ResizeCoord::kAsymmetric;
  else if (text == "tf_half_pixel_for_nn")
    *coord = ResizeCoord::kTfHalfPixelForNn;
  else if (text == "tf_crop_and_resize")
    *coord = ResizeCoord::kTfCropAndResize;
  else
    return false;
  return true;
}

bool ParseResizeNearest(const std::string& text, ResizeNearest* nearest) {
  if (text == "round_prefer_floor")
    *nearest = ResizeNearest::kRoundPreferFloor;
  else if (text == "round_prefer_ceil")
    *nearest = ResizeNearest::kRoundPreferCeil;
  else if (text == "floor")
    *nearest = ResizeNearest::kFloor;
  else if (text == "ceil")
    *nearest = ResizeNearest::kCeil;
  else if (text == "simple")
    *nearest = ResizeNearest::kSimple;
  else
    return false;
  return true;
}

bool ParseResizeAspect(const std::string& text, ResizeAspect* aspect) {
  if (text == "stretch")
    *aspect = ResizeAspect::kStretch;
  else if (text == "not_larger")
    *aspect = ResizeAspect::kNotLarger;
  else if (text == "not_smaller")
    *aspect = ResizeAspect::kNotSmaller;
  else
    return false;
  return true;
}

std::string ParseResizeAttrs(const AttrMap& attrs, ResizeSpec* spec) {
  const std::string mode = attrs.GetOr<std::string>("mode", "nearest");
  const std::string coord = attrs.GetOr<std::string>("coordinate_transformation_mode", "half_pixel");
  const std::string nearest = attrs.GetOr<std::string>("nearest_mode", "round_prefer_floor");
  const std::string aspect = attrs.GetOr<std::string>("keep_aspect_ratio_policy", "stretch");
  if (!ParseResizeMode(mode, &spec->mode))
    return fmt::format("unknown mode '{}' (expected nearest, linear or cubic)", mode);
  if (!ParseResizeCoord(coord, &spec->coord)) return fmt::format("unknown coordinate_transformation_mode '{}'", coord);
  if (!ParseResizeNearest(nearest, &spec->nearest)) return fmt::format("unknown nearest_mode '{}'", nearest);
  if (!ParseResizeAspect(aspect, &spec->aspect)) return fmt::format("unknown keep_aspect_ratio_policy '{}'", aspect);
  spec->cubic_coeff_a = attrs.GetOr<double>("cubic_coeff_a", -0.75);
  spec->exclude_outside = attrs.GetOr<bool>("exclude_outside", false);
  spec->extrapolation_value = attrs.GetOr<double>("extrapolation_value", 0.0);
  spec->antialias = attrs.GetOr<bool>("antialias", false);
  spec->axes = attrs.GetOr<std::vector<int64_t>>("axes", {});
  if (!std::isfinite(spec->cubic_coeff_a))
    return fmt::format("cubic_coeff_a must be finite, got {}", spec->cubic_coeff_a);
  return "";
}

std::string NormalizeResizeAxes(const std::vector<int64_t>& axes, int64_t rank, std::vector<int64_t>* normalized) {
  normalized->clear();
  if (axes.empty()) {
    for (int64_t d = 0; d < rank; ++d) normalized->push_back(d);
    return "";
  }
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int64_t a : axes) {
    if (a < -rank || a >= rank) return fmt::format("axis {} is out of range for rank {}", a, rank);
    const int64_t d = a < 0 ? a + rank : a;
    if (seen[static_cast<size_t>(d)]) return fmt::format("axis {} is repeated in axes [{}]", d, fmt::join(axes, ","));
    seen[static_cast<size_t>(d)] = true;
    normalized->push_back(d);
  }
  return "";
}

std::string ResizeOutputAxes(const std::vector<int64_t>& in, const std::vector<int64_t>& axes,
                             const std::vector<double>* scales, const std::vector<int64_t>* sizes, ResizeAspect aspect,
                             std::vector<ResizeAxis>* out) {
  std::vector<ResizeAxis>& r = *out;
  r.assign(in.size(), ResizeAxis{});
  for (size_t d = 0; d < in.size(); ++d) {
    r[d].in = r[d].out = in[d];
    r[d].width = static_cast<double>(in[d]);
  }
  const size_t n = axes.size();
  if ((scales ? scales->size() : sizes->size()) != n)
    return fmt::format("expected {} {} (one per resized axis), got {}", n, scales ? "scales" : "sizes",
                       scales ? scales->size() : sizes->size());
  for (int64_t d : axes) r[static_cast<size_t>(d)].resized = true;
  if (scales) {
    for (size_t i = 0; i < n; ++i) {
      ResizeAxis& a = r[static_cast<size_t>(axes[i])];
      const double s = (*scales)[i];
      if (!(s > 0) || !std::isfinite(s)) return fmt::format("scales must be positive and finite, got {}", s);
      a.scale = s;
      if (a.in < 0) continue;                   // out stays unknown
      a.width = static_cast<double>(a.in) * s;  // exact for a float32 scale and any real length
      if (!(a.width <= kMaxResizeLength))
        return fmt::format("scale {} makes axis {} of length {} longer than {}", s, axes[i], a.in, kMaxResizeLength);
      a.out = static_cast<int64_t>(std::floor(a.width));
    }
    return "";
  }
  for (size_t i = 0; i < n; ++i) {
    const int64_t size = (*sizes)[i];
    if (size < 0) return fmt::format("sizes must be non-negative, got {}", size);
    if (static_cast<double>(size) > kMaxResizeLength)
      return fmt::format("size {} is longer than {}", size, kMaxResizeLength);
    const ResizeAxis& a = r[static_cast<size_t>(axes[i])];
    if (a.in == 0 && size > 0) return fmt::format("axis {} of length 0 cannot be resized to {}", axes[i], size);
  }
  if (aspect == ResizeAspect::kStretch) {
    for (size_t i = 0; i < n; ++i) {
      ResizeAxis& a = r[static_cast<size_t>(axes[i])];
      a.out = (*sizes)[i];
      a.width = static_cast<double>(a.out);
      if (a.in > 0) a.scale = static_cast<double>(a.out) / static_cast<double>(a.in);
    }
    return "";
  }
  // not_larger / not_smaller: one scale for every listed axis, from their input lengths.
  double s = 0;
  for (size_t i = 0; i < n; ++i) {
    const ResizeAxis& a = r[static_cast<size_t>(axes[i])];
    if (a.in < 0) {
      for (int64_t d : axes) r[static_cast<size_t>(d)].out = -1;
      return "";
    }
    if (a.in == 0) return fmt::format("keep_aspect_ratio_policy needs non-empty axes, axis {} has length 0", axes[i]);
    const double q = static_cast<double>((*sizes)[i]) / static_cast<double>(a.in);
    s = i == 0 ? q : (aspect == ResizeAspect::kNotLarger ? std::min(s, q) : std::max(s, q));
  }
  for (size_t i = 0; i < n; ++i) {
    ResizeAxis& a = r[static_cast<size_t>(axes[i])];
    a.scale = s;
    a.width = s * static_cast<double>(a.in);
    if (!(a.width <= kMaxResizeLength))
      return fmt::format("keep_aspect_ratio_policy makes axis {} of length {} longer than {}", axes[i], a.in,
                         kMaxResizeLength);
    a.out = static_cast<int64_t>(std::floor(a.width + 0.5));  // round half up
  }
  return "";
}

double ResizeSourceCoord(ResizeCoord coord, const ResizeAxis& a, int64_t x) {
  const double fx = static_cast<double>(x), in = static_cast<double>(a.in);
  switch (coord) {
    case ResizeCoord::kHalfPixel:
      return (fx + 0.5) / a.scale - 0.5;
    case ResizeCoord::kHalfPixelSymmetric: {
      // Centres the resized canvas when the output length was floored (in * scale fractional).
      const double adjustment = static_cast<double>(a.out) / a.width;
      const double offset = in / 2 * (1 - adjustment);
      return offset + (fx + 0.5) / a.scale - 0.5;
    }
    case ResizeCoord::kPytorchHalfPixel:
      return a.out > 1 ? (fx + 0.5) / a.scale - 0.5 : 0.0;
    case ResizeCoord::kAlignCorners:
      return a.width == 1 ? 0.0 : fx * (in - 1) / (a.width - 1);
    case ResizeCoord::kAsymmetric:
      return fx / a.scale;
    case ResizeCoord::kTfHalfPixelForNn:
      return (fx + 0.5) / a.scale;
    case ResizeCoord::kTfCropAndResize: {
      const double span = a.roi_end - a.roi_start;
      const double c = a.width == 1 ? span * (in - 1) / 2 : fx * span * (in - 1) / (a.width - 1);
      return c + a.roi_start * (in - 1);
    }
  }
  return 0;
}

bool ResizeAxisIsIdentity(ResizeCoord coord, const ResizeAxis& a) {
  if (!a.resized) return true;
  if (a.scale != 1 || a.out != a.in || coord == ResizeCoord::kTfHalfPixelForNn) return false;
  return coord != ResizeCoord::kTfCropAndResize || (a.roi_start == 0 && a.roi_end == 1);
}

}  // namespace kiln::ir::nn
