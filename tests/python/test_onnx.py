"""ONNX models end to end: the zoo's tf2onnx exports (tests/models/zoo.py, metadata "onnx")
run through Kiln directly (`kiln run model.onnx`) and through the converter (`kiln convert
model.onnx OUT` with engines, then `kiln run OUT`), compared with TensorFlow's outputs for
the same inputs (FP32: the model's own bound, 1e-5 unless zoo.py documents more).
Plus what users hit with ONNX files: corrupt or truncated files, an old opset, an op Kiln
cannot import, external data files (present, missing, out of bounds).
"""

import os
import shutil

import numpy as np
import pytest

import zoo
from conftest import run_kiln, seeded_rng, write_inputs
from kiln_checks import fail, run_and_compare, shapes_arg, tf_case
from reference import load_meta

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _safe(name):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _onnx_case(zoo_dir, model_name):
    """The zoo model's ONNX export: (model file, meta, TF's outputs, inputs by ONNX input name,
    ONNX output file names by signature output name)."""
    meta = load_meta(zoo_dir, model_name)
    info = meta.get("onnx") or {}
    if info.get("status") != "ok":
        pytest.skip("no usable tf2onnx export of %s: %s" % (model_name, info.get("status") or "not exported"))
    _, inputs, ref = tf_case(zoo_dir, model_name, seeded_rng(model_name + "/onnx"))
    onnx_inputs = {info["input_names"][k]: v for k, v in inputs.items()}
    file_names = {k: _safe(v) for k, v in info["output_names"].items()}
    return zoo_dir / model_name / info["file"], meta, ref, onnx_inputs, file_names


@pytest.mark.parametrize("model_name", zoo.MODEL_NAMES)
def test_onnx_export_matches_tensorflow(model_name, kiln_bin, zoo_dir, tmp_path):
    model, meta, ref, inputs, file_names = _onnx_case(zoo_dir, model_name)
    run_and_compare(kiln_bin, model, inputs, ref, meta, tmp_path, file_names=file_names)


@pytest.mark.parametrize("model_name", ["mlp_keras3", "cnn_keras3", "mobilenetv2", "bert_keras3"])
def test_onnx_converted_with_engines_matches_tensorflow(model_name, kiln_bin, zoo_dir, tmp_path):
    model, meta, ref, inputs, file_names = _onnx_case(zoo_dir, model_name)
    converted = tmp_path / "converted"
    shapes = shapes_arg({k: v.shape for k, v in inputs.items()})
    proc = run_kiln(kiln_bin, ["convert", model, converted, "--build-shapes", shapes])
    if proc.returncode != 0:
        fail("kiln convert failed on %s" % model, proc)
    summary = run_kiln(kiln_bin, ["summary", converted])
    assert summary.returncode == 0, summary.stderr
    assert "% of OPs Converted" in summary.stdout
    proc = run_and_compare(kiln_bin, converted, inputs, ref, meta, tmp_path, file_names=file_names,
                           what="the converted " + str(model))
    assert "0 built" in proc.stdout, "the converted model rebuilt its engines:\n" + proc.stdout


# ---- files users get wrong ----

SMALL_W = np.arange(16, dtype=np.float32).reshape(4, 4) / 10  # the small model's MatMul weights


def _small_model(opset=17, op="Relu"):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    w = numpy_helper.from_array(SMALL_W, "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["t"], name="mm"), helper.make_node(op, ["t"], ["y"], name="act")]
    m = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [w]), opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _run(kiln_bin, model, tmp_path, x=None):
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32) if x is None else x
    return run_kiln(kiln_bin, ["run", model] + write_inputs({"x": x}, tmp_path / "in") + ["--output-dir", tmp_path / "out"])


def _check_small_model_runs(kiln_bin, path, tmp_path, x):
    """`kiln run` of the small model at `path` on `x` computes relu(x @ SMALL_W)."""
    proc = _run(kiln_bin, path, tmp_path, x)
    if proc.returncode != 0:
        fail("kiln run failed on %s" % path, proc)
    assert np.allclose(np.load(tmp_path / "out" / "y.npy"), np.maximum(x @ SMALL_W, 0), rtol=1e-6, atol=1e-6)


