"""TensorFlow's special functions (tf.math lgamma, digamma, erfinv, ndtri, bessel_i0e/i1e, igamma,
igammac, zeta, polygamma, betainc) in generated SavedModels, run by `kiln run` and compared with TensorFlow
over grids of values that include the poles, the domain ends and points outside the domain, in every
dtype TensorFlow registers each op for. Non-finite results must be the same (NaN where TensorFlow
gives NaN, infinities with their sign); finite ones within the dtype's bound (docs/testing.md)."""

import numpy as np
import pytest

from kiln_checks import run_outputs

tf = pytest.importorskip("tensorflow")

INF, NAN = np.inf, np.nan
FLOATS = {"half": tf.float16, "bfloat16": tf.bfloat16, "float": tf.float32, "double": tf.float64}
# Relative L2 error of the finite results, per dtype (docs/testing.md): float64 both sides compute in
# double with series / continued fractions accurate to some ulp, but TensorFlow's erfinv and ndtri
# lose up to ~1e-10 relative in the tails; float32 and below are our double result rounded once
# against TensorFlow's float algorithms (a few ulp of float), so the dtype's rounding dominates.
BOUNDS = {"double": 1e-12, "float": 1e-5, "half": 2e-3, "bfloat16": 1.6e-2}

UNARY = {
    "lgamma": (tf.math.lgamma, [-INF, -5.5, -3, -2.5, -1, -0.3, 0, 1e-3, 0.5, 1, 2, 3.7, 10, 100, 1e4, INF, NAN]),
    "digamma": (tf.math.digamma, [-INF, -5.5, -3, -2.5, -1, -0.5, -0.3, 0, 1e-3, 0.5, 1, 1.4616, 2, 3.7, 9.9, 10,
                                  100, 1e4, INF, NAN]),
    "erfinv": (tf.math.erfinv, [-1.5, -1, -0.999, -0.9, -0.5, -0.1, -1e-6, 0, 1e-6, 0.3, 0.5, 0.7, 0.99, 0.9999, 1,
                                1.2, NAN]),
    "ndtri": (tf.math.ndtri, [-0.1, 0, 1e-30, 1e-7, 0.01, 0.1, 0.25, 0.3, 0.5, 0.6, 0.75, 0.9, 0.99, 1 - 1e-7, 1, 1.1,
                              NAN]),
    "bessel_i0e": (tf.math.bessel_i0e, [-INF, -700, -100, -25.1, -5, -1, -1e-3, 0, 0.5, 1, 8, 24.9, 25, 30, 100, INF,
                                        NAN]),
    "bessel_i1e": (tf.math.bessel_i1e, [-INF, -700, -100, -25.1, -5, -1, -1e-3, 0, 0.5, 1, 8, 24.9, 25, 30, 100, INF,
                                        NAN]),
}
# Binary ops over an outer product (a [A, 1] against x [X]), which exercises broadcasting too.
BINARY = {
    "igamma": (tf.math.igamma, [-1, 0, 0.1, 0.5, 1, 2.5, 10, 50, INF, NAN],
               [-1, 0, 1e-3, 0.5, 1, 2, 5, 20, 100, INF, NAN]),
    "igammac": (tf.math.igammac, [-1, 0, 0.1, 0.5, 1, 2.5, 10, 50, INF, NAN],
                [-1, 0, 1e-3, 0.5, 1, 2, 5, 20, 100, INF, NAN]),
    "zeta": (tf.math.zeta, [0.5, 1, 1.5, 2, 3, 4, 4.5, 10, NAN], [-2, -1.5, -0.5, 0, 0.5, 1, 2.5, 10, 100]),
    "polygamma": (tf.math.polygamma, [-1, 0, 1, 1.5, 2, 3, 4], [-2.5, -1, 0, 0.3, 1, 2.5, 10, 50]),
}
# Betainc(a, b, x) over the outer product of three grids (TensorFlow's Betainc does not broadcast:
# the grids are broadcast to one shape in the graph).
BETAINC = ([-1, 0, 0.5, 1, 2.5, 10, 100, NAN], [-1, 0, 0.3, 1, 4, 50, NAN],
           [-0.5, 0, 1e-6, 0.1, 0.3, 0.5, 0.7, 0.9, 0.999, 1, 1.5, NAN])

# The model's inputs, one grid per unary op, two per binary op, three for Betainc.
GRIDS = list(UNARY) + ["%s_%s" % (op, arg) for op in BINARY for arg in ("a", "x")] + ["betainc_a", "betainc_b",
                                                                                       "betainc_x"]


