// The oldest default-domain opset from which each ONNX importer is exact. Kiln reads models of
// every opset without ONNX's version converter: an op is imported when the
// model's opset is at least its entry here, since every version of the op from there to the newest
// the importer knows has the semantics the importer implements (later versions only added types,
// optional attributes with the old behaviour as default, or defined what was invalid before, such
// as negative axes). Ops whose meaning changed (attributes that became inputs
// the importer does not read) keep the entry where the importer's semantics start, unless the
// importer reads the opset and handles the older meaning itself (Softmax, Resize); a node older than its
// entry is reported unsupported with that opset.
#pragma once

#include <cstdint>
#include <string_view>

namespace kiln::onnxfe {

inline constexpr int64_t kOldestOpset = 1;

// The op's oldest exact opset; kMinOpset (13) for ops not listed.
int64_t OldestExactOpset(std::string_view op_type);

}  // namespace kiln::onnxfe
