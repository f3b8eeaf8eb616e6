"""Ops of older ONNX opsets (7-12) imported without ONNX's version converter, against
onnxruntime (which implements every version): one-node models whose older form differs from
the newest in how operands are given (Slice-1, Pad-2, Clip-6 and TopK-1 carry them as
attributes) or in which attributes exist (pools and Conv before 11, BatchNormalization-7's
`spatial`, ArgMax and the reductions before 11, If and Loop before 11), and Scan-8, whose
states and scan inputs have a batch axis first and whose scan axis is 1.

ONNX's backend node tests are generated at the newest opsets (but for one Scan-8 case), so these
are the tests of the older versions' importers."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from conftest import run_kiln, write_inputs
from kiln_checks import fail

F = TensorProto.FLOAT


def _vi(name, elem, dims):
    return helper.make_tensor_value_info(name, elem, dims)


def _one_node(op, inputs, outputs, attrs, opset, inits=(), out_elem=None):
    """A one-node model: `inputs` and `outputs` are [(name, elem, dims)]; inits are initializers."""
    node = helper.make_node(op, [n for n, _, _ in inputs] + [t.name for t in inits], [n for n, _, _ in outputs],
                            name=op.lower(), **attrs)
    graph = helper.make_graph([node], "g", [_vi(*i) for i in inputs], [_vi(n, e, None) for n, e, _ in outputs],
                              list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    return model


def _compare(kiln_bin, tmp_path, model, feeds, exact=False):
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    names = [o.name for o in model.graph.output]
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(names, feeds)
    proc = run_kiln(kiln_bin, ["run", path] + write_inputs(feeds, tmp_path / "in") + ["--output-dir", tmp_path / "out"])
    if proc.returncode != 0:
        fail("kiln run failed", proc)
    for name, w in zip(names, want):
        got = np.load(tmp_path / "out" / (name + ".npy"))
        assert got.shape == w.shape and got.dtype == w.dtype, (name, got.shape, w.shape, got.dtype, w.dtype)
        if exact or w.dtype.kind in "iub":
            np.testing.assert_array_equal(got, w, err_msg=name)
        else:
            err = np.linalg.norm(got.astype(np.float64) - w) / max(np.linalg.norm(w.astype(np.float64)), 1e-30)
            assert err <= 1e-5, (name, err)


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("opset", [1, 9])
@pytest.mark.parametrize("attrs", [
    {"starts": [1, 0], "ends": [3, 4]},
    {"starts": [-3], "ends": [2**62], "axes": [1]},
    {"starts": [0, 1], "ends": [-1, 1000], "axes": [2, 0]},
])
def test_slice_with_attributes(kiln_bin, tmp_path, opset, attrs):
    model = _one_node("Slice", [("x", F, [4, 5, 6])], [("y", F, None)], attrs, opset)
    _compare(kiln_bin, tmp_path, model, {"x": _x((4, 5, 6))}, exact=True)


@pytest.mark.parametrize("opset", [2, 10])
@pytest.mark.parametrize("attrs", [
    {"pads": [0, 1, 2, 1, 0, 3]},
    {"pads": [1, 0, 0, 0, 2, 1], "value": 1.5},
    {"pads": [0, 2, 1, 0, 1, 2], "mode": "reflect"},
    {"pads": [1, 1, 0, 2, 0, 3], "mode": "edge"},
])
def test_pad_with_attributes(kiln_bin, tmp_path, opset, attrs):
    model = _one_node("Pad", [("x", F, [2, 3, 4])], [("y", F, None)], attrs, opset)
    _compare(kiln_bin, tmp_path, model, {"x": _x((2, 3, 4))}, exact=True)


@pytest.mark.parametrize("attrs", [{"min": -0.5, "max": 0.25}, {"max": 0.1}, {"min": 0.2}, {}])
def test_clip_with_attributes(kiln_bin, tmp_path, attrs):
    model = _one_node("Clip", [("x", F, [3, 7])], [("y", F, None)], attrs, 6)
    _compare(kiln_bin, tmp_path, model, {"x": _x((3, 7))}, exact=True)


@pytest.mark.parametrize("opset", [1, 9, 10])
@pytest.mark.parametrize("axis", [-1, 0])
def test_topk_before_largest_and_sorted(kiln_bin, tmp_path, opset, axis):
    attrs = {"axis": axis} if opset >= 10 else {"axis": axis, "k": 3}
    inputs = [("x", F, [5, 6])]
    inits = [helper.make_tensor("k", TensorProto.INT64, [1], [3])] if opset >= 10 else []
    model = _one_node("TopK", inputs, [("values", F, None), ("indices", TensorProto.INT64, None)], attrs, opset, inits)
    _compare(kiln_bin, tmp_path, model, {"x": _x((5, 6))}, exact=True)


@pytest.mark.parametrize("op,opset,attrs", [
    ("ArgMax", 7, {"axis": 1, "keepdims": 0}),
    ("ArgMin", 9, {"axis": 0}),
    ("ReduceMean", 7, {"axes": [0, 2]}),
    ("ReduceSum", 9, {"axes": [1], "keepdims": 0}),
    ("ReduceMax", 10, {}),
    ("ReduceProd", 7, {"axes": [2]}),
])
def test_argmax_and_reductions_before_opset_11(kiln_bin, tmp_path, op, opset, attrs):
    out_elem = TensorProto.INT64 if op.startswith("Arg") else F
    model = _one_node(op, [("x", F, [3, 4, 5])], [("y", out_elem, None)], attrs, opset)
    _compare(kiln_bin, tmp_path, model, {"x": _x((3, 4, 5))})


@pytest.mark.parametrize("op,opset,attrs", [
    ("MaxPool", 7, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("MaxPool", 8, {"kernel_shape": [2, 3], "auto_pad": "SAME_UPPER"}),
    ("MaxPool", 10, {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    ("AveragePool", 7, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
    ("AveragePool", 9, {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0, 0, 1, 1]}),
    ("AveragePool", 10, {"kernel_shape": [3, 2], "strides": [2, 2], "ceil_mode": 1}),
])
def test_pools_before_opset_11(kiln_bin, tmp_path, op, opset, attrs):
    model = _one_node(op, [("x", F, [2, 3, 9, 8])], [("y", F, None)], attrs, opset)
    _compare(kiln_bin, tmp_path, model, {"x": _x((2, 3, 9, 8))})


def test_maxpool_8_indices(kiln_bin, tmp_path):
    model = _one_node("MaxPool", [("x", F, [1, 2, 6, 7])], [("y", F, None), ("i", TensorProto.INT64, None)],
                      {"kernel_shape": [2, 2], "strides": [2, 2]}, 8)
    _compare(kiln_bin, tmp_path, model, {"x": _x((1, 2, 6, 7))})


@pytest.mark.parametrize("opset,attrs", [
    (7, {"pads": [1, 0, 1, 2], "strides": [1, 2]}),
    (9, {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    (10, {"auto_pad": "SAME_LOWER", "group": 3}),
    (10, {"pads": [2, 0, 1, 1], "group": 2, "dilations": [2, 1]}),
])
def test_conv_before_opset_11(kiln_bin, tmp_path, opset, attrs):
    group = attrs.get("group", 1)
    w = helper.make_tensor("w", F, [6, 6 // group, 3, 3], _x((6, 6 // group, 3, 3), 1).ravel())
    b = helper.make_tensor("b", F, [6], _x((6,), 2))
    model = _one_node("Conv", [("x", F, [2, 6, 10, 9])], [("y", F, None)], dict(attrs, kernel_shape=[3, 3]), opset,
                      [w, b])
    _compare(kiln_bin, tmp_path, model, {"x": _x((2, 6, 10, 9))})


@pytest.mark.parametrize("opset", [7, 9])
def test_batchnorm_7_and_9(kiln_bin, tmp_path, opset):
    c = 4
    inits = [helper.make_tensor(n, F, [c], v) for n, v in
             (("s", _x((c,), 1)), ("b", _x((c,), 2)), ("m", _x((c,), 3)), ("v", np.abs(_x((c,), 4)) + 0.5))]
    model = _one_node("BatchNormalization", [("x", F, [2, c, 5, 5])], [("y", F, None)], {"epsilon": 1e-3}, opset,
                      inits)
    _compare(kiln_bin, tmp_path, model, {"x": _x((2, c, 5, 5))})


def test_batchnorm_7_per_element_statistics_are_refused(kiln_bin, tmp_path):
    c = 4
    inits = [helper.make_tensor(n, F, [c, 5, 5], np.ones(c * 25, np.float32)) for n in "sbmv"]
    model = _one_node("BatchNormalization", [("x", F, [2, c, 5, 5])], [("y", F, None)], {"spatial": 0}, 7, inits)
    path = tmp_path / "bn.onnx"
    onnx.save(model, path)
    proc = run_kiln(kiln_bin, ["inspect", path])
    assert "spatial = 0 (statistics per element" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_if_and_loop_at_opset_9(kiln_bin, tmp_path):
    # If picks a branch on a run-time condition; Loop sums x into an accumulator `n` times.
    then_g = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["t"])], "then", [], [_vi("t", F, [3])],
                               [helper.make_tensor("two", F, [], [2.0])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [_vi("e", F, [3])])
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["acc_in", "x"], ["acc_out"])],
        "body", [_vi("i", TensorProto.INT64, []), _vi("cond_in", TensorProto.BOOL, []), _vi("acc_in", F, [3])],
        [_vi("cond_out", TensorProto.BOOL, []), _vi("acc_out", F, [3])])
    nodes = [helper.make_node("If", ["c"], ["picked"], then_branch=then_g, else_branch=else_g),
             helper.make_node("Loop", ["n", "", "picked"], ["summed"], body=body)]
    graph = helper.make_graph(nodes, "g", [_vi("x", F, [3]), _vi("c", TensorProto.BOOL, []),
                                           _vi("n", TensorProto.INT64, [])], [_vi("summed", F, [3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 7
    for c in (True, False):
        feeds = {"x": _x((3,)), "c": np.array(c), "n": np.array(4, np.int64)}
        _compare(kiln_bin, tmp_path, model, feeds)


@pytest.mark.parametrize("op", ["Sum", "Mean", "Max", "Min"])
def test_variadic_ops_of_opset_7_take_one_shape(kiln_bin, tmp_path, op):
    model = _one_node(op, [("a", F, [2, 5]), ("b", F, [2, 5]), ("c", F, [2, 5])], [("y", F, None)], {}, 7)
    _compare(kiln_bin, tmp_path, model, {"a": _x((2, 5), 1), "b": _x((2, 5), 2), "c": _x((2, 5), 3)})


@pytest.mark.parametrize("op,opset,inputs,attrs,message", [
    ("Pad", 2, ["x"], {}, "Pad-2 needs the attribute pads"),
    ("Pad", 11, ["x", "p"], {"pads": [0, 0, 0, 0]}, "pads is an input from opset 11 (this model's opset is 11)"),
    ("Slice", 9, ["x"], {"starts": [0]}, "Slice-1 needs the attribute ends"),
    ("Slice", 9, ["x", "p"], {"starts": [0], "ends": [1]}, "Slice-1 has one input, got 2"),
    ("Clip", 6, ["x", "p"], {}, "Clip-6 has one input, got 2"),
    ("TopK", 9, ["x", "p"], {"k": 1}, "TopK-1 has one input, got 2"),
])
def test_older_forms_with_wrong_operands_are_clear_errors(kiln_bin, tmp_path, op, opset, inputs, attrs, message):
    x = _vi("x", F, [2, 2])
    p = helper.make_tensor("p", TensorProto.INT64, [4], [0, 0, 0, 0]) if op == "Pad" else \
        helper.make_tensor("p", TensorProto.FLOAT if op == "Clip" else TensorProto.INT64, [1], [1])
    node = helper.make_node(op, inputs, ["y"], name="old", **attrs)
    graph = helper.make_graph([node], "g", [x], [_vi("y", F, None)], [p] if "p" in inputs else [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    path = tmp_path / "bad.onnx"
    onnx.save(model, path)
    proc = run_kiln(kiln_bin, ["inspect", path])
    out = proc.stdout + proc.stderr
    assert proc.returncode >= 0, out  # an error, not a crash
    assert message in out and "old" in out, out


def _scan8_model(directions, batch, length, seq_lens=None, seq_lens_input=False):
    """Scan-8 over states s1 [batch, 3] and s2 [batch] (a scalar per batch element) and scan
    inputs a [batch, length, 3] and b [batch, length, 2]. The body reads both states and both
    elements: s1' = s1 + a_t * s2, s2' = s2 + sum(b_t); scan outputs s1' ([3]) and b_t * s2 ([2])."""
    body = helper.make_graph(
        [helper.make_node("Mul", ["a_t", "s2"], ["a_s2"]), helper.make_node("Add", ["s1", "a_s2"], ["s1_out"]),
         helper.make_node("ReduceSum", ["b_t"], ["b_sum"], keepdims=0),
         helper.make_node("Add", ["s2", "b_sum"], ["s2_out"]), helper.make_node("Mul", ["b_t", "s2"], ["b_s2"]),
         helper.make_node("Identity", ["s1_out"], ["y1"])],
        "body", [_vi("s1", F, [3]), _vi("s2", F, []), _vi("a_t", F, [3]), _vi("b_t", F, [2])],
        [_vi("s1_out", F, [3]), _vi("s2_out", F, []), _vi("y1", F, [3]), _vi("b_s2", F, [2])])
    attrs = {"body": body, "num_scan_inputs": 2}
    if directions is not None:
        attrs["directions"] = directions
    lens_name = "lens" if seq_lens is not None or seq_lens_input else ""
    node = helper.make_node("Scan", [lens_name, "s1", "s2", "a", "b"], ["s1_final", "s2_final", "ys", "zs"],
                            name="scan8", **attrs)
    inputs = [_vi("s1", F, [batch, 3]), _vi("s2", F, [batch]), _vi("a", F, [batch, length, 3]),
              _vi("b", F, [batch, length, 2])]
    if seq_lens_input:
        inputs.append(_vi("lens", TensorProto.INT64, [batch]))
    inits = [helper.make_tensor("lens", TensorProto.INT64, [len(seq_lens)], seq_lens)] if seq_lens is not None else []
    graph = helper.make_graph([node], "g", inputs, [_vi(n, F, None) for n in ("s1_final", "s2_final", "ys", "zs")],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 8)])
    model.ir_version = 7
    return model


