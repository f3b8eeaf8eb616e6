#!/usr/bin/env python3
"""Keras layer coverage: every keras.layers class with inference semantics, in a generated
one-layer model (Keras 3, model.export), run by `kiln run` and compared with TensorFlow.

Random layers (RandomFlip, RandomRotation, ...) are compared on the first call of each side from
the same saved state: their serving function reads a seed-state variable and writes it back
advanced (AssignVariableOp), so TensorFlow's second call draws differently. The TensorFlow side is
a freshly loaded signature called once; `kiln run` starts from the saved variables every run (reads
ordered after a write in the same call see the written value; the write is not kept for later
runs).

Outcome per layer: PASS (relative L2 <= 1e-5, exact for integer outputs), UNSUPPORTED (Kiln refuses
and says why: the first line of its reason is reported), FAIL (a wrong answer or a crash), or
SKIP (the layer cannot be exported by Keras/TensorFlow itself, with the reason). Writes a Markdown
table (default docs/keras-layers.md) and exits non-zero when any layer FAILs.

    python scripts/keras_layer_coverage.py --kiln build/tools/kiln [--only LSTM GRU] [--out docs/keras-layers.md]
"""

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402


def layer_cases(keras):
    """(name, constructor, input shapes (without batch), input dtype, value kind) per layer."""
    L = keras.layers
    f, i = "float32", "int32"
    img, seq, vec, vol = (8, 8, 3), (6, 4), (12,), (4, 4, 4, 2)
    cases = [
        ("Dense", lambda: L.Dense(8, activation="relu"), [vec], f),
        ("EinsumDense", lambda: L.EinsumDense("ab,bc->ac", output_shape=8, bias_axes="c"), [vec], f),
        ("Embedding", lambda: L.Embedding(50, 8), [(5,)], i),
        ("Identity", lambda: L.Identity(), [vec], f),
        ("Masking", lambda: L.Masking(0.0), [seq], f),
        ("Activation", lambda: L.Activation("gelu"), [vec], f),
        ("ELU", lambda: L.ELU(), [vec], f),
        ("LeakyReLU", lambda: L.LeakyReLU(0.2), [vec], f),
        ("PReLU", lambda: L.PReLU(), [vec], f),
        ("ReLU", lambda: L.ReLU(max_value=3.0, threshold=0.1), [vec], f),
        ("Softmax", lambda: L.Softmax(), [vec], f),
        ("Conv1D", lambda: L.Conv1D(4, 3, padding="same"), [seq], f),
        ("Conv2D", lambda: L.Conv2D(4, 3, strides=2), [img], f),
        ("Conv3D", lambda: L.Conv3D(3, 2), [vol], f),
        ("SeparableConv1D", lambda: L.SeparableConv1D(4, 3), [seq], f),
        ("SeparableConv2D", lambda: L.SeparableConv2D(4, 3), [img], f),
        ("DepthwiseConv1D", lambda: L.DepthwiseConv1D(3), [seq], f),
        ("DepthwiseConv2D", lambda: L.DepthwiseConv2D(3, depth_multiplier=2), [img], f),
        ("Conv1DTranspose", lambda: L.Conv1DTranspose(4, 3, strides=2), [seq], f),
        ("Conv2DTranspose", lambda: L.Conv2DTranspose(4, 3, strides=2), [img], f),
        ("Conv3DTranspose", lambda: L.Conv3DTranspose(2, 2, strides=2), [vol], f),
        ("MaxPooling1D", lambda: L.MaxPooling1D(2), [seq], f),
        ("MaxPooling2D", lambda: L.MaxPooling2D(2), [img], f),
        ("MaxPooling3D", lambda: L.MaxPooling3D(2), [vol], f),
        ("AveragePooling1D", lambda: L.AveragePooling1D(2), [seq], f),
        ("AveragePooling2D", lambda: L.AveragePooling2D(2), [img], f),
        ("AveragePooling3D", lambda: L.AveragePooling3D(2), [vol], f),
        ("GlobalMaxPooling1D", lambda: L.GlobalMaxPooling1D(), [seq], f),
        ("GlobalMaxPooling2D", lambda: L.GlobalMaxPooling2D(), [img], f),
        ("GlobalMaxPooling3D", lambda: L.GlobalMaxPooling3D(), [vol], f),
        ("GlobalAveragePooling1D", lambda: L.GlobalAveragePooling1D(), [seq], f),
        ("GlobalAveragePooling2D", lambda: L.GlobalAveragePooling2D(), [img], f),
        ("GlobalAveragePooling3D", lambda: L.GlobalAveragePooling3D(), [vol], f),
        ("BatchNormalization", lambda: L.BatchNormalization(), [img], f),
        ("LayerNormalization", lambda: L.LayerNormalization(), [seq], f),
        ("GroupNormalization", lambda: L.GroupNormalization(groups=2), [(8, 8, 4)], f),
        ("UnitNormalization", lambda: L.UnitNormalization(), [vec], f),
        ("Dropout", lambda: L.Dropout(0.5), [vec], f),
        ("SpatialDropout1D", lambda: L.SpatialDropout1D(0.5), [seq], f),
        ("SpatialDropout2D", lambda: L.SpatialDropout2D(0.5), [img], f),
        ("GaussianDropout", lambda: L.GaussianDropout(0.3), [vec], f),
        ("GaussianNoise", lambda: L.GaussianNoise(0.3), [vec], f),
        ("AlphaDropout", lambda: L.AlphaDropout(0.3), [vec], f),
        ("ActivityRegularization", lambda: L.ActivityRegularization(l1=0.1), [vec], f),
        ("Reshape", lambda: L.Reshape((3, 4)), [vec], f),
        ("Flatten", lambda: L.Flatten(), [img], f),
        ("RepeatVector", lambda: L.RepeatVector(3), [vec], f),
        ("Permute", lambda: L.Permute((2, 1)), [seq], f),
        ("Cropping1D", lambda: L.Cropping1D((1, 2)), [seq], f),
        ("Cropping2D", lambda: L.Cropping2D(((1, 2), (2, 1))), [img], f),
        ("Cropping3D", lambda: L.Cropping3D(1), [vol], f),
        ("UpSampling1D", lambda: L.UpSampling1D(2), [seq], f),
        ("UpSampling2D", lambda: L.UpSampling2D(2), [img], f),
        ("UpSampling2D(bilinear)", lambda: L.UpSampling2D(2, interpolation="bilinear"), [img], f),
        ("UpSampling3D", lambda: L.UpSampling3D(2), [vol], f),
        ("ZeroPadding1D", lambda: L.ZeroPadding1D(2), [seq], f),
        ("ZeroPadding2D", lambda: L.ZeroPadding2D(1), [img], f),
        ("ZeroPadding3D", lambda: L.ZeroPadding3D(1), [vol], f),
        ("Add", lambda: L.Add(), [vec, vec], f),
        ("Subtract", lambda: L.Subtract(), [vec, vec], f),
        ("Multiply", lambda: L.Multiply(), [vec, vec], f),
        ("Average", lambda: L.Average(), [vec, vec], f),
        ("Maximum", lambda: L.Maximum(), [vec, vec], f),
        ("Minimum", lambda: L.Minimum(), [vec, vec], f),
        ("Concatenate", lambda: L.Concatenate(), [vec, vec], f),
        ("Dot", lambda: L.Dot(axes=1, normalize=True), [vec, vec], f),
        ("Attention", lambda: L.Attention(), [seq, seq], f),
        ("AdditiveAttention", lambda: L.AdditiveAttention(), [seq, seq], f),
        ("MultiHeadAttention", lambda: _mha(L, causal=False), [seq], f),
        ("MultiHeadAttention(causal)", lambda: _mha(L, causal=True), [seq], f),
        ("GroupQueryAttention", lambda: _gqa(L), [seq], f),
        ("SimpleRNN", lambda: L.SimpleRNN(5), [seq], f),
        ("LSTM", lambda: L.LSTM(5), [seq], f),
        ("LSTM(return_sequences)", lambda: L.LSTM(5, return_sequences=True), [seq], f),
        ("GRU", lambda: L.GRU(5), [seq], f),
        ("Bidirectional(LSTM)", lambda: L.Bidirectional(L.LSTM(3)), [seq], f),
        ("ConvLSTM1D", lambda: L.ConvLSTM1D(2, 3), [(3, 6, 2)], f),
        ("ConvLSTM2D", lambda: L.ConvLSTM2D(2, 3), [(3, 6, 6, 2)], f),
        ("TimeDistributed(Dense)", lambda: L.TimeDistributed(L.Dense(3)), [seq], f),
        ("Rescaling", lambda: L.Rescaling(1 / 255.0, offset=-1), [img], f),
        ("Normalization", lambda: _normalization(L), [vec], f),
        ("CenterCrop", lambda: L.CenterCrop(4, 4), [img], f),
        ("Resizing", lambda: L.Resizing(5, 6), [img], f),
        ("Resizing(nearest)", lambda: L.Resizing(16, 16, interpolation="nearest"), [img], f),
        ("Discretization", lambda: L.Discretization(bin_boundaries=[-0.5, 0.0, 0.5]), [vec], f),
        ("CategoryEncoding", lambda: L.CategoryEncoding(num_tokens=10, output_mode="multi_hot"), [(4,)], i),
        ("CategoryEncoding(count)", lambda: L.CategoryEncoding(num_tokens=10, output_mode="count"), [(4,)], i),
        ("CategoryEncoding(one_hot)", lambda: L.CategoryEncoding(num_tokens=10, output_mode="one_hot"), [(1,)], i),
        ("HashedCrossing", None, None, None),
        ("IntegerLookup", lambda: L.IntegerLookup(vocabulary=[3, 7, 9]), [(4,)], i),
        ("RandomFlip", lambda: L.RandomFlip(), [img], f),
        ("RandomRotation", lambda: L.RandomRotation(0.2), [img], f),
        ("RandomZoom", lambda: L.RandomZoom(0.2), [img], f),
        ("RandomContrast", lambda: L.RandomContrast(0.2), [img], f),
        ("RandomTranslation", lambda: L.RandomTranslation(0.2, 0.2), [img], f),
        ("RandomBrightness", lambda: L.RandomBrightness(0.2), [img], f),
        ("RandomCrop", lambda: L.RandomCrop(6, 6), [img], f),
        ("RandomShear", lambda: L.RandomShear(0.2, 0.2), [img], f),
        ("RandomElasticTransform", lambda: L.RandomElasticTransform(0.5), [img], f),
        ("RandomErasing", lambda: L.RandomErasing(0.5), [img], f),
        ("RandomGrayscale", lambda: L.RandomGrayscale(0.5), [img], f),
        ("RandomInvert", lambda: L.RandomInvert(0.5), [img], f),
        ("RandomSharpness", lambda: L.RandomSharpness(0.5), [img], f),
        ("RandomGaussianBlur", lambda: L.RandomGaussianBlur(0.5), [img], f),
        ("RandomColorDegeneration", lambda: L.RandomColorDegeneration(0.5), [img], f),
        ("RandomColorJitter", lambda: L.RandomColorJitter(brightness_factor=0.2, contrast_factor=0.2), [img], f),
        ("RandomHue", lambda: L.RandomHue(0.2), [img], f),
        ("RandomSaturation", lambda: L.RandomSaturation(0.5), [img], f),
        ("RandomPerspective", lambda: L.RandomPerspective(0.5), [img], f),
        ("RandAugment", lambda: L.RandAugment(), [img], f),
        ("AugMix", lambda: L.AugMix(), [img], f),
        ("CutMix", lambda: L.CutMix(), [img], f),
        ("MixUp", lambda: L.MixUp(), [img], f),
        ("AutoContrast", lambda: L.AutoContrast(), [img], f),
        ("Solarization", lambda: L.Solarization(0.5), [img], f),
        # RandomPosterization casts its float input to uint8: for the negative values of these
        # inputs TensorFlow's own result depends on its cast path (undefined), so it is left out.
    ]
    return [c for c in cases if c[1] is not None]


