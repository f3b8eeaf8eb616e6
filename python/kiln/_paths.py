"""Where the package's native libraries are."""

import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def tf_op_library():
    """The path of Kiln's TensorFlow op library (pass it to ``tf.load_op_library``). Raises
    ``FileNotFoundError`` when this build of Kiln has none (it is built when TensorFlow is installed
    for the Python that builds Kiln)."""
    path = os.path.join(_HERE, "libkiln_tf_ops.so")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: this build of Kiln has no TensorFlow op library (build Kiln with TensorFlow "
                                f"installed for the same Python to get it)")
    return path


def c_library():
    """The path of libkiln.so, Kiln's C API (include/kiln/c_api.h)."""
    return os.path.join(_HERE, "libkiln.so")
