"""TensorFlow's stateless random ops (Philox) and ImageProjectiveTransformV2/V3 in generated
SavedModels, run by `kiln run` and compared with TensorFlow: uniform and integer draws, the key and
counter, and the image transforms bit for bit; normal, truncated normal and gamma draws within 1e-6
(docs/testing.md says why)."""

import numpy as np
import pytest

from conftest import run_kiln, write_inputs
from kiln_checks import run_outputs

tf = pytest.importorskip("tensorflow")

FLOATS = {"half": tf.float16, "bfloat16": tf.bfloat16, "float": tf.float32, "double": tf.float64}
# Odd sizes leave the last Philox block part-used; 2x3x5 = 30 is not a multiple of 4 either.
SHAPES = {"s7": [7], "s1": [1], "s2x3x5": [2, 3, 5], "s64": [64]}


def as_float32(x):
    # half and bfloat16 compare exactly as float32 (a widening cast).
    return tf.cast(x, tf.float32) if x.dtype in (tf.float16, tf.bfloat16) else x


class Draws(tf.Module):
    """Every stateless draw TensorFlow's CPU kernels support, from a run-time seed."""

    @tf.function(input_signature=[tf.TensorSpec([2], tf.int64, name="seed")])
    def f(self, seed):
        seed32 = tf.cast(seed, tf.int32)
        out = {}
        for tname, t in FLOATS.items():
            for sname, shape in SHAPES.items():
                out["uniform_%s_%s" % (tname, sname)] = tf.random.stateless_uniform(shape, seed, dtype=t)
                out["normal_%s_%s" % (tname, sname)] = tf.random.stateless_normal(shape, seed, dtype=t)
                out["truncated_%s_%s" % (tname, sname)] = tf.random.stateless_truncated_normal(shape, seed, dtype=t)
            # The V1 forms, with int32 and int64 seeds.
            out["v1_uniform_%s" % tname] = tf.raw_ops.StatelessRandomUniform(shape=[9], seed=seed32, dtype=t)
            out["v1_normal_%s" % tname] = tf.raw_ops.StatelessRandomNormal(shape=[9], seed=seed, dtype=t)
            out["v1_truncated_%s" % tname] = tf.raw_ops.StatelessTruncatedNormal(shape=tf.constant([3, 3], tf.int64),
                                                                                 seed=seed32, dtype=t)
        for t, lo, hi in [(tf.int32, -5, 17), (tf.int64, -(2**40), 2**41 + 3), (tf.int32, -(2**31), 2**31 - 1)]:
            name = "%s_%d" % (t.name, abs(lo) % 1000)
            out["int_" + name] = tf.random.stateless_uniform([11], seed, minval=lo, maxval=hi, dtype=t)
            out["v1_int_" + name] = tf.raw_ops.StatelessRandomUniformInt(shape=[5], seed=seed, minval=tf.constant(lo, t),
                                                                          maxval=tf.constant(hi, t))
        for t in (tf.int32, tf.int64, tf.uint32, tf.uint64):
            out["fullint_" + t.name] = tf.random.stateless_uniform([7], seed, minval=None, maxval=None, dtype=t)
            out["v1_fullint_" + t.name] = tf.raw_ops.StatelessRandomUniformFullInt(shape=[5], seed=seed32, dtype=t)
        for tname in ("half", "float", "double"):
            t = FLOATS[tname]
            # alpha 1 (the exponential), below 1 (the u^(1/alpha) factor), above 1; one per column.
            alpha = tf.constant([1.0, 0.3, 2.5, 20.0, 0.05], t)
            out["gamma_%s" % tname] = tf.random.stateless_gamma([3, 5], seed, alpha=alpha, dtype=t)
            out["v1_gamma_%s" % tname] = tf.raw_ops.StatelessRandomGammaV2(shape=[2, 2, 5], seed=seed32, alpha=alpha)
        key, counter, alg = tf.raw_ops.StatelessRandomGetKeyCounterAlg(seed=seed32)
        out["key"], out["counter"], out["alg"] = key, counter, alg
        out["get_alg"] = tf.raw_ops.StatelessRandomGetAlg()
        # Explicit Philox (1) with a counter longer than Philox needs.
        out["philox_explicit"] = tf.raw_ops.StatelessRandomUniformV2(
            shape=[6], key=key, counter=tf.concat([counter, counter], 0), alg=1, dtype=tf.float32)
        return {k: as_float32(v) for k, v in out.items()}


