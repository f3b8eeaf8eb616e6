#include "ir/ops/vision_util.h"

#include <fmt/format.h>

#include <cmath>

#include "ir/ops/nn_util.h"

namespace kiln::ir::vision {
namespace {

// Window sizes and pads past this cannot be real, and keep int64 window arithmetic exact.
constexpr int64_t kMaxWindowValue = int64_t{1} << 60;

std::string Join(const std::vector<int64_t>& v) { return fmt::format("[{}]", fmt::join(v, ",")); }

}  // namespace

std::string ParseGridSampleAttrs(const AttrMap& attrs, GridSampleSpec* spec) {
  const std::string mode = attrs.GetOr<std::string>("mode", "linear");
  if (mode == "linear")
    spec->mode = GridMode::kLinear;
  else if (mode == "nearest")
    spec->mode = GridMode::kNearest;
  else if (mode == "cubic")
    spec->mode = GridMode::kCubic;
  else
    return fmt::format("mode '{}' is not one of linear, nearest, cubic", mode);
  const std::string padding = attrs.GetOr<std::string>("padding_mode", "zeros");
  if (padding == "zeros")
    spec->padding = GridPadding::kZeros;
  else if (padding == "border")
    spec->padding = GridPadding::kBorder;
  else if (padding == "reflection")
    spec->padding = GridPadding::kReflection;
  else
    return fmt::format("padding_mode '{}' is not one of zeros, border, reflection", padding);
  spec->align_corners = attrs.GetOr<bool>("align_corners", false);
  return "";
}

double GridDenormalize(double n, int64_t length, bool align_corners) {
  const double d = static_cast<double>(length);
  return align_corners ? (n + 1) / 2 * (d - 1) : ((n + 1) * d - 1) / 2;
}

double GridReflect(double x, double lo, double hi) {
  const double range = hi - lo;
  if (!(range > 0)) return lo;
  if (x < lo) {
    const double dx = lo - x;
    const double n = std::floor(dx / range);
    const double r = dx - n * range;
    return std::fmod(n, 2) == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    const double dx = x - hi;
    const double n = std::floor(dx / range);
    const double r = dx - n * range;
    return std::fmod(n, 2) == 0 ? hi - r : lo + r;
  }
  return x;
}

std::string ParseRoiAlignAttrs(const AttrMap& attrs, RoiAlignSpec* spec) {
  const std::string mode = attrs.GetOr<std::string>("mode", "avg");
  if (mode != "avg" && mode != "max") return fmt::format("mode '{}' is not one of avg, max", mode);
  spec->max = mode == "max";
  const std::string coord = attrs.GetOr<std::string>("coordinate_transformation_mode", "half_pixel");
  if (coord != "half_pixel" && coord != "output_half_pixel")
    return fmt::format("coordinate_transformation_mode '{}' is not one of half_pixel, output_half_pixel", coord);
  spec->half_pixel = coord == "half_pixel";
  spec->output_height = attrs.GetOr<int64_t>("output_height", 1);
  spec->output_width = attrs.GetOr<int64_t>("output_width", 1);
  if (spec->output_height < 1 || spec->output_width < 1)
    return fmt::format("output_height and output_width must be positive, got {} and {}", spec->output_height,
                       spec->output_width);
  spec->sampling_ratio = attrs.GetOr<int64_t>("sampling_ratio", 0);
  if (spec->sampling_ratio < 0)
    return fmt::format("sampling_ratio must be non-negative (0: adaptive), got {}", spec->sampling_ratio);
  spec->spatial_scale = attrs.GetOr<double>("spatial_scale", 1.0);
  if (!std::isfinite(spec->spatial_scale))
    return fmt::format("spatial_scale must be finite, got {}", spec->spatial_scale);
  return "";
}

std::string ParseArgmaxPoolAttrs(const AttrMap& attrs, int spatial, ArgmaxPoolSpec* spec) {
  if (spatial < 1 || spatial > 3)
    return fmt::format("expected 1 to 3 spatial dims (an input of rank 3 to 5), got {}", spatial);
  const size_t s = static_cast<size_t>(spatial);
  const std::string format = attrs.GetOr<std::string>("data_format", spatial == 3 ? "NDHWC" : "NHWC");
  if (!nn::ChannelsLast(format, &spec->channels_last) || format.size() != s + 2)
    return fmt::format("data_format '{}' does not match {} spatial dims", format, spatial);
  spec->ksize = attrs.GetOr<std::vector<int64_t>>("ksize", {});
  spec->strides = attrs.GetOr<std::vector<int64_t>>("strides", std::vector<int64_t>(s, 1));
  spec->dilations = attrs.GetOr<std::vector<int64_t>>("dilations", std::vector<int64_t>(s, 1));
  if (spec->ksize.size() != s || spec->strides.size() != s || spec->dilations.size() != s)
    return fmt::format("expected {} ksize, strides and dilations values, got {}, {} and {}", spatial, Join(spec->ksize),
                       Join(spec->strides), Join(spec->dilations));
  for (size_t d = 0; d < s; ++d) {
    const int64_t k = spec->ksize[d], st = spec->strides[d], dl = spec->dilations[d];
    if (k <= 0 || st <= 0 || dl <= 0)
      return fmt::format("ksize, strides and dilations must be positive, got {}, {} and {}", Join(spec->ksize),
                         Join(spec->strides), Join(spec->dilations));
    int64_t span = 0;
    if (k > kMaxWindowValue || st > kMaxWindowValue || __builtin_mul_overflow(k - 1, dl, &span) ||
        span >= kMaxWindowValue)
      return fmt::format("the window of spatial dim {} (ksize {}, dilation {}, stride {}) is too large", d, k, dl, st);
  }
  spec->padding = attrs.GetOr<std::string>("padding", "VALID");
  nn::Padding padding;
  if (!nn::ParsePadding(spec->padding, &padding)) return fmt::format("unknown padding '{}'", spec->padding);
  if (padding == nn::Padding::kExplicit) {
    spec->pads = attrs.GetOr<std::vector<int64_t>>("pads", {});
    if (spec->pads.size() != 2 * s)
      return fmt::format("EXPLICIT padding needs {} pads, got {}", 2 * s, Join(spec->pads));
    for (int64_t p : spec->pads)
      if (p < 0 || p > kMaxWindowValue)
        return fmt::format("pads {} must be non-negative and below 2^60", Join(spec->pads));
  } else {
    spec->pads.assign(2 * s, 0);
  }
  spec->storage_order = attrs.GetOr<int64_t>("storage_order", 0);
  if (spec->storage_order != 0 && spec->storage_order != 1)
    return fmt::format("storage_order must be 0 (row-major) or 1 (column-major), got {}", spec->storage_order);
  if (spec->storage_order == 1 && spec->channels_last)
    return fmt::format("storage_order 1 (column-major indices) needs a channels-first data_format, got '{}'", format);
  spec->include_batch_in_index = attrs.GetOr<bool>("include_batch_in_index", true);
  return "";
}

}  // namespace kiln::ir::vision
