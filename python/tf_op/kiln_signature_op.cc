// TensorFlow's view of a Kiln-converted SavedModel (convert/tf_wrapper_graph.h): its main op,
// KilnRegisterModel, records where the model is (TensorFlow's loader feeds it the path of the
// model's asset kiln/conversion.json), and KilnSignatureOp runs the converted signature. This op
// library registers both (tf.load_op_library(kiln.tf_op_library()), or `import kiln.tf`).
//
// The op runs the whole converted signature through Kiln's C API (include/kiln/c_api.h). Kiln is
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
  decltype(&kiln_outputs_find) outputs_find = nullptr;
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
    Bind(handle, "kiln_outputs_find", lib.outputs_find, e);
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

// model_id -> the converted model's directory, as the models' main ops registered them.
class ModelRegistry {
 public:
  static ModelRegistry& Get() {
    static ModelRegistry registry;
    return registry;
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
};

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

class KilnSignatureOp : public tf::OpKernel {
 public:
  explicit KilnSignatureOp(tf::OpKernelConstruction* ctx) : tf::OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("model_id", &model_id_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("signature_key", &signature_key_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("input_names", &input_names_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("output_names", &output_names_));
  }
  ~KilnSignatureOp() override {
    if (model_) Kiln().model_free(model_);
  }

  void Compute(tf::OpKernelContext* ctx) override {
    const KilnLibrary& kiln = Kiln();
    OP_REQUIRES(ctx, kiln.error.empty(), tf::errors::Unavailable("KilnSignatureOp: ", kiln.error));
    OP_REQUIRES_OK(ctx, LoadOnce(ctx, kiln));
    const int n = static_cast<int>(input_names_.size());
    OP_REQUIRES(ctx, ctx->num_inputs() == n,
                tf::errors::InvalidArgument("KilnSignatureOp: ", n, " input names for ", ctx->num_inputs(), " inputs"));
    std::vector<KilnInput> inputs(n);
    std::vector<std::vector<int64_t>> dims(n);
    for (int i = 0; i < n; ++i) {
      const tf::Tensor& t = ctx->input(i);
      OP_REQUIRES(ctx, t.dtype() != tf::DT_STRING,
                  tf::errors::Unimplemented("KilnSignatureOp: string input '", input_names_[i], "' is not supported"));
      for (int d = 0; d < t.dims(); ++d) dims[i].push_back(t.dim_size(d));
      inputs[i] = KilnInput{input_names_[i].c_str(), static_cast<int>(t.dtype()), t.dims(), dims[i].data(),
                            t.tensor_data().data()};
    }
    KilnOutputs* outputs = nullptr;
    if (kiln.run(model_, signature_key_.c_str(), inputs.data(), n, &outputs) != 0) {
      ctx->SetStatus(
          tf::errors::Internal("Kiln signature '", signature_key_, "' of ", model_dir_, ": ", kiln.last_error()));
      return;
    }
    std::unique_ptr<KilnOutputs, decltype(kiln.outputs_free)> owned(outputs, kiln.outputs_free);
    for (int j = 0; j < static_cast<int>(output_names_.size()); ++j) {
      const int k = kiln.outputs_find(outputs, output_names_[j].c_str());
      OP_REQUIRES(ctx, k >= 0, tf::errors::Internal("Kiln returned no output '", output_names_[j], "'"));
      OP_REQUIRES(ctx, kiln.output_dtype(outputs, k) == static_cast<int>(ctx->expected_output_dtype(j)),
                  tf::errors::Internal("Kiln output '", output_names_[j], "' has dtype ", kiln.output_dtype(outputs, k),
                                       ", the graph expects ", tf::DataTypeString(ctx->expected_output_dtype(j))));
      tf::TensorShape shape;
      const int64_t* d = kiln.output_dims(outputs, k);
      for (int r = 0; r < kiln.output_rank(outputs, k); ++r) OP_REQUIRES_OK(ctx, shape.AddDimWithStatus(d[r]));
      tf::Tensor* out = nullptr;
      OP_REQUIRES_OK(ctx, ctx->allocate_output(j, shape, &out));
      const size_t bytes = kiln.output_bytes(outputs, k);
      OP_REQUIRES(ctx, bytes == out->tensor_data().size(),
                  tf::errors::Internal("Kiln output '", output_names_[j], "' has ", bytes,
                                       " bytes, TensorFlow's tensor ", out->tensor_data().size()));
      if (bytes > 0) std::memcpy(const_cast<char*>(out->tensor_data().data()), kiln.output_data(outputs, k), bytes);
    }
  }

 private:
  // The model is the directory the main op registered under model_id; loaded at the first run.
  tf::Status LoadOnce(tf::OpKernelContext* ctx, const KilnLibrary& kiln) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (model_) return tf::OkStatus();
    if (!ModelRegistry::Get().Find(model_id_, model_dir_))
      return tf::errors::FailedPrecondition("KilnSignatureOp: model ", model_id_,
                                            " was not registered: its SavedModel's main op (KilnRegisterModel) has not "
                                            "run; load the model with tf.saved_model.load or TF Serving");
    model_ = kiln.model_load(model_dir_.c_str(), nullptr);
    if (!model_)
      return tf::errors::FailedPrecondition("Kiln cannot load the converted model ", model_dir_, ": ",
                                            kiln.last_error());
    return tf::OkStatus();
  }

  std::string model_id_, signature_key_;
  std::vector<std::string> input_names_, output_names_;
  std::mutex mutex_;
  KilnModel* model_ = nullptr;
  std::string model_dir_;
};

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
    .SetShapeFn([](tf::shape_inference::InferenceContext* c) {
      std::vector<tf::PartialTensorShape> shapes;
      TF_RETURN_IF_ERROR(c->GetAttr("output_shapes", &shapes));
      for (size_t i = 0; i < shapes.size(); ++i) {
        tf::shape_inference::ShapeHandle h;
        TF_RETURN_IF_ERROR(c->MakeShapeFromPartialTensorShape(shapes[i], &h));
        c->set_output(static_cast<int>(i), h);
      }
      return tf::OkStatus();
    });

REGISTER_KERNEL_BUILDER(Name("KilnSignatureOp").Device(tf::DEVICE_CPU), KilnSignatureOp);
