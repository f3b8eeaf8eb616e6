#!/usr/bin/env python3
"""Generate Kiln's test-model zoo with real TensorFlow.

Usage:
    python tests/models/zoo.py --out DIR [--only NAME ...] [--force]
                               [--inventory FILE] [--list]

For every model NAME this writes
    DIR/NAME/        the SavedModel
    DIR/NAME.json    metadata (signature input/output names as read back from
                     the saved signature, dtypes, shapes, how to draw inputs)
    DIR/NAME/model.onnx  the SavedModel exported by tf2onnx (opset 17), when
                     the export works (metadata "onnx" below says if it did)
    DIR/NAME.stamp   hash of this script's source + TF/Keras/tf2onnx/onnxruntime
                     versions; a model whose stamp matches is skipped on the next run.

--inventory FILE writes a per-model histogram of the TF op types found in each
saved_model.pb (outer graph and every library function body).

Metadata format (one JSON object per model):
    {"name": ..., "saved_by": "keras3-export" | "tf-keras-save" | "tf.saved_model.save",
     "tags": ["serve"], "signature_key": "serving_default",
     "signature_keys": [every signature key in the SavedModel],
     "inputs": {"<signature input name>": {"dtype": "float32", "shape": [null, 32],
                "dim_names": ["batch", null], "kind": "normal" | "tokens" | "mask",
                "high": <vocab size, tokens only>}},
     "outputs": ["<signature output name>", ...],
     "output_specs": {"<output name>": {"dtype": ..., "shape": [...]}},
     "test_batch": 2, "test_dims": {"batch": 2, ...},
     "rtol": 1e-5 (relative L2 tolerance for float outputs; larger only where
             measured float32 noise requires it),
     "tf_version": ..., "keras_version": ..., "tf_keras_version": ...,
     "onnx": {                       # the tf2onnx export (see export_onnx())
        "file": "model.onnx" (relative to DIR/NAME/) or null when there is none,
        "status": "ok" | "export_failed" | "mismatch" | "check_failed" | "unavailable",
        "error": null or why the export / check failed (last lines of tf2onnx's log),
        "opset": 17, "ir_version": <ONNX IR version of the file>,
        "tf2onnx_version": ..., "onnx_version": ...,
        "rewrites": [what was changed in tf2onnx's output to make it valid ONNX,
                     e.g. "Erfc -> Sub(1, Erf) x2"],
        "onnxruntime_version": ...,
        "input_names": {"<signature input name>": "<ONNX graph input name>"},
        "output_names": {"<signature output name>": "<ONNX graph output name>"},
        "check": {"rel_l2": {"<output>": float}, "rtol": float, "passed": bool,
                  "dims": {"batch": 2, ...}}   # onnxruntime (CPU EP) vs TensorFlow
                                              # on make_inputs(meta, seed 0)
     }}
"status" is "ok" only when the export exists and onnxruntime matches TensorFlow
within check.rtol (max(1e-5, the model's rtol)) on every output; "mismatch"
keeps the file but it must not be used as a reference.
A null entry in "shape" is an unknown dimension. "dim_names" (same length as
shape) names the symbol of each unknown dimension; its value for tests is
test_dims[symbol] ("batch" -> test_batch). Index 0 defaults to "batch".

TensorFlow is imported lazily, so `from zoo import MODEL_NAMES` is cheap.
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
import zlib

# Must be set before keras / tensorflow are imported.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.pop("TF_USE_LEGACY_KERAS", None)  # keep `keras` == Keras 3

_ME = os.path.abspath(__file__)


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------

def _seed_all(name):
    """Deterministic weights per model, independent of generation order."""
    import keras
    import tf_keras
    seed = zlib.crc32(name.encode()) & 0x7FFFFFFF
    keras.backend.clear_session()
    tf_keras.backend.clear_session()
    keras.utils.set_random_seed(seed)   # python, numpy, tf and keras seeds
    tf_keras.utils.set_random_seed(seed)
    import numpy as np
    return np.random.default_rng(seed)


def _randomize_bn(model, rng, stats=True):
    """Give every BatchNormalization layer non-trivial gamma/beta (and mean/var
    if `stats`; otherwise the moving statistics are left as they are).

    Works for Keras 3 and tf-keras (weights order: gamma, beta, mean, var).
    """
    import numpy as np
    n = 0
    for layer in _all_layers(model):
        if type(layer).__name__ not in ("BatchNormalization",):
            continue
        new = []
        for w in layer.weights:
            shape = tuple(w.shape)
            nm = w.name.split("/")[-1].split(":")[0]
            if "gamma" in nm:
                v = rng.uniform(0.5, 1.5, shape)
            elif "beta" in nm:
                v = rng.normal(0.0, 0.2, shape)
            elif "moving_mean" in nm:
                v = rng.normal(0.0, 0.5, shape) if stats else w.numpy()
            elif "moving_variance" in nm:
                v = rng.uniform(0.5, 2.0, shape) if stats else w.numpy()
            else:
                raise RuntimeError("unexpected BN weight %r" % w.name)
            new.append(v.astype(np.float32))
        layer.set_weights(new)
        n += 1
    if n == 0:
        raise RuntimeError("no BatchNormalization layer found")
    return n


def _calibrate_bn(model, rng, shape):
    """Set every BN layer's moving mean/variance to the statistics of one random
    standard-normal batch (one training-mode step with momentum 0).

    Untrained deep nets with identity BN statistics shrink or blow up their
    activations layer by layer (EfficientNet/MobileNetV2 end up with logits of
    ~1e-7 and a perfectly uniform softmax), which would make a whole-model
    comparison against TensorFlow blind to most bugs. Calibrated statistics keep
    activations O(1) everywhere, like a trained network, and make BN non-trivial.
    """
    import numpy as np
    bns = [l for l in _all_layers(model) if type(l).__name__ == "BatchNormalization"]
    saved = [l.momentum for l in bns]
    for l in bns:
        l.momentum = 0.0
    model(rng.standard_normal(shape).astype(np.float32), training=True)
    for l, m in zip(bns, saved):
        l.momentum = m
    return len(bns)


def _all_layers(model):
    out = []
    for layer in model.layers:
        out.append(layer)
        if hasattr(layer, "layers"):
            out.extend(_all_layers(layer))
    return out


def _keras3_export(model, out_dir):
    try:
        model.export(out_dir, verbose=False)
    except TypeError:
        model.export(out_dir)


# ----------------------------------------------------------------------------
# model builders: each returns (saved_by, kind_fn) where kind_fn(sig_input_name)
# -> dict(kind=..., [high=...], [dim_names=...]) and extra metadata dict.
# ----------------------------------------------------------------------------

def _normal(_name):
    return {"kind": "normal"}


def _mlp_keras3():
    import keras
    return keras.Sequential([
        keras.Input(shape=(32,), name="features"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(32, activation="tanh"),
        keras.layers.Dense(10, activation="softmax"),
    ], name="mlp_keras3")


def build_mlp_keras3(out_dir, rng):
    _keras3_export(_mlp_keras3(), out_dir)
    return "keras3-export", _normal, {}


def build_mlp_tfkeras(out_dir, rng):
    import tensorflow as tf
    import tf_keras
    x = tf_keras.Input(shape=(32,), name="features")
    h = tf_keras.layers.Dense(64, activation="relu")(x)
    h = tf_keras.layers.Dense(32, activation="tanh")(h)
    y = tf_keras.layers.Dense(10, activation="softmax", name="probs")(h)
    model = tf_keras.Model(x, y, name="mlp_tfkeras")
    tf.saved_model.save(model, out_dir)
    return "tf.saved_model.save", _normal, {}


def _cnn(K, name):
    """Small CNN, same architecture for Keras 3 (K=keras) and tf-keras."""
    L = K.layers
    x_in = K.Input(shape=(32, 32, 3), name="image")
    x = L.Conv2D(8, 3, padding="same", use_bias=False)(x_in)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    x = L.MaxPool2D(2)(x)                                  # 16x16x8
    x = L.Conv2D(16, 3, padding="valid")(x)                # 14x14x16
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    x = L.AveragePooling2D(2)(x)                           # 7x7x16
    a = L.Flatten()(x)
    a = L.Dense(16, activation="relu")(a)
    b = L.GlobalAveragePooling2D()(x)
    h = L.Concatenate()([a, b])
    h = L.Dense(10)(h)
    y = L.Softmax()(h)
    return K.Model(x_in, y, name=name)


def build_cnn_tfkeras(out_dir, rng):
    import tf_keras
    model = _cnn(tf_keras, "cnn_tfkeras")
    _randomize_bn(model, rng)
    model.save(out_dir, save_format="tf")
    return "tf-keras-save", _normal, {}


def build_cnn_keras3(out_dir, rng):
    import keras
    model = _cnn(keras, "cnn_keras3")
    _randomize_bn(model, rng)
    _keras3_export(model, out_dir)
    return "keras3-export", _normal, {}


def _application(constructor, rng):
    """A keras.applications (or tf_keras.applications) ImageNet model with random weights,
    random BatchNorm gamma/beta and BatchNorm statistics calibrated on a random batch."""
    model = constructor(weights=None)
    _randomize_bn(model, rng, stats=False)
    _calibrate_bn(model, rng, (4, 224, 224, 3))
    return model


def build_resnet50(out_dir, rng):
    import keras
    _keras3_export(_application(keras.applications.ResNet50, rng), out_dir)
    # Measured: TF's own float32 output differs from a float64 run of the same
    # weights by 1.5e-5..2.2e-5 (relative L2), and TF with oneDNN on vs off by
    # 1.2e-5, so 1e-5 is below float32 noise for this model.
    return "keras3-export", _normal, {"rtol": 1e-4}


def build_mobilenetv2(out_dir, rng):
    import tf_keras
    _application(tf_keras.applications.MobileNetV2, rng).save(out_dir, save_format="tf")
    return "tf-keras-save", _normal, {}


def build_efficientnetb0(out_dir, rng):
    import keras
    _keras3_export(_application(keras.applications.EfficientNetB0, rng), out_dir)
    return "keras3-export", _normal, {}


BERT_VOCAB = 1000
BERT_HIDDEN = 64
BERT_MAX_LEN = 128


def _bert_layers():
    import keras
    from keras import ops

    class PositionEmbedding(keras.layers.Layer):
        """Learned position table sliced by the *runtime* sequence length."""

        def __init__(self, max_len, dim, **kw):
            super().__init__(**kw)
            self.max_len = max_len
            self.dim = dim

        def build(self, input_shape):
            self.table = self.add_weight(
                shape=(self.max_len, self.dim), initializer="random_normal",
                name="position_table")

        def call(self, token_ids):
            seq_len = ops.shape(token_ids)[1]            # dynamic -> Shape op
            positions = ops.arange(seq_len)               # -> Range op
            pos = ops.take(self.table, positions, axis=0)  # [S, H]
            return ops.expand_dims(pos, 0)                 # [1, S, H]

    class AttentionMask(keras.layers.Layer):
        """[B, S] int 0/1 padding mask -> [B, 1, S] boolean attention mask."""

        def call(self, mask):
            return ops.expand_dims(ops.cast(mask, "bool"), 1)

    class FirstToken(keras.layers.Layer):
        def call(self, x):
            return x[:, 0, :]

    return PositionEmbedding, AttentionMask, FirstToken


def build_bert_keras3(out_dir, rng):
    import keras
    L = keras.layers
    PositionEmbedding, AttentionMask, FirstToken = _bert_layers()
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    mask = keras.Input(shape=(None,), dtype="int32", name="attention_mask")
    x = L.Embedding(BERT_VOCAB, BERT_HIDDEN, name="token_embedding")(token_ids)
    x = x + PositionEmbedding(BERT_MAX_LEN, BERT_HIDDEN, name="position_embedding")(token_ids)
    x = L.LayerNormalization(epsilon=1e-12, name="embed_ln")(x)
    att_mask = AttentionMask(name="attention_mask_3d")(mask)
    for i in range(2):
        a = L.MultiHeadAttention(num_heads=4, key_dim=16, name="mha_%d" % i)(
            x, x, attention_mask=att_mask)
        x = L.LayerNormalization(epsilon=1e-12, name="attn_ln_%d" % i)(x + a)
        f = L.Dense(4 * BERT_HIDDEN, activation="gelu", name="ffn_in_%d" % i)(x)
        f = L.Dense(BERT_HIDDEN, name="ffn_out_%d" % i)(f)
        x = L.LayerNormalization(epsilon=1e-12, name="ffn_ln_%d" % i)(x + f)
    pooled = L.Dense(BERT_HIDDEN, activation="tanh", name="pooler")(
        FirstToken(name="first_token")(x))
    model = keras.Model([token_ids, mask],
                        {"sequence_output": x, "pooled_output": pooled},
                        name="bert_keras3")
    _keras3_export(model, out_dir)

    def kind(name):
        if "mask" in name:
            return {"kind": "mask", "dim_names": ["batch", "seq"]}
        return {"kind": "tokens", "high": BERT_VOCAB, "dim_names": ["batch", "seq"]}
    return "keras3-export", kind, {"test_dims": {"batch": 2, "seq": 7}}


def build_two_io_tfkeras(out_dir, rng):
    import tensorflow as tf
    import tf_keras
    L = tf_keras.layers
    image = tf_keras.Input(shape=(8, 8, 3), name="image")
    features = tf_keras.Input(shape=(5,), name="features")
    a = L.Conv2D(4, 3, activation="relu")(image)
    a = L.Flatten()(a)
    b = L.Dense(8, activation="relu")(features)
    h = L.Concatenate()([a, b])
    # tf.saved_model.save names the signature outputs after the output *layers*
    # (not the dict keys), so layer names and keys agree on purpose.
    emb = L.Dense(16, activation="tanh", name="embedding")(h)
    logits = L.Dense(3, name="logits")(emb)
    model = tf_keras.Model(inputs={"image": image, "features": features},
                           outputs={"logits": logits, "embedding": emb},
                           name="two_io_tfkeras")
    tf.saved_model.save(model, out_dir)
    return "tf.saved_model.save", _normal, {}


def build_raw_module(out_dir, rng):
    import numpy as np
    import tensorflow as tf

    def var(shape, name, scale=0.5):
        return tf.Variable(rng.normal(0.0, scale, shape).astype(np.float32), name=name)

    class RawModule(tf.Module):
        def __init__(self):
            super().__init__(name="raw_module")
            self.w1 = var((4, 6), "w1")
            self.b1 = var((6,), "b1")
            self.w2 = var((6, 3), "w2")
            self.scale = var((3,), "scale")
            self.shift = var((3,), "shift")

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def __call__(self, x):
            h = tf.nn.bias_add(tf.matmul(x, self.w1), self.b1)          # [B,6]
            h = tf.math.maximum(h, 0.1 * h)                              # leaky relu
            t = tf.transpose(tf.reshape(h, [-1, 2, 3]), perm=[0, 2, 1])  # [B,3,2]
            t = tf.reshape(t, [-1, 6])
            g = tf.gather(t, [5, 0, 3, 1], axis=1)                       # [B,4]
            c = tf.concat([g, x], axis=1)                                # [B,8]
            row_sum = tf.reduce_sum(c, axis=1, keepdims=True)            # [B,1]
            sel = tf.where(c > 0.0, c, -0.5 * c)
            y = tf.matmul(sel[:, :6], self.w2)                           # [B,3]
            y = tf.cond(tf.reduce_sum(x) > 0.0,
                        lambda: tf.tanh(y) * self.scale,
                        lambda: tf.sigmoid(y) + self.shift)
            return {"y": y, "row_sum": row_sum}

    m = RawModule()
    tf.saved_model.save(m, out_dir, signatures={
        "serving_default": m.__call__.get_concrete_function()})
    return "tf.saved_model.save", _normal, {}


def build_while_module(out_dir, rng):
    import numpy as np
    import tensorflow as tf

    class WhileModule(tf.Module):
        def __init__(self):
            super().__init__(name="while_module")
            self.w = tf.Variable(rng.normal(0.0, 0.5, (8, 8)).astype(np.float32), name="w")
            self.b = tf.Variable(rng.normal(0.0, 0.2, (8,)).astype(np.float32), name="b")

        @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
        def __call__(self, x):
            def cond(i, h):
                return i < 5

            def body(i, h):
                return i + 1, tf.tanh(tf.matmul(h, self.w) + self.b)

            _, h = tf.while_loop(cond, body, [tf.constant(0), x])
            return {"output": h}

    m = WhileModule()
    tf.saved_model.save(m, out_dir, signatures={
        "serving_default": m.__call__.get_concrete_function()})
    return "tf.saved_model.save", _normal, {}


def build_keras3_module_save(out_dir, rng):
    import keras
    import tensorflow as tf
    x = keras.Input(shape=(16,), name="features")
    h = keras.layers.Dense(24, activation="relu")(x)
    y = keras.layers.Dense(4, activation="sigmoid")(h)
    model = keras.Model(x, y, name="keras3_module_save")
    model(tf.zeros([1, 16]))  # make sure the model is built
    tf.saved_model.save(model, out_dir)
    return "tf.saved_model.save", _normal, {}


def build_unsupported_ops(out_dir, rng):
    """A model that uses ops Kiln does not import (a negative test of the
    unsupported-ops report): two Qr nodes and one BesselJ0."""
    import numpy as np
    import tensorflow as tf

    class Unsupported(tf.Module):
        def __init__(self):
            super().__init__(name="unsupported_ops")
            self.w = tf.Variable(rng.normal(0.0, 0.5, (3, 3)).astype(np.float32), name="w")

        @tf.function(input_signature=[tf.TensorSpec([None, 3, 3], tf.float32, name="x")])
        def __call__(self, x):
            d1 = tf.reduce_sum(tf.linalg.qr(x).r, axis=[1, 2])
            d2 = tf.reduce_sum(tf.linalg.qr(tf.matmul(x, self.w)).r, axis=[1, 2])
            return {"out": tf.math.special.bessel_j0(d1 + d2)}

    m = Unsupported()
    tf.saved_model.save(m, out_dir, signatures={
        "serving_default": m.__call__.get_concrete_function()})
    return "tf.saved_model.save", _normal, {}


# Models whose import must fail with the unsupported-ops report (not compared with TF).
UNSUPPORTED_MODELS = {
    "unsupported_ops": build_unsupported_ops,
}

MODELS = {
    "mlp_keras3": build_mlp_keras3,
    "mlp_tfkeras": build_mlp_tfkeras,
    "cnn_tfkeras": build_cnn_tfkeras,
    "cnn_keras3": build_cnn_keras3,
    "resnet50": build_resnet50,
    "mobilenetv2": build_mobilenetv2,
    "efficientnetb0": build_efficientnetb0,
    "bert_keras3": build_bert_keras3,
    "two_io_tfkeras": build_two_io_tfkeras,
    "raw_module": build_raw_module,
    "while_module": build_while_module,
    "keras3_module_save": build_keras3_module_save,
}
MODEL_NAMES = list(MODELS)
MODELS.update(UNSUPPORTED_MODELS)

TAGS = ["serve"]
SIGNATURE_KEY = "serving_default"
TEST_BATCH = 2
DEFAULT_RTOL = 1e-5   # ||kiln - tf|| / ||tf|| allowed for float outputs


# ----------------------------------------------------------------------------
# generation
# ----------------------------------------------------------------------------

def _stamp_text():
    import keras
    import tensorflow as tf
    import tf_keras
    h = hashlib.sha256()
    with open(_ME, "rb") as f:
        h.update(f.read())
    versions = "tf=%s keras=%s tf_keras=%s %s" % (tf.__version__, keras.__version__,
                                                  tf_keras.__version__, _onnx_versions_text())
    h.update(versions.encode())
    return "%s %s\n" % (h.hexdigest(), versions)


def _spec_shape(spec):
    if spec.shape.rank is None:
        return None
    return [None if d is None else int(d) for d in spec.shape.as_list()]


def _read_signature(model_dir):
    import tensorflow as tf
    loaded = tf.saved_model.load(model_dir, tags=TAGS)
    keys = sorted(loaded.signatures.keys())
    fn = loaded.signatures[SIGNATURE_KEY]
    args, kwargs = fn.structured_input_signature
    if args:
        raise RuntimeError("signature has positional inputs: %r" % (args,))
    inputs = {name: (spec.dtype.name, _spec_shape(spec))
              for name, spec in sorted(kwargs.items())}
    outs = fn.structured_outputs
    if not isinstance(outs, dict):
        raise RuntimeError("signature outputs are not a dict: %r" % (outs,))
    outputs = {name: (spec.dtype.name, _spec_shape(spec))
               for name, spec in sorted(outs.items())}
    return keys, inputs, outputs


def generate(name, out_root, force=False):
    """Generate one model. Returns (status, seconds)."""
    t0 = time.time()
    model_dir = os.path.join(out_root, name)
    meta_path = os.path.join(out_root, name + ".json")
    stamp_path = os.path.join(out_root, name + ".stamp")
    stamp = _stamp_text()
    if (not force and os.path.isfile(stamp_path) and os.path.isfile(meta_path)
            and os.path.isfile(os.path.join(model_dir, "saved_model.pb"))):
        with open(stamp_path) as f:
            if f.read() == stamp:
                return "up to date", time.time() - t0

    for p in (stamp_path, meta_path):
        if os.path.exists(p):
            os.remove(p)
    tmp_dir = model_dir + ".tmp"
    for p in (tmp_dir, model_dir):
        if os.path.exists(p):
            shutil.rmtree(p)

    rng = _seed_all(name)
    saved_by, kind_fn, extra = MODELS[name](tmp_dir, rng)
    os.rename(tmp_dir, model_dir)

    import keras
    import tensorflow as tf
    import tf_keras
    keys, inputs, outputs = _read_signature(model_dir)
    test_dims = dict(extra.get("test_dims", {}))
    test_batch = int(test_dims.setdefault("batch", TEST_BATCH))
    meta_inputs = {}
    for in_name, (dtype, shape) in inputs.items():
        info = dict(kind_fn(in_name))
        dim_names = info.pop("dim_names", None)
        if shape is not None and dim_names is None:
            dim_names = [("batch" if i == 0 else None) if d is None else None
                         for i, d in enumerate(shape)]
        if shape is not None:
            for i, d in enumerate(shape):
                if d is None and (dim_names[i] is None or dim_names[i] not in test_dims):
                    raise RuntimeError("%s: input %s dim %d unknown and unnamed"
                                       % (name, in_name, i))
                if d is not None:
                    dim_names[i] = None
        entry = {"dtype": dtype, "shape": shape, "dim_names": dim_names}
        entry.update(info)
        meta_inputs[in_name] = entry
    meta = {
        "name": name,
        "saved_by": saved_by,
        "tags": TAGS,
        "signature_key": SIGNATURE_KEY,
        "signature_keys": keys,
        "inputs": meta_inputs,
        "outputs": sorted(outputs),
        "output_specs": {k: {"dtype": d, "shape": s} for k, (d, s) in outputs.items()},
        "test_batch": test_batch,
        "test_dims": test_dims,
        "rtol": float(extra.get("rtol", DEFAULT_RTOL)),
        "tf_version": tf.__version__,
        "keras_version": keras.__version__,
        "tf_keras_version": tf_keras.__version__,
    }
    meta["onnx"] = export_onnx(model_dir, meta)
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=2, sort_keys=False)
        f.write("\n")
    with open(stamp_path, "w") as f:
        f.write(stamp)
    return "generated", time.time() - t0


# ----------------------------------------------------------------------------
# ONNX export (tf2onnx) and its check against TensorFlow (onnxruntime)
# ----------------------------------------------------------------------------

ONNX_OPSET = 17      # Kiln's ONNX schema is Debian's onnx 1.12 (opset <= 17)
ONNX_FILE = "model.onnx"


def _onnx_versions():
    out = {}
    for mod in ("tf2onnx", "onnx", "onnxruntime"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # not installed (old venv): the export is recorded as unavailable
            out[mod] = None
    return out


def _onnx_versions_text():
    return " ".join("%s=%s" % kv for kv in sorted(_onnx_versions().items()))


def _match_names(sig_names, onnx_names):
    """{signature name: ONNX name}: tf2onnx names graph inputs/outputs after the
    signature's tensors ("x:0") or keys ("x"); unmatched names are left out."""
    out = {}
    for s in sig_names:
        for cand in (s, s + ":0"):
            if cand in onnx_names:
                out[s] = cand
                break
    return out


