// Helpers shared by the signal ops' shape functions (ir/ops/signal.cc) and reference kernels
// (backend/reference/signal.cc): DFT / STFT geometry and the mel scale, so that both compute
// shapes with the same code. See docs/ops/signal.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace kiln::ir::signal {

// The DFT's transform: forward or inverse, full or one-sided (RFFT: real input, the
// floor(n/2) + 1 non-redundant bins out; IRFFT: those bins in, a real signal of n out).
struct DftMode {
  bool inverse = false;
  bool onesided = false;
  bool rfft() const { return onesided && !inverse; }
  bool irfft() const { return onesided && inverse; }
};

// DFT's axis of an input of rank `rank` (the last dim holds the real / imaginary parts):
// [-rank, -2] or [0, rank - 2], normalized to [0, rank - 2]; nullopt outside.
std::optional<int64_t> DftAxis(int64_t axis, int64_t rank);

// "" when the input's last dim `components` (1: real, 2: complex) suits the mode, else why not.
std::string CheckDftComponents(int64_t components, DftMode mode);

// The transform length when dft_length is not given: the axis dim, 2 * (dim - 1) for IRFFT.
int64_t DefaultDftLength(int64_t axis_dim, DftMode mode);

// "" when `n` (the transform length) is valid: at least 1.
std::string CheckDftLength(int64_t n);

// The output's axis dim for transform length n: floor(n / 2) + 1 for RFFT, else n.
inline int64_t DftOutputLength(int64_t n, DftMode mode) { return mode.rfft() ? n / 2 + 1 : n; }
// The output's last dim: 1 (a real signal) for IRFFT, else 2.
inline int64_t DftOutputComponents(DftMode mode) { return mode.irfft() ? 1 : 2; }

// STFT's frame count, floor((signal_length - frame_length) / frame_step) + 1, or an error when
// frame_step < 1, frame_length < 1 or the signal is shorter than one frame.
std::string StftFrames(int64_t signal_length, int64_t frame_length, int64_t frame_step, int64_t* frames);

// MelWeightMatrix's row count: floor(dft_length / 2) + 1 (the one-sided DFT's bins).
inline int64_t MelSpectrogramBins(int64_t dft_length) { return dft_length / 2 + 1; }
// "" when the scalar arguments are valid: num_mel_bins >= 0, dft_length >= 1, sample_rate >= 1.
std::string CheckMelArguments(int64_t num_mel_bins, int64_t dft_length, int64_t sample_rate);

}  // namespace kiln::ir::signal
