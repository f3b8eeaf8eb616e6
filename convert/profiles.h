// Optimization profiles from the input shapes seen by build(), per TF-TRT's
// dynamic_shape_profile_strategy. For build() inputs [8,128] and [4,384]:
//   Range                        -> [4-8,128-384]
//   Optimal                      -> [8,128], [4,384]
//   Range+Optimal                -> [8,128], [4,384], [4-8,128-384]
//   ImplicitBatchModeCompatible  -> [1-8,128], [1-4,384]
#pragma once

#include <vector>

#include "backend/backend.h"
#include "kiln/precision.h"
#include "kiln/tensor.h"

namespace kiln::convert {

// `shapes_per_run` has one entry per build() call: the shapes of the engine's inputs. Returns the
// profiles to build engines for, identical ones removed, in first-seen order (for Range+Optimal:
// the Optimal profiles, then the Range profile). No runs -> no profiles.
//  - Range: one profile, per-dim min/max over all runs; opt = max (as TF-TRT: engines are tuned
//    for the largest shape, which dominates latency).
//  - Optimal: one exact profile (min = opt = max) per distinct shape set.
//  - ImplicitBatchModeCompatible: runs are grouped by their non-batch dims (all dims but dim 0 of
//    every input); per group, dim 0 spans 1..the largest batch seen (per input), other dims fixed.
// kInvalidArgument when runs disagree on the number of inputs or an input's rank (naming the input
// index and the runs), or when a dim is negative.
std::vector<backend::Profile> MakeProfiles(ProfileStrategy strategy,
                                           const std::vector<std::vector<Shape>>& shapes_per_run);

// min = opt = max = shapes.
backend::Profile ExactProfile(const std::vector<Shape>& shapes);

// Implicit batch: dim 0 from 1 to N (N = the shape's dim 0), other dims fixed; opt = max = shapes.
// A scalar input has no batch dim and stays fixed; a batch of 0 gives min = 0.
backend::Profile ImplicitBatchProfile(const std::vector<Shape>& shapes);

// Same min, opt and max for every input. (backend::Profile::operator== cannot be used while
// backend::InputRange has no operator==.)
bool SameProfile(const backend::Profile& a, const backend::Profile& b);

}  // namespace kiln::convert
