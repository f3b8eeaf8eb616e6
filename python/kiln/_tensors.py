"""Python values to what kiln._kiln takes, and Kiln's results back to numpy."""

import numpy as np

from kiln.errors import InvalidArgumentError


class TensorSpec:
    """The name, dtype and shape of a signature input or output (as ``tf.TensorSpec`` describes one).

    ``shape`` is a tuple with ``None`` for unknown dims, or ``None`` when even the rank is unknown;
    ``dtype`` is a numpy dtype, or the string ``"bfloat16"`` / ``"string"`` for the dtypes numpy
    lacks. ``index_limit`` is, for an integer input whose values index a table (token ids), the
    table's size (values must be below it), else ``None``.
    """

    __slots__ = ("name", "dtype", "shape", "index_limit")

    def __init__(self, name, dtype, shape, index_limit=None):
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.index_limit = index_limit

    @classmethod
    def _from_native(cls, spec):
        name, dtype, rank_known, dims, index_limit = spec
        shape = tuple(None if d < 0 else d for d in dims) if rank_known else None
        return cls(name, _numpy_dtype(dtype), shape, None if index_limit < 0 else index_limit)

    def __eq__(self, other):
        return (isinstance(other, TensorSpec) and self.name == other.name and self.dtype == other.dtype
                and self.shape == other.shape)

    def __hash__(self):
        return hash((self.name, str(self.dtype), self.shape))

    def __repr__(self):
        dtype = self.dtype if isinstance(self.dtype, str) else self.dtype.name
        return f"TensorSpec(shape={self.shape}, dtype={dtype}, name={self.name!r})"


def _numpy_dtype(name):
    if name in ("bfloat16", "string"):
        return name
    try:
        return np.dtype(name)
    except TypeError:
        return name


def _bfloat16_dtype():
    try:
        import ml_dtypes  # shipped with TensorFlow and JAX
    except ImportError:
        return None
    return np.dtype(ml_dtypes.bfloat16)


_SAME_KIND_OK = {"b": "b", "i": "iu", "u": "iu", "f": "fiu", "c": "cfiu"}


def to_native(value, spec, what):
    """Converts one input value for the signature input `spec` (`what` names it in errors).

    numpy arrays and objects with ``__dlpack__`` (PyTorch, CuPy, JAX, TensorFlow tensors) pass
    through without a copy when C-contiguous; other values (Python scalars and nested lists,
    objects with ``__array__``) become numpy arrays of the input's dtype.
    """
    if isinstance(value, np.ndarray):
        return _from_numpy(value, spec, what)
    if type(value).__module__.startswith("tensorflow"):
        # TensorFlow's eager tensors: their numpy view (host tensors share memory with it).
        return _from_numpy(np.asarray(value), spec, what)
    if hasattr(value, "__dlpack__"):
        return value
    if hasattr(value, "__array__"):
        return _from_numpy(np.asarray(value), spec, what)
    return _from_numpy(_from_python(value, spec, what), spec, what)


def _from_python(value, spec, what):
    if isinstance(value, (str, bytes)) or spec is not None and spec.dtype == "string":
        try:
            return np.asarray(value, dtype=object)
        except ValueError as e:
            raise InvalidArgumentError(f"{what}: cannot be read as an array of strings: {e}") from None
    try:
        array = np.asarray(value)
    except ValueError as e:  # numpy 2: ragged nested lists
        raise InvalidArgumentError(f"{what}: {type(value).__name__} is not a rectangular array (ragged nested "
                                   f"lists?): {e}") from None
    if array.dtype == object:
        raise InvalidArgumentError(f"{what}: a {type(value).__name__} that numpy reads as objects, not numbers "
                                   f"(ragged nested lists, or None inside?)")
    if spec is None or isinstance(spec.dtype, str):
        return array
    # Python numbers take the input's dtype, as TensorFlow converts them; never a lossy kind change
    # (floats into an integer input).
    if array.dtype.kind not in _SAME_KIND_OK.get(spec.dtype.kind, spec.dtype.kind):
        raise InvalidArgumentError(f"{what}: {array.dtype.name} values given for an input of dtype {spec.dtype.name}")
    return array.astype(spec.dtype)


def _from_numpy(array, spec, what):
    if array.dtype.kind in "OSU":
        flat = array.reshape(-1)
        items = []
        for i, item in enumerate(flat):
            if isinstance(item, str):
                item = item.encode("utf-8")
            elif isinstance(item, np.bytes_):
                item = bytes(item)
            if not isinstance(item, bytes):
                raise InvalidArgumentError(f"{what}: element {i} is a {type(item).__name__}, not a string")
            items.append(item)
        return (list(array.shape), items)
    # (np.ascontiguousarray would turn a 0-d array into a 1-d one.)
    contiguous = array if array.flags.c_contiguous else np.array(array, order="C")
    if array.dtype.name == "bfloat16":
        return ("bfloat16", contiguous.view(np.uint16))
    return contiguous


def from_native(value, spec):
    """A result of kiln._kiln as the caller sees it: numpy (bfloat16 through ml_dtypes), strings as
    a numpy object array of bytes, device tensors as DLPack-capable arrays."""
    if isinstance(value, tuple):
        shape, items = value
        out = np.empty(len(items), dtype=object)
        out[:] = items
        return out.reshape(shape)
    if spec is not None and spec.dtype == "bfloat16" and isinstance(value, np.ndarray):
        bf16 = _bfloat16_dtype()
        if bf16 is not None:
            return value.view(bf16)
    return value
