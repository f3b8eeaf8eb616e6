#!/usr/bin/env python3
"""How much error does an *ideal* BF16 engine have on the zoo models? (runs here, no bf16 CPU needed)

Kiln's BF16 CPU engines (docs/cpu-backend.md, "BF16 steps") compute every convolution / matmul
with bf16 src and bf16 weights, f32 accumulation, f32 bias and f32 dst; BatchNorm (and per-channel
Mul/Add) is first folded into the f32 weights (backend/cpu/passes/fold_batchnorm.cc, in double,
rounded once to f32) and only then converted to bf16; everything else (ReLU, residual adds, pools,
softmax) stays f32. This script rebuilds a zoo model exactly as tests/models/zoo.py does (same
seed), overrides its layers' `call` to emulate such arithmetic in TensorFlow (round-to-nearest-even
to bf16, f32 products of bf16 values are exact, f32 accumulation), and measures each scheme's
relative L2 error against the model's own FP32 TensorFlow output on the inputs test_convert.py
draws (standard normal, batch 2):

  fp32           the emulator without rounding (checks the emulator: ~1e-6 or less)
  fp32-folded    BN folded into f32 weights, no rounding (checks folding alone)
  bf16-unfolded  (1) conv/dense src and weights rounded to bf16, BN unfolded in f32 after
  bf16-folded    (2) BN folded into the weights first, then rounded: what Kiln does
  +bf16-bias     (2) with the folded bias also rounded (oneDNN's fallback when it refuses f32 bias)
  weights-only   (2) rounding only the weights        src-only   (2) rounding only the src
  bf16-all-acts  (3) (2) plus every layer's output rounded to bf16 (bf16 activations everywhere)

Each is reported on the signature output (softmax probabilities, what the test compares) and on
the logits (the final softmax's input), plus the error after every ResNet stage. --logit-spreads S..:
the same bf16-folded run with the logits multiplied by a constant (before the softmax) so their
standard deviation is S, compared with the FP32 run scaled the same way: the logits' error does not
change, the softmax output's does, with how peaked the softmax is (a trained classifier's is more
peaked than the zoo's random-weight ones).

    ~/.cache/kiln/venv/bin/python tests/device/bf16_error_analysis.py [--models resnet50 ...]
        [--zoo build/test_models] [--seeds 0 1 2] [--json out.json]

--zoo: when DIR/NAME/ (a zoo SavedModel) exists, the rebuilt model is checked against it first.
"""

import argparse
import json
import os
import sys
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "models"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import zoo  # noqa: E402  (sets KERAS_BACKEND; TF imported lazily)
from reference import load_meta, make_inputs, tf_outputs  # noqa: E402

SCHEMES = {
    #                 fold   round w  round x  round bias  round acts  rounding
    "fp32":          (False, False,   False,   False,      False,      None),
    "fp32-folded":   (True,  False,   False,   False,      False,      None),
    "bf16-unfolded": (False, True,    True,    False,      False,      "bf16"),
    "bf16-folded":   (True,  True,    True,    False,      False,      "bf16"),
    "+bf16-bias":    (True,  True,    True,    True,       False,      "bf16"),
    "weights-only":  (True,  True,    False,   False,      False,      "bf16"),
    "src-only":      (True,  False,   True,    False,      False,      "bf16"),
    "bf16-all-acts": (True,  True,    True,    False,      True,       "bf16"),
    # not what Kiln does; for judging bounds: a bf16 conversion that truncates instead of
    # rounding to nearest (a plausible bug), and the same scheme in IEEE half (FP16 engines)
    "bf16-truncate": (True,  True,    True,    False,      False,      "bf16-trunc"),
    "fp16-folded":   (True,  True,    True,    False,      False,      "fp16"),
}


def bf16_round(x):
    """float32 -> nearest bfloat16 (ties to even), returned as float32. x: tf.Tensor or ndarray."""
    import tensorflow as tf
    u = tf.bitcast(tf.convert_to_tensor(x, tf.float32), tf.uint32)
    lsb = tf.bitwise.bitwise_and(tf.bitwise.right_shift(u, tf.constant(16, tf.uint32)), tf.constant(1, tf.uint32))
    u = tf.bitwise.bitwise_and(u + tf.constant(0x7FFF, tf.uint32) + lsb, tf.constant(0xFFFF0000, tf.uint32))
    return tf.bitcast(u, tf.float32)


def bf16_truncate(x):
    import tensorflow as tf
    u = tf.bitcast(tf.convert_to_tensor(x, tf.float32), tf.uint32)
    return tf.bitcast(tf.bitwise.bitwise_and(u, tf.constant(0xFFFF0000, tf.uint32)), tf.float32)


