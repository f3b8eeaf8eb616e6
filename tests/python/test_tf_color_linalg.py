"""TensorFlow's colour-space ops (tf.image.rgb_to_hsv / hsv_to_rgb / adjust_hue / adjust_saturation)
and dense linear algebra (tf.linalg.solve / inv / triangular_solve / cholesky / slogdet / det) in
generated SavedModels, run by `kiln run` and compared with TensorFlow. The colour ops are TF's own
formulas, so they match bit for bit; the linear algebra differs from TF's float Eigen kernels by
rounding only, bounded through each matrix's condition number (docs/testing.md says why)."""

import numpy as np
import pytest

from conftest import run_kiln, write_inputs
from kiln_checks import run_outputs

tf = pytest.importorskip("tensorflow")

FLOATS = {"half": tf.float16, "bfloat16": tf.bfloat16, "float": tf.float32, "double": tf.float64}


def save(module, path):
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.f})
    return path


def edge_colours():
    """Greys (black, white, mid), pure primaries and secondaries, two equal components (either
    side of a hue sector), hues next to the 0 / 1 wrap-around, then random colours."""
    edges = [[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1],
             [1, 0, 1], [0.8, 0.8, 0.2], [0.2, 0.8, 0.8], [0.8, 0.2, 0.8], [1, 0, 1e-6], [1, 1e-6, 0],
             [1, 0, 0.999], [0.3, 0.3, 0.30001], [0.25, 0.5, 0.75]]
    rng = np.random.default_rng(5)
    rand = rng.random((64 - len(edges), 3))
    return np.concatenate([np.array(edges, np.float64), rand]).reshape(2, 4, 8, 3).astype(np.float32)


def as_float32(x):
    return tf.cast(x, tf.float32) if x.dtype in (tf.float16, tf.bfloat16) else x


class Colours(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="rgb")])
    def f(self, rgb):
        out = {}
        for name, t in FLOATS.items():
            x = tf.cast(rgb, t)
            hsv = tf.image.rgb_to_hsv(x)
            out["hsv_" + name] = as_float32(hsv)
            # HSV values of every kind: the conversion's own output, and hues outside [0, 1].
            out["rgb_" + name] = as_float32(tf.image.hsv_to_rgb(hsv))
            out["rgb_wide_" + name] = as_float32(tf.image.hsv_to_rgb(x * tf.constant([2.5, 1, 1], t) - tf.constant([0.7, 0, 0], t)))
        for delta in (0.0, 0.35, -0.9, 0.999, -1.0):
            out["hue_%g" % delta] = tf.image.adjust_hue(rgb, delta)
        for scale in (0.0, 0.4, 1.0, 2.5):
            out["sat_%g" % scale] = tf.image.adjust_saturation(rgb, scale)
        # The raw ops with a run-time delta / scale (taken from one element: a reduction's
        # summation order would differ from TF's before the op is reached).
        flat = tf.reshape(rgb, [-1])
        out["hue_raw"] = tf.raw_ops.AdjustHue(images=rgb, delta=flat[100] - 0.7)
        out["sat_raw"] = tf.raw_ops.AdjustSaturation(images=rgb, scale=flat[101] * 1.7)
        return out


def test_colour_ops_match_tensorflow_bit_for_bit(kiln_bin, tmp_path):
    m = Colours()
    rgb = edge_colours()
    got = run_outputs(kiln_bin, save(m, tmp_path / "colours"), {"rgb": rgb}, tmp_path)
    ref = {k: v.numpy() for k, v in m.f(tf.constant(rgb)).items()}
    assert set(got) == set(ref)
    problems = []
    for name, r in sorted(ref.items()):
        o = got[name]
        if o.shape != r.shape or o.dtype != r.dtype:
            problems.append("%s: %s %s, TensorFlow %s %s" % (name, o.dtype, o.shape, r.dtype, r.shape))
        elif not np.array_equal(o, r, equal_nan=True):
            bad = np.argwhere(o != r)[:3]
            problems.append("%s differs at %s: %s vs TensorFlow %s" % (name, bad.tolist(), o[tuple(bad.T)], r[tuple(bad.T)]))
    assert not problems, problems
    # Not vacuous: hue turns move colours.
    assert not np.array_equal(got["hue_0.35"], rgb)


def well_conditioned(rng, batch, n):
    """Random matrices made diagonally dominant (condition numbers of a few units)."""
    a = rng.uniform(-1, 1, batch + (n, n))
    return a + np.eye(n) * n * np.sign(rng.uniform(-1, 1, batch + (n, 1)))


def rows_shuffled(rng, a):
    """The same matrices with their rows shuffled (same condition numbers), so that partial
    pivoting has to exchange rows and determinants take both signs."""
    out = a.copy()
    for idx in np.ndindex(a.shape[:-2]):
        out[idx] = a[idx][rng.permutation(a.shape[-2])]
    return out


