"""TensorFlow ops and Keras layers that public models use, each in a small generated model run by
`kiln run` and compared with TensorFlow (FP32, relative L2 ≤ 1e-5; exact for masks)."""

import numpy as np
import pytest

from conftest import run_kiln, write_inputs
from kiln_checks import compare, fail

tf = pytest.importorskip("tensorflow")


def run(kiln_bin, model, inputs, tmp_path):
    proc = run_kiln(kiln_bin, ["run", model] + write_inputs(inputs, tmp_path / "in") + ["--output-dir", tmp_path / "out"])
    if proc.returncode != 0:
        fail("kiln run failed on %s" % model, proc)
    return proc


@pytest.mark.parametrize("num_lower,num_upper", [(-1, 0), (1, 2), (0, -1), (-1, -1), (2, 0), (0, 0), (6, 7)])
def test_matrix_band_part_with_run_time_limits(kiln_bin, tmp_path, num_lower, num_upper):
    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None], tf.float32, name="x"),
                                      tf.TensorSpec([], tf.int32, name="lo"), tf.TensorSpec([], tf.int64, name="hi")])
        def f(self, x, lo, hi):
            return {"y": tf.linalg.band_part(x, lo, tf.cast(hi, tf.int32))}

    m = M()
    tf.saved_model.save(m, str(tmp_path / "band"), signatures={"serving_default": m.f})
    x = np.random.default_rng(0).standard_normal((3, 6, 7)).astype(np.float32)
    inputs = {"x": x, "lo": np.int32(num_lower), "hi": np.int64(num_upper)}
    run(kiln_bin, tmp_path / "band", inputs, tmp_path)
    ref = m.f(tf.constant(x), tf.constant(num_lower), tf.constant(num_upper, tf.int64))["y"].numpy()
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "y.npy"), ref)


def test_keras_causal_multi_head_attention(kiln_bin, tmp_path):
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    inp = keras.Input((None, 16), name="x")
    y = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)(inp, inp, use_causal_mask=True)
    keras.Model(inp, y).export(str(tmp_path / "causal"))
    x = np.random.default_rng(1).standard_normal((2, 5, 16)).astype(np.float32)
    ref = tf.saved_model.load(str(tmp_path / "causal")).signatures["serving_default"](x=tf.constant(x))
    run(kiln_bin, tmp_path / "causal", {"x": x}, tmp_path)
    (name, value), = ref.items()
    problems = compare(name, np.load(tmp_path / "out" / ("%s.npy" % name)), value.numpy(), 1e-5)
    assert not problems, problems


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_bucketize(kiln_bin, tmp_path, dtype):
    boundaries = [-2.0, -0.5, 0.0, 0.0, 1.5, 3.0]

    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 7], tf.as_dtype(dtype), name="x")])
        def f(self, x):
            return {"y": tf.raw_ops.Bucketize(input=x, boundaries=boundaries)}

    m = M()
    tf.saved_model.save(m, str(tmp_path / "b"), signatures={"serving_default": m.f})
    x = (np.random.default_rng(2).standard_normal((5, 7)) * 3).astype(dtype)
    x[0, :4] = [-2.0, 0.0, 3.0, 1.5]  # values on the boundaries
    run(kiln_bin, tmp_path / "b", {"x": x}, tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "y.npy"), m.f(tf.constant(x))["y"].numpy())


def test_bucketize_with_unsorted_boundaries_is_an_error(kiln_bin, tmp_path):
    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def f(self, x):
            return {"y": tf.raw_ops.Bucketize(input=x, boundaries=[1.0, 0.0])}

    m = M()
    tf.saved_model.save(m, str(tmp_path / "b"), signatures={"serving_default": m.f})
    proc = run_kiln(kiln_bin, ["run", tmp_path / "b"] + write_inputs({"x": np.zeros(3, np.float32)}, tmp_path / "in"))
    assert proc.returncode == 1 and "boundaries must be sorted" in proc.stderr and "Bucketize" in proc.stderr, proc.stderr


@pytest.mark.parametrize("binary,weighted,rank", [(False, False, 2), (True, False, 2), (False, True, 2), (False, False, 1)])
def test_dense_bincount(kiln_bin, tmp_path, binary, weighted, rank):
    shape = [None, 6] if rank == 2 else [None]

    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec(shape, tf.int32, name="x"), tf.TensorSpec(shape, tf.float32, name="w")])
        def f(self, x, w):
            weights = w if weighted else tf.constant([], tf.float32)
            return {"y": tf.raw_ops.DenseBincount(input=x, size=8, weights=weights, binary_output=binary)}

    m = M()
    tf.saved_model.save(m, str(tmp_path / "c"), signatures={"serving_default": m.f})
    rng = np.random.default_rng(3)
    dims = (4, 6) if rank == 2 else (9,)
    x = rng.integers(0, 10, size=dims).astype(np.int32)  # 8 and 9 fall outside [0, 8): ignored
    w = rng.random(dims).astype(np.float32)
    run(kiln_bin, tmp_path / "c", {"x": x, "w": w}, tmp_path)
    ref = m.f(tf.constant(x), tf.constant(w))["y"].numpy()
    problems = compare("y", np.load(tmp_path / "out" / "y.npy"), ref, 1e-6)
    assert not problems, problems


