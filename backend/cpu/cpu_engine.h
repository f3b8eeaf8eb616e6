// The CPU engine: an executable plan for one optimized segment and one profile.
//
// Built once (Prepare): shapes are specialised for the profile's max (and opt) input shapes,
// every node gets a kernel (oneDNN for fused conv/matmul nodes, the chain kernel for
// elementwise chains, the reference kernel otherwise), oneDNN primitives are created and
// weights reordered, and a static arena plan assigns each intermediate an offset. Execute only
// runs: it takes an execution context (arena + oneDNN stream + scratchpad) from a pool, runs
// the steps, and returns the context.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_features.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/memory_plan.h"
#include "backend/cpu/passes/passes.h"

namespace kiln::backend::cpu {

class CpuEngine final : public Engine {
 public:
  // `graph`: the optimized plan (may contain the backend's internal ops). kInvalidArgument when
  // the profile does not fit the graph's inputs. `cpu`: the features the precision is chosen
  // for (the host's; tests pass others to exercise a precision's fallbacks).
  CpuEngine(std::shared_ptr<const ir::Graph> graph, Profile profile, const CompileOptions& options,
            std::vector<PassStat> pass_stats, uint64_t segment_hash, const CpuFeatures& cpu = HostCpu());
  ~CpuEngine() override;

  const Profile& profile() const override { return profile_; }
  Precision precision() const override { return precision_.precision; }
  std::string precision_note() const override { return precision_.note; }
  std::vector<std::string> quantized_layers() const override { return int8_steps_; }
  std::vector<DType> output_dtypes() const override;
  std::vector<Shape> OutputShapes(std::span<const Shape> input_shapes) const override;
  // An undefined output tensor is allocated by the step that produces it: OutputShapes answers
  // kUnimplemented for outputs whose shapes only the run determines (computed Reshape targets).
  void Enqueue(std::span<const Tensor> inputs, std::span<Tensor> outputs, Stream& stream) const override;
  std::string Serialize() const override;

  // ---- introspection (compile log, tests) ----
  const ir::Graph& graph() const { return *graph_; }
  const std::vector<PassStat>& pass_stats() const { return pass_stats_; }
  uint64_t segment_hash() const { return segment_hash_; }
  size_t arena_bytes() const { return arena_.arena_bytes; }     // per execution context
  size_t workspace_bytes() const { return max_scratch_; }       // oneDNN scratchpad and layout buffers
  size_t unshared_bytes() const { return arena_.unshared_bytes; }  // the same buffers without reuse
  size_t planned_buffers() const { return arena_.offsets.size(); }
  size_t contexts_created() const { return contexts_created_.load(); }
  // Intermediates that did not fit their planned slot (shapes beyond the plan) and were allocated.
  int64_t spilled_allocations() const { return spilled_.load(); }
  struct StepInfo {
    std::string node, op, kernel;
  };
  // Steps whose oneDNN primitives compute with bf16 src / weights (BF16 engines; empty otherwise).
  const std::vector<std::string>& bf16_steps() const { return bf16_steps_; }
  const std::vector<std::string>& int8_steps() const { return int8_steps_; }
  std::vector<StepInfo> steps() const;
  // A multi-line report: passes and their rewrite counts, kernels per step, the memory plan.
  std::string Summary() const;

 private:
  struct Step {
    const ir::Node* node = nullptr;
    const CpuOpDef* def = nullptr;    // internal op (kernel set) or nullptr (reference kernel)
    std::unique_ptr<Kernel> kernel;
    std::vector<ir::ValueId> release;  // values last read by this step
  };
  class Lease;

  // BF16 engines: which oneDNN steps got bf16 primitives for the prepared shapes; sets the
  // precision (FP32 when none did) and the note naming the steps that run f32.
  void SettleBf16(const std::string& device);
  // Sets the precision to INT8 when some step runs int8 primitives (the cpu-int8 pass found
  // quantized operands), with a note naming how many steps stay in floating point.
  void SettleInt8(Precision requested, const CpuFeatures& cpu);
  std::unique_ptr<ExecContext> NewContext() const;
  // kInvalidArgument unless the inputs have the segment's dtypes, live on the host and are
  // covered by the profile.
  void CheckInputs(std::span<const Tensor> inputs) const;
  Tensor OutputTensor(ir::ValueId value, DType dtype, Shape shape, ExecContext& ctx) const;

  std::shared_ptr<const ir::Graph> graph_;
  Profile profile_;
  int num_threads_ = 0;
  PrecisionChoice precision_;
  std::vector<std::string> bf16_steps_;
  std::vector<std::string> int8_steps_;
  std::vector<PassStat> pass_stats_;
  uint64_t segment_hash_ = 0;
  std::shared_ptr<KernelEnv> env_;
  std::vector<std::pair<ir::ValueId, Tensor>> constants_;
  std::vector<Step> steps_;
  std::vector<int> slot_;  // per value: arena request index or -1
  std::vector<int> output_index_;  // per value: its first position among the graph outputs, or -1
  std::vector<BufferRequest> requests_;
  ArenaPlan arena_;
  size_t max_scratch_ = 0;

  // OutputShapes specialises the graph's shapes; the result is kept per input shapes.
  mutable std::mutex shapes_mu_;
  // nullopt: some output's shape only the run determines.
  mutable std::map<std::vector<Shape>, std::optional<std::vector<Shape>>> output_shapes_;

  mutable std::mutex pool_mu_;
  mutable std::vector<std::unique_ptr<ExecContext>> pool_;
  mutable std::atomic<size_t> contexts_created_{0};
  mutable std::atomic<int64_t> spilled_{0};
};

}  // namespace kiln::backend::cpu