def fp16_round(x):
    import tensorflow as tf
    return tf.cast(tf.cast(tf.convert_to_tensor(x, tf.float32), tf.float16), tf.float32)


ROUNDING = {"bf16": bf16_round, "bf16-trunc": bf16_truncate, "fp16": fp16_round}


def rel_l2(a, b):
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def build(name):
    """The zoo model NAME rebuilt as tests/models/zoo.py builds it (same seed), not exported."""
    import keras
    import tf_keras
    rng = zoo._seed_all(name)
    if name == "resnet50":
        m = zoo._application(keras.applications.ResNet50, rng)
    elif name == "mobilenetv2":
        m = zoo._application(tf_keras.applications.MobileNetV2, rng)
    elif name == "cnn_keras3":
        m = zoo._cnn(keras, "cnn_keras3")
        zoo._randomize_bn(m, rng)
    elif name == "mlp_keras3":
        m = zoo._mlp_keras3()
    else:
        raise SystemExit("no builder for %r here" % name)
    return m


def _consumers(layer):
    out = []
    for node in getattr(layer, "_outbound_nodes", []):
        op = getattr(node, "operation", None) or getattr(node, "outbound_layer", None) or getattr(node, "layer", None)
        if op is not None:
            out.append(op)
    return out


class Emulator:
    """Overrides the layers' `call` (instance attributes; works for Keras 3 and tf-keras)."""

    def __init__(self, model):
        import tensorflow as tf
        self.tf = tf
        self.model = model
        self.layers = zoo._all_layers(model)
        self.scheme = SCHEMES["fp32"]
        self.trace = {}
        self.logits = None
        self.logit_scale = 1.0
        self.fold = {}  # conv/dense name -> its BN layer
        for l in self.layers:
            if type(l).__name__ in ("Conv2D", "DepthwiseConv2D", "Dense"):
                cons = _consumers(l)
                if len(cons) == 1 and type(cons[0]).__name__ == "BatchNormalization":
                    self.fold[l.name] = cons[0]
        self.folded_bns = {bn.name for bn in self.fold.values()}
        for l in self.layers:
            if l is model:
                continue
            kind = type(l).__name__
            orig = l.call
            if kind in ("Conv2D", "DepthwiseConv2D", "Dense"):
                l.call = self._wrap(l, self._linear(l))
            elif kind == "BatchNormalization":
                l.call = self._wrap(l, self._bn(l))
            elif kind == "Softmax":
                l.call = self._wrap(l, self._softmax(l, orig))
            elif kind not in ("InputLayer", "Functional", "Sequential"):
                l.call = self._wrap(l, orig)

    # -- per-layer functions ---------------------------------------------------------------------
    def _wrap(self, layer, fn):
        def call(inputs, *args, **kwargs):
            kwargs.pop("training", None)
            kwargs.pop("mask", None)
            y = fn(inputs, *args, **kwargs)
            if self.scheme[4] and type(layer).__name__ != "Softmax" and not self._is_final(layer):
                y = self._q(y)
            self.trace[layer.name] = y
            return y
        return call

    def _q(self, x):
        return ROUNDING[self.scheme[5]](x)

    def _is_final(self, layer):
        return getattr(layer, "activation", None) is not None and getattr(layer.activation, "__name__", "") == "softmax"

    def _params(self, layer):
        """(kernel, bias) in f32 as the scheme wants them (folded, rounded)."""
        fold, q_w, _, q_b, _, _ = self.scheme
        kernel = layer.depthwise_kernel if hasattr(layer, "depthwise_kernel") else layer.kernel
        w = kernel.numpy().astype(np.float64)
        b = layer.bias.numpy().astype(np.float64) if getattr(layer, "bias", None) is not None else None
        bn = self.fold.get(layer.name)
        if fold and bn is not None:
            s, t = self._bn_affine(bn)
            if type(layer).__name__ == "DepthwiseConv2D":   # kernel [kh, kw, c, mult]
                w = w * s.reshape(w.shape[2], w.shape[3])
            else:                                         # [..., out]
                w = w * s
            b = (b if b is not None else 0.0) * s + t
        w = w.astype(np.float32)
        b = b.astype(np.float32) if b is not None else None
        if q_w:
            w = self._q(w).numpy()
        if q_b and b is not None:
            b = self._q(b).numpy()
        return w, b

    @staticmethod
    def _bn_affine(bn):
        n = bn.moving_mean.shape[0]
        g = bn.gamma.numpy().astype(np.float64) if bn.gamma is not None else np.ones(n)
        be = bn.beta.numpy().astype(np.float64) if bn.beta is not None else np.zeros(n)
        s = g / np.sqrt(bn.moving_variance.numpy().astype(np.float64) + bn.epsilon)
        return s, be - bn.moving_mean.numpy().astype(np.float64) * s

    def _linear(self, layer):
        tf = self.tf
        kind = type(layer).__name__

        def fn(x, *a, **k):
            w, b = self._params(layer)
            if self.scheme[2]:
                x = self._q(x)
            if kind == "Dense":
                y = tf.matmul(x, w)
            elif kind == "Conv2D":
                y = tf.nn.conv2d(x, w, strides=(1,) + tuple(layer.strides) + (1,), padding=layer.padding.upper(),
                                 dilations=(1,) + tuple(layer.dilation_rate) + (1,))
            else:
                y = tf.nn.depthwise_conv2d(x, w, strides=(1,) + tuple(layer.strides) + (1,), padding=layer.padding.upper(),
                                           dilations=tuple(layer.dilation_rate))
            if b is not None:
                y = y + b
            if self._is_final(layer):
                self.logits = y
                return tf.nn.softmax(y * self.logit_scale)
            return layer.activation(y)
        return fn

    def _bn(self, layer):
        def fn(x, *a, **k):
            if self.scheme[0] and layer.name in self.folded_bns:
                return x
            s, t = self._bn_affine(layer)
            return x * s.astype(np.float32) + t.astype(np.float32)
        return fn

    def _softmax(self, layer, orig):
        def fn(x, *a, **k):
            self.logits = x
            return orig(x * self.logit_scale, *a, **k)
        return fn

    def run(self, scheme, x):
        self.scheme = SCHEMES[scheme]
        self.trace = {}
        self.logits = None
        y = self.model(x, training=False)
        return np.asarray(y), (np.asarray(self.logits) if self.logits is not None else None), \
            {k: np.asarray(v) for k, v in self.trace.items()}