def _scan8_feeds(batch, length):
    return {"s1": _x((batch, 3), 1), "s2": _x((batch,), 2), "a": _x((batch, length, 3), 3),
            "b": _x((batch, length, 2), 4)}


@pytest.mark.parametrize("directions", [None, [0, 0], [1, 0], [0, 1], [1, 1]])
@pytest.mark.parametrize("batch", [1, 3])
def test_scan_8_matches_onnxruntime(kiln_bin, tmp_path, directions, batch):
    model = _scan8_model(directions, batch, 4)
    _compare(kiln_bin, tmp_path, model, _scan8_feeds(batch, 4))


@pytest.mark.parametrize("batch", [1, 2, 5])
def test_scan_8_with_dynamic_batch_and_length(kiln_bin, tmp_path, batch):
    # One model, several batch sizes and sequence lengths; the sequence_lens constant holds the
    # full length, which needs a known length, so it is omitted here.
    model = _scan8_model([1, 0], "batch", "time")
    for length in (1, 3):
        _compare(kiln_bin, tmp_path, model, _scan8_feeds(batch, length))


def test_scan_8_with_full_length_sequence_lens(kiln_bin, tmp_path):
    model = _scan8_model([0, 1], 3, 4, seq_lens=[4, 4, 4])
    _compare(kiln_bin, tmp_path, model, _scan8_feeds(3, 4))