def _rewrite_onnx(path):
    """Make tf2onnx's output a valid ONNX model; returns notes on what was rewritten.

    tf2onnx 1.17 passes TF's Erfc (Keras 3's exact GELU) through as an `Erfc` node, which
    no ONNX opset has; it becomes `Sub(1, Erf(x))` (same value: the GELU multiplies it by
    x/2, so the cancellation for large |x| stays below float32 noise; checked against TF
    below). Then onnx.checker validates the whole model (raises if still invalid)."""
    import onnx
    from onnx import helper, numpy_helper
    import numpy as np
    model = onnx.load(path)
    notes = []
    n_erfc = 0
    nodes = []
    for node in model.graph.node:
        if node.op_type == "Erfc" and node.domain in ("", "ai.onnx"):
            n_erfc += 1
            one = node.name + "__one"
            erf = node.name + "__erf"
            model.graph.initializer.append(numpy_helper.from_array(np.array(1.0, np.float32), one))
            nodes.append(helper.make_node("Erf", [node.input[0]], [erf], name=node.name + "__Erf"))
            nodes.append(helper.make_node("Sub", [one, erf], list(node.output), name=node.name + "__Sub"))
        else:
            nodes.append(node)
    if n_erfc:
        del model.graph.node[:]
        model.graph.node.extend(nodes)
        notes.append("Erfc -> Sub(1, Erf) x%d (Erfc is no ONNX op)" % n_erfc)
        onnx.save(model, path)
    onnx.checker.check_model(path, full_check=True)
    return notes


