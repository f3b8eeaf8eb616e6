"""ONNX RNN / GRU / LSTM against onnxruntime: random one-node models (onnx.helper) over the
attribute combinations (directions, layout, sequence_lens, initial states, peepholes, clip,
linear_before_reset, input_forget, non-default activations and their parameters, omitted
inputs and outputs, opsets 7 and 14, a dynamic batch), run with `kiln run model.onnx` and
compared with onnxruntime's CPU kernels: FP32 relative L2 error <= 1e-5 per output. Those
kernels refuse layout 1: batch-major models are compared with onnxruntime running the same
model in layout 0 on transposed tensors (ONNX's *_batchwise node tests check layout 1 itself).

test_recurrent_in_cpu_engine_matches_onnxruntime: the same cases (and more) with the weights as
initializers, converted into CPU engines; checks where each node runs (oneDNN inside the engine,
or natively with the reason in `kiln summary`) and the same bound.

Not compared here (covered by tests/unit/nn_recurrent_test.cc): sequence lengths of 0 with an
initial state (Kiln keeps the initial state, onnxruntime gives zeros; ONNX leaves it open),
float16/bfloat16 (onnxruntime has no CPU kernels for them), and a missing ThresholdedRelu alpha
(onnxruntime uses 0 instead of the ThresholdedRelu operator's default 1).
"""

import zlib

import numpy as np
import pytest

import re

from conftest import run_kiln, write_inputs
from kiln_checks import fail, shapes_arg

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}

# name: (op, direction, layout, inputs given, outputs read, attributes, opset)
CASES = {
    "rnn_forward_bias_h0": ("RNN", "forward", 0, "B h0", "Y Y_h", {}, 14),
    "rnn_reverse_lens": ("RNN", "reverse", 0, "B lens h0", "Y Y_h", {}, 14),
    "rnn_bidir_batch_major_acts": ("RNN", "bidirectional", 1, "lens", "Y Y_h",
                                   {"activations": ["Relu", "LeakyRelu"], "activation_alpha": [0.3, 0.3]}, 14),
    "rnn_clip_softsign_opset7": ("RNN", "forward", 0, "B", "Y", {"activations": ["Softsign"], "clip": 0.5}, 7),
    "rnn_affine_thresholded": ("RNN", "bidirectional", 0, "B h0", "Y Y_h",
                               {"activations": ["Affine", "ThresholdedRelu"], "activation_alpha": [0.7, 0.1],
                                "activation_beta": [0.2, 0.0]}, 14),
    "gru_forward_lens": ("GRU", "forward", 0, "B lens h0", "Y Y_h", {}, 14),
    "gru_lbr_bidir_batch_major_clip": ("GRU", "bidirectional", 1, "B lens h0", "Y Y_h",
                                       {"linear_before_reset": 1, "clip": 0.8}, 14),
    "gru_reverse_lbr_h0": ("GRU", "reverse", 0, "B h0", "Y_h", {"linear_before_reset": 1}, 7),
    "gru_hardsigmoid_elu": ("GRU", "forward", 0, "B", "Y Y_h",
                            {"activations": ["HardSigmoid", "Elu"], "activation_alpha": [0.3, 0.9],
                             "activation_beta": [0.4]}, 14),
    "gru_softplus_scaledtanh_bidir": ("GRU", "bidirectional", 0, "B lens", "Y",
                                      {"activations": ["Sigmoid", "ScaledTanh", "Sigmoid", "Softplus"],
                                       "activation_alpha": [1.3, 1.3], "activation_beta": [0.6, 0.6]}, 14),
    "lstm_all_inputs_peepholes": ("LSTM", "forward", 0, "B lens h0 c0 P", "Y_h Y_c", {}, 14),
    "lstm_bidir_batch_major_clip_input_forget": ("LSTM", "bidirectional", 1, "B lens h0 c0 P", "Y Y_h Y_c",
                                                 {"clip": 0.7, "input_forget": 1}, 14),
    "lstm_reverse_no_bias": ("LSTM", "reverse", 0, "lens c0", "Y Y_c", {}, 14),
    "lstm_acts": ("LSTM", "forward", 0, "B P", "Y Y_h Y_c",
                  {"activations": ["HardSigmoid", "ScaledTanh", "Elu"], "activation_alpha": [0.25, 1.5, 0.8],
                   "activation_beta": [0.45, 0.7]}, 14),
    "lstm_opset7_bidir": ("LSTM", "bidirectional", 0, "B h0 c0", "Y Y_h Y_c", {}, 7),
}


