// The C API (include/kiln/c_api.h) over the C++ API: errors become codes plus a thread-local
// message, inputs are wrapped without copies, outputs stay Kiln tensors until freed.
#include "kiln/c_api.h"

#include <fmt/format.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/device.h"
#include "kiln/model.h"
#include "kiln/version.h"
#include "api/converted_model_loader.h"

struct KilnModel {
  std::unique_ptr<kiln::Model> model;
};

struct KilnOutputs {
  std::vector<std::string> names;
  std::vector<kiln::Tensor> tensors;
};

namespace {

thread_local std::string last_error;

// Host memory the caller owns; never freed by Kiln.
class CallerBuffer final : public kiln::Buffer {
 public:
  CallerBuffer(const void* data, size_t size) : data_(const_cast<void*>(data)), size_(size) {}
  void* data() override { return data_; }
  size_t size() const override { return size_; }
  kiln::Device device() const override { return {}; }

 private:
  void* data_;
  size_t size_;
};

template <typename F>
int Guard(F&& body) {
  try {
    body();
    last_error.clear();
    return 0;
  } catch (const kiln::Error& e) {
    last_error = e.what();
    return 1 + static_cast<int>(e.code());
  } catch (const std::exception& e) {
    last_error = e.what();
    return 1 + static_cast<int>(kiln::ErrorCode::kInternal);
  }
}

// A view of the caller's input memory, checked.
kiln::Tensor WrapInput(const char* call, const KilnInput& in, int i) {
  const std::string what = in.name ? fmt::format("'{}'", in.name) : std::to_string(i);
  if (in.rank < 0 || (in.rank > 0 && !in.dims))
    throw kiln::Error(kiln::ErrorCode::kInvalidArgument, fmt::format("{}: input {} has no dims", call, what));
  const kiln::DType dtype = kiln::DTypeFromTf(in.dtype);
  if (dtype == kiln::DType::kInvalid || dtype == kiln::DType::kString || kiln::DTypeSize(dtype) == 0)
    throw kiln::Error(kiln::ErrorCode::kInvalidArgument,
                      fmt::format("{}: input {} has dtype {}, which the C API does not pass", call, what, in.dtype));
  kiln::Shape shape(in.dims, in.dims + in.rank);
  for (int64_t d : shape)
    if (d < 0)
      throw kiln::Error(kiln::ErrorCode::kInvalidArgument, fmt::format("{}: input {} has a negative dim", call, what));
  const size_t bytes = static_cast<size_t>(kiln::NumElements(shape)) * kiln::DTypeSize(dtype);
  if (bytes > 0 && !in.data)
    throw kiln::Error(kiln::ErrorCode::kInvalidArgument, fmt::format("{}: input {} has no data", call, what));
  return kiln::Tensor(dtype, std::move(shape), std::make_shared<CallerBuffer>(in.data, bytes));
}

// Outputs outlive the inputs: one that views an input's memory (an identity) is copied.
kiln::Tensor Unaliased(const kiln::Tensor& tensor, const std::vector<kiln::Tensor>& inputs) {
  const char* begin = static_cast<const char*>(tensor.raw_data());
  for (const kiln::Tensor& input : inputs) {
    const char* lo = static_cast<const char*>(input.raw_data());
    if (tensor.byte_size() > 0 && begin < lo + input.byte_size() && lo < begin + tensor.byte_size())
      return tensor.Clone();
  }
  return tensor;
}

bool Valid(const KilnOutputs* o, int i) { return o && i >= 0 && static_cast<size_t>(i) < o->tensors.size(); }

}  // namespace