@pytest.mark.parametrize("seed", [[0, 0], [12345, -7], [-1, 2**40 + 11], [2**31 - 1, -(2**31)]])
def test_stateless_random_matches_tensorflow(kiln_bin, tmp_path, seed):
    m = Draws()
    tf.saved_model.save(m, str(tmp_path / "draws"), signatures={"serving_default": m.f})
    seed = np.array(seed, np.int64)
    got = run_outputs(kiln_bin, tmp_path / "draws", {"seed": seed}, tmp_path)
    ref = {k: v.numpy() for k, v in m.f(tf.constant(seed)).items()}
    assert set(got) == set(ref)
    problems = []
    for name, r in sorted(ref.items()):
        o = got[name]
        if o.shape != r.shape or o.dtype != r.dtype:
            problems.append("%s: %s %s, TensorFlow %s %s" % (name, o.dtype, o.shape, r.dtype, r.shape))
        elif "normal" in name or "truncated" in name or "gamma" in name:
            # Box-Muller's log, sqrt and sincos (and gamma's log, log1p, pow): see docs/testing.md.
            err = float(np.max(np.abs(o.astype(np.float64) - r) / np.maximum(1.0, np.abs(r))))
            if err > 1e-6:
                problems.append("%s: error %.3g" % (name, err))
        elif not np.array_equal(o, r):
            problems.append("%s differs: %s vs TensorFlow %s" % (name, o.ravel()[:6], r.ravel()[:6]))
    assert not problems, problems
    # Not vacuous: the draws are not constant.
    assert np.unique(got["uniform_float_s64"]).size > 32


def test_stateless_random_with_threefry_is_unsupported(kiln_bin, tmp_path):
    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([2], tf.int64, name="seed")])
        def f(self, seed):
            key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed)
            return {"y": tf.raw_ops.StatelessRandomUniformV2(shape=[4], key=key, counter=counter, alg=2)}

    m = M()
    tf.saved_model.save(m, str(tmp_path / "tf"), signatures={"serving_default": m.f})
    proc = run_kiln(kiln_bin, ["run", tmp_path / "tf"] + write_inputs({"seed": np.array([1, 2], np.int64)}, tmp_path / "in"))
    assert proc.returncode == 1 and "algorithm id 2" in proc.stderr and "ThreeFry" in proc.stderr, proc.stderr


IMAGE_DTYPES = [tf.uint8, tf.int32, tf.int64, tf.float16, tf.bfloat16, tf.float32, tf.float64]


@pytest.mark.parametrize("dtype", IMAGE_DTYPES, ids=lambda t: t.name)
def test_image_projective_transform_matches_tensorflow(kiln_bin, tmp_path, dtype):
    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.float32, name="x"),
                                      tf.TensorSpec([None, 8], tf.float32, name="t")])
        def f(self, x, t):
            x = tf.cast(x, dtype)
            out = {}
            for interp in ["NEAREST", "BILINEAR"]:
                for mode in ["REFLECT", "WRAP", "CONSTANT", "NEAREST"]:
                    for oh, ow in [(7, 9), (1, 1)]:
                        out["%s_%s_%dx%d" % (interp, mode, oh, ow)] = tf.raw_ops.ImageProjectiveTransformV3(
                            images=x, transforms=t, output_shape=[oh, ow], fill_value=-2.5, interpolation=interp,
                            fill_mode=mode)
                out["v2_%s" % interp] = tf.raw_ops.ImageProjectiveTransformV2(
                    images=x, transforms=t[:1], output_shape=[5, 4], interpolation=interp, fill_mode="REFLECT")
                # A single row or column: the len <= 1 cases of REFLECT and WRAP.
                for mode in ["REFLECT", "WRAP"]:
                    out["row_%s_%s" % (interp, mode)] = tf.raw_ops.ImageProjectiveTransformV3(
                        images=x[:, :1], transforms=t, output_shape=[3, 5], fill_value=0.0, interpolation=interp,
                        fill_mode=mode)
            return {k: as_float32(v) for k, v in out.items()}

    m = M()
    tf.saved_model.save(m, str(tmp_path / "ipt"), signatures={"serving_default": m.f})
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (2, 6, 8, 3)) if dtype == tf.uint8 else rng.standard_normal((2, 6, 8, 3)) * 40
    x = x.astype(np.float32)
    # Rotations, shears, zooms, translations far outside the image, and a perspective row.
    t = np.array([[1.3, 0.4, -3.5, -0.3, 0.9, 2.5, 0.01, -0.02],
                  [0.5, -0.8, 30.2, 0.7, 1.1, -27.3, 0.0, 0.0]], np.float32)
    got = run_outputs(kiln_bin, tmp_path / "ipt", {"x": x, "t": t}, tmp_path)
    ref = m.f(tf.constant(x), tf.constant(t))
    differ = [k for k, v in ref.items() if not np.array_equal(got[k], v.numpy())]
    assert not differ, differ
    # Not vacuous: the fill value and input pixels both appear.
    assert np.any(got["NEAREST_CONSTANT_7x9"] != got["NEAREST_CONSTANT_7x9"].flat[0])


