// TensorFlow's view of a Kiln-converted SavedModel (convert/tf_wrapper_graph.h): its main op,
// KilnRegisterModel, records where the model is (TensorFlow's loader feeds it the path of the
// model's asset kiln/conversion.json); KilnEngineOp runs one engine of the converted signature
// inside the source's own TensorFlow graph (TF-TRT's layout), and KilnSignatureOp runs the whole
// converted signature where that layout could not be made. This op library registers all three
// (tf.load_op_library(kiln.tf_op_library()), or `import kiln.tf`).
//
// The ops run Kiln through its C API (include/kiln/c_api.h); the ops of one model share one
// loaded model (and so its engine caches). Kiln is
// not linked into this library: libkiln.so, next to it, is opened with RTLD_DEEPBIND, so that
// Kiln's dependencies (its protobuf above all) bind to themselves and never to the copies inside
// TensorFlow's own libraries.
#include <dlfcn.h>
#include <tensorflow/core/framework/common_shape_fns.h>
#include <tensorflow/core/framework/op.h>
#include <tensorflow/core/framework/op_kernel.h>
#include <tensorflow/core/framework/shape_inference.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kiln/c_api.h"

namespace {

namespace tf = tensorflow;

// The functions of libkiln.so this op uses.
struct KilnLibrary {
  decltype(&kiln_last_error) last_error = nullptr;
  decltype(&kiln_model_load) model_load = nullptr;
  decltype(&kiln_model_free) model_free = nullptr;
  decltype(&kiln_run) run = nullptr;
  decltype(&kiln_run_engine) run_engine = nullptr;
  decltype(&kiln_outputs_find) outputs_find = nullptr;
  decltype(&kiln_outputs_count) outputs_count = nullptr;
  decltype(&kiln_output_dtype) output_dtype = nullptr;
  decltype(&kiln_output_rank) output_rank = nullptr;
  decltype(&kiln_output_dims) output_dims = nullptr;
  decltype(&kiln_output_data) output_data = nullptr;
  decltype(&kiln_output_bytes) output_bytes = nullptr;
  decltype(&kiln_outputs_free) outputs_free = nullptr;
  std::string error;  // why the library could not be opened
};

std::string ThisLibraryDir() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&ThisLibraryDir), &info) == 0 || !info.dli_fname) return ".";
  return std::filesystem::path(info.dli_fname).parent_path().string();
}

template <typename F>
bool Bind(void* handle, const char* name, F& f, std::string& error) {
  f = reinterpret_cast<F>(dlsym(handle, name));
  if (!f && error.empty()) error = std::string("libkiln.so has no symbol ") + name;
  return f != nullptr;
}

const KilnLibrary& Kiln() {
  static const KilnLibrary library = [] {
    KilnLibrary lib;
    const std::string path = ThisLibraryDir() + "/libkiln.so";
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!handle) {
      lib.error = std::string("cannot open ") + path + ": " + dlerror();
      return lib;
    }
    std::string& e = lib.error;
    Bind(handle, "kiln_last_error", lib.last_error, e);
    Bind(handle, "kiln_model_load", lib.model_load, e);
    Bind(handle, "kiln_model_free", lib.model_free, e);
    Bind(handle, "kiln_run", lib.run, e);
    Bind(handle, "kiln_run_engine", lib.run_engine, e);
    Bind(handle, "kiln_outputs_find", lib.outputs_find, e);
    Bind(handle, "kiln_outputs_count", lib.outputs_count, e);
    Bind(handle, "kiln_output_dtype", lib.output_dtype, e);
    Bind(handle, "kiln_output_rank", lib.output_rank, e);
    Bind(handle, "kiln_output_dims", lib.output_dims, e);
    Bind(handle, "kiln_output_data", lib.output_data, e);
    Bind(handle, "kiln_output_bytes", lib.output_bytes, e);
    Bind(handle, "kiln_outputs_free", lib.outputs_free, e);
    return lib;
  }();
  return library;
}