def registered(fn, dtype, arity):
    """Whether TensorFlow has a CPU kernel of the op for `dtype`."""
    try:
        fn(*[tf.constant([0.5], dtype)] * arity)
        return True
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError, TypeError):
        return False


def problems_of(name, got, ref, bound):
    got, ref = got.astype(np.float64), ref.astype(np.float64)
    if got.shape != ref.shape:
        return ["%s: shape %s, TensorFlow %s" % (name, got.shape, ref.shape)]
    finite = np.isfinite(ref)
    same_nonfinite = np.array_equal(np.isnan(got), np.isnan(ref)) and np.array_equal(got[np.isinf(ref)],
                                                                                      ref[np.isinf(ref)])
    if not same_nonfinite:
        bad = np.argwhere(~finite & ~((got == ref) | (np.isnan(got) & np.isnan(ref))))
        return ["%s: non-finite results differ at %s: %s vs TensorFlow %s" %
                (name, bad[:4].tolist(), got[tuple(bad[:4].T)], ref[tuple(bad[:4].T)])]
    if not np.isfinite(got[finite]).all():
        return ["%s: non-finite where TensorFlow is finite" % name]
    err = np.linalg.norm(got[finite] - ref[finite]) / max(np.linalg.norm(ref[finite]), 1e-30)
    return ["%s: relative L2 error %.3g > %.3g" % (name, err, bound)] if err > bound else []


class Special(tf.Module):
    """Every special function for every dtype TensorFlow registers it for; the inputs are float64 grids
    cast to the dtype in the graph, the outputs cast back to float64 (exact: a widening cast)."""

    def __init__(self):
        super().__init__()
        self.cases = []  # (output name, op name, dtype name)
        for op, (fn, _) in UNARY.items():
            self.cases += [("%s_%s" % (op, t), op, t) for t, d in FLOATS.items() if registered(fn, d, 1)]
        for op, (fn, _, _) in BINARY.items():
            self.cases += [("%s_%s" % (op, t), op, t) for t, d in FLOATS.items() if registered(fn, d, 2)]
        self.cases += [("betainc_%s" % t, "betainc", t) for t, d in FLOATS.items() if registered(tf.math.betainc, d, 3)]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float64, name=name) for name in GRIDS])
    def f(self, *grids):
        grid = dict(zip(GRIDS, grids))
        out = {}
        for name, op, t in self.cases:
            d = FLOATS[t]
            if op == "betainc":
                a, b, x = (tf.cast(grid["betainc_" + arg], d) for arg in "abx")
                shape = tf.stack([tf.size(a), tf.size(b), tf.size(x)])
                y = tf.math.betainc(tf.broadcast_to(a[:, None, None], shape), tf.broadcast_to(b[None, :, None], shape),
                                    tf.broadcast_to(x[None, None, :], shape))
            elif op in UNARY:
                y = UNARY[op][0](tf.cast(grid[op], d))
            else:
                y = BINARY[op][0](tf.cast(grid[op + "_a"], d)[:, None], tf.cast(grid[op + "_x"], d))
            out[name] = tf.cast(y, tf.float64)
        return out


def test_special_functions_match_tensorflow(kiln_bin, tmp_path):
    m = Special()
    tf.saved_model.save(m, str(tmp_path / "special"), signatures={"serving_default": m.f})
    inputs = {op: np.array(values, np.float64) for op, (_, values) in UNARY.items()}
    for op, (_, a, x) in BINARY.items():
        inputs[op + "_a"], inputs[op + "_x"] = np.array(a, np.float64), np.array(x, np.float64)
    for arg, values in zip("abx", BETAINC):
        inputs["betainc_" + arg] = np.array(values, np.float64)
    got = run_outputs(kiln_bin, tmp_path / "special", inputs, tmp_path)
    ref = {k: v.numpy() for k, v in m.f(*[tf.constant(inputs[name]) for name in GRIDS]).items()}
    assert set(got) == set(ref)
    # Each op in float32 and float64 at least (TensorFlow registers every one of them for those).
    assert {(op, t) for _, op, t in m.cases} >= {(op, t) for op in list(UNARY) + list(BINARY) + ["betainc"]
                                                 for t in ("float", "double")}
    problems = []
    for name, op, t in m.cases:
        problems += problems_of(name, got[name], ref[name], BOUNDS[t])
    assert not problems, "\n".join(problems)
