#include "convert/tf_wrapper_graph.h"

#include <fmt/format.h>

#include "convert/tf_segment_graph.h"

namespace kiln::convert {
namespace {

// TensorFlow's GraphDef version this graph is written for (TF 2.x reads producers from 1286 on).
constexpr int kGraphProducer = 1286;
constexpr char kAssetConst[] = "kiln_model_asset";
constexpr char kAssetFile[] = "kiln/conversion.json";
constexpr char kOpNode[] = "kiln_signature";
constexpr char kInitNode[] = "kiln_register_model";


int TfType(const ir::Value& v, const std::string& what) {
  if (v.dtype == DType::kInvalid || v.dtype == DType::kResource || v.dtype == DType::kVariant)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("converted signature {} has dtype {}, which the TensorFlow-loadable graph cannot carry",
                            what, DTypeName(v.dtype)));
  return static_cast<int>(v.dtype);  // DType numbers are TensorFlow's DataType numbers
}

void SetType(tfproto::NodeDef& node, const char* attr, int type) { (*node.mutable_attr())[attr].set_type(type); }

tfproto::TensorInfo Info(const std::string& tensor, int type, const tfproto::TensorShapeProto& shape) {
  tfproto::TensorInfo info;
  info.set_name(tensor);
  info.set_dtype(type);
  *info.mutable_tensor_shape() = shape;
  return info;
}

}  // namespace

