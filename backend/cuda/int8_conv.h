// cuda-int8-conv: convolutions of an INT8 graph whose input is a quantize-dequantize chain and
// whose filter lies on an int8 grid (per output channel or per tensor; ir/quant_dequant.h) are
// marked to run as int8 cuDNN convolutions: the Conv2D reads the chain's float source and carries
// the quantization as attributes, which ConvKernel applies (quantize to int8, int8 x int8 with
// int32 accumulation, then the per-channel scale, bias, residual and ReLU in float):
//   Conv2D(dq(q(x)), W)  ->  Conv2D(x, W) {int8_input: q's parameters, int8_filter: W's grid}
// The filter input stays (the float plan runs it when cuDNN has no int8 kernel for a shape). Runs
// on the engine's private float32 graph before it is narrowed, so the scales keep float32 values.
// Signed quantization only (int8 storage, no zero point); grouped and depthwise convolutions stay
// float (with their quantize-dequantize steps).
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "backend/cuda/quantize_kernel.h"
#include "ir/graph.h"
#include "ir/passes/pass.h"
#include "kiln/tensor.h"

namespace kiln::backend::cuda {

std::unique_ptr<ir::Pass> MakeInt8ConvPass();

// The int8 form of a marked Conv2D.
struct Int8Conv {
  QuantizeParams input;              // how the input is quantized (and dequantized: input.scale)
  Tensor filter;                     // int8, HWIO as the node's filter
  std::vector<float> filter_scales;  // one per output channel
};
// nullopt for nodes cuda-int8-conv did not mark.
std::optional<Int8Conv> ReadInt8Conv(const ir::Node& node);

}  // namespace kiln::backend::cuda