// model_id -> the converted model's directory, as the models' main ops registered them, and the
// model loaded from it (once, at the first run of any of its ops).
class ModelRegistry {
 public:
  // The loaded model registered under `id`; `op` names the asking op in messages.
  tf::Status Load(const std::string& op, const std::string& id, std::shared_ptr<KilnModel>& model, std::string& dir) {
    const KilnLibrary& kiln = Kiln();
    if (!kiln.error.empty()) return tf::errors::Unavailable(op, ": ", kiln.error);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = dirs_.find(id);
    if (it == dirs_.end())
      return tf::errors::FailedPrecondition(op, ": model ", id,
                                            " was not registered: its SavedModel's main op (KilnRegisterModel) has not "
                                            "run; load the model with tf.saved_model.load or TF Serving");
    dir = it->second;
    auto& loaded = loaded_[id];
    if (loaded.first != dir || !loaded.second) {
      KilnModel* raw = kiln.model_load(dir.c_str(), nullptr);
      if (!raw) return tf::errors::FailedPrecondition("Kiln cannot load the converted model ", dir, ": ", kiln.last_error());
      loaded = {dir, std::shared_ptr<KilnModel>(raw, kiln.model_free)};
    }
    model = loaded.second;
    return tf::OkStatus();
  }
  static ModelRegistry& Get() {
    // Never destroyed: freeing models at exit could run after libkiln.so's own statics are gone.
    static ModelRegistry* registry = new ModelRegistry;
    return *registry;
  }
  void Set(const std::string& id, const std::string& dir) {
    std::lock_guard<std::mutex> lock(mutex_);
    dirs_[id] = dir;
  }
  bool Find(const std::string& id, std::string& dir) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = dirs_.find(id);
    if (it == dirs_.end()) return false;
    dir = it->second;
    return true;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::string> dirs_;
  std::map<std::string, std::pair<std::string, std::shared_ptr<KilnModel>>> loaded_;  // id -> (dir, model)
};

// Copies Kiln's output `k` into TensorFlow's output `j` (checking dtype and size).
void SetOutput(tf::OpKernelContext* ctx, const KilnLibrary& kiln, KilnOutputs* outputs, int k, int j,
               const std::string& what) {
  OP_REQUIRES(ctx, kiln.output_dtype(outputs, k) == static_cast<int>(ctx->expected_output_dtype(j)),
              tf::errors::Internal("Kiln ", what, " has dtype ", kiln.output_dtype(outputs, k), ", the graph expects ",
                                   tf::DataTypeString(ctx->expected_output_dtype(j))));
  tf::TensorShape shape;
  const int64_t* d = kiln.output_dims(outputs, k);
  for (int r = 0; r < kiln.output_rank(outputs, k); ++r) OP_REQUIRES_OK(ctx, shape.AddDimWithStatus(d[r]));
  tf::Tensor* out = nullptr;
  OP_REQUIRES_OK(ctx, ctx->allocate_output(j, shape, &out));
  const size_t bytes = kiln.output_bytes(outputs, k);
  OP_REQUIRES(ctx, bytes == out->tensor_data().size(),
              tf::errors::Internal("Kiln ", what, " has ", bytes, " bytes, TensorFlow's tensor ", out->tensor_data().size()));
  if (bytes > 0) std::memcpy(const_cast<char*>(out->tensor_data().data()), kiln.output_data(outputs, k), bytes);
}

class KilnRegisterModel : public tf::OpKernel {
 public:
  explicit KilnRegisterModel(tf::OpKernelConstruction* ctx) : tf::OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("model_id", &model_id_));
  }
  void Compute(tf::OpKernelContext* ctx) override {
    const tf::Tensor& asset = ctx->input(0);
    OP_REQUIRES(ctx, asset.dtype() == tf::DT_STRING && asset.NumElements() == 1,
                tf::errors::InvalidArgument("KilnRegisterModel: the input must be the asset path (a string scalar)"));
    // The asset is DIR/assets/kiln/conversion.json.
    // A loader given a relative directory passes a relative path: relative to the working directory now.
    std::error_code ec;
    const std::filesystem::path path = std::filesystem::absolute(std::string(asset.flat<tf::tstring>()(0)), ec);
    OP_REQUIRES(ctx, !ec, tf::errors::InvalidArgument("KilnRegisterModel: bad asset path: ", ec.message()));
    OP_REQUIRES(ctx, path.filename() == "conversion.json",
                tf::errors::FailedPrecondition(
                    "KilnRegisterModel: '", path.string(),
                    "' is not the model's asset kiln/conversion.json: load the model with a "
                    "SavedModel loader (tf.saved_model.load, TF Serving), which resolves its assets"));
    ModelRegistry::Get().Set(model_id_, path.parent_path().parent_path().parent_path().string());
  }

 private:
  std::string model_id_;
};

