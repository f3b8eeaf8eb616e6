// kiln._kiln: Kiln's C++ API (include/kiln) for Python. The package around it (python/kiln) gives
// it TensorFlow's and TF-TRT's shape; this layer stays thin: tensors cross without copies
// (tensors.h), long calls release the GIL, and a kiln::Error becomes the Python exception of its
// code (the classes of kiln.errors).
#include <algorithm>
#include <chrono>

#include <fmt/format.h>
#include <nanobind/nanobind.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include "kiln/converter.h"
#include "kiln/custom_op.h"
#include "kiln/model.h"
#include "kiln/version.h"
#include "python/src/callbacks.h"
#include "python/src/tensors.h"

namespace kiln::python {
namespace {

// The class of kiln.errors that a kiln::Error of `code` raises.
const char* ExceptionClassName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "InvalidArgumentError";
    case ErrorCode::kNotFound:
      return "NotFoundError";
    case ErrorCode::kDataLoss:
      return "DataLossError";
    case ErrorCode::kUnimplemented:
      return "UnimplementedError";
    case ErrorCode::kFailedPrecondition:
      return "FailedPreconditionError";
    case ErrorCode::kResourceExhausted:
      return "ResourceExhaustedError";
    case ErrorCode::kUnavailable:
      return "UnavailableError";
    case ErrorCode::kInternal:
      return "InternalError";
    case ErrorCode::kCancelled:
      return "CancelledError";
  }
  return "KilnError";
}

void TranslateKilnError(const std::exception_ptr& p, void*) {
  try {
    std::rethrow_exception(p);
  } catch (const Error& e) {
    nb::object cls = nb::module_::import_("kiln.errors").attr(ExceptionClassName(e.code()));
    PyErr_SetString(cls.ptr(), e.what());
  }
}

nb::tuple SpecTuple(const TensorSpec& s) {
  return nb::make_tuple(s.name, std::string(DTypeName(s.dtype)), s.rank_known, s.dims, s.index_limit);
}

nb::list Specs(const std::vector<TensorSpec>& specs) {
  nb::list out;
  for (const TensorSpec& s : specs) out.append(SpecTuple(s));
  return out;
}

// Signature::Run on the inputs the Python layer prepared (name -> array or string tuple).
nb::dict RunSignature(const Signature& signature, nb::dict inputs) {
  std::map<std::string, Tensor> tensors;
  std::vector<std::pair<const char*, const char*>> input_ranges;
  for (auto [key, value] : inputs) {
    std::string name = nb::cast<std::string>(key);
    Tensor t = TensorFromObject(value, name);
    if (t.dtype() != DType::kString && t.is_host() && t.byte_size() > 0) {
      const char* begin = static_cast<const char*>(t.raw_data());
      input_ranges.emplace_back(begin, begin + t.byte_size());
    }
    tensors.emplace(std::move(name), std::move(t));
  }
  // Inputs on the signature's GPU give outputs there (DLPack tensors), as a framework's GPU call
  // does; host inputs give host outputs.
  RunOptions options;
  const Device device = signature.input_device();
  for (const auto& [name, t] : tensors) options.outputs_on_device = options.outputs_on_device || (device.kind != DeviceKind::kCpu && t.device() == device);
  std::map<std::string, Tensor> outputs;
  {
    nb::gil_scoped_release release;
    outputs = signature.Run(tensors, options);
    tensors.clear();
  }
  // An output that is an input (an identity signature) or another output's memory is copied, so
  // that every array returned owns its memory as TensorFlow's results do.
  nb::dict result;
  std::vector<const void*> seen;
  for (auto& [name, tensor] : outputs) {
    if (tensor.dtype() != DType::kString && tensor.is_host() && tensor.byte_size() > 0) {
      const char* begin = static_cast<const char*>(tensor.raw_data());
      bool aliased = std::find(seen.begin(), seen.end(), begin) != seen.end();
      for (const auto& [lo, hi] : input_ranges) aliased = aliased || (begin < hi && lo < begin + tensor.byte_size());
      if (aliased) tensor = tensor.Clone();
      seen.push_back(tensor.raw_data());
    }
    result[nb::str(name.c_str())] = ObjectFromTensor(tensor);
  }
  return result;
}