def stage_names(model):
    names = [l.name for l in zoo._all_layers(model)]
    picks = [n for n in names if n.endswith("_out") and "block1_" not in n]  # ResNet: every block output
    last = {}
    for n in picks:
        last[n.split("_block")[0]] = n                                         # last block of each stage
    return list(last.values()) + [n for n in ("avg_pool", "global_average_pooling2d") if n in names]


def analyse(name, zoo_dir, seeds, logit_spreads, schemes):
    import tensorflow as tf
    model = build(name)
    emu = Emulator(model)
    out = {"model": name, "folded_layers": len(emu.fold), "seeds": seeds, "runs": []}
    # How much a BN amplifies its input's relative error: a conv output channel with mean m and
    # variance v (the BN's moving statistics) has rounding errors relative to sqrt(m^2 + v) (the
    # size of the values), and BN leaves sqrt(v): the error relative to the result grows by
    # sqrt(1 + m^2 / v).
    amp = []
    for bn in emu.fold.values():
        m = bn.moving_mean.numpy().astype(np.float64)
        v = bn.moving_variance.numpy().astype(np.float64)
        amp.append(np.sqrt(1 + m * m / (v + bn.epsilon)))
    if amp:
        amp = np.concatenate(amp)
        out["bn_mean_over_std_amplification"] = {p: float(np.percentile(amp, p)) for p in (50, 90, 99, 100)}
        print("BN amplification sqrt(1+mean^2/var) percentiles 50/90/99/100:", out["bn_mean_over_std_amplification"], flush=True)
    meta = None
    if zoo_dir and (Path(zoo_dir) / name / "saved_model.pb").is_file():
        meta = load_meta(zoo_dir, name)
    shape = (2,) + tuple(model.inputs[0].shape[1:])
    for seed in seeds:
        # the test's draw: np.random.default_rng([KILN_TEST_SEED, crc32(name)]), make_inputs()
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        if meta is not None:
            inputs = make_inputs(meta, rng)
            (in_name, x), = inputs.items()
        else:
            x = rng.standard_normal(shape).astype(np.float32)
        emu.logit_scale = 1.0
        ref_probs, ref_logits, ref_trace = emu.run("fp32", x)
        # Keras' own FP32 forward (the emulator's layers replaced by their originals is not needed:
        # compare with the exported SavedModel, what the test uses as its reference)
        run = {"seed": seed}
        if meta is not None:
            saved = list(tf_outputs(str(Path(zoo_dir) / name), meta, {in_name: x}).values())[0]
            run["emulator_fp32_vs_savedmodel"] = rel_l2(ref_probs, saved)
            ref_probs_tf = saved
        else:
            ref_probs_tf = ref_probs
        if ref_logits is not None:
            p = ref_probs.reshape(ref_probs.shape[0], -1)
            run["logit_std"] = float(np.std(ref_logits, axis=-1).mean())
            run["max_prob"] = [float(v) for v in p.max(axis=-1)]
        res = {}
        for scheme in schemes:
            if scheme == "fp32":
                continue
            probs, logits, trace = emu.run(scheme, x)
            r = {"probs": rel_l2(probs, ref_probs_tf)}
            if logits is not None:
                r["logits"] = rel_l2(logits, ref_logits)
            stages = stage_names(model)
            if stages and scheme in ("bf16-unfolded", "bf16-folded"):
                r["stages"] = {s: rel_l2(trace[s], ref_trace[s]) for s in stages if s in trace}
            res[scheme] = r
        run["schemes"] = res
        if logit_spreads and ref_logits is not None:
            tl = {}
            for spread in logit_spreads:
                emu.logit_scale = spread / run["logit_std"]
                p0, l0, _ = emu.run("fp32", x)
                p1, l1, _ = emu.run("bf16-folded", x)
                tl[str(spread)] = {"probs": rel_l2(p1, p0), "logits": rel_l2(l1, l0),
                                   "max_prob": [float(v) for v in p0.reshape(p0.shape[0], -1).max(axis=-1)]}
            emu.logit_scale = 1.0
            run["logit_spread"] = tl
        out["runs"].append(run)
        print(json.dumps(run, indent=None, default=float), flush=True)
    return out