def test_small_model_runs(kiln_bin, tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(_small_model(), path)
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    _check_small_model_runs(kiln_bin, path, tmp_path, x)


def test_truncated_file_is_a_clear_error(kiln_bin, tmp_path):
    data = _small_model().SerializeToString()
    path = tmp_path / "m.onnx"
    path.write_bytes(data[: len(data) // 2])
    proc = _run(kiln_bin, path, tmp_path)
    assert proc.returncode != 0
    assert "does not parse as an ONNX model" in proc.stderr and str(path) in proc.stderr, proc.stderr


def test_garbage_file_is_a_clear_error(kiln_bin, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"\xff" * 64)
    proc = _run(kiln_bin, path, tmp_path)
    assert proc.returncode != 0 and "ONNX" in proc.stderr, proc.stderr


def test_missing_file(kiln_bin, tmp_path):
    proc = _run(kiln_bin, tmp_path / "nope.onnx", tmp_path)
    assert proc.returncode != 0 and "nope.onnx" in proc.stderr, proc.stderr


def test_old_opset_says_how_to_upgrade(kiln_bin, tmp_path):
    # Each op is imported from the opset its importer implements (docs/supported-ops.md): an
    # opset-6 Add (legacy `broadcast` form) is refused with both opsets and the converter hint.
    path = tmp_path / "m.onnx"
    onnx.save(_small_model(opset=6, op="Relu"), path)  # MatMul (1+) and Relu (6+): imported
    x = np.random.default_rng(6).standard_normal((3, 4)).astype(np.float32)
    _check_small_model_runs(kiln_bin, path, tmp_path, x)
    add = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "g",
                            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    old = helper.make_model(add, opset_imports=[helper.make_opsetid("", 6)])
    old.ir_version = 8
    onnx.save(old, path)
    proc = run_kiln(kiln_bin, ["run", path] + write_inputs({"x": np.ones(2, np.float32)}, tmp_path / "in_add"))
    assert proc.returncode != 0
    assert "Add at opset 6: Kiln imports this op from opset 7" in proc.stderr, proc.stderr
    assert "version_converter" in proc.stderr, proc.stderr
    onnx.save(_small_model(opset=12, op="HardSwish"), path)  # an op of opset 14 in an opset-12 model
    proc = _run(kiln_bin, path, tmp_path)
    assert proc.returncode != 0
    assert "HardSwish at opset 12: Kiln imports this op from opset 14" in proc.stderr, proc.stderr


@pytest.mark.parametrize("opset", [7, 9, 11, 12])
def test_older_opsets_import_ops_whose_meaning_did_not_change(kiln_bin, tmp_path, opset):
    path = tmp_path / "m.onnx"
    onnx.save(_small_model(opset=opset), path)
    x = np.random.default_rng(opset).standard_normal((3, 4)).astype(np.float32)
    _check_small_model_runs(kiln_bin, path, tmp_path, x)
    # Softmax before 13 coerces to 2-D at `axis` (default 1): over the last axis of a 2-D input
    # that is the same softmax, which onnxruntime agrees with.
    ort = pytest.importorskip("onnxruntime")
    onnx.save(_small_model(opset=opset, op="Softmax"), path)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    proc = _run(kiln_bin, path, tmp_path, x)
    if proc.returncode != 0:
        fail("kiln run of an opset-%d Softmax failed" % opset, proc)
    assert np.allclose(np.load(tmp_path / "out" / "y.npy"), want, rtol=1e-5, atol=1e-6)


def test_unsupported_op_names_node_and_op(kiln_bin, tmp_path):
    m = _small_model()
    m.graph.node[1].op_type = "NoSuchOp"
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    proc = run_kiln(kiln_bin, ["inspect", path])
    assert proc.returncode != 0
    assert "NoSuchOp x1" in proc.stdout and "'act'" in proc.stdout, proc.stdout


def test_wrong_input_name_and_shape(kiln_bin, tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(_small_model(), path)
    x = np.zeros((3, 4), np.float32)
    proc = run_kiln(kiln_bin, ["run", path] + write_inputs({"xx": x}, tmp_path / "in"))
    assert proc.returncode != 0 and "'xx'" in proc.stderr, proc.stderr
    proc = run_kiln(kiln_bin, ["run", path] + write_inputs({"x": np.zeros((3, 5), np.float32)}, tmp_path / "in2"))
    assert proc.returncode != 0 and "'x'" in proc.stderr and "[?,4]" in proc.stderr, proc.stderr


def _external_model(tmp_path):
    m = _small_model()
    path = tmp_path / "ext.onnx"
    onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin",
                    size_threshold=0)
    return path


def test_external_data_is_read(kiln_bin, tmp_path):
    path = _external_model(tmp_path)
    assert (tmp_path / "weights.bin").is_file()
    x = np.random.default_rng(2).standard_normal((2, 4)).astype(np.float32)
    _check_small_model_runs(kiln_bin, path, tmp_path, x)


def test_missing_external_data(kiln_bin, tmp_path):
    path = _external_model(tmp_path)
    (tmp_path / "weights.bin").unlink()
    proc = _run(kiln_bin, path, tmp_path)
    assert proc.returncode != 0 and "weights.bin" in proc.stderr and "missing" in proc.stderr, proc.stderr


def test_short_external_data(kiln_bin, tmp_path):
    path = _external_model(tmp_path)
    data = (tmp_path / "weights.bin").read_bytes()
    (tmp_path / "weights.bin").write_bytes(data[:10])
    proc = _run(kiln_bin, path, tmp_path)
    assert proc.returncode != 0 and "outside" in proc.stderr and "weights.bin" in proc.stderr, proc.stderr


def test_external_data_outside_the_model_dir_is_refused(kiln_bin, tmp_path):
    m = _small_model()
    sub = tmp_path / "sub"
    sub.mkdir()
    onnx.save_model(m, sub / "ext.onnx", save_as_external_data=True, location="w.bin", size_threshold=0)
    m2 = onnx.load(sub / "ext.onnx", load_external_data=False)
    for t in m2.graph.initializer:
        for kv in t.external_data:
            if kv.key == "location":
                kv.value = "../w.bin"
    shutil.copy(sub / "w.bin", tmp_path / "w.bin")
    onnx.save(m2, sub / "ext.onnx")
    proc = _run(kiln_bin, sub / "ext.onnx", tmp_path)
    assert proc.returncode != 0 and "inside the model's directory" in proc.stderr, proc.stderr


def test_external_data_symlink_out_of_the_model_dir_is_refused(kiln_bin, tmp_path):
    # A symlink inside the model's directory that resolves outside it is an escape too.
    m = _small_model()
    sub = tmp_path / "sub"
    sub.mkdir()
    onnx.save_model(m, sub / "ext.onnx", save_as_external_data=True, location="w.bin", size_threshold=0)
    (sub / "w.bin").rename(tmp_path / "secret.bin")
    os.symlink(tmp_path / "secret.bin", sub / "w.bin")
    proc = _run(kiln_bin, sub / "ext.onnx", tmp_path)
    assert proc.returncode != 0 and "outside the model's directory" in proc.stderr, proc.stderr
    # A symlink that stays inside is followed.
    (tmp_path / "secret.bin").rename(sub / "real.bin")
    (sub / "w.bin").unlink()
    os.symlink("real.bin", sub / "w.bin")
    x = np.random.default_rng(3).standard_normal((2, 4)).astype(np.float32)
    _check_small_model_runs(kiln_bin, sub / "ext.onnx", tmp_path, x)


@pytest.mark.parametrize("key,value,why", [("length", "-5", "non-negative"), ("offset", "12abc", "non-negative"),
                                           ("offset", "9223372036854775807", "outside")])
def test_external_data_numbers_are_checked(kiln_bin, tmp_path, key, value, why):
    path = _external_model(tmp_path)
    m = onnx.load(path, load_external_data=False)
    for t in m.graph.initializer:
        entries = {kv.key: kv for kv in t.external_data}
        if key in entries:
            entries[key].value = value
        else:
            t.external_data.add(key=key, value=value)
    onnx.save(m, path)
    proc = _run(kiln_bin, path, tmp_path)
    assert proc.returncode != 0 and why in proc.stderr, proc.stderr


@pytest.mark.parametrize("dims,why", [([4, 2 ** 28], "holds 0 values"), ([2 ** 32, 2 ** 32], "2^63")])
def test_initializers_declaring_more_than_they_hold(kiln_bin, tmp_path, dims, why):
    # A few bytes of model declaring gigabytes (or a size that wraps around): a clear error before
    # anything is allocated for it.
    m = _small_model()
    liar = TensorProto(name="w", data_type=TensorProto.FLOAT)
    liar.dims.extend(dims)
    m.graph.initializer[0].CopyFrom(liar)
    path = tmp_path / "liar.onnx"
    onnx.save(m, path)
    assert path.stat().st_size < 200
    proc = _run(kiln_bin, path, tmp_path)
    assert proc.returncode == 1 and why in proc.stderr, proc.stderr


# ---- ops of newer opsets ----

@pytest.mark.parametrize("dims,axis,n,dynamic", [
    ((2, 7), 1, 3, False),   # uneven: chunks of 3, 3 and 1
    ((6, 4), 0, 3, False),   # even
    ((2, 10), -1, 4, True),  # uneven, the dim unknown at import: sizes computed from the shape
    ((8, 3), 0, 2, True),
])
def test_split_num_outputs_opset18_matches_onnxruntime(kiln_bin, tmp_path, dims, axis, n, dynamic):
    ort = pytest.importorskip("onnxruntime")
    shape = ["a", "b"] if dynamic else list(dims)
    outs = ["y%d" % i for i in range(n)]
    node = helper.make_node("Split", ["x"], outs, axis=axis, num_outputs=n)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    path = tmp_path / "split18.onnx"
    onnx.save(model, path)
    x = np.arange(np.prod(dims), dtype=np.float32).reshape(dims)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    proc = run_kiln(kiln_bin, ["run", path] + write_inputs({"x": x}, tmp_path / "in") + ["--output-dir", tmp_path / "out"])
    if proc.returncode != 0:
        fail("kiln run failed on Split-18", proc)
    for name, w in zip(outs, want):
        got = np.load(tmp_path / "out" / (name + ".npy"))
        assert got.shape == w.shape and np.array_equal(got, w), (name, got.shape, w.shape)


def test_split_num_outputs_that_leaves_nothing_for_the_last_is_invalid(kiln_bin, tmp_path):
    # ONNX's rule: chunks of ceil(5 / 4) = 2 leave -1 for the fourth output.
    outs = ["y%d" % i for i in range(4)]
    graph = helper.make_graph([helper.make_node("Split", ["x"], outs, axis=0, num_outputs=4)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5])],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    path = tmp_path / "split18_bad.onnx"
    onnx.save(model, path)
    proc = run_kiln(kiln_bin, ["run", path] + write_inputs({"x": np.zeros(5, np.float32)}, tmp_path / "in"))
    assert proc.returncode == 1, proc.stderr
    assert "num_outputs 4 cannot split dim 0 of size 5" in proc.stderr, proc.stderr


@pytest.mark.parametrize("scalar_spec", ["s:", "s:scalar"])
def test_build_shapes_names_a_scalar_input(kiln_bin, tmp_path, scalar_spec):
    # y = relu(x @ w) * s with a scalar input s: engines are built for the given shapes.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    s = helper.make_tensor_value_info("s", TensorProto.FLOAT, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    nodes = [helper.make_node("MatMul", ["x", "w"], ["t"]), helper.make_node("Relu", ["t"], ["r"]),
             helper.make_node("Mul", ["r", "s"], ["y"])]
    m = helper.make_model(helper.make_graph(nodes, "g", [x, s], [y], [numpy_helper.from_array(SMALL_W, "w")]),
                          opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = tmp_path / "scalar_input.onnx"
    onnx.save(m, path)
    out = tmp_path / "converted"
    proc = run_kiln(kiln_bin, ["convert", path, out, "--build-shapes", "x:2x4," + scalar_spec])
    if proc.returncode != 0:
        fail("kiln convert with a scalar in --build-shapes failed", proc)
    assert "engine for profile" in proc.stdout, proc.stdout
    xv = np.random.default_rng(3).standard_normal((2, 4)).astype(np.float32)
    sv = np.array(1.5, np.float32)
    proc = run_kiln(kiln_bin, ["run", out] + write_inputs({"x": xv, "s": sv}, tmp_path / "in") +
                    ["--output-dir", tmp_path / "out"])
    if proc.returncode != 0:
        fail("kiln run of the converted model failed", proc)
    assert np.allclose(np.load(tmp_path / "out" / "y.npy"), np.maximum(xv @ SMALL_W, 0) * 1.5, rtol=1e-6, atol=1e-6)
    bad = run_kiln(kiln_bin, ["convert", path, tmp_path / "bad", "--build-shapes", "x:2x4,s"])
    assert bad.returncode == 1 and "'s' is not NAME:DIMxDIM... (or NAME:scalar)" in bad.stderr, bad.stderr


def test_random_values_for_an_input_that_indexes_a_small_table(kiln_bin, tmp_path):
    # A token-type input indexing a table of 2 rows: the random build and run inputs (integers in
    # [0, 9] otherwise) stay below 2, so `--build-shapes` and `kiln run` without data work.
    tt = helper.make_tensor_value_info("token_type", TensorProto.INT64, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3, 4])
    table = numpy_helper.from_array(np.arange(8, dtype=np.float32).reshape(2, 4), "table")
    m = helper.make_model(helper.make_graph([helper.make_node("Gather", ["table", "token_type"], ["y"], axis=0)], "g",
                                            [tt], [y], [table]), opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = tmp_path / "token_types.onnx"
    onnx.save(m, path)
    proc = run_kiln(kiln_bin, ["convert", path, tmp_path / "converted", "--build-shapes", "token_type:2x3"])
    if proc.returncode != 0:
        fail("kiln convert with random token types failed", proc)
    proc = run_kiln(kiln_bin, ["run", path, "--batch-size", "4", "--output-dir", tmp_path / "out"])
    if proc.returncode != 0:
        fail("kiln run with random token types failed", proc)
    got = np.load(tmp_path / "out" / "y.npy")
    assert got.shape == (4, 3, 4) and set(np.unique(got[:, :, 0])) <= {0.0, 4.0}, got


def test_build_data_builds_engines_for_real_inputs(kiln_bin, tmp_path):
    # --build-data DIR/RUN/NAME.npy: one build run per directory; the engine's profile covers both
    # runs' batches (2 and 5), then the converted model runs it.
    path = tmp_path / "m.onnx"
    onnx.save(_small_model(), path)
    data = tmp_path / "data"
    for run, batch in (("a", 2), ("b", 5)):
        (data / run).mkdir(parents=True)
        np.save(data / run / "x.npy", np.random.default_rng(batch).standard_normal((batch, 4)).astype(np.float32))
    out = tmp_path / "converted"
    proc = run_kiln(kiln_bin, ["convert", path, out, "--build-data", data, "--minimum-segment-size", "1"])
    if proc.returncode != 0:
        fail("kiln convert --build-data failed", proc)
    assert "engine for profile [1-5,4]" in proc.stdout, proc.stdout
    x = np.random.default_rng(9).standard_normal((5, 4)).astype(np.float32)
    _check_small_model_runs(kiln_bin, out, tmp_path, x)
    # Errors name what is wrong.
    np.save(data / "b" / "extra.npy", np.zeros(1, np.float32))
    bad = run_kiln(kiln_bin, ["convert", path, tmp_path / "bad", "--build-data", data])
    assert bad.returncode == 1 and "extra.npy names no input of the signature" in bad.stderr, bad.stderr
    (data / "b" / "extra.npy").unlink()
    (data / "a" / "x.npy").unlink()
    bad = run_kiln(kiln_bin, ["convert", path, tmp_path / "bad2", "--build-data", data])
    assert bad.returncode == 1 and "has no x.npy for input 'x'" in bad.stderr, bad.stderr
    both = run_kiln(kiln_bin, ["convert", path, tmp_path / "bad3", "--build-data", data, "--build-shapes", "x:2x4"])
    assert both.returncode == 1 and "use one" in both.stderr, both.stderr


@pytest.mark.parametrize("mode,ctm,nearest", [
    ("nearest", "asymmetric", "floor"),
    ("nearest", "half_pixel", "round_prefer_floor"),
    ("linear", "half_pixel", "round_prefer_floor"),
    ("linear", "align_corners", "round_prefer_floor"),
])
def test_resize_with_a_dynamic_batch_and_channels_matches_onnxruntime(kiln_bin, tmp_path, mode, ctm, nearest):
    # Segmentation and detection exports: batch and channels unknown at import, scale 1 on them.
    ort = pytest.importorskip("onnxruntime")
    scales = numpy_helper.from_array(np.array([1, 1, 2, 1.5], np.float32), "scales")
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode=mode, coordinate_transformation_mode=ctm,
                            nearest_mode=nearest)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "c", 4, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [scales])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "resize.onnx"
    onnx.save(model, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n, c in ((2, 3), (1, 5)):
        x = np.random.default_rng(n * 10 + c).standard_normal((n, c, 4, 6)).astype(np.float32)
        want = session.run(None, {"x": x})[0]
        out = tmp_path / ("out%d%d" % (n, c))
        proc = run_kiln(kiln_bin, ["run", path] + write_inputs({"x": x}, tmp_path / ("in%d%d" % (n, c))) +
                        ["--output-dir", out])
        if proc.returncode != 0:
            fail("kiln run of a Resize with dynamic dims failed", proc)
        got = np.load(out / "y.npy")
        assert got.shape == want.shape, (got.shape, want.shape)
        assert np.allclose(got, want, rtol=1e-5, atol=1e-6), np.abs(got - want).max()


@pytest.mark.parametrize("opset,mode,ctm", [
    (11, "nearest", "asymmetric"),
    (13, "linear", "pytorch_half_pixel"),
    (13, "linear", "align_corners"),
    (18, "cubic", "half_pixel"),
])
def test_resize_sizes_computed_from_the_input_shape_match_onnxruntime(kiln_bin, tmp_path, opset, mode, ctm):
    # PyTorch's export of F.interpolate(x, size=...) with a dynamic batch: sizes = Concat(Shape(x)[:2],
    # [H, W]) is only known at run time, so the IR op Resize computes the output's lengths. Run both
    # natively and converted (the Resize then runs inside a CPU engine, between two convolutions).
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(7)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.standard_normal((2, 4, 1, 1)).astype(np.float32), "w2"),
             numpy_helper.from_array(np.array([0], np.int64), "st"), numpy_helper.from_array(np.array([2], np.int64), "en"),
             numpy_helper.from_array(np.array([13, 19], np.int64), "hw")]
    resize_in = ["f", "", "", "sizes"]
    if opset < 13:
        inits.append(numpy_helper.from_array(np.array([], np.float32), "empty"))
        resize_in = ["f", "empty", "empty", "sizes"]
    attrs = {"mode": mode, "coordinate_transformation_mode": ctm}
    if mode == "nearest":
        attrs["nearest_mode"] = "floor"
    nodes = [helper.make_node("Conv", ["x", "w1"], ["f"], pads=[1, 1, 1, 1]),
             helper.make_node("Shape", ["f"], ["shape"]), helper.make_node("Slice", ["shape", "st", "en"], ["nc"]),
             helper.make_node("Concat", ["nc", "hw"], ["sizes"], axis=0),
             helper.make_node("Resize", resize_in, ["r"], **attrs), helper.make_node("Conv", ["r", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 6, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = tmp_path / "resize.onnx"
    onnx.save(model, path)
    proc = run_kiln(kiln_bin, ["convert", path, tmp_path / "converted"])
    if proc.returncode != 0:
        fail("kiln convert of a Resize with run-time sizes failed", proc)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 3):
        x = rng.standard_normal((n, 3, 6, 8)).astype(np.float32)
        want = session.run(None, {"x": x})[0]
        for source in (path, tmp_path / "converted"):
            out = tmp_path / ("out%d_%s" % (n, source.name))
            proc = run_kiln(kiln_bin, ["run", source] + write_inputs({"x": x}, tmp_path / ("in%d" % n)) +
                            ["--output-dir", out])
            if proc.returncode != 0:
                fail("kiln run of a Resize with run-time sizes failed", proc)
            got = np.load(out / "y.npy")
            assert got.shape == want.shape == (n, 2, 13, 19), (got.shape, want.shape)
            err = np.linalg.norm(got - want) / np.linalg.norm(want)
            assert err <= 1e-5, (source, n, err)


def test_resize_of_a_dynamic_batch_dim_matches_onnxruntime(kiln_bin, tmp_path):
    # A scale on a dim unknown at import (once refused): the kernel resizes it at run time.
    ort = pytest.importorskip("onnxruntime")
    scales = numpy_helper.from_array(np.array([2, 1, 1, 1], np.float32), "scales")
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="nearest")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 4, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [scales])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "resize_batch.onnx"
    onnx.save(model, path)
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 6)).astype(np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    proc = run_kiln(kiln_bin, ["run", path] + write_inputs({"x": x}, tmp_path / "in") + ["--output-dir", tmp_path / "out"])
    if proc.returncode != 0:
        fail("kiln run of a Resize of the batch dim failed", proc)
    got = np.load(tmp_path / "out" / "y.npy")
    assert got.shape == want.shape == (4, 3, 4, 6)
    assert np.array_equal(got, want)


def test_new_import_and_cli_errors_name_what_is_wrong(kiln_bin, tmp_path):
    # Each: a clean exit 1 with a message naming the node, input or directory; nothing crashes.
    def save(nodes, inputs, outputs, opset=18, inits=()):
        m = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, list(inits)),
                              opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 8
        path = tmp_path / ("m%d.onnx" % len(list(tmp_path.glob("m*.onnx"))))
        onnx.save(m, path)
        return path

    f = TensorProto.FLOAT
    # Split-18 whose num_outputs disagrees with its outputs.
    split = save([helper.make_node("Split", ["x"], ["a", "b"], axis=0, num_outputs=3)],
                 [helper.make_tensor_value_info("x", f, [6])],
                 [helper.make_tensor_value_info(o, f, None) for o in ("a", "b")])
    proc = run_kiln(kiln_bin, ["run", split] + write_inputs({"x": np.zeros(6, np.float32)}, tmp_path / "in_split"))
    assert proc.returncode == 1 and "num_outputs is 3, but the node has 2 outputs" in proc.stderr, proc.stderr
    # A loss with an unknown reduction.
    nll = save([helper.make_node("NegativeLogLikelihoodLoss", ["x", "t"], ["y"], reduction="average")],
               [helper.make_tensor_value_info("x", f, [2, 3]), helper.make_tensor_value_info("t", TensorProto.INT64, [2])],
               [helper.make_tensor_value_info("y", f, None)], opset=13)
    proc = run_kiln(kiln_bin, ["run", nll] + write_inputs({"x": np.zeros((2, 3), np.float32),
                                                           "t": np.zeros(2, np.int64)}, tmp_path / "in_nll"))
    assert proc.returncode == 1 and "reduction must be none, sum or mean, got 'average'" in proc.stderr, proc.stderr
    # Random values for an integer input that indexes an empty table cannot exist.
    empty = save([helper.make_node("Gather", ["table", "ids"], ["y"], axis=0)],
                 [helper.make_tensor_value_info("ids", TensorProto.INT64, [2])],
                 [helper.make_tensor_value_info("y", f, None)], opset=13,
                 inits=[numpy_helper.from_array(np.zeros((0, 4), np.float32), "table")])
    proc = run_kiln(kiln_bin, ["run", empty])
    assert proc.returncode == 1 and "input 'ids' indexes an empty table" in proc.stderr, proc.stderr
    # --build-data: not a directory, nothing in it, both layouts at once.
    small = tmp_path / "small.onnx"
    onnx.save(_small_model(), small)
    proc = run_kiln(kiln_bin, ["convert", small, tmp_path / "c1", "--build-data", tmp_path / "missing"])
    assert proc.returncode == 1 and "is not a directory" in proc.stderr, proc.stderr
    (tmp_path / "empty_data").mkdir()
    proc = run_kiln(kiln_bin, ["convert", small, tmp_path / "c2", "--build-data", tmp_path / "empty_data"])
    assert proc.returncode == 1 and "holds no .npy files or run directories" in proc.stderr, proc.stderr
    mixed = tmp_path / "mixed"
    (mixed / "run1").mkdir(parents=True)
    np.save(mixed / "x.npy", np.zeros((2, 4), np.float32))
    proc = run_kiln(kiln_bin, ["convert", small, tmp_path / "c3", "--build-data", mixed])
    assert proc.returncode == 1 and "use one layout" in proc.stderr, proc.stderr
    for p in (split, nll, empty):
        assert "internal error" not in run_kiln(kiln_bin, ["inspect", p]).stderr