def test_keras_layer_coverage(kiln_bin, tmp_path):
    """scripts/keras_layer_coverage.py: no keras.layers layer gives a wrong answer, and at least as
    many pass as docs/keras-layers.md records."""
    import re
    import subprocess
    import sys

    from conftest import REPO_ROOT

    doc = (REPO_ROOT / "docs" / "keras-layers.md").read_text()
    passed = int(re.search(r"\*\*(\d+) of \d+ layers pass", doc).group(1))
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "keras_layer_coverage.py"), "--kiln", str(kiln_bin),
                           "--out", str(tmp_path / "layers.md"), "--min-pass", str(passed)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800)
    print(proc.stdout[-6000:])
    assert proc.returncode == 0, proc.stdout[-6000:]


def random_boxes(rng, n):
    centers = rng.random((n, 2)) * 10
    sizes = rng.random((n, 2)) * 3 + 0.1
    corners = np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=1)
    flip = rng.random(n) < 0.3  # some boxes given by their other diagonal
    corners[flip] = corners[flip][:, [2, 3, 0, 1]]
    return corners.astype(np.float32)


@pytest.mark.parametrize("version", [3, 4, 5])
def test_non_max_suppression(kiln_bin, tmp_path, version):
    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="boxes"),
                                      tf.TensorSpec([None], tf.float32, name="scores")])
        def f(self, boxes, scores):
            if version == 3:
                return {"selected": tf.image.non_max_suppression(boxes, scores, 20, 0.4, 0.2)}
            if version == 4:
                sel, valid = tf.image.non_max_suppression_padded(boxes, scores, 20, 0.4, 0.2, pad_to_max_output_size=True)
                return {"selected": sel, "valid": valid}
            sel, sc = tf.image.non_max_suppression_with_scores(boxes, scores, 20, 0.4, 0.2)
            return {"selected": sel, "selected_scores": sc}

    m = M()
    tf.saved_model.save(m, str(tmp_path / "nms"), signatures={"serving_default": m.f})
    rng = np.random.default_rng(version)
    boxes = random_boxes(rng, 60)
    scores = rng.random(60).astype(np.float32)
    scores[5:9] = scores[4]  # ties: the lower index first
    run(kiln_bin, tmp_path / "nms", {"boxes": boxes, "scores": scores}, tmp_path)
    ref = m.f(tf.constant(boxes), tf.constant(scores))
    assert len(ref["selected"]) > 3
    for name, value in ref.items():
        np.testing.assert_array_equal(np.load(tmp_path / "out" / ("%s.npy" % name)), value.numpy(), err_msg=name)


def test_onnx_non_max_suppression_against_onnxruntime(kiln_bin, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper
    for center in (0, 1):
        node = helper.make_node("NonMaxSuppression", ["boxes", "scores", "max", "iou", "thr"], ["sel"],
                                center_point_box=center)
        inits = [helper.make_tensor("max", TensorProto.INT64, [1], [7]), helper.make_tensor("iou", TensorProto.FLOAT, [1], [0.3]),
                 helper.make_tensor("thr", TensorProto.FLOAT, [1], [0.1])]
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["b", "n", 4]),
                                                helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["b", "c", "n"])],
                                  [helper.make_tensor_value_info("sel", TensorProto.INT64, ["m", 3])], inits)
        path = tmp_path / ("nms%d.onnx" % center)
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=8), str(path))
        rng = np.random.default_rng(center)
        boxes = np.stack([random_boxes(rng, 40) for _ in range(2)])
        if center:
            boxes = np.concatenate([(boxes[..., :2] + boxes[..., 2:]) / 2, np.abs(boxes[..., 2:] - boxes[..., :2])], -1)
        scores = rng.random((2, 3, 40)).astype(np.float32)
        run(kiln_bin, path, {"boxes": boxes, "scores": scores}, tmp_path / str(center))
        ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"boxes": boxes, "scores": scores})[0]
        np.testing.assert_array_equal(np.load(tmp_path / str(center) / "out" / "sel.npy"), ref)