def test_reads_after_variable_writes_see_the_written_value(kiln_bin, tmp_path):
    """Within one call, a read ordered after AssignVariableOp / AssignAddVariableOp /
    AssignSubVariableOp sees the new value (TensorFlow's first call from the saved state)."""

    class M(tf.Module):
        def __init__(self):
            super().__init__()
            self.v = tf.Variable([1.0, 2.0])
            self.w = tf.Variable([10.0, 20.0])

        @tf.function(input_signature=[tf.TensorSpec([2], tf.float32, name="x")])
        def f(self, x):
            a = self.v.read_value() * 2
            self.v.assign(self.v + x)
            b = self.v.read_value()
            self.v.assign_add(x * 3)
            self.w.assign_sub(x)  # another variable: its writes do not touch v
            c = self.v.read_value() + self.w.read_value()
            self.v.assign_sub([0.5, 0.5])
            d = self.v.read_value()
            return {"a": a, "b": b, "c": c, "d": d}

    m = M()
    tf.saved_model.save(m, str(tmp_path / "vars"), signatures={"serving_default": m.f})
    x = np.array([0.25, -4.0], np.float32)
    got = run_outputs(kiln_bin, tmp_path / "vars", {"x": x}, tmp_path)
    ref = tf.saved_model.load(str(tmp_path / "vars")).signatures["serving_default"](x=tf.constant(x))
    for name in "abcd":
        np.testing.assert_array_equal(got[name], ref[name].numpy(), err_msg=name)
    assert not np.array_equal(got["b"], got["a"] / 2)  # not vacuous: the writes changed what b reads


def test_keras_random_layers_match_the_first_call(kiln_bin, tmp_path):
    """Data augmentation kept in a model (Keras 3 layers train by default): each layer's seed state
    is read, used and advanced in the serving call; Kiln gives TensorFlow's first call."""
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(3)
    L = keras.layers
    inp = keras.Input((16, 12, 3), name="x")
    y = L.RandomFlip()(inp)
    y = L.RandomRotation(0.3, fill_mode="constant", fill_value=0.25)(y)
    y = L.RandomZoom(0.3, 0.2, interpolation="nearest")(y)
    y = L.RandomTranslation(0.2, 0.2, fill_mode="wrap")(y)
    y = L.RandomContrast(0.4)(y)
    keras.Model(inp, y).export(str(tmp_path / "aug"), verbose=False)
    x = np.random.default_rng(4).uniform(0, 1, (4, 16, 12, 3)).astype(np.float32)
    sig = tf.saved_model.load(str(tmp_path / "aug")).signatures["serving_default"]
    (name, first), = sig(x=tf.constant(x)).items()
    (_, second), = sig(x=tf.constant(x)).items()
    assert not np.array_equal(first.numpy(), second.numpy())  # the seed state advances per call
    got = run_outputs(kiln_bin, tmp_path / "aug", {"x": x}, tmp_path)[name]
    ref = first.numpy()
    err = np.linalg.norm(got.astype(np.float64) - ref) / np.linalg.norm(ref)
    print("relative L2 error %.3g" % err)
    assert err <= 1e-5, err
    assert not np.allclose(got, x)  # not vacuous: the layers changed the images