# Cases also run in double. onnxruntime has no double kernels: it runs the float model on the
# same values (all exact in float), within float's rounding of Kiln's double result.
DOUBLE_CASES = ["gru_forward_lens", "gru_lbr_bidir_batch_major_clip", "lstm_acts",
                "lstm_bidir_batch_major_clip_input_forget"]


def _model(op, direction, layout, given, outputs, attrs, opset, seq, batch, inp, hidden, dynamic, elem):
    nd = 2 if direction == "bidirectional" else 1
    g = GATES[op]
    state = [batch, nd, hidden] if layout else [nd, batch, hidden]
    shapes = {"X": [batch, seq, inp] if layout else [seq, batch, inp], "W": [nd, g * hidden, inp],
              "R": [nd, g * hidden, hidden], "B": [nd, 2 * g * hidden], "lens": [batch], "h0": state, "c0": state,
              "P": [nd, 3 * hidden]}
    order = ["X", "W", "R", "B", "lens", "h0"] + (["c0", "P"] if op == "LSTM" else [])
    present = {"X", "W", "R"} | set(given.split())
    node_inputs = [n if n in present else "" for n in order]
    while node_inputs[-1] == "":
        node_inputs.pop()
    out_names = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    read = outputs.split()
    node_outputs = [n if n in read else "" for n in out_names]
    while node_outputs[-1] == "":
        node_outputs.pop()
    kwargs = dict(attrs, hidden_size=hidden, direction=direction)
    if opset >= 14:
        kwargs["layout"] = layout
    node = helper.make_node(op, node_inputs, node_outputs, name=op.lower(), **kwargs)

    def info(name):
        dims = list(shapes[name])
        if dynamic and name in ("X", "lens", "h0", "c0"):
            dims = ["batch" if d == batch and i == (0 if (layout or name == "lens") else 1) else d
                    for i, d in enumerate(dims)]
        return helper.make_tensor_value_info(name, TensorProto.INT32 if name == "lens" else elem, dims)

    graph = helper.make_graph([node], "g", [info(n) for n in order if n in present],
                              [helper.make_tensor_value_info(n, elem, None) for n in read])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model, shapes, [n for n in order if n in present], read


def _onnxruntime(model, op, direction, layout, given, outputs, attrs, opset, feeds, read, tmp_path, dims):
    """onnxruntime's outputs. Its CPU kernels refuse layout 1, so a batch-major model runs as the
    same model in layout 0 on transposed inputs, with its outputs transposed back; they have no
    double kernels, so a double model runs in float."""
    if layout == 1 or dims[-1] != TensorProto.FLOAT:
        model = _model(op, direction, 0, given, outputs, attrs, opset, *dims[:-1], TensorProto.FLOAT)[0]
        feeds = {n: (v if n == "lens" else v.astype(np.float32)) for n, v in feeds.items()}
    if layout == 1:
        feeds = {n: (np.swapaxes(v, 0, 1) if n in ("X", "h0", "c0") else v) for n, v in feeds.items()}
    path = tmp_path / "ort.onnx"
    onnx.save(model, path)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(read, feeds)
    if layout == 1:
        got = [np.transpose(v, (2, 0, 1, 3)) if n == "Y" else np.swapaxes(v, 0, 1) for n, v in zip(read, got)]
    return got


@pytest.mark.parametrize("name,dynamic,dtype", [(n, d, "float32") for n in sorted(CASES) for d in (False, True)] +
                         [(n, False, "float64") for n in DOUBLE_CASES])
