// Checking and ordering the inputs a caller passes to a signature.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/model.h"

namespace kiln::api {

std::vector<TensorSpec> SpecsOf(const ir::Graph& graph, const std::vector<ir::ValueId>& values,
                                const std::vector<std::string>& names);

// Returns the inputs in `specs` order. kInvalidArgument naming the input for an unknown or
// missing name, a wrong dtype, rank or static dimension, or a tensor neither on the host nor on
// `device` (the engines' device of a converted signature).
std::vector<Tensor> BindInputs(const std::string& signature_key, const std::vector<TensorSpec>& specs,
                               const std::map<std::string, Tensor>& inputs, Device device = {});

// Outputs in `specs` order, keyed by the specs' names.
std::map<std::string, Tensor> NameOutputs(const std::vector<TensorSpec>& specs, std::vector<Tensor> outputs);

}  // namespace kiln::api
