"""Custom ops from a plugin (examples/plugins/example_ops.cc): a TensorFlow model using BesselJ0 (which
Kiln does not import) and an ONNX model using com.example::ScaledSwish run with `kiln --plugin`,
against TensorFlow and numpy; without the plugin, the error says what to do."""

import numpy as np
import pytest

from conftest import run_kiln, write_inputs
from kiln_checks import compare, fail

tf = pytest.importorskip("tensorflow")
onnx = pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def plugin(kiln_bin):
    path = kiln_bin.parents[1] / "tests" / "libkiln_example_ops.so"
    if not path.is_file():
        pytest.fail("the example plugin was not built at %s" % path, pytrace=False)
    return path


def test_tensorflow_op_from_a_plugin(kiln_bin, plugin, tmp_path):
    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 5], tf.float32, name="x")])
        def f(self, x):
            return {"y": tf.math.special.bessel_j0(x) * 2.0 + x}

    m = M()
    tf.saved_model.save(m, str(tmp_path / "bessel_j0"), signatures={"serving_default": m.f})
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32) * 3
    args = write_inputs({"x": x}, tmp_path / "in")
    proc = run_kiln(kiln_bin, ["run", tmp_path / "bessel_j0"] + args)
    assert proc.returncode != 0 and "BesselJ0" in proc.stderr and "--plugin" in proc.stderr, proc.stderr
    for cmd in (["run", tmp_path / "bessel_j0"], ["convert", tmp_path / "bessel_j0", tmp_path / "converted"]):
        proc = run_kiln(kiln_bin, ["--plugin", plugin] + cmd + (args + ["--output-dir", tmp_path / "out"] if cmd[0] == "run" else []))
        if proc.returncode != 0:
            fail("kiln %s with the plugin failed" % cmd[0], proc)
    ref = m.f(tf.constant(x))["y"].numpy()
    problems = compare("y", np.load(tmp_path / "out" / "y.npy"), ref, 1e-5)
    proc = run_kiln(kiln_bin, ["--plugin", plugin, "run", tmp_path / "converted"] + args + ["--output-dir", tmp_path / "out2"])
    if proc.returncode != 0:
        fail("kiln run of the converted model failed", proc)
    problems += compare("y (converted)", np.load(tmp_path / "out2" / "y.npy"), ref, 1e-5)
    assert not problems, problems


def scaled_swish_model(path):
    from onnx import TensorProto, helper
    node = helper.make_node("ScaledSwish", ["x"], ["s"], domain="com.example", alpha=1.7, scale=0.5)
    add = helper.make_node("Add", ["s", "x"], ["y"])
    graph = helper.make_graph([node, add], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 6])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    onnx.save(model, str(path))


def test_onnx_custom_domain_op_from_a_plugin(kiln_bin, plugin, tmp_path):
    scaled_swish_model(tmp_path / "m.onnx")
    x = np.random.default_rng(1).standard_normal((3, 6)).astype(np.float32)
    args = write_inputs({"x": x}, tmp_path / "in")
    proc = run_kiln(kiln_bin, ["run", tmp_path / "m.onnx"] + args)
    assert proc.returncode != 0 and "com.example" in proc.stderr and "--plugin" in proc.stderr, proc.stderr
    proc = run_kiln(kiln_bin, ["--plugin", plugin, "run", tmp_path / "m.onnx"] + args + ["--output-dir", tmp_path / "out"])
    if proc.returncode != 0:
        fail("kiln run with the plugin failed", proc)
    xd = x.astype(np.float64)
    ref = (xd / (1 + np.exp(-1.7 * xd)) * 0.5 + xd).astype(np.float32)
    problems = compare("y", np.load(tmp_path / "out" / "y.npy"), ref, 1e-6)
    assert not problems, problems


def test_python_load_plugin(kiln_py, plugin, tmp_path):
    scaled_swish_model(tmp_path / "m.onnx")
    kiln_py.load_plugin(plugin)
    assert "onnx:com.example:ScaledSwish" in kiln_py._kiln.custom_op_names()
    x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(2, 6)
    y = kiln_py.load(tmp_path / "m.onnx").signatures["serving_default"](x=x)["y"]
    xd = x.astype(np.float64)
    np.testing.assert_allclose(y, xd / (1 + np.exp(-1.7 * xd)) * 0.5 + xd, rtol=1e-6)
    with pytest.raises(kiln_py.InvalidArgumentError, match="already registered"):
        kiln_py.load_plugin(plugin)
    with pytest.raises(kiln_py.NotFoundError):
        kiln_py.load_plugin(tmp_path / "missing.so")
