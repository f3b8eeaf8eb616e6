// cuda-quantized-conv: convolutions of an INT8 or FP8 graph whose input is a quantize-dequantize
// chain and whose filter lies on that format's grid (ir/quant_dequant.h: int8 per output channel
// or per tensor; float8 E4M3 times one scale) are marked to run as 8-bit cuDNN convolutions: the
// Conv2D reads the chain's float source and carries the quantization as attributes, which
// ConvKernel applies (quantize to int8 or E4M3, 8-bit x 8-bit products summed in int32 or float,
// then the per-channel scale, bias, residual and ReLU in float):
//   Conv2D(dq(q(x)), W)  ->  Conv2D(x, W) {quant_input: q's parameters, quant_filter: W's grid}
// The filter input stays (the float plan runs it when cuDNN has no 8-bit kernel for a shape). Runs
// on the engine's private float32 graph before it is narrowed, so the scales keep float32 values.
// Int8: signed quantization only (int8 storage, no zero point). Grouped and depthwise
// convolutions stay float (with their quantize-dequantize steps).
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "backend/cuda/quantize_kernel.h"
#include "ir/graph.h"
#include "ir/passes/pass.h"
#include "ir/quant_dequant.h"
#include "kiln/tensor.h"

namespace kiln::backend::cuda {

// Marks the convolutions quantized in `format` (the engine's precision: INT8 or FP8).
std::unique_ptr<ir::Pass> MakeQuantizedConvPass(ir::QuantFormat format);
// After it: every other reader of an implicit quantize-dequantize chain (ir::kImplicitQuantization)
// reads the chain's source instead. Those readers run float16 kernels, and as TensorRT's
// calibrated INT8 mode they compute on the unquantized value: the chain would cost a pass over
// the tensor and stop fusions across it (attention), and buys no speed.
std::unique_ptr<ir::Pass> MakeImplicitQuantizationForFloatReadersPass();

// The 8-bit form of a marked Conv2D.
struct QuantizedConv {
  ir::QuantFormat format = ir::QuantFormat::kInt8;
  QuantizeParams input;              // how the input is quantized (and dequantized: input.scale)
  Tensor filter;                     // HWIO as the node's filter: int8, or E4M3 bytes (uint8)
  std::vector<float> filter_scales;  // one per output channel
};
// nullopt for nodes cuda-quantized-conv did not mark.
std::optional<QuantizedConv> ReadQuantizedConv(const ir::Node& node);

// "int8" or "fp8" (E4M3), as kernel names and messages say it.
const char* QuantFormatName(ir::QuantFormat format);

}  // namespace kiln::backend::cuda