def test_scan_8_without_states(kiln_bin, tmp_path):
    # A map over [batch, length, 2, 3]: each element's transpose doubled, scanned backwards, and
    # a value the body reads from the outer graph.
    body = helper.make_graph([helper.make_node("Transpose", ["x_t"], ["xt_t"], perm=[1, 0]),
                              helper.make_node("Mul", ["xt_t", "k"], ["y_t"])],
                             "body", [_vi("x_t", F, [2, 3])], [_vi("y_t", F, [3, 2])])
    node = helper.make_node("Scan", ["", "x"], ["ys"], name="scan8", body=body, num_scan_inputs=1, directions=[1])
    graph = helper.make_graph([helper.make_node("Add", ["k_in", "k_in"], ["k"]), node], "g",
                              [_vi("x", F, [2, 5, 2, 3]), _vi("k_in", F, [])], [_vi("ys", F, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 8)])
    model.ir_version = 7
    _compare(kiln_bin, tmp_path, model, {"x": _x((2, 5, 2, 3)), "k_in": np.array(1.5, np.float32)})


@pytest.mark.parametrize("directions", [[0, 0], [1, 0], [1, 1]])
@pytest.mark.parametrize("as_input", [False, True])
def test_scan_8_with_shorter_sequences(kiln_bin, tmp_path, directions, as_input):
    # Each batch element runs for its own length (a reversed scan starts at its last step); the
    # scan outputs' rows past it are zeros, as onnxruntime writes them.
    lens = [4, 2, 1]
    model = _scan8_model(directions, 3, 4, seq_lens=None if as_input else lens, seq_lens_input=as_input)
    feeds = _scan8_feeds(3, 4)
    if as_input:
        feeds["lens"] = np.array(lens, np.int64)
    _compare(kiln_bin, tmp_path, model, feeds)


@pytest.mark.parametrize("lens,message", [
    ([4, 0, 4], "sequence_lens[1] = 0 is not in [1, 4] (the scan inputs' length)"),
    ([4, 4, 5], "sequence_lens[2] = 5 is not in [1, 4] (the scan inputs' length)"),
    ([4, 4], "sequence_lens has shape [2]; expected one length per batch element (3)"),
])
def test_scan_8_bad_sequence_lens_are_clear_errors(kiln_bin, tmp_path, lens, message):
    model = _scan8_model(None, 3, 4, seq_lens=lens)
    path = tmp_path / "scan8.onnx"
    onnx.save(model, path)
    proc = run_kiln(kiln_bin, ["inspect", path])
    out = proc.stdout + proc.stderr
    assert proc.returncode >= 0, out  # an error, not a crash
    assert message in out and "scan8" in out and "Scan" in out, out
