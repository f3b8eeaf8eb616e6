// Engine precisions and dynamic-shape profile strategies, named as TF-TRT names them.
#pragma once

#include <string>
#include <string_view>

namespace kiln {

enum class Precision { kFP32, kFP16, kBF16, kINT8, kFP8 };

// Case-insensitive "FP32", "FP16", "BF16", "INT8", "FP8" (E4M3); kInvalidArgument naming the accepted values otherwise.
Precision ParsePrecision(std::string_view text);
std::string_view PrecisionName(Precision precision);  // "FP32", ...

// TF-TRT's dynamic_shape_profile_strategy values.
enum class ProfileStrategy { kRange, kOptimal, kRangeOptimal, kImplicitBatchModeCompatible };

// "Range", "Optimal", "Range+Optimal", "ImplicitBatchModeCompatible" (case-insensitive).
ProfileStrategy ParseProfileStrategy(std::string_view text);
std::string_view ProfileStrategyName(ProfileStrategy strategy);

}  // namespace kiln
