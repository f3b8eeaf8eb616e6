#pragma once

#include <memory>
#include <string>

#include "convert/converted_model.h"
#include "kiln/model.h"
#include "runtime/converted_graph.h"

namespace kiln::api {

// A signature that runs a converted graph (`graph` is what `runner` runs; both stay shared with
// whoever else holds them, such as the Converter that made them).
std::unique_ptr<Signature> MakeConvertedSignature(std::string key, std::shared_ptr<ir::Graph> graph,
                                                  std::shared_ptr<runtime::ConvertedGraph> runner);
// Runs the engine node `engine` of a converted signature alone on host `inputs` (its segment's
// inputs in order), through its engine cache (kiln_run_engine, TensorFlow's KilnEngineOp).
// kInvalidArgument when `signature` is not a converted model's.
std::vector<Tensor> RunConvertedEngine(const Signature& signature, const std::string& engine, std::vector<Tensor> inputs);
// A converted SavedModel directory (convert::ReadConvertedModel) or a .kiln file
// (convert::ReadKilnFile, chosen when convert::IsKilnFile(path)), read into the same struct.
convert::ConvertedModel ReadConvertedModelOrKilnFile(const std::string& path);
// Loads a converted model from its parts; `source` (directory or .kiln path) names it in messages
// and is Model::dir(). Both on-disk forms load through here.
std::unique_ptr<Model> LoadConvertedModel(convert::ConvertedModel model, const std::string& source, const LoadOptions& options);
// Loads a SavedModel written by Converter::save (see convert/converted_model.h) or a .kiln file
// written by Converter::save_kiln_file (see convert/kiln_file.h).
std::unique_ptr<Model> LoadConvertedModel(const std::string& dir, const LoadOptions& options);
// The converter's summary of a converted SavedModel or .kiln file (engines as loaded from its engine files).
std::string ConvertedModelSummary(const std::string& dir, const LoadOptions& options, int line_length, bool detailed);

}  // namespace kiln::api
