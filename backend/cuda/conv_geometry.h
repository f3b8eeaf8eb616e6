// The sizes of a 2-D convolution over NHWC data with a KRSC filter: what the library int8 kernels
// (quantized_library_conv.h, cutlass_quantized_conv.h) are told about a convolution. Plain C++17: nvcc
// compiles it into the CUTLASS kernels too.
#pragma once

#include <cstdint>

namespace kiln::backend::cuda {

struct ConvGeometry {
  int64_t n = 0, h = 0, w = 0, c = 0;  // input
  int64_t k = 0, r = 1, s = 1;         // filter
  int64_t p = 0, q = 0;                // output height and width
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int64_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;

  // A 1x1 stride-1 convolution without padding: a matrix product [n*h*w, c] x [c, k].
  bool IsProduct() const {
    return r == 1 && s == 1 && stride_h == 1 && stride_w == 1 && pad_top == 0 && pad_left == 0 && pad_bottom == 0 &&
           pad_right == 0 && p == h && q == w;
  }
  // The output size of one spatial dimension for these window parameters.
  static int64_t OutputSize(int64_t in, int64_t window, int64_t pad_before, int64_t pad_after, int64_t stride,
                            int64_t dilation) {
    return (in + pad_before + pad_after - dilation * (window - 1) - 1) / stride + 1;
  }
  // Whether p and q are what the window parameters give.
  bool OutputAgrees() const {
    return p == OutputSize(h, r, pad_top, pad_bottom, stride_h, dilation_h) &&
           q == OutputSize(w, s, pad_left, pad_right, stride_w, dilation_w);
  }
};

}  // namespace kiln::backend::cuda
