// The CUDA engine backend ("cuda"): engines on one NVIDIA GPU (device 0) built from generated
// elementwise kernels (NVRTC) and cuBLASLt matrix products; other ops run natively on the host
// with copies where the graph crosses. See docs/cuda-backend.md.
#pragma once

#include "backend/backend.h"

namespace kiln::backend::cuda {

class CudaBackend final : public Backend {
 public:
  // kUnavailable when no CUDA GPU is visible.
  CudaBackend();
  std::string name() const override { return "cuda"; }
  // "NVIDIA H200 sm_90, driver 13.0, CUDA runtime 13.0, cuBLASLt 130100, NVRTC 13.0".
  std::string device() const override { return device_; }
  std::optional<std::string> Unsupported(const ir::Graph& graph, const ir::Node& node) const override;
  std::unique_ptr<Engine> Compile(const ir::Graph& segment, const Profile& profile,
                                  const CompileOptions& options) const override;
  std::unique_ptr<Engine> Deserialize(const ir::Graph& segment, const Profile& profile, const CompileOptions& options,
                                      std::string_view payload) const override;
  const DeviceServices& device_services() const override;

 private:
  int device_index_ = 0;
  std::string device_;
};

}  // namespace kiln::backend::cuda