def export_onnx(model_dir, meta):
    """Export DIR/NAME to DIR/NAME/model.onnx with tf2onnx (a subprocess running
    `python -m tf2onnx.convert --saved-model DIR --opset 17`) and compare
    onnxruntime with TensorFlow on one random input set. Never raises: returns
    the metadata "onnx" dict (module docstring) saying what worked and why not."""
    import subprocess
    versions = _onnx_versions()
    info = {"file": None, "status": "unavailable", "error": None, "opset": ONNX_OPSET,
            "tf2onnx_version": versions["tf2onnx"], "onnx_version": versions["onnx"],
            "onnxruntime_version": versions["onnxruntime"],
            "rewrites": [], "ir_version": None,
            "input_names": {}, "output_names": {}, "check": None}
    missing = [m for m, v in versions.items() if v is None]
    if missing:
        info["error"] = "not installed: " + ", ".join(missing)
        return info
    out_path = os.path.join(model_dir, ONNX_FILE)
    tmp_path = out_path + ".tmp"
    cmd = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", model_dir,
           "--tag", ",".join(meta["tags"]), "--signature_def", meta["signature_key"],
           "--opset", str(ONNX_OPSET), "--output", tmp_path]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, errors="replace", timeout=1200)
        log, rc = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as e:
        log, rc = "timed out after %ss" % e.timeout, -1
    if rc != 0 or not os.path.isfile(tmp_path):
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        lines = [l for l in log.splitlines() if l.strip()]
        errs = [l for l in lines if "Error" in l or "error" in l or "failed" in l.lower()]
        info["status"] = "export_failed"
        info["error"] = "tf2onnx exit %d: %s" % (rc, " | ".join((errs or lines)[-4:])[-1500:])
        return info
    try:
        info["rewrites"] = _rewrite_onnx(tmp_path)
    except Exception as e:  # noqa: BLE001
        os.remove(tmp_path)
        info["status"] = "export_failed"
        info["error"] = "tf2onnx wrote an invalid ONNX model: %s: %s" % (type(e).__name__, str(e)[-1500:])
        return info
    os.rename(tmp_path, out_path)
    info["file"] = ONNX_FILE
    try:
        import onnx
        info["ir_version"] = int(onnx.load(out_path, load_external_data=False).ir_version)
    except Exception:  # noqa: BLE001
        pass
    try:
        import numpy as np
        import onnxruntime as ort
        sys.path.insert(0, os.path.dirname(_ME))
        import reference
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(out_path, so, providers=["CPUExecutionProvider"])
        onnx_in = [i.name for i in sess.get_inputs()]
        onnx_out = [o.name for o in sess.get_outputs()]
        info["input_names"] = _match_names(sorted(meta["inputs"]), onnx_in)
        info["output_names"] = _match_names(meta["outputs"], onnx_out)
        if (len(info["input_names"]) != len(meta["inputs"]) or len(onnx_in) != len(meta["inputs"])
                or len(info["output_names"]) != len(meta["outputs"])):
            raise RuntimeError("cannot match ONNX inputs %r / outputs %r to the signature's %r / %r"
                               % (onnx_in, onnx_out, sorted(meta["inputs"]), meta["outputs"]))
        inputs = reference.make_inputs(meta, np.random.default_rng(0))
        ref = reference.tf_outputs(model_dir, meta, inputs)
        got = sess.run([info["output_names"][o] for o in meta["outputs"]],
                       {info["input_names"][k]: v for k, v in inputs.items()})
        rtol = max(1e-5, float(meta.get("rtol", DEFAULT_RTOL)))
        rel = {}
        for name, g in zip(meta["outputs"], got):
            r = ref[name]
            if g.shape != r.shape:
                raise RuntimeError("output %s: onnxruntime shape %s, TensorFlow %s"
                                   % (name, g.shape, r.shape))
            if np.issubdtype(r.dtype, np.floating):
                den = float(np.linalg.norm(r.astype(np.float64)))
                num = float(np.linalg.norm(g.astype(np.float64) - r.astype(np.float64)))
                rel[name] = num / den if den > 0 else num
                if not np.isfinite(g).all():
                    rel[name] = float("inf")
            else:
                rel[name] = 0.0 if np.array_equal(g, r) else float("inf")
        dims = dict(meta.get("test_dims") or {})
        passed = all(v <= rtol for v in rel.values())
        info["check"] = {"rel_l2": rel, "rtol": rtol, "passed": passed, "dims": dims}
        info["status"] = "ok" if passed else "mismatch"
        if not passed:
            info["error"] = "onnxruntime differs from TensorFlow: rel L2 %r > %g" % (rel, rtol)
    except Exception as e:  # noqa: BLE001  (recorded, not fatal)
        info["status"] = "check_failed"
        info["error"] = "%s: %s" % (type(e).__name__, str(e)[-1500:])
    return info