// Runs `call` with the GIL released, then raises what a Python callback raised during it (the
// callback's exception, not the kiln::Error that stopped the C++ code).
template <typename F>
auto WithCallbacks(CallbackErrors& errors, F&& call) {
  try {
    nb::gil_scoped_release release;
    return call();
  } catch (...) {
    errors.RaiseIfAny();
    throw;
  }
}

// Converter calls made from Python: callbacks are borrowed for the duration of each call.
struct PyConverter {
  std::unique_ptr<Converter> converter;
  nb::object log;  // None or a callable(line)
  CallbackErrors errors;

  PyConverter(const std::string& dir, const std::vector<std::string>& tags, const std::string& key,
              ConversionParams params, nb::object log_callable)
      : log(std::move(log_callable)) {
    params.log = LogCallback(log, errors);
    converter = std::make_unique<Converter>(dir, tags, key, std::move(params));
  }
  void Convert(nb::object next_inputs) {
    InputFn fn = next_inputs.is_none() ? InputFn() : InputCallback(next_inputs, errors);
    WithCallbacks(errors, [&] { converter->convert(fn); });
    errors.RaiseIfAny();
  }
  void Build(nb::object next_inputs) {
    InputFn fn = InputCallback(next_inputs, errors);
    WithCallbacks(errors, [&] { converter->build(fn); });
    errors.RaiseIfAny();
  }
  void BuildProfiles(const std::vector<std::map<std::string, std::vector<Shape>>>& profiles) {
    std::vector<InputShapeProfile> explicit_profiles;
    for (const auto& p : profiles) {
      InputShapeProfile profile;
      for (const auto& [name, shapes] : p) {
        if (shapes.size() != 3)
          throw Error(
              ErrorCode::kInvalidArgument,
              fmt::format("build_profiles: input '{}' needs (min, opt, max) shapes, got {}", name, shapes.size()));
        profile[name] = ShapeRange{shapes[0], shapes[1], shapes[2]};
      }
      explicit_profiles.push_back(std::move(profile));
    }
    WithCallbacks(errors, [&] { converter->build_profiles(explicit_profiles); });
    errors.RaiseIfAny();
  }
  void Save(const std::string& dir, bool engines) {
    WithCallbacks(errors, [&] { converter->save(dir, engines); });
    errors.RaiseIfAny();
  }
  void SaveKilnFile(const std::string& path, bool engines) {
    WithCallbacks(errors, [&] { converter->save_kiln_file(path, engines); });
    errors.RaiseIfAny();
  }
};

std::unique_ptr<Model> Load(const std::string& path, const std::vector<std::string>& tags, bool verify_ir,
                            bool cuda_graphs) {
  LoadOptions options;
  if (!tags.empty()) options.tags = tags;
  options.verify_ir = verify_ir;
  options.cuda_graphs = cuda_graphs;
  nb::gil_scoped_release release;
  return LoadModel(path, options);
}

}  // namespace
}  // namespace kiln::python

