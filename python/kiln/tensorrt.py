"""A drop-in for TF-TRT's Python API (``tensorflow.python.compiler.tensorrt.trt_convert``).

A TF-TRT script runs on Kiln by changing its import line::

    # from tensorflow.python.compiler.tensorrt import trt_convert as trt
    from kiln.tensorrt import trt_convert as trt      # or: import kiln.tensorrt as trt

    converter = trt.TrtGraphConverterV2(input_saved_model_dir=..., precision_mode=trt.TrtPrecisionMode.FP16)
    converter.convert()
    converter.build(input_fn=my_input_fn)
    converter.save(output_saved_model_dir)
    converter.summary()

The TF 2.x names ``tf.experimental.tensorrt.Converter`` / ``ConversionParams`` are here too
(``kiln.tensorrt.Converter``, ``kiln.tensorrt.ConversionParams``). Behaviour follows TF-TRT's
documentation: the same parameters and defaults, ``convert()`` returns the converted function,
``build()`` raises ``NotImplementedError`` when called twice and ``RuntimeError`` without an
input_fn, ``summary()`` prints. Differences (docs/python.md): engines run on Kiln's backends
(``device="cpu"`` by default; pass ``device="cuda"`` for the GPU), and ``precision_mode`` also
accepts ``BF16``. The saved model loads with ``kiln.load`` and with ``tf.saved_model.load``: where
TensorFlow is installed, importing this module registers Kiln's op library with it (``kiln.tf``).
"""

import collections
import importlib.util
import sys
import warnings

from kiln._convert import ConversionParams as _KilnParams
from kiln._convert import Converter as _KilnConverter


class TrtPrecisionMode:
    FP32 = "FP32"
    FP16 = "FP16"
    INT8 = "INT8"
    BF16 = "BF16"  # Kiln's additions
    FP8 = "FP8"  # E4M3, calibrated as INT8

    @staticmethod
    def supported_precision_modes():
        precisions = [TrtPrecisionMode.FP32, TrtPrecisionMode.FP16, TrtPrecisionMode.INT8]
        return precisions + [p.lower() for p in precisions]


DEFAULT_TRT_MAX_WORKSPACE_SIZE_BYTES = 1 << 30

# TF-TRT's parameter tuple: the fields of TF 2.x's TrtConversionParams, including the older ones
# (rewriter_config_template, is_dynamic_op, max_batch_size) that TF 2.4's documentation lists.
TrtConversionParams = collections.namedtuple(
    "TrtConversionParams",
    [
        "rewriter_config_template",
        "max_workspace_size_bytes",
        "precision_mode",
        "minimum_segment_size",
        "is_dynamic_op",
        "maximum_cached_engines",
        "use_calibration",
        "max_batch_size",
        "allow_build_at_runtime",
    ],
)
TrtConversionParams.__new__.__defaults__ = (None, DEFAULT_TRT_MAX_WORKSPACE_SIZE_BYTES, TrtPrecisionMode.FP32, 3, True, 1,
                                            True, 1, True)
DEFAULT_TRT_CONVERSION_PARAMS = TrtConversionParams()
ConversionParams = TrtConversionParams  # tf.experimental.tensorrt.ConversionParams


def _kiln_params(params, use_dynamic_shape, dynamic_shape_profile_strategy, extra):
    if params.rewriter_config_template is not None:
        raise ValueError("rewriter_config_template is a Grappler setting; Kiln does not run Grappler (leave it None)")
    if not params.is_dynamic_op:
        raise ValueError("is_dynamic_op=False is not supported in TF2 (as in TF-TRT V2)")
    return _KilnParams(
        precision_mode=str(params.precision_mode),
        max_workspace_size_bytes=int(params.max_workspace_size_bytes),
        minimum_segment_size=int(params.minimum_segment_size),
        maximum_cached_engines=int(params.maximum_cached_engines),
        use_calibration=bool(params.use_calibration),
        allow_build_at_runtime=bool(params.allow_build_at_runtime),
        max_batch_size=int(params.max_batch_size),
        use_dynamic_shape=bool(use_dynamic_shape),
        dynamic_shape_profile_strategy=dynamic_shape_profile_strategy or "Range",
        **extra,
    )