def test_recurrent_matches_onnxruntime(kiln_bin, tmp_path, name, dynamic, dtype):
    op, direction, layout, given, outputs, attrs, opset = CASES[name]
    seq, batch, inp, hidden = 5, 3, 4, 6
    elem = TensorProto.DOUBLE if dtype == "float64" else TensorProto.FLOAT
    dims = (seq, batch, inp, hidden, dynamic, elem)
    model, shapes, inputs, read = _model(op, direction, layout, given, outputs, attrs, opset, *dims)
    path = tmp_path / (name + ".onnx")
    onnx.save(model, path)
    rng = np.random.default_rng([zlib.crc32((name + dtype).encode()), int(dynamic)])
    feeds = {}
    for n in inputs:
        if n == "lens":
            feeds[n] = rng.integers(1, seq + 1, size=batch).astype(np.int32)
            feeds[n][0] = seq  # at least one full row
        else:
            scale = 0.5 if n in ("W", "R") else 1.0
            feeds[n] = (rng.standard_normal(shapes[n]) * scale).astype(np.float32).astype(dtype)  # exact in float
    want = _onnxruntime(model, op, direction, layout, given, outputs, attrs, opset, feeds, read, tmp_path, dims)
    proc = run_kiln(kiln_bin, ["run", path] + write_inputs(feeds, tmp_path / "in") + ["--output-dir", tmp_path / "out"])
    if proc.returncode != 0:
        fail("kiln run failed on %s" % name, proc)
    for out_name, w in zip(read, want):
        got = np.load(tmp_path / "out" / (out_name + ".npy"))
        assert got.shape == w.shape and got.dtype == np.dtype(dtype), (out_name, got.shape, w.shape, got.dtype)
        got, w = got.astype(np.float64), w.astype(np.float64)
        err = np.linalg.norm(got - w) / max(np.linalg.norm(w), 1e-30)
        print("%s %s %s %s: relative L2 error %.2e" % (name, dtype, "dynamic" if dynamic else "static", out_name, err))
        assert err <= 1e-5, (name, out_name, err)


# ---- CPU engines (oneDNN's RNN primitives, backend/cpu/rnn_kernel.cc) ----

# More cases the CPU engine claims (default activations, no clip, no sequence_lens): with CASES,
# every cell, direction and layout, with and without B, initial states and peepholes.
ENGINE_CASES = {
    "engine_rnn_bidir_relu_batch_major": ("RNN", "bidirectional", 1, "B h0", "Y Y_h",
                                          {"activations": ["Relu", "Relu"]}, 14),
    "engine_rnn_reverse_sigmoid": ("RNN", "reverse", 0, "", "Y Y_h", {"activations": ["Sigmoid"]}, 14),
    "engine_gru_bidir_h0": ("GRU", "bidirectional", 0, "B h0", "Y Y_h", {}, 14),
    "engine_gru_lbr_bidir_batch_major": ("GRU", "bidirectional", 1, "B h0", "Y Y_h", {"linear_before_reset": 1}, 14),
    "engine_gru_reverse_batch_major_no_bias": ("GRU", "reverse", 1, "", "Y Y_h", {}, 14),
    "engine_lstm_bidir_batch_major_all": ("LSTM", "bidirectional", 1, "B h0 c0 P", "Y Y_h Y_c", {}, 14),
    "engine_lstm_bidir_peepholes": ("LSTM", "bidirectional", 0, "B h0 c0 P", "Y Y_h Y_c", {}, 14),
    "engine_lstm_reverse_c0_only": ("LSTM", "reverse", 0, "B c0", "Y Y_h Y_c", {}, 14),
}
ALL_CASES = dict(CASES, **ENGINE_CASES)
DEFAULT_ACTIVATIONS = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}


def _why_not_in_engine(op, direction, attrs, lens, seq):
    """The part of the CPU backend's reason (backend/cpu/recurrent_support.cc) expected for a node
    the engine does not claim, or None when oneDNN runs it."""
    if "clip" in attrs:
        return "no cell clip"
    if attrs.get("input_forget"):
        return "input_forget"
    acts = attrs.get("activations")
    if acts:
        per_dir = len(DEFAULT_ACTIVATIONS[op])
        first = acts[:per_dir]
        same = direction != "bidirectional" or acts[per_dir:] == first
        ok = first[0] in ("Tanh", "Relu", "Sigmoid") if op == "RNN" else first == DEFAULT_ACTIVATIONS[op]
        if not same or not ok:
            return "activations"
    if lens is not None and not np.all(lens == seq):
        return "sequence_lens"
    return None


