#include "common/custom_ops.h"

#include <fmt/format.h>

#include <map>
#include <mutex>

#include "kiln/error.h"

namespace kiln {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<const CustomOp>> ops;
};

Registry& Ops() {
  static Registry registry;
  return registry;
}

std::string NormalDomain(const std::string& domain) { return domain == "ai.onnx" ? std::string() : domain; }

}  // namespace

std::string TfCustomOpKey(const std::string& op_type) { return "tf:" + op_type; }
std::string OnnxCustomOpKey(const std::string& domain, const std::string& op_type) {
  return fmt::format("onnx:{}:{}", NormalDomain(domain), op_type);
}
std::string CustomOpKey(const CustomOp& op) {
  return op.framework == CustomOp::Framework::kTensorFlow ? TfCustomOpKey(op.op_type)
                                                          : OnnxCustomOpKey(op.domain, op.op_type);
}

void RegisterCustomOp(const CustomOp& op) {
  const std::string key = CustomOpKey(op);
  auto invalid = [&](const std::string& why) {
    throw Error(ErrorCode::kInvalidArgument, fmt::format("custom op {}: {}", key, why));
  };
  if (op.op_type.empty()) invalid("op_type is empty");
  if (!op.infer || !op.compute) invalid("needs both infer and compute");
  if (op.min_inputs < 0 || (op.max_inputs >= 0 && op.max_inputs < op.min_inputs))
    invalid(fmt::format("bad input counts (min {}, max {})", op.min_inputs, op.max_inputs));
  if (op.num_outputs < 1 || op.num_outputs > 1024)
    invalid(fmt::format("num_outputs {} is not in [1, 1024]", op.num_outputs));
  Registry& r = Ops();
  std::lock_guard lock(r.mutex);
  if (!r.ops.emplace(key, std::make_shared<const CustomOp>(op)).second) invalid("is already registered");
}

std::shared_ptr<const CustomOp> FindCustomOp(const std::string& key) {
  Registry& r = Ops();
  std::lock_guard lock(r.mutex);
  auto it = r.ops.find(key);
  return it == r.ops.end() ? nullptr : it->second;
}

std::vector<std::string> CustomOpNames() {
  Registry& r = Ops();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [key, op] : r.ops) names.push_back(key);
  return names;
}

}  // namespace kiln
