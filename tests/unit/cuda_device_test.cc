// The CUDA device's services on a real GPU: allocation, copies both ways on a stream, and the
// engine-facing contract (stream device, refusal of foreign devices). Builds with
// KILN_WITH_CUDA; skips, saying so, where no GPU is visible.
#ifdef KILN_WITH_CUDA

#include <cstring>
#include <numeric>

#include <gtest/gtest.h>

#include "backend/cuda/cuda_device.h"

namespace kiln {
namespace {

#define SKIP_WITHOUT_GPU() \
  if (backend::cuda::DeviceCount() == 0) GTEST_SKIP() << "no CUDA GPU visible on this machine: CUDA device tests skipped"

TEST(CudaDevice, CopiesRoundTripThroughDeviceMemory) {
  SKIP_WITHOUT_GPU();
  const backend::DeviceServices& gpu = backend::cuda::Services(0);
  EXPECT_EQ(gpu.device(), (Device{DeviceKind::kCuda, 0}));
  std::vector<float> values(1 << 20);
  std::iota(values.begin(), values.end(), -1000.0f);
  Tensor host = Tensor::FromVector<float>(DType::kFloat32, {1024, 1024}, values);
  Tensor device = gpu.allocator().AllocateTensor(DType::kFloat32, {1024, 1024});
  EXPECT_EQ(device.device(), gpu.device());
  Tensor device2 = gpu.allocator().AllocateTensor(DType::kFloat32, {1 << 20});  // reshaped copy target
  Tensor back(DType::kFloat32, {1024, 1024});
  auto stream = gpu.CreateStream();
  EXPECT_EQ(stream->device(), gpu.device());
  EXPECT_NE(stream->native_handle(), nullptr);
  gpu.transfer().CopyTensor(host, device, *stream);
  gpu.transfer().CopyTensor(device, device2, *stream);
  gpu.transfer().CopyTensor(device2, back, *stream);
  stream->Synchronize();
  EXPECT_EQ(std::memcmp(back.raw_data(), host.raw_data(), host.byte_size()), 0);
}

TEST(CudaDevice, RefusesMismatchedCopiesAndMissingDevices) {
  SKIP_WITHOUT_GPU();
  const backend::DeviceServices& gpu = backend::cuda::Services(0);
  auto stream = gpu.CreateStream();
  Tensor host(DType::kFloat32, {4});
  Tensor wrong = gpu.allocator().AllocateTensor(DType::kFloat32, {5});
  EXPECT_THROW(gpu.transfer().CopyTensor(host, wrong, *stream), Error);
  EXPECT_FALSE(gpu.transfer().CanCopy(Device{DeviceKind::kCuda, 0}, Device{DeviceKind::kCuda, 7}));
  auto host_stream = backend::HostServices().CreateStream();
  Tensor fits = gpu.allocator().AllocateTensor(DType::kFloat32, {4});
  EXPECT_THROW(gpu.transfer().CopyTensor(host, fits, *host_stream), Error);  // not a CUDA stream
  try {
    backend::cuda::Services(backend::cuda::DeviceCount());
    ADD_FAILURE() << "expected kNotFound";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

}  // namespace
}  // namespace kiln

#else

#include <gtest/gtest.h>

TEST(CudaDevice, NotBuilt) { GTEST_SKIP() << "built without KILN_WITH_CUDA: CUDA device tests not compiled"; }

#endif