# ---- quantized models, as onnxruntime's static quantization writes them ----

def _float_cnn(path):
    """Conv 3x3 (8 channels) -> Relu -> Flatten -> MatMul [8*6*6, 10]: a small float model to quantize."""
    rng = np.random.default_rng(5)
    w1 = numpy_helper.from_array((rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32), "w1")
    b1 = numpy_helper.from_array((rng.standard_normal(8) * 0.1).astype(np.float32), "b1")
    w2 = numpy_helper.from_array((rng.standard_normal((8 * 6 * 6, 10)) * 0.05).astype(np.float32), "w2")
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c"], name="conv", kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flatten", axis=1),
             helper.make_node("MatMul", ["f", "w2"], ["y"], name="fc")]
    g = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 10])], [w1, b1, w2])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)


@pytest.mark.parametrize("fmt,per_channel", [("QDQ", False), ("QDQ", True), ("QOperator", False), ("QOperator", True)])
def test_models_quantized_by_onnxruntime_match_it(kiln_bin, tmp_path, fmt, per_channel):
    """quantize_static (QDQ: QuantizeLinear/DequantizeLinear around float ops; QOperator:
    QLinearConv, QLinearMatMul) on real calibration batches; Kiln runs the result through the
    decomposed quantization ops. onnxruntime runs the quantized model unoptimized (the QDQ ops as
    written, float convolutions in between), so the two differ only where a float sum rounds to
    the other side of a quantization step: at most one step of the output's scale, rarely."""
    ort = pytest.importorskip("onnxruntime")
    from onnxruntime import quantization as q
    fp32, quantized = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    _float_cnn(fp32)
    rng = np.random.default_rng(6)

    class Batches(q.CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"x": rng.standard_normal((2, 3, 8, 8)).astype(np.float32)} for _ in range(8)])

        def get_next(self):
            return next(self.batches, None)

    q.quantize_static(str(fp32), str(quantized), Batches(), quant_format=getattr(q.QuantFormat, fmt),
                      per_channel=per_channel, activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8)
    ops = {n.op_type for n in onnx.load(str(quantized)).graph.node}
    assert ("QLinearConv" in ops) == (fmt == "QOperator") and "QuantizeLinear" in ops, ops
    x = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort.InferenceSession(str(quantized), options, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    proc = run_kiln(kiln_bin, ["run", quantized] + write_inputs({"x": x}, tmp_path / "in") +
                    ["--output-dir", tmp_path / "out"])
    if proc.returncode != 0:
        fail("kiln run failed on the %s model" % fmt, proc)
    got = np.load(tmp_path / "out" / "y.npy")
    assert got.shape == want.shape and got.dtype == want.dtype
    # The output is dequantized: its values are multiples of one scale; find it from the data.
    step = np.min(np.diff(np.unique(want))) if np.unique(want).size > 1 else 1.0
    off = np.abs(got - want)
    assert np.all(off <= step * 1.01 + 1e-7), (fmt, float(off.max()), float(step))
    print("%s per_channel=%s: %d of %d outputs one step off (step %.3g, |y| up to %.3g)" % (
        fmt, per_channel, int(np.sum(off > 1e-7)), off.size, step, float(np.abs(want).max())))
    assert np.mean(off > 1e-7) <= 0.02, (fmt, float(np.mean(off > 1e-7)))
    if fmt != "QDQ":
        return
    # The QDQ model converted as INT8 with its own quantization (uint8 activations with zero
    # points, int8 per-channel weights): on CPUs with int8 dot-product instructions the conv and
    # the MatMul run as int8 primitives (uint8 src with oneDNN's zero point) and say so; the
    # outputs stay within the same one-step bound.
    converted = tmp_path / "int8"
    proc = run_kiln(kiln_bin, ["convert", quantized, converted, "--precision", "INT8", "--no-calibration",
                               "--build-shapes", "x:3x3x8x8"])
    if proc.returncode != 0:
        fail("INT8 conversion of the QDQ model failed", proc)
    summary = run_kiln(kiln_bin, ["summary", converted])
    assert summary.returncode == 0, summary.stderr
    if "(INT8)" in summary.stdout:
        assert "INT8 layers (2): " in summary.stdout, summary.stdout
    else:
        assert "has no int8 dot-product instructions (VNNI / AMX)" in summary.stdout, summary.stdout
    proc = run_kiln(kiln_bin, ["run", converted] + write_inputs({"x": x}, tmp_path / "in8") +
                    ["--output-dir", tmp_path / "out8"])
    if proc.returncode != 0:
        fail("kiln run failed on the INT8 conversion", proc)
    off8 = np.abs(np.load(tmp_path / "out8" / "y.npy") - want)
    assert np.all(off8 <= step * 1.01 + 1e-7) and np.mean(off8 > 1e-7) <= 0.02, (float(off8.max()), float(step))


@pytest.mark.parametrize("case,why", [
    ("block_size", "blocked quantization is not supported"),
    ("zero_point_dtype", "x_zero_point has dtype int8, x uint8"),
    ("string_window", "output_datatype 8 is not supported"),
])
def test_quantization_and_window_refusals_name_what_is_wrong(kiln_bin, tmp_path, case, why):
    if case == "block_size":
        node = helper.make_node("QuantizeLinear", ["x", "s"], ["y"], block_size=2)
        inits = [numpy_helper.from_array(np.ones((2, 2), np.float32), "s")]
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
        opset = 21
    elif case == "zero_point_dtype":
        node = helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"])
        inits = [numpy_helper.from_array(np.array(0.5, np.float32), "s"), numpy_helper.from_array(np.array(1, np.int8), "z")]
        x = helper.make_tensor_value_info("x", TensorProto.UINT8, [4])
        opset = 13
    else:
        node = helper.make_node("HannWindow", ["x"], ["y"], output_datatype=TensorProto.STRING)
        inits = []
        x = helper.make_tensor_value_info("x", TensorProto.INT64, [])
        opset = 17
    graph = helper.make_graph([node], "g", [x], [helper.make_tensor_value_info("y", TensorProto.UNDEFINED, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    onnx.save(model, tmp_path / "m.onnx")
    proc = run_kiln(kiln_bin, ["inspect", tmp_path / "m.onnx"])
    out = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1) and "internal error" not in out and why in out, out


@pytest.mark.parametrize("trips,with_cond", [(4, False), (1, False), (6, True)])
def test_loop_scan_outputs_match_onnxruntime(kiln_bin, tmp_path, trips, with_cond):
    # Loop(M, cond, acc) whose body returns the carried sum and two scan outputs: a [2, 3] value
    # per iteration and a scalar one. With a condition, the body stops once the sum passes 10.
    ort = pytest.importorskip("onnxruntime")
    body_nodes = [
        helper.make_node("Cast", ["i"], ["fi"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["x", "fi"], ["y"]),          # scan 0: x * i, [2, 3]
        helper.make_node("ReduceSum", ["y"], ["s"], keepdims=0),  # scan 1: a scalar
        helper.make_node("Add", ["acc", "s"], ["acc_out"]),
        helper.make_node("Less", ["acc_out", "limit"], ["c_out"]) if with_cond else
        helper.make_node("Identity", ["c"], ["c_out"]),
    ]
    body = helper.make_graph(
        body_nodes, "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("c", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, []),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3]),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, [])],
        [numpy_helper.from_array(np.array(10.0, np.float32), "limit")] if with_cond else [])
    loop = helper.make_node("Loop", ["M", "cond", "acc0"], ["acc_final", "ys", "ss"], body=body)
    graph = helper.make_graph(
        [loop], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("acc_final", "ys", "ss")],
        [numpy_helper.from_array(np.array(trips, np.int64), "M"), numpy_helper.from_array(np.array(True), "cond"),
         numpy_helper.from_array(np.array(0.0, np.float32), "acc0")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "loop_scan.onnx"
    onnx.save(model, path)
    x = (np.arange(6, dtype=np.float32).reshape(2, 3) - 2) / 4
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    proc = run_kiln(kiln_bin, ["run", path] + write_inputs({"x": x}, tmp_path / "in") + ["--output-dir", tmp_path / "out"])
    if proc.returncode != 0:
        fail("kiln run failed on a Loop with scan outputs", proc)
    for name, w in zip(("acc_final", "ys", "ss"), want):
        got = np.load(tmp_path / "out" / (name + ".npy"))
        assert got.shape == w.shape and np.allclose(got, w, rtol=1e-6), (name, got, w)


@pytest.mark.parametrize("in_axes,in_dirs,out_axes,out_dirs", [
    ([0, 0], [0, 0], [0, 0], [0, 0]),
    ([1, 0], [0, 1], [1, 0], [0, 1]),
    ([-1, 0], [1, 0], [-1, 2], [1, 0]),
])
def test_scan_matches_onnxruntime(kiln_bin, tmp_path, in_axes, in_dirs, out_axes, out_dirs):
    # Scan-16: a running sum state; scan inputs a [T, 3] (or [3, T]) and b [T, 2]; scan outputs
    # the running sum ([3] per step) and a [2, 3] outer product per step.
    ort = pytest.importorskip("onnxruntime")
    t_len = 5
    body = helper.make_graph(
        [helper.make_node("Add", ["s", "a_t"], ["s_out"]),
         helper.make_node("Unsqueeze", ["b_t", "ax1"], ["b_col"]),
         helper.make_node("Mul", ["b_col", "s_out"], ["outer"]),
         helper.make_node("Identity", ["s_out"], ["sum_t"])],
        "body",
        [helper.make_tensor_value_info("s", TensorProto.FLOAT, [3]), helper.make_tensor_value_info("a_t", TensorProto.FLOAT, [3]),
         helper.make_tensor_value_info("b_t", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("s_out", TensorProto.FLOAT, [3]), helper.make_tensor_value_info("sum_t", TensorProto.FLOAT, [3]),
         helper.make_tensor_value_info("outer", TensorProto.FLOAT, [2, 3])],
        [numpy_helper.from_array(np.array([1], np.int64), "ax1")])
    scan = helper.make_node("Scan", ["s0", "a", "b"], ["s_final", "sums", "outers"], body=body, num_scan_inputs=2,
                            scan_input_axes=in_axes, scan_input_directions=in_dirs,
                            scan_output_axes=out_axes, scan_output_directions=out_dirs)
    a_shape = [t_len, 3] if in_axes[0] == 0 else [3, t_len]
    graph = helper.make_graph(
        [scan], "g",
        [helper.make_tensor_value_info("s0", TensorProto.FLOAT, [3]), helper.make_tensor_value_info("a", TensorProto.FLOAT, a_shape),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [t_len, 2])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("s_final", "sums", "outers")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
    model.ir_version = 8
    path = tmp_path / "scan.onnx"
    onnx.save(model, path)
    rng = np.random.RandomState(3)
    feeds = {"s0": rng.randn(3).astype(np.float32), "a": rng.randn(*a_shape).astype(np.float32),
             "b": rng.randn(t_len, 2).astype(np.float32)}
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
    proc = run_kiln(kiln_bin, ["run", path] + write_inputs(feeds, tmp_path / "in") + ["--output-dir", tmp_path / "out"])
    if proc.returncode != 0:
        fail("kiln run failed on Scan", proc)
    for name, w in zip(("s_final", "sums", "outers"), want):
        got = np.load(tmp_path / "out" / (name + ".npy"))
        assert got.shape == w.shape and np.allclose(got, w, rtol=1e-5, atol=1e-6), (name, got.shape, w.shape)


@pytest.mark.parametrize("attrs,why", [
    ({"scan_input_directions": [2]}, "scan_input_directions must be 0 or 1, got 2"),
    ({"scan_input_axes": [3]}, "scan_input_axes[0] = 3 is out of range for rank 2"),
    ({"scan_output_axes": [0, 1]}, "scan_output_axes has 2 values; expected 1"),
])
def test_scan_with_bad_attributes_is_a_clear_error(kiln_bin, tmp_path, attrs, why):
    body = helper.make_graph(
        [helper.make_node("Add", ["s", "x_t"], ["s_out"]), helper.make_node("Identity", ["s_out"], ["y_t"])], "body",
        [helper.make_tensor_value_info("s", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("x_t", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("s_out", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("y_t", TensorProto.FLOAT, [2])])
    scan = helper.make_node("Scan", ["s0", "x"], ["s_final", "ys"], body=body, num_scan_inputs=1, **attrs)
    graph = helper.make_graph(
        [scan], "g",
        [helper.make_tensor_value_info("s0", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 2])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("s_final", "ys")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
    model.ir_version = 8
    path = tmp_path / "scan_bad.onnx"
    onnx.save(model, path)
    proc = run_kiln(kiln_bin, ["run", path])
    assert proc.returncode == 1, proc.stderr
    assert "Scan" in proc.stderr and why in proc.stderr, proc.stderr
