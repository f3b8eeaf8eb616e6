"""kiln.load: a SavedModel, ONNX model, converted model or .kiln file, with callable signatures."""

from collections.abc import Mapping

from kiln import _kiln
from kiln._tensors import TensorSpec, from_native, to_native


class Function:
    """A signature: called like ``tf.saved_model.load(...).signatures[key]``.

    ``f(x=array)`` (keyword arguments by input name) or ``f(array, ...)`` (positional, in the
    order of ``f.inputs``) returns a dict of output name -> numpy array (outputs a GPU engine
    computed for GPU inputs come back as DLPack-capable arrays on the GPU). Inputs are numpy arrays,
    any tensor with ``__dlpack__`` (read in place when C-contiguous: PyTorch, CuPy, JAX,
    TensorFlow), or Python numbers and nested lists (converted to the input's dtype). Calls release
    the GIL and may run from many threads at once.
    """

    def __init__(self, native, owner):
        self._native = native
        self._owner = owner  # keeps the model or converter that owns the signature alive
        self.inputs = [TensorSpec._from_native(s) for s in native.inputs]
        self.outputs = [TensorSpec._from_native(s) for s in native.outputs]
        self._specs = {s.name: s for s in self.inputs}
        self._output_specs = {s.name: s for s in self.outputs}

    @property
    def name(self):
        return self._native.key

    @property
    def structured_input_signature(self):
        """``((), {name: TensorSpec})``, as TensorFlow's signature functions have it."""
        return ((), dict(self._specs))

    @property
    def structured_outputs(self):
        return dict(self._output_specs)

    @property
    def input_device(self):
        """Where the engines run ("cpu", "cuda:0"): inputs there are read in place."""
        return self._native.input_device

    @property
    def num_nodes(self):
        return self._native.num_nodes

    def stats(self):
        """Engines built and loaded, engine and native runs so far (dict)."""
        return self._native.stats()

    def _bind(self, args, kwargs):
        names = [s.name for s in self.inputs]
        if len(args) > len(names):
            raise TypeError(f"signature '{self.name}' takes {len(names)} inputs ({', '.join(names)}); "
                            f"{len(args)} positional arguments were given")
        bound = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in self._specs:
                raise TypeError(f"signature '{self.name}' has no input '{key}'; its inputs: {', '.join(names)}")
            if key in bound:
                raise TypeError(f"signature '{self.name}': input '{key}' given twice (positionally and by name)")
            bound[key] = value
        missing = [n for n in names if n not in bound]
        if missing:
            raise TypeError(f"signature '{self.name}' is missing input(s) {', '.join(missing)} (its inputs: "
                            f"{', '.join(names)})")
        return {n: to_native(v, self._specs[n], f"signature '{self.name}' input '{n}'") for n, v in bound.items()}

    def __call__(self, *args, **kwargs):
        outputs = self._native.run(self._bind(args, kwargs))
        return {name: from_native(value, self._output_specs.get(name)) for name, value in outputs.items()}

    def __repr__(self):
        inputs = ", ".join(repr(s) for s in self.inputs)
        return f"<kiln.Function '{self.name}' ({inputs})>"


class _Signatures(Mapping):
    """Signature key -> Function; a signature is imported (and its engines loaded) on first use."""

    def __init__(self, model):
        self._model = model
        self._keys = list(model._native.signature_keys())
        self._loaded = {}

    def __getitem__(self, key):
        if key not in self._loaded:
            if key not in self._keys:
                raise KeyError(f"{key!r}: no such signature; the model has: {', '.join(self._keys)}")
            self._loaded[key] = Function(self._model._native.signature(key), self._model)
        return self._loaded[key]

    def __iter__(self):
        return iter(self._keys)

    def __len__(self):
        return len(self._keys)

    def __repr__(self):
        return f"_Signatures({self._keys})"


class Model:
    """A loaded model: ``model.signatures[key](**inputs)``, like ``tf.saved_model.load``'s result."""

    def __init__(self, native):
        self._native = native
        self.signatures = _Signatures(self)

    @property
    def path(self):
        return self._native.dir

    def __repr__(self):
        return f"<kiln.Model {self.path!r} signatures={list(self.signatures)}>"


def load(path, tags=None, *, verify_ir=True, cuda_graphs=True):
    """Loads a TensorFlow SavedModel directory, an ``.onnx`` file, a converted model (from
    ``Converter.save``) or a ``.kiln`` file. ``tags`` (default ``["serve"]``) picks the MetaGraph,
    as in ``tf.saved_model.load``. Raises ``kiln.NotFoundError`` / ``kiln.DataLossError`` (both
    ``ValueError``) for missing or malformed files."""
    import os

    if isinstance(tags, str):
        tags = [tags]
    return Model(_kiln.load(os.fspath(path), list(tags or []), verify_ir, cuda_graphs))