extern "C" {

const char* kiln_last_error(void) { return last_error.c_str(); }
const char* kiln_version(void) { return KILN_VERSION; }

KilnModel* kiln_model_load(const char* path, const char* tags) {
  KilnModel* result = nullptr;
  Guard([&] {
    if (!path) throw kiln::Error(kiln::ErrorCode::kInvalidArgument, "kiln_model_load: path is NULL");
    kiln::LoadOptions options;
    if (tags && *tags) {
      options.tags.clear();
      std::string all(tags);
      for (size_t start = 0;;) {
        const size_t comma = all.find(',', start);
        options.tags.push_back(all.substr(start, comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    }
    result = new KilnModel{kiln::LoadModel(path, options)};
  });
  return result;
}

void kiln_model_free(KilnModel* model) { delete model; }

int kiln_run(const KilnModel* model, const char* key, const KilnInput* inputs, int num_inputs, KilnOutputs** outputs) {
  return Guard([&] {
    if (!model || !outputs || (num_inputs > 0 && !inputs) || num_inputs < 0)
      throw kiln::Error(kiln::ErrorCode::kInvalidArgument, "kiln_run: a NULL model, inputs or outputs pointer");
    const kiln::Signature& signature = model->model->signature(key ? key : "serving_default");
    std::map<std::string, kiln::Tensor> named;
    for (int i = 0; i < num_inputs; ++i) {
      if (!inputs[i].name)
        throw kiln::Error(kiln::ErrorCode::kInvalidArgument, fmt::format("kiln_run: input {} has no name", i));
      named[inputs[i].name] = WrapInput("kiln_run", inputs[i], i);
    }
    std::map<std::string, kiln::Tensor> results = signature.Run(named);
    auto out = std::make_unique<KilnOutputs>();
    for (auto& [name, tensor] : results) {
      if (tensor.dtype() == kiln::DType::kString)
        throw kiln::Error(kiln::ErrorCode::kUnimplemented,
                          fmt::format("kiln_run: output '{}' is a string tensor, which the C API does not pass", name));
      out->names.push_back(name);
      if (!tensor.is_host()) {
        out->tensors.push_back(kiln::CopyTensorTo(tensor, kiln::Device{}));
        continue;
      }
      // An output that is an input's memory (an identity signature) is copied: outputs outlive inputs.
      const char* begin = static_cast<const char*>(tensor.raw_data());
      bool aliased = false;
      for (const auto& [input_name, input] : named) {
        const char* lo = static_cast<const char*>(input.raw_data());
        aliased =
            aliased || (tensor.byte_size() > 0 && begin < lo + input.byte_size() && lo < begin + tensor.byte_size());
      }
      out->tensors.push_back(aliased ? tensor.Clone() : tensor);
    }
    *outputs = out.release();
  });
}

int kiln_run_engine(const KilnModel* model, const char* key, const char* engine, const KilnInput* inputs,
                    int num_inputs, KilnOutputs** outputs) {
  return Guard([&] {
    if (!model || !engine || !outputs || (num_inputs > 0 && !inputs) || num_inputs < 0)
      throw kiln::Error(kiln::ErrorCode::kInvalidArgument,
                        "kiln_run_engine: a NULL model, engine name, inputs or outputs pointer");
    const kiln::Signature& signature = model->model->signature(key ? key : "serving_default");
    std::vector<kiln::Tensor> wrapped;
    for (int i = 0; i < num_inputs; ++i) wrapped.push_back(WrapInput("kiln_run_engine", inputs[i], i));
    std::vector<kiln::Tensor> results = kiln::api::RunConvertedEngine(signature, engine, wrapped);
    auto out = std::make_unique<KilnOutputs>();
    for (size_t i = 0; i < results.size(); ++i) {
      out->names.push_back(std::to_string(i));
      out->tensors.push_back(Unaliased(results[i], wrapped));
    }
    *outputs = out.release();
  });
}

int kiln_outputs_count(const KilnOutputs* o) { return o ? static_cast<int>(o->tensors.size()) : 0; }
int kiln_outputs_find(const KilnOutputs* o, const char* name) {
  if (!o || !name) return -1;
  for (size_t i = 0; i < o->names.size(); ++i)
    if (o->names[i] == name) return static_cast<int>(i);
  return -1;
}
const char* kiln_output_name(const KilnOutputs* o, int i) { return Valid(o, i) ? o->names[i].c_str() : nullptr; }
int kiln_output_dtype(const KilnOutputs* o, int i) { return Valid(o, i) ? static_cast<int>(o->tensors[i].dtype()) : 0; }
int kiln_output_rank(const KilnOutputs* o, int i) { return Valid(o, i) ? o->tensors[i].rank() : -1; }
const int64_t* kiln_output_dims(const KilnOutputs* o, int i) {
  return Valid(o, i) ? o->tensors[i].shape().data() : nullptr;
}
const void* kiln_output_data(const KilnOutputs* o, int i) { return Valid(o, i) ? o->tensors[i].raw_data() : nullptr; }
size_t kiln_output_bytes(const KilnOutputs* o, int i) { return Valid(o, i) ? o->tensors[i].byte_size() : 0; }
void kiln_outputs_free(KilnOutputs* o) { delete o; }

}  // extern "C"
