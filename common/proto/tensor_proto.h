// Decoding TensorFlow's TensorProto into a Tensor: tensor_content or the typed repeated field,
// with TensorFlow's fill rule (a shorter field repeats its last value). Shared by the TF
// frontend (Const values, tensor attrs) and the converted-model codec.
#pragma once

#include <string>

#include "common/proto/tf.pb.h"
#include "kiln/tensor.h"

namespace kiln::tfproto {

// kInvalidArgument / kDataLoss naming `what` for a malformed proto.
Tensor DecodeTensorProto(const TensorProto& proto, const std::string& what);

// A host tensor as a TensorProto (tensor_content, or string_val for strings), for Const nodes
// of graphs TensorFlow loads. kInvalidArgument naming `what` for a resource, variant or device tensor.
TensorProto EncodeTensorProto(const Tensor& tensor, const std::string& what);

}  // namespace kiln::tfproto
