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


# ---- found by the hostile-input campaign of 2026-12-04 (scripts/hostile_campaign.py) ----

def _onnx_with_constant_input(path, op, x_shape, const_name, const_value, attrs=None):
    from onnx import TensorProto, helper, numpy_helper
    node = helper.make_node(op, ["x", const_name] if const_name else ["x"], ["y"], **(attrs or {}))
    inits = [numpy_helper.from_array(const_value, const_name)] if const_name else []
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    import onnx
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


@pytest.mark.parametrize("case", ["expand", "expand_empty", "pad", "depth_to_space", "resize"])
def test_sizes_from_attributes_and_constants_are_checked_before_index_tables(kiln_bin, tmp_path, case):
    # Each once ended in "internal error" (std::vector larger than max_size), a SIGFPE or an
    # out-of-memory kill: index tables as long as the output's dims were made before its size
    # was checked.
    pytest.importorskip("onnx")
    big = 2 ** 62
    x = np.ones((1, 4, 2, 2), np.float32)
    if case == "expand":
        _onnx_with_constant_input(tmp_path / "m.onnx", "Expand", [1, 4, 2, 2], "s", np.array([big, 4, 2, 2], np.int64))
    elif case == "expand_empty":  # 2^62 next to a 0: nothing to allocate, but no 2^62-long table either
        x = np.ones((1, 1, 2, 2), np.float32)
        _onnx_with_constant_input(tmp_path / "m.onnx", "Expand", [1, 1, 2, 2], "s", np.array([big, 0, 2, 2], np.int64))
    elif case == "pad":
        _onnx_with_constant_input(tmp_path / "m.onnx", "Pad", [1, 4, 2, 2], "p", np.array([big, 0, 0, 0, 0, 0, 0, 0], np.int64))
    elif case == "depth_to_space":
        _onnx_with_constant_input(tmp_path / "m.onnx", "DepthToSpace", [1, 4, 2, 2], None, None, {"blocksize": big})
    else:
        from onnx import TensorProto, helper, numpy_helper
        import onnx
        node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="nearest")
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 2, 2])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                                  [numpy_helper.from_array(np.array([1, 4, big, 2], np.int64), "sizes")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.save(model, tmp_path / "m.onnx")
    proc = run_kiln(kiln_bin, ["run", tmp_path / "m.onnx"] + write_inputs({"x": x}, tmp_path / "in") +
                    ["--output-dir", tmp_path / "out"], timeout=60)
    if case == "expand_empty":
        assert proc.returncode == 0, proc.stderr
        with open(tmp_path / "out" / "y.npy", "rb") as f:  # numpy's np.load refuses a 2^62 dim even when empty
            np.lib.format.read_magic(f)
            shape, _, _ = np.lib.format.read_array_header_1_0(f)
        assert shape == (big, 0, 2, 2)
        return
    assert proc.returncode == 1, proc.stderr
    assert "internal error" not in proc.stderr and "kiln: error" in proc.stderr, proc.stderr


def _fifo(path):
    import os
    if path.exists():
        path.unlink()
    os.mkfifo(path)


@pytest.mark.parametrize("which", ["input_npy", "saved_model_pb", "variables_index", "data_shard"])
def test_fifos_in_place_of_files_are_refused_without_blocking(kiln_bin, tmp_path, which):
    # open() of a FIFO waits for a writer: each of these once hung until killed.
    import shutil
    from conftest import REPO_ROOT
    model = tmp_path / "m"
    shutil.copytree(REPO_ROOT / "models" / "demo", model)
    args = []
    if which == "input_npy":
        _fifo(tmp_path / "x.npy")
        args = ["--input", "x=%s" % (tmp_path / "x.npy")]
    elif which == "saved_model_pb":
        _fifo(model / "saved_model.pb")
    elif which == "variables_index":
        _fifo(model / "variables" / "variables.index")
    else:
        _fifo(next((model / "variables").glob("variables.data-*")))
    proc = run_kiln(kiln_bin, ["run", model] + args, timeout=30)
    assert proc.returncode != 0 and "internal error" not in proc.stderr, proc.stderr
    assert "not a regular file" in proc.stderr or "FIFO" in proc.stderr, proc.stderr


def test_a_weights_shard_linked_outside_the_model_is_not_read(kiln_bin, tmp_path):
    # The canary's bytes once came back in the outputs: the data shard may be a symlink, but only
    # to a file inside the model's directory.
    import os
    import shutil
    from conftest import REPO_ROOT
    model = tmp_path / "m"
    shutil.copytree(REPO_ROOT / "models" / "demo", model)
    shard = next((model / "variables").glob("variables.data-*"))
    canary = tmp_path / "canary"
    canary.write_bytes(shard.read_bytes())  # same bytes: only the location is wrong
    shard.unlink()
    os.symlink(canary, shard)
    proc = run_kiln(kiln_bin, ["run", model], timeout=60)
    assert proc.returncode == 1 and "outside the model's directory" in proc.stderr, proc.stderr
    # A link inside the directory is fine.
    inside = model / "variables" / "real_shard"
    shutil.move(str(canary), inside)
    shard.unlink()
    os.symlink(inside, shard)
    proc = run_kiln(kiln_bin, ["run", model], timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("case", ["two_producers", "shadows_input", "shadows_initializer", "output_twice"])
def test_onnx_names_defined_twice_are_invalid(kiln_bin, tmp_path, case):
    # ONNX graphs are in SSA form; Kiln once took the last definition silently.
    pytest.importorskip("onnx")
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    nodes = [helper.make_node("Relu", ["x"], ["t"], name="a"), helper.make_node("Neg", ["t"], ["y"], name="b")]
    inits = [numpy_helper.from_array(np.ones(4, np.float32), "w")]
    if case == "two_producers":
        nodes.insert(1, helper.make_node("Abs", ["x"], ["t"], name="c"))
    elif case == "shadows_input":
        nodes.insert(0, helper.make_node("Abs", ["t"], ["x"], name="c"))
    elif case == "shadows_initializer":
        nodes.insert(0, helper.make_node("Abs", ["x"], ["w"], name="c"))
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])] * (2 if case == "output_twice" else 1)
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "m.onnx")
    proc = run_kiln(kiln_bin, ["run", tmp_path / "m.onnx"] + write_inputs({"x": np.ones(4, np.float32)}, tmp_path / "in"),
                    timeout=60)
    why = "listed twice" if case == "output_twice" else "defined twice"
    assert proc.returncode == 1 and why in proc.stderr, proc.stderr