def _mha(L, causal):
    class SelfAttention(L.Layer):
        def __init__(self):
            super().__init__()
            self.mha = L.MultiHeadAttention(num_heads=2, key_dim=4)

        def call(self, x):
            return self.mha(x, x, use_causal_mask=causal)
    return SelfAttention()


def _gqa(L):
    class SelfAttention(L.Layer):
        def __init__(self):
            super().__init__()
            self.gqa = L.GroupQueryAttention(head_dim=4, num_query_heads=4, num_key_value_heads=2)

        def call(self, x):
            return self.gqa(x, x)
    return SelfAttention()


def _normalization(L):
    layer = L.Normalization()
    layer.adapt(np.random.default_rng(0).standard_normal((32, 12)).astype(np.float32) * 3 + 1)
    return layer


def run_case(keras, tf, kiln, name, make, shapes, dtype, work):
    keras.utils.set_random_seed(0)
    inputs = [keras.Input(s, dtype=dtype, name="x%d" % k) for k, s in enumerate(shapes)]
    try:
        layer = make()
        out = layer(inputs if len(inputs) > 1 else inputs[0])
        model = keras.Model(inputs, out)
        path = os.path.join(work, name.replace("(", "_").replace(")", "").replace(" ", ""))
        model.export(path, verbose=False)
    except Exception as e:  # noqa: BLE001
        return "SKIP", "Keras cannot build or export it: %s" % str(e).splitlines()[0][:160]
    rng = np.random.default_rng(1)
    feeds = {}
    for k, s in enumerate(shapes):
        if dtype == "int32":
            feeds["x%d" % k] = rng.integers(0, 10, size=(2,) + tuple(s)).astype(np.int32)
        else:
            feeds["x%d" % k] = rng.standard_normal((2,) + tuple(s)).astype(np.float32)
    sig = tf.saved_model.load(path).signatures["serving_default"]
    ref = {k: v.numpy() for k, v in sig(**{k: tf.constant(v) for k, v in feeds.items()}).items()}
    args = []
    for k, v in feeds.items():
        np.save(os.path.join(path, "in_%s.npy" % k), v)
        args += ["--input", "%s=%s" % (k, os.path.join(path, "in_%s.npy" % k))]
    out_dir = os.path.join(path, "kiln_out")
    proc = subprocess.run([kiln, "run", path, "--output-dir", out_dir] + args, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        text = proc.stderr.strip()
        lines = [l.strip() for l in text.splitlines() if l.strip() and not l.startswith(("I0000", "W0000", "E0000"))]
        # "the model uses N unsupported op types": the per-op lines that follow name them and why.
        ops = [l for l in lines if " x" in l and ":" in l and not l.startswith("kiln:")]
        detail = "; ".join(ops) if ops else (lines[-1] if lines else "")
        outcome = "UNSUPPORTED" if proc.returncode == 1 and ("unsupported" in text or "not supported" in text or "no importer" in text) else "FAIL"
        return outcome, detail[:400]
    worst = 0.0
    for k, r in ref.items():
        o = np.load(os.path.join(out_dir, "%s.npy" % k))
        if o.shape != r.shape:
            return "FAIL", "output %s: shape %s, TensorFlow %s" % (k, o.shape, r.shape)
        if np.issubdtype(r.dtype, np.floating):
            n = np.linalg.norm(r.astype(np.float64))
            err = np.linalg.norm(o.astype(np.float64) - r) / (n if n > 0 else 1.0)
            worst = max(worst, float(err))
        elif not np.array_equal(o, r):
            return "FAIL", "output %s differs (exact match required)" % k
    if worst > 1e-5:
        return "FAIL", "relative L2 error %.2g" % worst
    return "PASS", "relative L2 error %.1e" % worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default="build/tools/kiln")
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--out", default="docs/keras-layers.md")
    ap.add_argument("--min-pass", type=int, default=0, help="exit non-zero when fewer layers pass")
    args = ap.parse_args()
    import keras
    import tensorflow as tf
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name, make, shapes, dtype in layer_cases(keras):
            if args.only and name not in args.only:
                continue
            try:
                outcome, detail = run_case(keras, tf, os.path.abspath(args.kiln), name, make, shapes, dtype, work)
            except Exception as e:  # noqa: BLE001
                outcome, detail = "FAIL", "harness: %s" % traceback.format_exception_only(type(e), e)[-1].strip()[:200]
            print("%-28s %-11s %s" % (name, outcome, detail), flush=True)
            rows.append((name, outcome, detail))
    counts = {k: sum(1 for r in rows if r[1] == k) for k in ("PASS", "UNSUPPORTED", "FAIL", "SKIP")}
    tested = len(rows) - counts["SKIP"]
    lines = ["# Keras layers", "",
             "Generated by `python scripts/keras_layer_coverage.py --kiln build/tools/kiln` (%s, Keras %s, TensorFlow %s): "
             "each keras.layers class with inference semantics in a one-layer model (Keras 3 `model.export`), run "
             "by `kiln run` on random inputs (batch 2) and compared with TensorFlow (FP32 relative L2 ≤ 1e-5; exact "
             "for integer outputs)." % (datetime.date.today().isoformat(), keras.__version__, tf.__version__), "",
             "**%d of %d layers pass (%.0f%%)**; %d unsupported (Kiln says why), %d fail (wrong answer or crash), "
             "%d skipped (Keras cannot export them)." % (counts["PASS"], tested, 100.0 * counts["PASS"] / max(tested, 1),
                                                        counts["UNSUPPORTED"], counts["FAIL"], counts["SKIP"]), "",
             "| layer | outcome | detail |", "|---|---|---|"]
    for name, outcome, detail in rows:
        lines.append("| %s | %s | %s |" % (name, outcome, detail.replace("|", "\\|")))
    if not args.only or args.out != "docs/keras-layers.md":
        with open(args.out, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        print("wrote %s" % args.out)
    print("PASS %d / %d tested; UNSUPPORTED %d; FAIL %d; SKIP %d" % (counts["PASS"], tested, counts["UNSUPPORTED"],
                                                                  counts["FAIL"], counts["SKIP"]))
    return 1 if counts["FAIL"] or counts["PASS"] < args.min_pass else 0


if __name__ == "__main__":
    sys.exit(main())