// The converted model an op runs: the directory the main op registered under model_id, loaded at
// the op's first run.
class LazyModel {
 public:
  tf::Status Load(const std::string& op, const std::string& model_id) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (model_) return tf::OkStatus();
    return ModelRegistry::Get().Load(op, model_id, model_, dir_);
  }
  KilnModel* get() const { return model_.get(); }
  const std::string& dir() const { return dir_; }

 private:
  std::mutex mutex_;
  std::shared_ptr<KilnModel> model_;
  std::string dir_;
};

// The op's inputs as Kiln inputs over TensorFlow's buffers (read in place); `names` may be empty
// (an engine's inputs are positional); `dims` holds the shapes the inputs point to.
void WrapInputs(tf::OpKernelContext* ctx, const std::vector<std::string>& names, std::vector<KilnInput>& inputs,
                std::vector<std::vector<int64_t>>& dims) {
  const int n = ctx->num_inputs();
  inputs.resize(n);
  dims.assign(n, {});
  for (int i = 0; i < n; ++i) {
    const tf::Tensor& t = ctx->input(i);
    for (int d = 0; d < t.dims(); ++d) dims[i].push_back(t.dim_size(d));
    inputs[i] = KilnInput{names.empty() ? nullptr : names[i].c_str(), static_cast<int>(t.dtype()), t.dims(),
                          dims[i].data(), t.tensor_data().data()};
  }
}

class KilnSignatureOp : public tf::OpKernel {
 public:
  explicit KilnSignatureOp(tf::OpKernelConstruction* ctx) : tf::OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("model_id", &model_id_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("signature_key", &signature_key_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("input_names", &input_names_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("output_names", &output_names_));
  }
  void Compute(tf::OpKernelContext* ctx) override {
    const KilnLibrary& kiln = Kiln();
    OP_REQUIRES_OK(ctx, model_.Load("KilnSignatureOp", model_id_));
    const int n = static_cast<int>(input_names_.size());
    OP_REQUIRES(ctx, ctx->num_inputs() == n,
                tf::errors::InvalidArgument("KilnSignatureOp: ", n, " input names for ", ctx->num_inputs(), " inputs"));
    for (int i = 0; i < n; ++i)
      OP_REQUIRES(ctx, ctx->input(i).dtype() != tf::DT_STRING,
                  tf::errors::Unimplemented("KilnSignatureOp: string input '", input_names_[i], "' is not supported"));
    std::vector<KilnInput> inputs;
    std::vector<std::vector<int64_t>> dims;
    WrapInputs(ctx, input_names_, inputs, dims);
    KilnOutputs* outputs = nullptr;
    if (kiln.run(model_.get(), signature_key_.c_str(), inputs.data(), n, &outputs) != 0) {
      ctx->SetStatus(
          tf::errors::Internal("Kiln signature '", signature_key_, "' of ", model_.dir(), ": ", kiln.last_error()));
      return;
    }
    std::unique_ptr<KilnOutputs, decltype(kiln.outputs_free)> owned(outputs, kiln.outputs_free);
    for (int j = 0; j < static_cast<int>(output_names_.size()); ++j) {
      const int k = kiln.outputs_find(outputs, output_names_[j].c_str());
      OP_REQUIRES(ctx, k >= 0, tf::errors::Internal("Kiln returned no output '", output_names_[j], "'"));
      SetOutput(ctx, kiln, outputs, k, j, "output '" + output_names_[j] + "'");
      if (!ctx->status().ok()) return;
    }
  }

 private:
  std::string model_id_, signature_key_;
  std::vector<std::string> input_names_, output_names_;
  LazyModel model_;
};

// One engine of the converted signature, in the source's TensorFlow graph: its inputs are the
// tensors the engine's segment reads, its outputs the tensors it computes.
class KilnEngineOp : public tf::OpKernel {
 public:
  explicit KilnEngineOp(tf::OpKernelConstruction* ctx) : tf::OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("model_id", &model_id_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("signature_key", &signature_key_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("engine_name", &engine_name_));
  }

