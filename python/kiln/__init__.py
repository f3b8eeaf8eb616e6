"""Kiln: an inference optimizer for TensorFlow SavedModels and ONNX models.

    import kiln
    model = kiln.load("/models/resnet50")                 # SavedModel, .onnx, converted model, .kiln
    out = model.signatures["serving_default"](input_1=images)   # dict of numpy arrays

    converter = kiln.Converter("/models/resnet50", precision_mode="FP16")
    converter.convert()
    converter.save("/models/resnet50_kiln")

TF-TRT scripts run through ``kiln.tensorrt`` (a drop-in for ``trt_convert``).
"""

import os as _os
import sys as _sys

# The extension binds to its own dependencies first (RTLD_DEEPBIND): a process that imported
# TensorFlow first holds TensorFlow's copy of protobuf in its global symbol scope, which Kiln's
# protobuf must not meet.
_flags = _sys.getdlopenflags()
_sys.setdlopenflags(_os.RTLD_NOW | _os.RTLD_LOCAL | getattr(_os, "RTLD_DEEPBIND", 0))
try:
    from kiln import _kiln
finally:
    _sys.setdlopenflags(_flags)
from kiln._convert import ConversionParams, Converter
from kiln._model import Function, Model, load
from kiln._paths import c_library, tf_op_library
from kiln._tensors import TensorSpec
from kiln.errors import *  # noqa: F401,F403
from kiln.errors import __all__ as _error_names

__version__ = _kiln.__version__


def load_plugin(path):
    """Loads custom ops from a plugin library (include/kiln/custom_op.h) into this process: models
    loaded or converted afterwards can use them. Raises kiln.NotFoundError / InvalidArgumentError."""
    _kiln.load_plugin(_os.fspath(path))


__all__ = ["load", "load_plugin", "Model", "Function", "TensorSpec", "Converter", "ConversionParams", "tf_op_library", "c_library",
           "__version__"] + _error_names
