"""Hostile and broken models made with TensorFlow: nesting beyond Kiln's limits is a clear error
(exit 1, a message naming the limit), never a stack overflow or a hang."""

import sys

import numpy as np
import pytest

from conftest import run_kiln, write_inputs

tf = pytest.importorskip("tensorflow")


def _nested_conds(path, depth):
    # Each tf.cond inside a tf.function is an If node whose branches are library functions: `depth`
    # conds inside each other's then-branch nest `depth` functions deep.
    def nest(x, d):
        if d == 0:
            return x + 1.0
        return tf.cond(x[0] > -1e9, lambda: nest(x, d - 1), lambda: x)

    module = tf.Module()
    module.f = tf.function(lambda x: nest(x, depth), input_signature=[tf.TensorSpec([2], tf.float32)],
                           autograph=False)
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, 100000))  # TensorFlow's tracing recurses per nested cond
    try:
        tf.saved_model.save(module, str(path), signatures={"serving_default": module.f})
    finally:
        sys.setrecursionlimit(old_limit)


def test_branches_nested_beyond_the_limit_are_refused(kiln_bin, tmp_path):
    _nested_conds(tmp_path / "deep", 80)
    x = np.array([1.0, 2.0], np.float32)
    proc = run_kiln(kiln_bin, ["run", tmp_path / "deep"] + write_inputs({"x": x}, tmp_path / "in"))
    assert proc.returncode == 1, proc.stderr
    assert "nest more than 64 deep" in proc.stderr, proc.stderr


def test_branches_nested_within_the_limit_run(kiln_bin, tmp_path):
    _nested_conds(tmp_path / "ok", 8)
    x = np.array([1.0, 2.0], np.float32)
    proc = run_kiln(kiln_bin, ["run", tmp_path / "ok"] + write_inputs({"x": x}, tmp_path / "in") +
                    ["--output-dir", tmp_path / "out"])
    assert proc.returncode == 0, proc.stderr
    out = np.load(next((tmp_path / "out").glob("*.npy")))
    np.testing.assert_allclose(out, x + 1.0)
