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


def _onnx_model(path, node, inputs, output_type):
    import onnx
    from onnx import helper
    graph = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("y", output_type, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


@pytest.mark.parametrize("case", ["range", "tile"])
def test_sizes_a_run_computes_are_checked(kiln_bin, tmp_path, case):
    # Sizes computed at run time from input values (Range's limit, Tile's repeats) that wrap around
    # or exceed memory are clear errors, not a segfault or an impossible shape with exit 0.
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    if case == "range":
        _onnx_model(tmp_path / "m.onnx", helper.make_node("Range", ["start", "limit", "delta"], ["y"]),
                    [helper.make_tensor_value_info(n, TensorProto.INT64, []) for n in ("start", "limit", "delta")],
                    TensorProto.INT64)
        inputs = {"start": np.array(0, np.int64), "limit": np.array(2 ** 62, np.int64), "delta": np.array(1, np.int64)}
        why = "memory"
    else:
        _onnx_model(tmp_path / "m.onnx", helper.make_node("Tile", ["x", "r"], ["y"]),
                    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2]),
                     helper.make_tensor_value_info("r", TensorProto.INT64, [2])], TensorProto.FLOAT)
        inputs = {"x": np.ones((2, 2), np.float32), "r": np.array([2 ** 62, 4], np.int64)}
        why = "overflow"
    proc = run_kiln(kiln_bin, ["run", tmp_path / "m.onnx"] + write_inputs(inputs, tmp_path / "in") +
                    ["--output-dir", tmp_path / "out"])
    assert proc.returncode == 1, proc.stderr
    assert why in proc.stderr, proc.stderr


def _kiln_with_env(kiln_bin, args, env_extra):
    import os
    import subprocess
    env = dict(os.environ, **env_extra)
    return subprocess.run([str(kiln_bin)] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, errors="replace", timeout=300, env=env)


def test_max_tensor_bytes_bounds_what_a_model_may_ask_for(kiln_bin, tmp_path):
    # A 4 MB weight under a 1 MB limit (KILN_MAX_TENSOR_BYTES): a clear error before allocating,
    # and the same model runs without the limit.
    import onnx
    from onnx import helper, numpy_helper
    w = numpy_helper.from_array(np.ones((1024, 1024), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1024])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 1024])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "big_weight.onnx"
    onnx.save(model, path)
    args = ["run", path] + write_inputs({"x": np.ones((1, 1024), np.float32)}, tmp_path / "in")
    limited = _kiln_with_env(kiln_bin, args, {"KILN_MAX_TENSOR_BYTES": "1000000"})
    assert limited.returncode == 1, limited.stderr
    assert "1000000 bytes one tensor may take" in limited.stderr, limited.stderr
    assert _kiln_with_env(kiln_bin, args, {}).returncode == 0
    bad = _kiln_with_env(kiln_bin, args, {"KILN_MAX_TENSOR_BYTES": "12abc"})
    assert bad.returncode == 1 and "KILN_MAX_TENSOR_BYTES must be a positive number of bytes" in bad.stderr, bad.stderr


def test_max_model_bytes_bounds_all_the_tensors_of_one_model(kiln_bin, tmp_path):
    # Three 400 KB weights, each within KILN_MAX_TENSOR_BYTES, under a 1 MB limit on the whole
    # model (KILN_MAX_MODEL_BYTES): the third one is refused, by name, before it is allocated.
    import onnx
    from onnx import helper, numpy_helper
    weights = [numpy_helper.from_array(np.full((320, 320), i + 1, np.float32), "w%d" % i) for i in range(3)]
    nodes = [helper.make_node("MatMul", ["x", "w0"], ["h0"]), helper.make_node("MatMul", ["h0", "w1"], ["h1"]),
             helper.make_node("MatMul", ["h1", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 320])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 320])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "three_weights.onnx"
    onnx.save(model, path)
    args = ["run", path] + write_inputs({"x": np.ones((1, 320), np.float32) * 1e-3}, tmp_path / "in")
    limited = _kiln_with_env(kiln_bin, args, {"KILN_MAX_MODEL_BYTES": "1000000", "KILN_MAX_TENSOR_BYTES": "500000"})
    assert limited.returncode == 1, limited.stderr
    assert "initializer 'w2' needs 409600 bytes" in limited.stderr, limited.stderr
    assert "to 1228800 bytes, more than one model may take (1000000 bytes" in limited.stderr, limited.stderr
    assert _kiln_with_env(kiln_bin, args, {"KILN_MAX_MODEL_BYTES": "1300000"}).returncode == 0
    bad = _kiln_with_env(kiln_bin, args, {"KILN_MAX_MODEL_BYTES": "-5"})
    assert bad.returncode == 1 and "KILN_MAX_MODEL_BYTES must be a positive number of bytes" in bad.stderr, bad.stderr
