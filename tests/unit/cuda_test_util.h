// Helpers of the CUDA backend's GPU tests: seeded random tensors of every dtype, copies to and from
// the GPU, running an engine on host tensors, and relative L2 error.
#pragma once

#ifdef KILN_WITH_CUDA

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/cuda_device.h"
#include "kiln/error.h"
#include "kiln/half.h"
#include "kiln/tensor.h"

namespace kiln::cudatest {

inline Tensor RandomTensor(DType dtype, const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> real(-2.0, 2.0);
  std::uniform_int_distribution<int> small(-4, 4), unsigned_small(0, 8), coin(0, 1);
  Tensor t(dtype, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    switch (dtype) {
      case DType::kFloat32:
        t.data<float>()[i] = static_cast<float>(real(rng));
        break;
      case DType::kFloat64:
        t.data<double>()[i] = real(rng);
        break;
      case DType::kFloat16:
        t.data<Half>()[i] = Half(static_cast<float>(real(rng)));
        break;
      case DType::kBFloat16:
        t.data<BFloat16>()[i] = BFloat16(static_cast<float>(real(rng)));
        break;
      case DType::kInt8:
        t.data<int8_t>()[i] = static_cast<int8_t>(small(rng));
        break;
      case DType::kInt16:
        t.data<int16_t>()[i] = static_cast<int16_t>(small(rng));
        break;
      case DType::kInt32:
        t.data<int32_t>()[i] = small(rng);
        break;
      case DType::kInt64:
        t.data<int64_t>()[i] = small(rng);
        break;
      case DType::kUInt8:
        t.data<uint8_t>()[i] = static_cast<uint8_t>(unsigned_small(rng));
        break;
      case DType::kUInt16:
        t.data<uint16_t>()[i] = static_cast<uint16_t>(unsigned_small(rng));
        break;
      case DType::kUInt32:
        t.data<uint32_t>()[i] = static_cast<uint32_t>(unsigned_small(rng));
        break;
      case DType::kUInt64:
        t.data<uint64_t>()[i] = static_cast<uint64_t>(unsigned_small(rng));
        break;
      case DType::kBool:
        t.data<bool>()[i] = coin(rng) != 0;
        break;
      default:
        throw Error(ErrorCode::kInternal, "RandomTensor: dtype");
    }
  }
  return t;
}

inline Tensor ToDevice(const Tensor& host) {
  const auto& gpu = backend::cuda::Services(0);
  Tensor d = gpu.allocator().AllocateTensor(host.dtype(), host.shape());
  auto stream = gpu.CreateStream();
  gpu.transfer().CopyTensor(host, d, *stream);
  stream->Synchronize();
  return d;
}

inline Tensor ToHost(const Tensor& device) {
  const auto& gpu = backend::cuda::Services(0);
  Tensor h(device.dtype(), device.shape());
  auto stream = gpu.CreateStream();
  gpu.transfer().CopyTensor(device, h, *stream);
  stream->Synchronize();
  return h;
}

// Runs host inputs through a CUDA engine (copies both ways) and returns host outputs.
inline std::vector<Tensor> RunOnGpu(const backend::Engine& engine, const std::vector<Tensor>& inputs) {
  std::vector<Tensor> dev;
  for (const Tensor& t : inputs) dev.push_back(ToDevice(t));
  std::vector<Tensor> out = engine.Execute(dev, backend::cuda::Services(0));
  std::vector<Tensor> host;
  for (const Tensor& t : out) host.push_back(ToHost(t));
  return host;
}

// Relative L2 of got against want, for fused float16 steps that round once where the reference
// rounds after each op (the intermediate's half ulp, not the result's, bounds the difference).
inline double RelativeL2(const Tensor& got, const Tensor& want) {
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < want.num_elements(); ++i) {
    diff += (got.DoubleAt(i) - want.DoubleAt(i)) * (got.DoubleAt(i) - want.DoubleAt(i));
    norm += want.DoubleAt(i) * want.DoubleAt(i);
  }
  return std::sqrt(diff / std::max(norm, 1e-300));
}

}  // namespace kiln::cudatest

#endif  // KILN_WITH_CUDA
