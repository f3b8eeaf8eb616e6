"""ONNX's DFT (opsets 17 and 20) and STFT (opset 17) run by `kiln run` against onnxruntime: real and
complex signals, forward and inverse, one-sided, dft_length shorter and longer than the signal, odd
and even lengths on both sides of the direct-definition limit (64) and Bluestein's lengths, and STFT
with a window. Kiln transforms in double and rounds once; onnxruntime in float32, with the
definition (error growing like n * eps) for lengths that are not powers of two. So each result is
also checked against numpy's float64 transform of the same float32 input: Kiln within 1e-6 of it
(one float32 rounding), and within onnxruntime's own distance from it plus 1e-6 of onnxruntime
(docs/testing.md)."""

import numpy as np
import pytest

from conftest import run_kiln, write_inputs
from kiln_checks import fail

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

EXACT_RTOL = 1e-6  # Kiln against the float64 transform: the output's float32 rounding


def rel_l2(actual, expected):
    expected = np.asarray(expected, dtype=np.float64)
    diff = np.linalg.norm(np.asarray(actual, dtype=np.float64) - expected)
    return diff / max(np.linalg.norm(expected), 1e-30)


def check(got, want, exact):
    assert got.shape == want.shape == exact.shape, (got.shape, want.shape, exact.shape)
    assert rel_l2(got, exact) <= EXACT_RTOL, ("vs float64", rel_l2(got, exact))
    ort_error = rel_l2(want, exact)
    assert rel_l2(got, want) <= ort_error + EXACT_RTOL, ("vs onnxruntime", rel_l2(got, want), ort_error)


def as_parts(z):
    return np.stack([z.real, z.imag], -1)


def exact_dft(x, inverse, onesided, length):
    """numpy's float64 DFT along axis 1 of [batch, n, 1 | 2], as ONNX defines DFT."""
    z = x[..., 0].astype(np.float64) + (1j * x[..., 1].astype(np.float64) if x.shape[-1] == 2 else 0)
    n = length or z.shape[1]
    z = z[:, :n] if z.shape[1] >= n else np.pad(z, ((0, 0), (0, n - z.shape[1])))
    y = np.fft.ifft(z, axis=1) if inverse else np.fft.fft(z, axis=1)
    return as_parts(y[:, :n // 2 + 1] if onesided else y)


def exact_stft(signal, step, window, onesided):
    frame = len(window)
    count = (signal.shape[1] - frame) // step + 1
    frames = np.stack([signal[:, f * step:f * step + frame, 0] for f in range(count)], 1).astype(np.float64)
    y = np.fft.fft(frames * window.astype(np.float64), axis=-1)
    return as_parts(y[..., :frame // 2 + 1] if onesided else y)


def run_both(kiln_bin, tmp_path, nodes, inputs, initializers, opset):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v.shape)) for k, v in inputs.items()],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, inputs)[0]
    proc = run_kiln(kiln_bin, ["run", path] + write_inputs(inputs, tmp_path / "in") + ["--output-dir", tmp_path / "out"])
    if proc.returncode != 0:
        fail("kiln run failed", proc)
    return np.load(tmp_path / "out" / "y.npy"), want


def i64(name, value):
    return helper.make_tensor(name, TensorProto.INT64, [], [value])


# (signal length, components, inverse, onesided, dft_length or None)
DFT_CASES = [(n, c, inv, ones, length) for n in (7, 8, 65, 100) for (c, inv, ones) in
             [(1, 0, 0), (2, 0, 0), (2, 1, 0), (1, 0, 1)] for length in (None, n - 3, n + 5)]


@pytest.mark.parametrize("opset", [17, 20])
@pytest.mark.parametrize("n,components,inverse,onesided,length", DFT_CASES,
                         ids=["n%d_c%d_inv%d_one%d_len%s" % c for c in DFT_CASES])
def test_dft_matches_onnxruntime(kiln_bin, tmp_path, opset, n, components, inverse, onesided, length):
    rng = np.random.default_rng(n * 7 + components)
    x = rng.standard_normal((2, n, components)).astype(np.float32)
    inits, args = [], ["x"]
    if opset == 17:
        args.append("len" if length else "")
        attrs = {"axis": 1}
    else:
        args += ["len" if length else "", "axis"]
        inits.append(i64("axis", 1))
        attrs = {}
    if length:
        inits.append(i64("len", length))
    while args and args[-1] == "":
        args.pop()
    node = helper.make_node("DFT", args, ["y"], inverse=inverse, onesided=onesided, **attrs)
    got, want = run_both(kiln_bin, tmp_path, [node], {"x": x}, inits, opset)
    check(got, want, exact_dft(x, inverse, onesided, length))


@pytest.mark.parametrize("length,frame,step,onesided", [(400, 64, 16, 1), (1000, 100, 37, 1), (1000, 100, 50, 0),
                                                         (513, 257, 128, 1)])
def test_stft_matches_onnxruntime(kiln_bin, tmp_path, length, frame, step, onesided):
    rng = np.random.default_rng(length + frame)
    signal = rng.standard_normal((2, length, 1)).astype(np.float32)
    window = np.hanning(frame).astype(np.float32)
    inits = [i64("step", step), helper.make_tensor("window", TensorProto.FLOAT, [frame], window.tolist())]
    node = helper.make_node("STFT", ["signal", "step", "window"], ["y"], onesided=onesided)
    got, want = run_both(kiln_bin, tmp_path, [node], {"signal": signal}, inits, 17)
    check(got, want, exact_stft(signal, step, window, onesided))
