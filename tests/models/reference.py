"""TensorFlow reference helpers for Kiln's model tests.

    meta = load_meta(models_dir, "mlp_keras3")
    inputs = make_inputs(meta, np.random.default_rng(seed))
    ref = tf_outputs(os.path.join(models_dir, "mlp_keras3"), meta, inputs)

`meta` is the DIR/<name>.json written by tests/models/zoo.py. TensorFlow is only
imported by tf_outputs(), so make_inputs() works without it.
"""

import json
import os

import numpy as np

__all__ = ["load_meta", "input_shape", "make_inputs", "tf_outputs", "precision_rtol"]

# Relative L2 bounds for engines that compute in reduced precision (docs/testing.md):
# FP16 11-bit significand (each rounding <= 4.9e-4 relative), BF16 8-bit (<= 3.9e-3).
PRECISION_RTOL = {"FP16": 2e-2, "BF16": 5e-2}
# Models on which a *correct* reduced-precision engine misses the generic bound because the
# model itself amplifies rounding: the bound measured for them by emulating the ideal engine
# (tests/device/bf16_error_analysis.py; numbers and reasons in docs/testing.md).
MODEL_PRECISION_RTOL = {
    # ideal BF16 (bf16 src/weights, f32 accumulation, BN folded first, as Kiln's engines):
    # 0.096-0.159 on the softmax output over 10 input seeds; Kiln on an AMX-BF16 CPU 0.15.
    ("resnet50", "BF16"): 0.25,
}


def precision_rtol(meta, precision):
    """The relative L2 bound for a zoo model's outputs from an engine of `precision`."""
    if precision == "FP32":
        return float(meta.get("rtol", 1e-5))
    return MODEL_PRECISION_RTOL.get((meta["name"], precision), PRECISION_RTOL[precision])


def load_meta(models_dir, name):
    with open(os.path.join(models_dir, name + ".json")) as f:
        return json.load(f)


def input_shape(meta, name, batch=None, dims=None):
    """Concrete shape of input `name`: unknown dims filled from test_batch/test_dims.

    batch / dims override meta["test_batch"] / meta["test_dims"].
    """
    spec = meta["inputs"][name]
    shape = spec["shape"]
    if shape is None:
        raise ValueError("input %r has unknown rank; cannot draw a test value" % name)
    test_dims = dict(meta.get("test_dims") or {})
    test_dims["batch"] = meta.get("test_batch", test_dims.get("batch", 1))
    if dims:
        test_dims.update(dims)
    if batch is not None:
        test_dims["batch"] = batch
    dim_names = spec.get("dim_names") or [None] * len(shape)
    out = []
    for i, d in enumerate(shape):
        if d is not None:
            out.append(int(d))
            continue
        sym = dim_names[i] if i < len(dim_names) else None
        if sym is None and i == 0:
            sym = "batch"
        if sym is None or sym not in test_dims:
            raise ValueError("input %r: dimension %d is unknown and has no test value "
                             "(dim_names=%r, test_dims=%r)" % (name, i, dim_names, test_dims))
        out.append(int(test_dims[sym]))
    return tuple(out)


def make_inputs(meta, rng, batch=None, dims=None):
    """Random inputs {signature input name: np.ndarray} for a zoo model.

    kind "normal": standard normal (cast to the input dtype; ints drawn from [-8, 8),
    bools uniform); "tokens": ints in [0, high); "mask": 0/1 ints with the first
    position of every row set to 1.
    """
    out = {}
    for name in sorted(meta["inputs"]):
        spec = meta["inputs"][name]
        shape = input_shape(meta, name, batch, dims)
        dtype = np.dtype(spec["dtype"])
        kind = spec.get("kind", "normal")
        if kind == "tokens":
            arr = rng.integers(0, int(spec["high"]), size=shape).astype(dtype)
        elif kind == "mask":
            arr = rng.integers(0, 2, size=shape).astype(dtype)
            if arr.ndim:
                arr[..., 0] = 1
        elif kind == "normal":
            if np.issubdtype(dtype, np.floating):
                arr = rng.standard_normal(size=shape).astype(dtype)
            elif np.issubdtype(dtype, np.integer):
                arr = rng.integers(-8 if np.issubdtype(dtype, np.signedinteger) else 0, 8,
                                   size=shape).astype(dtype)
            elif dtype == np.bool_:
                arr = rng.random(size=shape) < 0.5
            else:
                raise ValueError("input %r: cannot draw dtype %s" % (name, dtype))
        else:
            raise ValueError("input %r: unknown kind %r" % (name, kind))
        out[name] = np.ascontiguousarray(arr)
    return out


_LOADED = {}


def _load(model_dir, tags):
    import tensorflow as tf
    key = (os.path.abspath(model_dir), tuple(tags))
    if key not in _LOADED:
        _LOADED[key] = tf.saved_model.load(model_dir, tags=list(tags))
    return _LOADED[key]


def tf_outputs(model_dir, meta, inputs):
    """Run the model's signature with TensorFlow: {output name: np.ndarray}."""
    import tensorflow as tf
    loaded = _load(model_dir, meta.get("tags", ["serve"]))
    fn = loaded.signatures[meta.get("signature_key", "serving_default")]
    res = fn(**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in res.items()}
