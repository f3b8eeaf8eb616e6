// Engine precisions and profile strategies: names and case-insensitive parsing.
#include "kiln/precision.h"

#include <array>
#include <string>
#include <utility>

#include "kiln/error.h"

namespace kiln {
namespace {

constexpr std::array<std::pair<Precision, std::string_view>, 5> kPrecisions{{
    {Precision::kFP32, "FP32"},
    {Precision::kFP16, "FP16"},
    {Precision::kBF16, "BF16"},
    {Precision::kINT8, "INT8"},
    {Precision::kFP8, "FP8"},
}};

constexpr std::array<std::pair<ProfileStrategy, std::string_view>, 4> kStrategies{{
    {ProfileStrategy::kRange, "Range"},
    {ProfileStrategy::kOptimal, "Optimal"},
    {ProfileStrategy::kRangeOptimal, "Range+Optimal"},
    {ProfileStrategy::kImplicitBatchModeCompatible, "ImplicitBatchModeCompatible"},
}};

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (Lower(a[i]) != Lower(b[i])) return false;
  return true;
}

// Looks `text` up in `table` by name (case-insensitive); kInvalidArgument naming `field` and the
// accepted values otherwise: "precision_mode 'fp64' is not one of FP32, FP16, BF16, INT8".
template <typename Enum, size_t N>
Enum Parse(const std::array<std::pair<Enum, std::string_view>, N>& table, std::string_view field,
           std::string_view text) {
  for (const auto& [value, name] : table)
    if (EqualsIgnoreCase(text, name)) return value;
  std::string accepted;
  for (const auto& [value, name] : table) {
    if (!accepted.empty()) accepted += ", ";
    accepted += name;
  }
  throw Error(ErrorCode::kInvalidArgument,
              std::string(field) + " '" + std::string(text) + "' is not one of " + accepted);
}

template <typename Enum, size_t N>
std::string_view Name(const std::array<std::pair<Enum, std::string_view>, N>& table, Enum value) {
  for (const auto& [v, name] : table)
    if (v == value) return name;
  return "?";
}

}  // namespace

Precision ParsePrecision(std::string_view text) { return Parse(kPrecisions, "precision_mode", text); }
std::string_view PrecisionName(Precision precision) { return Name(kPrecisions, precision); }

ProfileStrategy ParseProfileStrategy(std::string_view text) {
  return Parse(kStrategies, "dynamic_shape_profile_strategy", text);
}
std::string_view ProfileStrategyName(ProfileStrategy strategy) { return Name(kStrategies, strategy); }

}  // namespace kiln