# ----------------------------------------------------------------------------
# op inventory
# ----------------------------------------------------------------------------

def op_histograms(model_dir, signature_key=SIGNATURE_KEY):
    """Return (all_ops, inference_ops) Counters for a SavedModel.

    all_ops: every node in graph_def.node and graph_def.library.function[*].node_def.
    inference_ops: nodes on the path of `signature_key`: outer-graph nodes the
    signature outputs depend on, plus every node of every function called from
    them (StatefulPartitionedCall f, If/While branches, direct calls), transitively.
    Direct calls of library functions are counted as "<call>".
    """
    from collections import Counter
    from tensorflow.core.protobuf import saved_model_pb2
    sm = saved_model_pb2.SavedModel()
    with open(os.path.join(model_dir, "saved_model.pb"), "rb") as f:
        sm.ParseFromString(f.read())
    if len(sm.meta_graphs) != 1:
        raise RuntimeError("%s: %d meta graphs" % (model_dir, len(sm.meta_graphs)))
    mg = sm.meta_graphs[0]
    gd = mg.graph_def
    funcs = {f.signature.name: f for f in gd.library.function}

    def op_name(op):
        return "<call>" if op in funcs else op

    all_ops = Counter(op_name(n.op) for n in gd.node)
    for f in gd.library.function:
        all_ops.update(op_name(n.op) for n in f.node_def)

    def called(node):
        out = []
        if node.op in funcs:
            out.append(node.op)
        for a in node.attr.values():
            if a.HasField("func"):
                out.append(a.func.name)
            if a.HasField("list"):
                out.extend(fn.name for fn in a.list.func)
        return [f for f in out if f in funcs]

    inf_ops = Counter()
    nodes = {n.name: n for n in gd.node}
    sig = mg.signature_def[signature_key]
    todo = [t.name.split(":")[0] for t in sig.outputs.values()]
    seen_nodes, seen_funcs, ftodo = set(), set(), []
    while todo:
        n = todo.pop()
        if n in seen_nodes:
            continue
        seen_nodes.add(n)
        node = nodes[n]
        inf_ops[op_name(node.op)] += 1
        ftodo.extend(called(node))
        for i in node.input:
            todo.append(i.lstrip("^").split(":")[0])
    while ftodo:
        fname = ftodo.pop()
        if fname in seen_funcs:
            continue
        seen_funcs.add(fname)
        for node in funcs[fname].node_def:
            inf_ops[op_name(node.op)] += 1
            ftodo.extend(called(node))
    return all_ops, inf_ops