  void Compute(tf::OpKernelContext* ctx) override {
    const KilnLibrary& kiln = Kiln();
    OP_REQUIRES_OK(ctx, model_.Load("KilnEngineOp " + engine_name_, model_id_));
    const int n = ctx->num_inputs();
    std::vector<KilnInput> inputs;
    std::vector<std::vector<int64_t>> dims;
    WrapInputs(ctx, {}, inputs, dims);
    KilnOutputs* outputs = nullptr;
    if (kiln.run_engine(model_.get(), signature_key_.c_str(), engine_name_.c_str(), inputs.data(), n, &outputs) != 0) {
      ctx->SetStatus(tf::errors::Internal("Kiln engine '", engine_name_, "' of ", model_.dir(), ": ", kiln.last_error()));
      return;
    }
    std::unique_ptr<KilnOutputs, decltype(kiln.outputs_free)> owned(outputs, kiln.outputs_free);
    OP_REQUIRES(ctx, kiln.outputs_count(outputs) == ctx->num_outputs(),
                tf::errors::Internal("Kiln engine '", engine_name_, "' returned ", kiln.outputs_count(outputs),
                                     " outputs; the graph expects ", ctx->num_outputs()));
    for (int j = 0; j < ctx->num_outputs(); ++j) {
      SetOutput(ctx, kiln, outputs, j, j, "engine '" + engine_name_ + "' output " + std::to_string(j));
      if (!ctx->status().ok()) return;
    }
  }

 private:
  std::string model_id_, signature_key_, engine_name_;
  LazyModel model_;
};

// Both ops declare their outputs' shapes (Kiln's inferred ones, -1 where unknown) in `output_shapes`.
tf::Status OutputShapesFromAttr(tf::shape_inference::InferenceContext* c) {
  std::vector<tf::PartialTensorShape> shapes;
  TF_RETURN_IF_ERROR(c->GetAttr("output_shapes", &shapes));
  for (size_t i = 0; i < shapes.size(); ++i) {
    tf::shape_inference::ShapeHandle h;
    TF_RETURN_IF_ERROR(c->MakeShapeFromPartialTensorShape(shapes[i], &h));
    c->set_output(static_cast<int>(i), h);
  }
  return tf::OkStatus();
}

}  // namespace

REGISTER_OP("KilnRegisterModel")
    .Input("model_asset: string")
    .Attr("model_id: string")
    .SetIsStateful()
    .SetShapeFn(tf::shape_inference::NoOutputs);

REGISTER_KERNEL_BUILDER(Name("KilnRegisterModel").Device(tf::DEVICE_CPU), KilnRegisterModel);

REGISTER_OP("KilnSignatureOp")
    .Input("inputs: Tin")
    .Output("outputs: Tout")
    .Attr("Tin: list(type) >= 0")
    .Attr("Tout: list(type) >= 0")
    .Attr("model_id: string")
    .Attr("signature_key: string")
    .Attr("input_names: list(string) >= 0")
    .Attr("output_names: list(string) >= 0")
    .Attr("output_shapes: list(shape) >= 0")
    .SetIsStateful()  // runs engines with their own state; never constant-folded or deduplicated
    .SetShapeFn(OutputShapesFromAttr);

REGISTER_KERNEL_BUILDER(Name("KilnSignatureOp").Device(tf::DEVICE_CPU), KilnSignatureOp);

REGISTER_OP("KilnEngineOp")
    .Input("inputs: Tin")
    .Output("outputs: Tout")
    .Attr("Tin: list(type) >= 0")
    .Attr("Tout: list(type) >= 0")
    .Attr("model_id: string")
    .Attr("signature_key: string")
    .Attr("engine_name: string")
    .Attr("output_shapes: list(shape) >= 0")
    .SetIsStateful()  // runs engines with their own state (caches); never constant-folded or deduplicated
    .SetShapeFn(OutputShapesFromAttr);

REGISTER_KERNEL_BUILDER(Name("KilnEngineOp").Device(tf::DEVICE_CPU), KilnEngineOp);
