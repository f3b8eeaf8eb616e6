// Which RNN / GRU / LSTM nodes the CPU engine runs on oneDNN's RNN primitives (cpu.RNN,
// cpu.GRU, cpu.LSTM: rnn_kernel.cc), and which keep the reference kernel outside engines.
// oneDNN computes one function per cell kind; a node is claimed only where that function is
// ONNX's exactly:
//   - X float32; W, R, B, P constants (weights repacked once when the engine is built);
//   - activations: LSTM Sigmoid, Tanh, Tanh; GRU Sigmoid, Tanh; RNN Tanh, Relu or Sigmoid, the
//     same for both directions (oneDNN has one activation per primitive);
//   - no clip (oneDNN has no cell clip), LSTM input_forget = 0 (no coupled input-forget gate);
//   - no sequence_lens, or a constant one equal to X's static seq length in every row (oneDNN
//     runs every row the full length).
#pragma once

#include <optional>
#include <string>

#include "ir/graph.h"

namespace kiln::backend::cpu {

// nullopt when `node` (RNN, GRU or LSTM) runs on oneDNN; otherwise why not. Also nullopt for
// nodes of other ops.
std::optional<std::string> RecurrentUnsupported(const ir::Graph& graph, const ir::Node& node);

}  // namespace kiln::backend::cpu