def write_inventory(out_root, names, path):
    import tensorflow as tf
    from collections import Counter, defaultdict
    per_model = {}
    for name in names:
        d = os.path.join(out_root, name)
        if os.path.isfile(os.path.join(d, "saved_model.pb")):
            per_model[name] = op_histograms(d)
    union = Counter()
    users = defaultdict(list)
    for name, (_all, inf) in per_model.items():
        union.update(inf)
        for op in inf:
            users[op].append(name)
    save_only = Counter()
    for name, (all_ops, inf) in per_model.items():
        for op in all_ops:
            if op not in union:
                save_only[op] += all_ops[op]

    lines = [
        "# Kiln test-model zoo: TensorFlow op types per SavedModel",
        "# Generated by: python tests/models/zoo.py --out DIR --inventory tests/models/op_inventory.txt",
        "# TensorFlow %s. Source: saved_model.pb, graph_def.node + graph_def.library.function[*].node_def."
        % tf.__version__,
        "# 'inference' = ops reachable from the serving_default signature outputs (outer-graph",
        "#   nodes they depend on + every node of every function called from them, transitively).",
        "# 'all' = every node of the file, including save/restore functions.",
        "# '<call>' = a function-body node whose op is a library function name (direct call).",
        "",
        "== Union of inference ops over all models: op  total-count  models ==",
    ]
    for op in sorted(union):
        lines.append("%-32s %6d  %s" % (op, union[op], " ".join(users[op])))
    lines.append("")
    lines.append("== Ops that appear only outside the inference path (save/restore etc.) ==")
    for op in sorted(save_only):
        lines.append("%-32s %6d" % (op, save_only[op]))
    for name, (all_ops, inf) in per_model.items():
        lines.append("")
        lines.append("== %s: %d inference nodes (%d op types), %d nodes in file ==" % (
            name, sum(inf.values()), len(inf), sum(all_ops.values())))
        lines.append("-- inference: op count")
        for op in sorted(inf):
            lines.append("  %-32s %6d" % (op, inf[op]))
        rest = {op: all_ops[op] - inf.get(op, 0) for op in all_ops
                if all_ops[op] - inf.get(op, 0) > 0}
        lines.append("-- elsewhere in the file (not on the serving path): op count")
        for op in sorted(rest):
            lines.append("  %-32s %6d" % (op, rest[op]))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="output directory")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="generate only these models")
    ap.add_argument("--force", action="store_true", help="ignore stamps, regenerate")
    ap.add_argument("--inventory", metavar="FILE",
                    help="write the op-type inventory of the generated models to FILE")
    ap.add_argument("--list", action="store_true", help="print the model names and exit")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(MODEL_NAMES))
        return 0
    if not args.out:
        ap.error("--out is required")
    names = args.only or MODEL_NAMES
    bad = [n for n in names if n not in MODELS]
    if bad:
        ap.error("unknown model(s) %s; known: %s" % (", ".join(bad), ", ".join(MODEL_NAMES)))
    out_root = os.path.abspath(args.out)
    os.makedirs(out_root, exist_ok=True)

    t_all = time.time()
    import tensorflow as tf  # noqa: F401  (import once, timed separately)
    print("[zoo] TensorFlow %s imported in %.1fs; output %s"
          % (tf.__version__, time.time() - t_all, out_root), flush=True)
    failed = []
    for name in names:
        try:
            status, secs = generate(name, out_root, force=args.force)
        except Exception as e:  # keep going, report at the end
            import traceback
            traceback.print_exc()
            failed.append(name)
            print("[zoo] %-20s FAILED: %s: %s" % (name, type(e).__name__, e), flush=True)
            continue
        print("[zoo] %-20s %-10s %6.1fs" % (name, status, secs), flush=True)
    if args.inventory:
        write_inventory(out_root, names, args.inventory)
        print("[zoo] op inventory written to %s" % args.inventory, flush=True)
    print("[zoo] done in %.1fs%s" % (time.time() - t_all,
                                     "; FAILED: " + ", ".join(failed) if failed else ""),
          flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