class TrtGraphConverterV2:
    """TF-TRT's converter for TF2 SavedModels, running Kiln (see the module's docstring)."""

    def __init__(self, input_saved_model_dir=None, input_saved_model_tags=None, input_saved_model_signature_key=None,
                 use_dynamic_shape=None, dynamic_shape_profile_strategy=None,
                 max_workspace_size_bytes=DEFAULT_TRT_MAX_WORKSPACE_SIZE_BYTES, precision_mode=TrtPrecisionMode.FP32,
                 minimum_segment_size=3, maximum_cached_engines=1, use_calibration=True, allow_build_at_runtime=True,
                 conversion_params=None, **kiln_params):
        if input_saved_model_dir is None:
            raise ValueError("input_saved_model_dir must be given")
        if conversion_params is None:
            conversion_params = TrtConversionParams(
                max_workspace_size_bytes=max_workspace_size_bytes, precision_mode=precision_mode,
                minimum_segment_size=minimum_segment_size, maximum_cached_engines=maximum_cached_engines,
                use_calibration=use_calibration, allow_build_at_runtime=allow_build_at_runtime)
        else:
            warnings.warn("conversion_params is deprecated in TF-TRT; pass its fields as arguments", DeprecationWarning,
                          stacklevel=2)
        if str(conversion_params.precision_mode).upper() not in ("FP32", "FP16", "INT8", "BF16", "FP8"):
            raise ValueError(f"precision_mode {conversion_params.precision_mode!r} is not one of "
                             f"{TrtPrecisionMode.supported_precision_modes()} (or BF16, FP8)")
        self._params = _kiln_params(conversion_params, use_dynamic_shape, dynamic_shape_profile_strategy, kiln_params)
        self._converter = _KilnConverter(input_saved_model_dir, input_saved_model_tags, input_saved_model_signature_key,
                                         conversion_params=self._params)
        self._converted = False
        self._built = False

    def convert(self, calibration_input_fn=None):
        """Converts the SavedModel; INT8 with use_calibration needs ``calibration_input_fn``.
        Returns the converted function."""
        if self._converted:
            raise RuntimeError("convert() was already called")
        params = self._params
        calibrate = params.precision_mode.upper() == "INT8" and params.use_calibration
        if calibrate and calibration_input_fn is None and not params.calibration_table:
            raise ValueError("Should specify calibration_input_fn because INT8 calibration is needed")
        if not calibrate and calibration_input_fn is not None:
            raise ValueError("Should not specify calibration_input_fn because INT8 calibration is not needed")
        function = self._converter.convert(calibration_input_fn)
        self._converted = True
        return function

    def build(self, input_fn):
        """Runs the converted function on each input set to build engines."""
        if self._built:
            raise NotImplementedError("build() is already called.")
        if input_fn is None:
            raise RuntimeError("input_fn is None. Method build() needs input_fn to be specified in order to build "
                               "TensorRT engines")
        if not self._converted:
            raise RuntimeError("build() needs convert() first")
        self._built = True
        self._converter.build(input_fn)

    def save(self, output_saved_model_dir, save_gpu_specific_engines=True, options=None):
        """Writes the converted SavedModel (``options``, TensorFlow's SaveOptions, is ignored)."""
        if not self._converted:
            raise RuntimeError("save() needs convert() first")
        self._converter.save(output_saved_model_dir, save_gpu_specific_engines)

    def summary(self, line_length=160, detailed=True, print_fn=None):
        """Prints the engine table (``print_fn`` defaults to ``print``)."""
        if not self._converted:
            raise RuntimeError("summary() needs convert() first")
        (print_fn or print)(self._converter.summary(line_length, detailed))


class Converter(TrtGraphConverterV2):
    """``tf.experimental.tensorrt.Converter``: the same converter, taking ``conversion_params``."""

    def __init__(self, input_saved_model_dir=None, input_saved_model_tags=None, input_saved_model_signature_key=None,
                 conversion_params=None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            super().__init__(input_saved_model_dir=input_saved_model_dir, input_saved_model_tags=input_saved_model_tags,
                             input_saved_model_signature_key=input_saved_model_signature_key,
                             conversion_params=conversion_params or DEFAULT_TRT_CONVERSION_PARAMS)


# A TF-TRT script loads its converted model with tf.saved_model.load: register Kiln's op there.
if importlib.util.find_spec("tensorflow") is not None:
    try:
        import kiln.tf  # noqa: F401
    except FileNotFoundError as e:  # a Kiln built without the op library
        warnings.warn(f"kiln.tensorrt: TensorFlow cannot load converted models in this process: {e}", stacklevel=2)

# `from kiln.tensorrt import trt_convert as trt` mirrors TensorFlow's module path.
trt_convert = sys.modules[__name__]