class Linalg(tf.Module):
    def __init__(self, t):
        super().__init__()
        self.t = t

    @tf.function(input_signature=[tf.TensorSpec([None, None, 5, 5], tf.float64, name="a"),
                                  tf.TensorSpec([None, None, 5, 3], tf.float64, name="b"),
                                  tf.TensorSpec([None, None, 5, 5], tf.float64, name="tri"),
                                  tf.TensorSpec([None, None, 5, 5], tf.float64, name="spd")])
    def f(self, a, b, tri, spd):
        a, b, tri, spd = tf.cast(a, self.t), tf.cast(b, self.t), tf.cast(tri, self.t), tf.cast(spd, self.t)
        sign, logdet = tf.linalg.slogdet(a)
        return {
            "solve": tf.linalg.solve(a, b),
            "solve_adjoint": tf.linalg.solve(a, b, adjoint=True),
            "inv": tf.linalg.inv(a),
            "inv_adjoint": tf.raw_ops.MatrixInverse(input=a, adjoint=True),
            "tri_lower": tf.linalg.triangular_solve(tri, b, lower=True),
            "tri_upper_adjoint": tf.linalg.triangular_solve(tri, b, lower=False, adjoint=True),
            # The matrix's batch of [2, 3] broadcasts against one right-hand side.
            "tri_broadcast": tf.linalg.triangular_solve(tri, b[0, 0], lower=False),
            "cholesky": tf.linalg.cholesky(spd),
            "sign": sign,
            "logdet": logdet,
            "det": tf.linalg.det(a),
        }


def condition_numbers(name, a, tri, spd):
    """The condition number (2-norm, in double) of each matrix the output `name` depends on."""
    if name == "cholesky":
        return np.linalg.cond(spd)
    if name.startswith("tri"):
        upper = "upper" in name or name == "tri_broadcast"
        return np.linalg.cond(np.triu(tri) if upper else np.tril(tri))
    return np.linalg.cond(a)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64], ids=lambda t: t.name)
def test_linalg_matches_tensorflow_within_condition_bound(kiln_bin, tmp_path, dtype):
    rng = np.random.default_rng(12)
    tri = well_conditioned(rng, (2, 3), 5)
    a = rows_shuffled(rng, tri)
    b = rng.uniform(-1, 1, (2, 3, 5, 3))
    c = rng.uniform(-1, 1, (2, 3, 5, 5))
    spd = c @ np.swapaxes(c, -1, -2) + 5 * np.eye(5)
    m = Linalg(dtype)
    got = run_outputs(kiln_bin, save(m, tmp_path / "linalg"), {"a": a, "b": b, "tri": tri, "spd": spd}, tmp_path)
    ref = {k: v.numpy() for k, v in m.f(tf.constant(a), tf.constant(b), tf.constant(tri), tf.constant(spd)).items()}
    assert set(got) == set(ref)
    eps = np.finfo(dtype.as_numpy_dtype).eps
    n = 5
    problems = []
    for name, r in sorted(ref.items()):
        o = got[name]
        if o.shape != r.shape or o.dtype != r.dtype:
            problems.append("%s: %s %s, TensorFlow %s %s" % (name, o.dtype, o.shape, r.dtype, r.shape))
            continue
        if name == "sign":
            if not np.array_equal(o, r):
                problems.append("sign differs: %s vs %s" % (o, r))
            continue
        # Both results carry a backward error of at most about n * eps (partial pivoting on these
        # matrices has growth ~1), so each is within n * eps * cond of the exact answer; the
        # two together within twice that. log|det| moves by at most n * eps * cond absolutely.
        cond = float(np.max(condition_numbers(name, a, tri, spd)))
        bound = 2 * n * eps * cond
        o64, r64 = o.astype(np.float64), r.astype(np.float64)
        if name == "logdet":
            err = float(np.max(np.abs(o64 - r64)))
        else:
            err = float(np.linalg.norm(o64 - r64) / np.linalg.norm(r64))
        if not err <= bound:
            problems.append("%s: error %.3g > bound %.3g (cond %.3g)" % (name, err, bound, cond))
        if dtype == tf.float32 and name != "logdet" and not err <= 1e-5:
            problems.append("%s: relative L2 error %.3g > 1e-5" % (name, err))
    assert not problems, problems
    # Not vacuous: determinants of both signs occur.
    assert set(np.unique(ref["sign"])) == {-1.0, 1.0}


def test_singular_matrix_fails_as_in_tensorflow(kiln_bin, tmp_path):
    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([2, 2], tf.float32, name="a")])
        def f(self, a):
            return {"x": tf.linalg.solve(a, tf.ones([2, 1])), "inv": tf.linalg.inv(a)}

    m = M()
    singular = np.array([[1, 2], [2, 4]], np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not invertible"):
        m.f(tf.constant(singular))
    proc = run_kiln(kiln_bin, ["run", save(m, tmp_path / "solve")] + write_inputs({"a": singular}, tmp_path / "in"))
    assert proc.returncode != 0 and "not invertible" in proc.stderr, proc.stderr
    assert "MatrixSolve" in proc.stderr or "MatrixInverse" in proc.stderr, proc.stderr
    # An invertible matrix runs.
    got = run_outputs(kiln_bin, tmp_path / "solve", {"a": np.array([[2, 1], [1, 3]], np.float32)}, tmp_path)
    np.testing.assert_allclose(got["x"].ravel(), [0.4, 0.2], rtol=1e-6)


def test_not_positive_definite_gives_nan_as_in_tensorflow(kiln_bin, tmp_path):
    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([2, 2, 2], tf.float32, name="a")])
        def f(self, a):
            return {"l": tf.linalg.cholesky(a)}

    m = M()
    # The first matrix is not positive definite, the second is.
    x = np.array([[[1, 2], [2, 1]], [[4, 2], [2, 3]]], np.float32)
    ref = m.f(tf.constant(x))["l"].numpy()
    got = run_outputs(kiln_bin, save(m, tmp_path / "chol"), {"a": x}, tmp_path)["l"]
    lower = np.tril(np.ones((2, 2), bool))
    # TF fills the failed matrix's lower triangle with NaN and leaves its upper one unset.
    assert np.isnan(ref[0][lower]).all() and np.isnan(got[0][lower]).all(), (ref, got)
    np.testing.assert_array_equal(got[1], ref[1])
