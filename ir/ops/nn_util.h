// Helpers shared by the nn family's shape functions (ir/ops/nn*.cc) and reference kernels
// (backend/reference/nn*.cc): window/padding arithmetic with TensorFlow's rules, data-format
// axes, and Einsum equation parsing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::ir::nn {

// DepthToSpace / SpaceToDepth: the largest block size (its square fits in int64 many times over).
inline constexpr int64_t kMaxBlockSize = int64_t{1} << 20;

// ---- windows (convolution, pooling) ----

enum class Padding { kSame, kValid, kExplicit };

// "SAME" / "VALID" / "EXPLICIT"; returns false for anything else.
bool ParsePadding(const std::string& text, Padding* padding);

struct WindowDim {
  int64_t out = 0;
  int64_t pad_before = 0;
  int64_t pad_after = 0;
};

// TensorFlow's GetWindowedOutputSize for one spatial dim: effective kernel (k-1)*dilation+1;
// VALID: out = (in - eff + stride) / stride; SAME: out = ceil(in / stride) with the total pad
// max((out-1)*stride + eff - in, 0) split as before = total/2, after = total - before (the extra
// pad at the end); EXPLICIT: out = (in + before + after - eff + stride) / stride.
// Returns false (with `error` set) when the output size would be negative or an arg is invalid.
bool ComputeWindow(int64_t in, int64_t kernel, int64_t stride, int64_t dilation, Padding padding,
                   int64_t explicit_before, int64_t explicit_after, WindowDim* out, std::string* error);

// Data formats: "NHWC", "NCHW", "NDHWC", "NCDHW" (any N?..C / NC?.. spelling with 1-3 spatial
// dims). Returns false for an unknown format or one whose rank does not match `rank`.
bool ChannelsLast(const std::string& data_format, bool* channels_last);
// Axis of the channel dim and of spatial dim i for a rank-`rank` tensor.
inline int ChannelAxis(bool channels_last, int rank) { return channels_last ? rank - 1 : 1; }
inline int SpatialAxis(bool channels_last, int i) { return channels_last ? 1 + i : 2 + i; }

// ---- Einsum ----

// A parsed equation with every ellipsis expanded into broadcast labels. Labels are small
// integers: named labels first (in order of first appearance), then `num_bcast` broadcast
// labels (the dims covered by "...", right-aligned across the inputs as in numpy).
struct EinsumSpec {
  std::vector<std::vector<int>> inputs;  // one label per input axis
  std::vector<int> output;               // one label per output axis (may repeat: inflation)
  int num_named = 0;
  int num_bcast = 0;
  std::vector<char> names;  // names[label] for named labels
  int num_labels() const { return num_named + num_bcast; }
  bool is_bcast(int label) const { return label >= num_named; }
};

// Parses `equation` (TF rules: exactly one "->", 1 or 2 inputs, letters and at most one "..."
// per term, every output label must appear in an input, broadcast dims must appear in the
// output through "...") for inputs of the given ranks. Returns "" or an error message.
std::string ParseEinsum(const std::string& equation, const std::vector<int>& input_ranks, EinsumSpec* spec);

// Number of inputs of an equation (terms before "->"); 0 when malformed.
int EinsumNumInputs(const std::string& equation);

}  // namespace kiln::ir::nn