@pytest.mark.parametrize("name,dynamic", [(n, False) for n in sorted(ALL_CASES)] +
                         [(n, True) for n in sorted(ENGINE_CASES)])
def test_recurrent_in_cpu_engine_matches_onnxruntime(kiln_bin, tmp_path, monkeypatch, name, dynamic):
    """The models above with W, R, B, P and sequence_lens as initializers, converted into CPU
    engines (`kiln convert --build-shapes`, smallest engine one node). Where oneDNN computes the
    node it runs inside the engine as cpu.<op> on a oneDNN primitive (`kiln summary`, the engine
    plan that KILN_CPU_PLAN prints); otherwise it runs natively and the summary names the reason.
    Either way the outputs match onnxruntime within FP32 relative L2 1e-5. `dynamic`: the batch
    dim is symbolic (the engine's profile comes from the build shapes)."""
    op, direction, layout, given, outputs, attrs, opset = ALL_CASES[name]
    seq, batch, inp, hidden = 5, 3, 4, 6
    dims = (seq, batch, inp, hidden, dynamic, TensorProto.FLOAT)
    model, shapes, inputs, read = _model(op, direction, layout, given, outputs, attrs, opset, *dims)
    rng = np.random.default_rng(zlib.crc32((name + "/engine").encode()))
    feeds = {}
    for n in inputs:
        if n == "lens":
            feeds[n] = rng.integers(1, seq + 1, size=batch).astype(np.int32)
            feeds[n][0] = seq
        else:
            feeds[n] = (rng.standard_normal(shapes[n]) * (0.5 if n in ("W", "R") else 1.0)).astype(np.float32)
    want = _onnxruntime(model, op, direction, layout, given, outputs, attrs, opset, feeds, read, tmp_path, dims)

    constant = [n for n in inputs if n in ("W", "R", "B", "P", "lens")]
    graph = model.graph
    runtime_inputs = [i for i in graph.input if i.name not in constant]
    del graph.input[:]
    graph.input.extend(runtime_inputs)
    graph.initializer.extend(numpy_helper.from_array(feeds[n], n) for n in constant)
    path = tmp_path / (name + ".onnx")
    onnx.save(model, path)
    runtime_feeds = {n: v for n, v in feeds.items() if n not in constant}

    converted = tmp_path / "converted"
    proc = run_kiln(kiln_bin, ["convert", path, converted, "--minimum-segment-size", "1",
                               "--build-shapes", shapes_arg({n: v.shape for n, v in runtime_feeds.items()})])
    if proc.returncode != 0:
        fail("kiln convert failed on %s" % name, proc)
    summary = run_kiln(kiln_bin, ["summary", converted])
    assert summary.returncode == 0, summary.stderr
    why = _why_not_in_engine(op, direction, attrs, feeds.get("lens"), seq)
    monkeypatch.setenv("KILN_CPU_PLAN", "1")
    proc = run_kiln(kiln_bin, ["run", converted] + write_inputs(runtime_feeds, tmp_path / "in") +
                    ["--output-dir", tmp_path / "out"])
    if proc.returncode != 0:
        fail("kiln run failed on the converted %s" % name, proc)
    step = re.search(r"step\s+\S+\s+cpu\.%s\s+(\S+)" % op, proc.stderr)
    if why is None:
        assert "% of OPs Converted: 100.00%" in summary.stdout, summary.stdout
        assert step and step.group(1).startswith("onednn:"), "no oneDNN cpu.%s step:\n%s" % (op, proc.stderr)
    else:
        assert re.search(r"^\s*1\s+%s\s+.*%s" % (op, re.escape(why)), summary.stdout, re.M), summary.stdout
        assert step is None, proc.stderr
    for out_name, w in zip(read, want):
        got = np.load(tmp_path / "out" / (out_name + ".npy")).astype(np.float64)
        assert got.shape == w.shape, (out_name, got.shape, w.shape)
        err = np.linalg.norm(got - w) / max(np.linalg.norm(w), 1e-30)
        print("%s %s (%s): relative L2 error %.2e" % (name, out_name, why or "oneDNN", err))
        assert err <= 1e-5, (name, out_name, err)