tfproto::MetaGraphDef MakeTfLoadableMetaGraph(const std::vector<std::string>& tags, const std::string& signature_key,
                                              const tfproto::SignatureDef& signature, const ir::Graph& graph,
                                              const std::string& model_id, const TfSourceGraph* source) {
  tfproto::MetaGraphDef meta;
  tfproto::MetaInfoDef* info = meta.mutable_meta_info_def();
  info->set_meta_graph_version(kTfLoadableMetaGraphVersion);
  for (const std::string& tag : tags) info->add_tags(tag);
  tfproto::GraphDef* g = meta.mutable_graph_def();
  g->mutable_versions()->set_producer(kGraphProducer);

  tfproto::NodeDef* asset = g->add_node();
  asset->set_name(kAssetConst);
  asset->set_op("Const");
  SetType(*asset, "dtype", static_cast<int>(DType::kString));
  tfproto::TensorProto* value = (*asset->mutable_attr())["value"].mutable_tensor();
  value->set_dtype(static_cast<int>(DType::kString));
  value->mutable_tensor_shape();
  value->add_string_val(kAssetFile);
  tfproto::AssetFileDef* asset_def = meta.add_asset_file_def();
  asset_def->mutable_tensor_info()->set_name(fmt::format("{}:0", kAssetConst));
  asset_def->set_filename(kAssetFile);

  tfproto::NodeDef* init = g->add_node();
  init->set_name(kInitNode);
  init->set_op(kTfRegisterModelOp);
  init->add_input(kAssetConst);
  (*init->mutable_attr())["model_id"].set_s(model_id);
  (*meta.mutable_collection_def())["saved_model_main_op"].mutable_node_list()->add_value(kInitNode);

  tfproto::SignatureDef scratch;  // a model without a signature still gets the op, unnamed
  tfproto::SignatureDef& sig = signature_key.empty() ? scratch : (*meta.mutable_signature_def())[signature_key];
  sig.set_method_name(signature.method_name().empty() ? "tensorflow/serving/predict" : signature.method_name());
  auto record = [&](const std::string& line) {
    (*meta.mutable_collection_def())[kTfLayoutCollection].mutable_bytes_list()->add_value(line);
  };

  // TF-TRT's layout first: the source's own graph with one engine op per engine.
  std::string reason = "the model was not converted from a TensorFlow SavedModel";
  if (source) {
    std::optional<TfSegmentedGraph> segmented = SegmentTfGraph(*source, graph, model_id, signature_key, reason);
    for (const tfproto::NodeDef& n : segmented ? segmented->graph.node() : g->node())
      if (segmented && (n.name() == kAssetConst || n.name() == kInitNode || n.name().rfind("kiln_output_", 0) == 0)) {
        reason = fmt::format("the TensorFlow graph has a node named '{}', which Kiln's layout uses", n.name());
        segmented.reset();
        break;
      }
    // The graph keeps the weights TensorFlow's own ops read (as Const nodes); a SavedModel
    // protobuf must stay under 2 GiB, so the whole-signature op (weights in graph.pb) is left.
    constexpr size_t kMaxGraphBytes = (size_t{1} << 31) - (size_t{64} << 20);
    if (segmented && segmented->graph.ByteSizeLong() > kMaxGraphBytes) {
      reason = fmt::format("the TensorFlow graph with its frozen weights would have {} bytes, more than a SavedModel "
                           "protobuf holds (2 GiB)",
                           segmented->graph.ByteSizeLong());
      segmented.reset();
    }
    if (segmented) {
      for (tfproto::NodeDef& n : *segmented->graph.mutable_node()) *g->add_node() = std::move(n);
      if (segmented->graph.versions().producer() > 0) *g->mutable_versions() = segmented->graph.versions();
      *g->mutable_library() = std::move(*segmented->graph.mutable_library());  // control-flow bodies
      for (size_t i = 0; i < graph.inputs().size(); ++i) {
        const std::string& name = graph.input_names()[i];
        const ir::Value& v = graph.value(graph.inputs()[i]);
        const int type = TfType(v, fmt::format("input '{}'", name));
        (*sig.mutable_inputs())[name] = Info(segmented->inputs[i], type, TfShapeProto(v));
      }
      for (size_t i = 0; i < graph.outputs().size(); ++i) {
        const std::string& name = graph.output_names()[i];
        const ir::Value& v = graph.value(graph.outputs()[i]);
        const int type = TfType(v, fmt::format("output '{}'", name));
        tfproto::NodeDef* id = g->add_node();
        id->set_name(fmt::format("kiln_output_{}", i));
        id->set_op("Identity");
        id->add_input(segmented->outputs[i]);
        SetType(*id, "T", type);
        (*sig.mutable_outputs())[name] = Info(id->name() + ":0", type, TfShapeProto(v));
      }
      record(fmt::format("per-engine: {} KilnEngineOp node(s) in the signature's own TensorFlow graph; TensorFlow "
                         "runs the other nodes",
                         segmented->engines));
      return meta;
    }
  }
  record(fmt::format("whole signature (KilnSignatureOp): {}", reason));

  tfproto::NodeDef* op = g->add_node();
  op->set_name(kOpNode);
  op->set_op(kTfSignatureOp);
  auto& attrs = *op->mutable_attr();
  attrs["signature_key"].set_s(signature_key);
  attrs["model_id"].set_s(model_id);

  for (size_t i = 0; i < graph.inputs().size(); ++i) {
    const std::string& name = graph.input_names()[i];
    const ir::Value& v = graph.value(graph.inputs()[i]);
    const int type = TfType(v, fmt::format("input '{}'", name));
    tfproto::NodeDef* ph = g->add_node();
    ph->set_name(fmt::format("kiln_input_{}", i));
    ph->set_op("Placeholder");
    SetType(*ph, "dtype", type);
    *(*ph->mutable_attr())["shape"].mutable_shape() = TfShapeProto(v);
    op->add_input(ph->name());
    attrs["Tin"].mutable_list()->add_type(type);
    attrs["input_names"].mutable_list()->add_s(name);
    (*sig.mutable_inputs())[name] = Info(ph->name() + ":0", type, TfShapeProto(v));
  }
  for (size_t i = 0; i < graph.outputs().size(); ++i) {
    const std::string& name = graph.output_names()[i];
    const ir::Value& v = graph.value(graph.outputs()[i]);
    const int type = TfType(v, fmt::format("output '{}'", name));
    attrs["Tout"].mutable_list()->add_type(type);
    attrs["output_names"].mutable_list()->add_s(name);
    *attrs["output_shapes"].mutable_list()->add_shape() = TfShapeProto(v);
    tfproto::NodeDef* id = g->add_node();
    id->set_name(fmt::format("kiln_output_{}", i));
    id->set_op("Identity");
    id->add_input(fmt::format("{}:{}", kOpNode, i));
    SetType(*id, "T", type);
    (*sig.mutable_outputs())[name] = Info(id->name() + ":0", type, TfShapeProto(v));
  }
  // Lists that are empty must still be present for TensorFlow's attr checks.
  for (const char* list : {"Tin", "input_names", "Tout", "output_names", "output_shapes"}) attrs[list].mutable_list();
  return meta;
}

std::string TfLayoutLine(const tfproto::MetaGraphDef& meta) {
  auto it = meta.collection_def().find(kTfLayoutCollection);
  if (it == meta.collection_def().end() || it->second.bytes_list().value_size() == 0) return "";
  return it->second.bytes_list().value(0);
}

}  // namespace kiln::convert
