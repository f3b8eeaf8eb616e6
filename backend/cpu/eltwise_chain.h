// The cpu.EltwiseChain kernel: applies a list of float32 elementwise steps in one pass over the
// data, a tile at a time (the tile stays in L1 between steps). The steps are the fusible ops of
// the elementwise table (ir/ops/elementwise_ops.h), which evaluate the same formulas as the
// reference kernels, and float32 quantize-dequantize steps (cpu.QuantDequant, backend/cpu/int8.h:
// quantized models put one between most ops), so results match the unfused graph exactly.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backend/cpu/int8.h"
#include "ir/graph.h"
#include "ir/ops/elementwise_scalar.h"
#include "kiln/tensor.h"

namespace kiln::backend::cpu {

struct ChainStep;

// One step over a tile of n floats: b[i] = f(b[i]) for unary steps; f(b[i], o[i * os]) for
// binary ones (f(o[i * os], b[i]) when step.swapped; os == 0: o is a broadcast scalar).
using ChainStepFn = void (*)(float* b, const float* o, int64_t os, int64_t n, const ChainStep& step);

struct ChainStep {
  ChainStepFn apply = nullptr;
  int operand = -1;      // node input index of the other operand (binary steps)
  bool swapped = false;  // the operand is the left-hand side
  ir::elementwise::State state;  // the op's scalar attribute (LeakyRelu's alpha)
  QuantDequantParams quant;      // a cpu.QuantDequant step's
};

struct ChainSpec {
  std::vector<ChainStep> steps;
  // The result quantized as it is stored (a cpu.QuantizeS8 that read the chain's float result joined it).
  std::optional<QuantizeParams> quantize_output;
};

// Reads the steps of a cpu.EltwiseChain node (kInternal for unknown ops or bad attributes):
// "steps" (op names), "operands" (input index or -1), "swapped", "alphas" (the scalar attribute),
// "quant_dequant": QuantDequantAttrValues' five values for each cpu.QuantDequant step, in order,
// and "quantize_output" (optional): QuantizeAttrValues' five values.
ChainSpec ReadChainSpec(const ir::Node& node);

// Runs the chain: inputs[0] is the chain input (its shape is the output's), the others the
// operands (each broadcasts into inputs[0]). `out` holds inputs[0].num_elements() floats (int8 or
// uint8 values with quantize_output) and may not overlap any operand other than inputs[0]
// (running in place on the chain input is fine when the output is float).
void RunEltwiseChain(const ChainSpec& spec, std::span<const Tensor> inputs, void* out);

}  // namespace kiln::backend::cpu
