// Device-resident inputs and outputs (RunWithBuffers with GPU bindings, Run with GPU tensors) on
// the bundled demo model converted for the GPU: the same outputs as host memory, in place. Skips
// with a message on machines without a CUDA GPU.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <optional>
#include <thread>

#include "kiln/converter.h"
#include "kiln/device.h"
#include "kiln/model.h"
#include "tests/unit/demo_model_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

using demo_test::DemoDir;
using demo_test::Image;

constexpr Device kGpu{DeviceKind::kCuda, 0};

bool HaveGpu() {
  try {
    AllocateTensorOn(kGpu, DType::kFloat32, {1});
    return true;
  } catch (const Error&) {
    return false;
  }
}

TEST(CudaIo, DeviceBindingsGiveTheHostResultsInPlace) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA GPU visible on this machine (or no CUDA backend in this build): skipped";
  const std::filesystem::path dir = testutil::FreshTempDir("cuda_io");
  ConversionParams params;
  params.device = "cuda";
  Converter converter(DemoDir(), {"serve"}, "serving_default", params);
  converter.convert();
  converter.save((dir / "converted").string());
  auto model = LoadModel((dir / "converted").string());
  const Signature& sig = model->signature();
  EXPECT_EQ(sig.input_device(), kGpu);

  const Tensor image = Image(3, 11);
  const Tensor want = sig.Run({{"image", image}}).at("output_0");
  ASSERT_EQ(want.shape(), (Shape{3, 10}));

  // Run with the input already on the GPU: the output comes back to the host, or with
  // outputs_on_device stays on the GPU (two runs: two outputs of their own).
  Tensor gpu_image = CopyTensorTo(image, kGpu);
  EXPECT_EQ(testutil::RelativeL2Error(sig.Run({{"image", gpu_image}}).at("output_0"), want), 0.0);
  RunOptions on_device;
  on_device.outputs_on_device = true;
  const Tensor first = sig.Run({{"image", gpu_image}}, on_device).at("output_0");
  const Tensor second = sig.Run({{"image", CopyTensorTo(Image(3, 12), kGpu)}}, on_device).at("output_0");
  EXPECT_EQ(first.device(), kGpu);
  EXPECT_EQ(second.device(), kGpu);
  EXPECT_NE(first.raw_data(), second.raw_data());
  EXPECT_EQ(testutil::RelativeL2Error(CopyTensorTo(first, Device{}), want), 0.0);
  EXPECT_GT(testutil::RelativeL2Error(CopyTensorTo(second, Device{}), want), 0.0);

  // Both bindings on the GPU, then each one on the host in turn.
  Tensor gpu_out = AllocateTensorOn(kGpu, DType::kFloat32, {3, 10});
  std::vector<float> host_out(30, -1.0f);
  std::vector<float> host_in(image.data<float>(), image.data<float>() + image.num_elements());
  const BufferBinding in_gpu{"image", DType::kFloat32, image.shape(), gpu_image.raw_data(), gpu_image.byte_size(),
                             kGpu};
  const BufferBinding in_host{"image", DType::kFloat32, image.shape(), host_in.data(), host_in.size() * sizeof(float)};
  for (const bool input_on_gpu : {true, false})
    for (const bool output_on_gpu : {true, false}) {
      BufferBinding out =
          output_on_gpu
              ? BufferBinding{"output_0", DType::kFloat32, {}, gpu_out.raw_data(), gpu_out.byte_size(), kGpu}
              : BufferBinding{"output_0", DType::kFloat32, {}, host_out.data(), host_out.size() * sizeof(float)};
      sig.RunWithBuffers({input_on_gpu ? &in_gpu : &in_host, 1}, {&out, 1});
      EXPECT_EQ(out.shape, (Shape{3, 10}));
      const Tensor got =
          output_on_gpu ? CopyTensorTo(gpu_out, Device{}) : Tensor::FromVector(DType::kFloat32, {3, 10}, host_out);
      EXPECT_EQ(testutil::RelativeL2Error(got, want), 0.0)
          << "input on GPU " << input_on_gpu << ", output on GPU " << output_on_gpu;
    }
  // A device output buffer too small: the shape comes back with the error.
  Tensor small = AllocateTensorOn(kGpu, DType::kFloat32, {2});
  BufferBinding out{"output_0", DType::kFloat32, {}, small.raw_data(), small.byte_size(), kGpu};
  testutil::ExpectError(
      [&] {
        sig.RunWithBuffers({&in_gpu, 1}, {&out, 1});
      },
      ErrorCode::kInvalidArgument, {"'output_0'", "needs 120 bytes"});
  EXPECT_EQ(out.shape, (Shape{3, 10}));
}

TEST(CudaIo, SavedGpuModelReloadsWithoutRebuildingAndServesEightThreads) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA GPU visible on this machine (or no CUDA backend in this build): skipped";
  const std::filesystem::path dir = testutil::FreshTempDir("cuda_threads");
  ConversionParams params;
  params.device = "cuda";
  Converter converter(DemoDir(), {"serve"}, "serving_default", params);
  converter.convert();
  const Tensor image = Image(4, 21);
  bool given = false;
  converter.build([&]() -> std::optional<std::vector<Tensor>> {
    if (given) return std::nullopt;
    given = true;
    return std::vector<Tensor>{image};
  });
  converter.save((dir / "converted").string());
  auto model = LoadModel((dir / "converted").string());
  const Signature& sig = model->signature();
  const Tensor want = sig.Run({{"image", image}}).at("output_0");
  RunStats stats = sig.stats();
  EXPECT_EQ(stats.engines_built, 0);
  EXPECT_GE(stats.engines_loaded, 1);
  EXPECT_EQ(stats.native_runs, 0);
  // Eight threads on the one loaded model, each many times: the single-thread outputs, exactly.
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i)
        if (testutil::RelativeL2Error(sig.Run({{"image", image}}).at("output_0"), want) != 0.0) ++mismatches;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(sig.stats().engines_built, 0);
}

TEST(CudaIo, AnUnconvertedModelTakesDeviceBindingsThroughTheHost) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA GPU visible on this machine (or no CUDA backend in this build): skipped";
  auto model = LoadModel(DemoDir());
  const Signature& sig = model->signature();
  EXPECT_EQ(sig.input_device(), Device{});
  const Tensor image = Image(2, 5);
  const Tensor want = sig.Run({{"image", image}}).at("output_0");
  Tensor gpu_image = CopyTensorTo(image, kGpu);
  Tensor gpu_out = AllocateTensorOn(kGpu, DType::kFloat32, {2, 10});
  const BufferBinding in{"image", DType::kFloat32, image.shape(), gpu_image.raw_data(), gpu_image.byte_size(), kGpu};
  BufferBinding out{"output_0", DType::kFloat32, {}, gpu_out.raw_data(), gpu_out.byte_size(), kGpu};
  sig.RunWithBuffers({&in, 1}, {&out, 1});
  EXPECT_EQ(testutil::RelativeL2Error(CopyTensorTo(gpu_out, Device{}), want), 0.0);
}

}  // namespace
}  // namespace kiln