NB_MODULE(_kiln, m) {
  using namespace kiln;
  using namespace kiln::python;
  m.doc() = "Kiln's C++ API; use the kiln package, not this module";
  m.attr("__version__") = KILN_VERSION;
  nb::register_exception_translator(&TranslateKilnError);
  // Models and converters alive when the interpreter exits are not leaks worth a warning.
  nb::set_leak_warnings(false);

  nb::class_<Signature>(m, "Signature")
      .def_prop_ro("key", &Signature::key)
      .def_prop_ro("inputs", [](const Signature& s) { return Specs(s.inputs()); })
      .def_prop_ro("outputs", [](const Signature& s) { return Specs(s.outputs()); })
      .def_prop_ro("num_nodes", &Signature::num_nodes)
      .def_prop_ro("input_device", [](const Signature& s) { return s.input_device().ToString(); })
      .def("stats",
           [](const Signature& s) {
             RunStats r = s.stats();
             nb::dict d;
             d["engines_built"] = r.engines_built;
             d["engines_loaded"] = r.engines_loaded;
             d["engine_runs"] = r.engine_runs;
             d["native_runs"] = r.native_runs;
             return d;
           })
      .def("run", &RunSignature, nb::arg("inputs"));

  nb::class_<Model>(m, "Model")
      .def_prop_ro("dir", &Model::dir)
      .def("signature_keys", &Model::signature_keys)
      .def(
          "signature",
          [](const Model& model, const std::string& key) -> const Signature& {
            nb::gil_scoped_release release;  // the first use imports the signature
            return model.signature(key);
          },
          nb::arg("key"), nb::rv_policy::reference_internal);

  m.def("load", &Load, nb::arg("path"), nb::arg("tags"), nb::arg("verify_ir") = true, nb::arg("cuda_graphs") = true);

  nb::class_<ConversionParams>(m, "ConversionParams")
      .def(nb::init<>())
      .def_rw("precision_mode", &ConversionParams::precision_mode)
      .def_rw("max_workspace_size_bytes", &ConversionParams::max_workspace_size_bytes)
      .def_rw("minimum_segment_size", &ConversionParams::minimum_segment_size)
      .def_rw("maximum_cached_engines", &ConversionParams::maximum_cached_engines)
      .def_rw("use_calibration", &ConversionParams::use_calibration)
      .def_rw("allow_build_at_runtime", &ConversionParams::allow_build_at_runtime)
      .def_rw("use_dynamic_shape", &ConversionParams::use_dynamic_shape)
      .def_rw("dynamic_shape_profile_strategy", &ConversionParams::dynamic_shape_profile_strategy)
      .def_rw("is_dynamic_op", &ConversionParams::is_dynamic_op)
      .def_rw("max_batch_size", &ConversionParams::max_batch_size)
      .def_rw("denylist", &ConversionParams::denylist)
      .def_rw("device", &ConversionParams::device)
      .def_rw("calibrator", &ConversionParams::calibrator)
      .def_rw("calibration_percentile", &ConversionParams::calibration_percentile)
      .def_rw("calibration_table", &ConversionParams::calibration_table)
      .def_rw("keep_precision", &ConversionParams::keep_precision)
      .def("validate", &ConversionParams::Validate);

  nb::class_<PyConverter>(m, "Converter")
      .def(nb::init<const std::string&, const std::vector<std::string>&, const std::string&, ConversionParams,
                    nb::object>(),
           nb::arg("input_saved_model_dir"), nb::arg("tags"), nb::arg("signature_key"), nb::arg("params"),
           nb::arg("log").none())
      .def("convert", &PyConverter::Convert, nb::arg("next_inputs").none())
      .def("build", &PyConverter::Build, nb::arg("next_inputs"))
      .def("build_profiles", &PyConverter::BuildProfiles, nb::arg("profiles"))
      .def("save", &PyConverter::Save, nb::arg("output_dir"), nb::arg("save_gpu_specific_engines"))
      .def("save_kiln_file", &PyConverter::SaveKilnFile, nb::arg("path"), nb::arg("save_gpu_specific_engines"))
      .def("summary", [](const PyConverter& c, int line_length,
                         bool detailed) { return c.converter->summary(line_length, detailed); })
      .def("non_conversion_report_csv", [](const PyConverter& c) { return c.converter->non_conversion_report_csv(); })
      .def("calibration_table_json", [](const PyConverter& c) { return c.converter->calibration_table_json(); })
      .def(
          "signature", [](const PyConverter& c) -> const Signature& { return c.converter->signature(); },
          nb::rv_policy::reference_internal);

  m.def("_data_address", &DataAddress, nb::arg("array"),
        "The address of the first element Kiln reads from an array passed as an input (for zero-copy tests).");
  m.def(
      "_time_run",
      [](const Signature& signature, nb::dict inputs, int iterations) {
        // The C++ side of bench/python_overhead.py: Signature::Run in a C++ loop on the same inputs
        // a Python call gets, timed per call (seconds).
        std::map<std::string, Tensor> tensors;
        for (auto [key, value] : inputs) {
          std::string name = nb::cast<std::string>(key);
          tensors.emplace(name, TensorFromObject(value, name));
        }
        nb::gil_scoped_release release;
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < iterations; ++i) signature.Run(tensors);
        const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
        return elapsed.count() / std::max(iterations, 1);
      },
      nb::arg("signature"), nb::arg("inputs"), nb::arg("iterations"));
  m.def("load_plugin", &LoadPlugin, nb::arg("path"), nb::call_guard<nb::gil_scoped_release>());
  m.def("custom_op_names", &CustomOpNames);
  m.def("set_max_tensor_bytes", &SetMaxTensorBytes, nb::arg("bytes"));
  m.def("set_max_model_bytes", &SetMaxModelBytes, nb::arg("bytes"));
}
