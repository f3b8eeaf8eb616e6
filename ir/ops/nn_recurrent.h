// What the recurrent IR ops (RNN, GRU, LSTM) share between their shape function, reference
// kernel and ONNX importer: the gates and inputs of each kind, and the activation functions
// with their alpha/beta parameters, so the three can never disagree. See docs/ops/nn.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::ir::nn {

// hidden_size limit: 8 * hidden_size (LSTM's bias length) and hidden_size^2 stay far from
// int64 overflow, and no real tensor has a dim this large.
inline constexpr int64_t kMaxHiddenSize = int64_t{1} << 30;

struct RecurrentKind {
  std::string_view op;                       // "RNN", "GRU", "LSTM"
  int gates;                                 // rows of W and R per direction, in units of hidden_size
  int num_outputs;                           // Y, Y_h (and Y_c for LSTM)
  std::vector<std::string> activations;      // the defaults for one direction (f; f, g; f, g, h)
  std::vector<std::string> optional_inputs;  // after X, W, R, in ONNX's order
  int activations_per_direction() const { return static_cast<int>(activations.size()); }
};

// The kind of IR op `op`, or nullptr when it is not a recurrent op.
const RecurrentKind* FindRecurrentKind(std::string_view op);

enum class Activation {
  kRelu,
  kTanh,
  kSigmoid,
  kAffine,
  kLeakyRelu,
  kThresholdedRelu,
  kScaledTanh,
  kHardSigmoid,
  kElu,
  kSoftsign,
  kSoftplus
};

struct ActivationInfo {
  Activation kind;
  const char* name;  // ONNX's spelling
  bool uses_alpha, uses_beta;
  bool has_default;    // false: ONNX gives no default for its parameters (Affine, ScaledTanh)
  double alpha, beta;  // the defaults (those of the ONNX operator of that name)
};

// The activation named `name` (ONNX's spelling; `ignore_case` also accepts "tanh", "RELU", ...),
// or nullptr.
const ActivationInfo* FindActivation(std::string_view name, bool ignore_case = false);

// The activation applied to one value, in double.
double Activate(Activation kind, double alpha, double beta, double x);

}  // namespace kiln::ir::nn
