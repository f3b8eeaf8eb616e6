#include "ir/ops/elementwise_ops.h"

#include <vector>

#include "common/name_registry.h"

namespace kiln::ir::elementwise {
namespace {

const std::vector<OpInfo>& Infos() {
  static const std::vector<OpInfo> infos = [] {
    std::vector<OpInfo> all(UnaryOps::kInfos.begin(), UnaryOps::kInfos.end());
    all.insert(all.end(), BinaryOps::kInfos.begin(), BinaryOps::kInfos.end());
    all.insert(all.end(), SpecialUnaryOps::kInfos.begin(), SpecialUnaryOps::kInfos.end());
    all.insert(all.end(), SpecialBinaryOps::kInfos.begin(), SpecialBinaryOps::kInfos.end());
    return all;
  }();
  return infos;
}

const NameRegistry<const OpInfo*>& ByName() {
  static const NameRegistry<const OpInfo*> registry = [] {
    NameRegistry<const OpInfo*> r("elementwise op");
    for (const OpInfo& info : Infos()) r.Add(info.name, &info);
    return r;
  }();
  return registry;
}

}  // namespace

std::span<const OpInfo> AllOps() { return Infos(); }

const OpInfo* FindOp(std::string_view name) {
  const OpInfo* const* info = ByName().Find(name);
  return info ? *info : nullptr;
}

double ParamOf(const OpInfo& op, const AttrMap& attrs) {
  return op.param ? attrs.GetOr<double>(op.param, op.param_default) : 0.0;
}

}  // namespace kiln::ir::elementwise