def summarize(results):
    for r in results:
        print("\n== %s (%d conv/dense layers with a folded BN)" % (r["model"], r["folded_layers"]))
        runs = r["runs"]
        if "bn_mean_over_std_amplification" in r:
            print("BN channels' sqrt(1 + mean^2/var), percentiles 50/90/99/100: %s" % " ".join(
                "%.1f" % v for v in r["bn_mean_over_std_amplification"].values()))
        if "emulator_fp32_vs_savedmodel" in runs[0]:
            print("emulator (fp32) vs the zoo SavedModel: %s" % ", ".join("%.1e" % u["emulator_fp32_vs_savedmodel"] for u in runs))
        if "logit_std" in runs[0]:
            print("logit std %s, max softmax prob %s" % (
                ", ".join("%.2f" % u["logit_std"] for u in runs),
                ", ".join("%.2f" % v for u in runs for v in u["max_prob"])))
        print("%-14s %-28s %-28s" % ("scheme", "rel L2 probs (per seed)", "rel L2 logits (per seed)"))
        for scheme in runs[0]["schemes"]:
            pr = " ".join("%.2e" % u["schemes"][scheme]["probs"] for u in runs)
            lg = " ".join("%.2e" % u["schemes"][scheme].get("logits", float("nan")) for u in runs)
            v = [u["schemes"][scheme]["probs"] for u in runs]
            print("%-14s %-28s %-28s" % (scheme, pr, lg) if len(runs) <= 4 else
                  "%-14s probs min %.2e median %.2e max %.2e over %d seeds; logits max %.2e" % (
                      scheme, min(v), float(np.median(v)), max(v), len(v),
                      max(u["schemes"][scheme].get("logits", float("nan")) for u in runs)))
        st = runs[0]["schemes"]["bf16-folded"].get("stages")
        if st:
            print("bf16-folded, error after each stage (seed %s): %s" % (
                runs[0]["seed"], ", ".join("%s %.2e" % (k, v) for k, v in st.items())))
        if "logit_spread" in runs[0]:
            print("bf16-folded with the last Dense rescaled to a logit std of S (seed-wise probs / logits / max prob):")
            for s in runs[0]["logit_spread"]:
                print("  S=%-5s %s" % (s, "  ".join("%.2e / %.2e / %.2f" % (u["logit_spread"][s]["probs"], u["logit_spread"][s]["logits"],
                                                               max(u["logit_spread"][s]["max_prob"])) for u in runs)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["resnet50", "mobilenetv2", "cnn_keras3", "mlp_keras3"])
    ap.add_argument("--zoo", default=str(ROOT / "build" / "test_models"))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--logit-spreads", nargs="*", type=float, default=[1.0, 3.0, 10.0])
    ap.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=list(SCHEMES))
    ap.add_argument("--json", help="write all measurements here")
    args = ap.parse_args()
    if "bf16-folded" not in args.schemes:
        args.schemes.append("bf16-folded")
    results = [analyse(n, args.zoo, args.seeds, args.logit_spreads, args.schemes) for n in args.models]
    summarize(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