def test_variables_given_to_other_ops_after_a_write_are_refused(kiln_bin, tmp_path):
    """ResourceGather and a function call given a variable after a write of it would read the saved
    value, not the written one: Kiln refuses them and says why."""

    class M(tf.Module):
        def __init__(self):
            super().__init__()
            self.e = tf.Variable(np.arange(12, dtype=np.float32).reshape(4, 3))
            self.v = tf.Variable([1.0, 2.0])

        @tf.function
        def inner(self, x):
            return self.v.read_value() + x

        @tf.function(input_signature=[tf.TensorSpec([2], tf.int32, name="ids"), tf.TensorSpec([2], tf.float32, name="x")])
        def f(self, ids, x):
            self.e.assign(self.e * 2)
            self.v.assign(self.v * 3)
            return {"g": tf.gather(self.e, ids), "c": self.inner(x)}

    m = M()
    tf.saved_model.save(m, str(tmp_path / "stale"), signatures={"serving_default": m.f})
    inputs = {"ids": np.array([1, 3], np.int32), "x": np.array([0.5, 0.5], np.float32)}
    proc = run_kiln(kiln_bin, ["run", tmp_path / "stale"] + write_inputs(inputs, tmp_path / "in"))
    assert proc.returncode == 1, proc.stderr
    for op in ("ResourceGather", "StatefulPartitionedCall"):
        assert any(op in line and "after a write of it in the same call" in line for line in proc.stderr.splitlines()), proc.stderr


def test_a_read_after_a_function_that_writes_the_variable_is_refused(kiln_bin, tmp_path):
    """Kiln does not follow writes out of a called function: a read of a variable after a call given
    it, whose function writes variables, is refused; a read of another variable is not."""

    class M(tf.Module):
        def __init__(self):
            super().__init__()
            self.v = tf.Variable([1.0, 2.0])
            self.w = tf.Variable([5.0, 6.0])

        @tf.function
        def bump(self, x):
            self.v.assign(self.v + x)
            return x * 2

        @tf.function(input_signature=[tf.TensorSpec([2], tf.float32, name="x")])
        def f(self, x):
            return {"y": self.bump(x) + self.v.read_value()}

        @tf.function(input_signature=[tf.TensorSpec([2], tf.float32, name="x")])
        def g(self, x):
            return {"y": self.bump(x) + self.w.read_value()}

    m = M()
    tf.saved_model.save(m, str(tmp_path / "m"), signatures={"serving_default": m.f, "g": m.g})
    args = write_inputs({"x": np.array([0.5, 0.5], np.float32)}, tmp_path / "in")
    proc = run_kiln(kiln_bin, ["run", tmp_path / "m"] + args)
    assert proc.returncode == 1 and "ReadVariableOp" in proc.stderr and "Kiln does not follow writes out of a function" in proc.stderr, proc.stderr
    proc = run_kiln(kiln_bin, ["run", tmp_path / "m", "--signature-key", "g", "--output-dir", tmp_path / "out"] + args)
    assert proc.returncode == 0, proc.stderr
    ref = tf.saved_model.load(str(tmp_path / "m")).signatures["g"](x=tf.constant([0.5, 0.5]))["y"].numpy()
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "y.npy"), ref)


def test_a_read_after_a_write_kiln_cannot_import_names_the_op(kiln_bin, tmp_path):
    class M(tf.Module):
        def __init__(self):
            super().__init__()
            self.v = tf.Variable(tf.zeros([2, 3]))
            self.e = tf.Variable(np.arange(12, dtype=np.float32).reshape(4, 3))

        @tf.function(input_signature=[tf.TensorSpec([2, 3], tf.float32, name="x")])
        def f(self, x):
            self.v.assign(tf.math.special.fresnel_cos(x))  # an op Kiln has no importer for
            self.e.assign(tf.math.special.fresnel_cos(self.e))
            return {"y": self.v.read_value() * 2, "g": tf.gather(self.e, [0, 2])}

    m = M()
    tf.saved_model.save(m, str(tmp_path / "m"), signatures={"serving_default": m.f})
    args = write_inputs({"x": np.full((2, 3), 0.5, np.float32)}, tmp_path / "in")
    proc = run_kiln(kiln_bin, ["run", tmp_path / "m"] + args)
    assert proc.returncode == 1 and "FresnelCos x2" in proc.stderr and "ReadVariableOp" in proc.stderr, proc.stderr
    assert "ResourceGather" not in proc.stderr, proc.stderr  # its reason is the write's: FresnelCos
