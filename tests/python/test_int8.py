"""INT8 on trained weights and real data: a small CNN trained with TensorFlow on scikit-learn's
bundled digits (8x8 images, offline) is converted with --precision INT8 and calibrated on
training images; its top-1 accuracy on held-out images must stay within 1 point of FP32 (the
bound of docs/testing.md), for each calibrator. Plus the calibration table's reuse and the
INT8 parameter errors."""

import json
import os
import re
import subprocess

import numpy as np
import pytest

from conftest import run_kiln, write_inputs
from kiln_checks import fail

tf = pytest.importorskip("tensorflow")
datasets = pytest.importorskip("sklearn.datasets")


def _digits_split():
    """scikit-learn's digits as [n, 8, 8, 1] images in [0, 1]: (train x, train y, test x, test y)."""
    d = datasets.load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]  # [1797, 8, 8, 1] in [0, 1]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return x[:1200], y[:1200], x[1200:], y[1200:]


def _train_and_save(model, out):
    """Trains `model` on the digits, saves it as a SavedModel with signature x -> logits at `out`:
    (out, calibration images, held-out images, held-out labels, TF's held-out logits)."""
    train_x, train_y, test_x, test_y = _digits_split()
    model.compile(optimizer=tf.keras.optimizers.Adam(3e-3),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(train_x, train_y, epochs=12, batch_size=32, verbose=0)

    class Serving(tf.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32, name="x")])
        def serve(self, x):
            return {"logits": self.m(x, training=False)}

    module = Serving(model)
    tf.saved_model.save(module, str(out), signatures={"serving_default": module.serve})
    logits = model.predict(test_x, verbose=0)
    return out, train_x[:200], test_x, test_y, logits


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    """(SavedModel dir, calibration images, held-out images, held-out labels, TF's held-out logits)."""
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.Input((8, 8, 1)),
        tf.keras.layers.Conv2D(16, 3, activation="relu"),
        tf.keras.layers.Conv2D(32, 3, activation="relu"),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(64, activation="relu"),
        tf.keras.layers.Dense(10),
    ])
    return _train_and_save(model, tmp_path_factory.mktemp("digits") / "cnn")


@pytest.fixture(scope="module")
def residual_digits_model(tmp_path_factory):
    """A small residual CNN: a stem and two identity blocks as ResNet's (conv, conv, Add of the
    block's input, ReLU), trained on the digits; the same tuple as digits_model."""
    tf.keras.utils.set_random_seed(0)
    x = tf.keras.Input((8, 8, 1))
    h = tf.keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    for _ in range(2):
        r = tf.keras.layers.Conv2D(16, 3, padding="same", activation="relu")(h)
        r = tf.keras.layers.Conv2D(16, 3, padding="same")(r)
        h = tf.keras.layers.ReLU()(tf.keras.layers.Add()([r, h]))
    h = tf.keras.layers.Conv2D(8, 1, activation="relu")(h)
    logits = tf.keras.layers.Dense(10)(tf.keras.layers.Flatten()(h))
    return _train_and_save(tf.keras.Model(x, logits), tmp_path_factory.mktemp("digits") / "resnet")


def _accuracy(kiln_bin, model, images, labels, tmp_path):
    proc = run_kiln(kiln_bin, ["run", model] + write_inputs({"x": images}, tmp_path / "in") +
                    ["--output-dir", tmp_path / "out"])
    if proc.returncode != 0:
        fail("kiln run failed on %s" % model, proc)
    logits = np.load(tmp_path / "out" / "logits.npy")
    return float(np.mean(np.argmax(logits, axis=1) == labels)), logits


def _fp32_accuracy(kiln_bin, model, images, labels, tf_logits, tmp_path):
    """Kiln FP32's (top-1, logits) on the held-out images; its logits match TensorFlow's (1e-5)."""
    fp32 = tmp_path / "fp32"
    proc = run_kiln(kiln_bin, ["convert", model, fp32, "--build-shapes", "x:597x8x8x1"])
    if proc.returncode != 0:
        fail("FP32 conversion failed", proc)
    accuracy, logits = _accuracy(kiln_bin, fp32, images, labels, tmp_path / "run32")
    assert np.linalg.norm(logits - tf_logits) / np.linalg.norm(tf_logits) <= 1e-5
    return accuracy, logits


def _calibration_dir(images, path, batch=25):
    """DIR/BATCH/x.npy, one directory per batch (the --calibration-data layout)."""
    for i in range(0, len(images), batch):
        d = path / ("b%03d" % (i // batch))
        d.mkdir(parents=True)
        np.save(d / "x.npy", images[i:i + batch])
    return path


@pytest.mark.parametrize("calibrator", ["entropy", "minmax", "percentile"])
def test_int8_accuracy_on_held_out_digits_stays_within_one_point_of_fp32(kiln_bin, digits_model, tmp_path, calibrator):
    model, calib, test_x, test_y, tf_logits = digits_model
    tf_accuracy = float(np.mean(np.argmax(tf_logits, axis=1) == test_y))
    assert tf_accuracy > 0.9, "the digits CNN did not train (%.3f)" % tf_accuracy
    fp32_accuracy, fp32_logits = _fp32_accuracy(kiln_bin, model, test_x, test_y, tf_logits, tmp_path)
    int8 = tmp_path / "int8"
    table = tmp_path / "table.json"
    proc = run_kiln(kiln_bin, ["convert", model, int8, "--precision", "INT8", "--calibrator", calibrator,
                               "--calibration-data", _calibration_dir(calib, tmp_path / "calib"),
                               "--build-shapes", "x:597x8x8x1", "--save-calibration-table", table])
    if proc.returncode != 0:
        fail("INT8 conversion failed", proc)
    assert "INT8: 4 activation tensor(s) quantized per tensor and 4 weight(s) per output channel" in proc.stderr, proc.stderr
    int8_accuracy, int8_logits = _accuracy(kiln_bin, int8, test_x, test_y, tmp_path / "run8")
    rel = np.linalg.norm(int8_logits - fp32_logits) / np.linalg.norm(fp32_logits)
    print("%s: FP32 top-1 %.4f, INT8 top-1 %.4f, logits relative L2 %.3g" % (calibrator, fp32_accuracy, int8_accuracy, rel))
    assert abs(int8_accuracy - fp32_accuracy) <= 0.01, (fp32_accuracy, int8_accuracy)
    assert 0 < rel < 0.1, rel  # quantized (not FP32), and not broken
    saved = json.loads(table.read_text())
    assert saved["format"] == "kiln-calibration-table" and saved["calibrator"] == calibrator
    assert len(saved["tensors"]) == 4 and all(t["amax"] > 0 for t in saved["tensors"].values())
    summary = run_kiln(kiln_bin, ["summary", int8])
    assert summary.returncode == 0, summary.stderr
    assert ("[*] INT8: 4 activation tensor(s) quantized per tensor, 4 weight(s) per output channel (%s calibration "
            "over 8 batch(es))" % calibrator) in summary.stdout, summary.stdout
    # CPUs with int8 dot-product instructions run the 2 convolutions and 2 dense layers as int8
    # primitives and list them; others run FP32 kernels and say why.
    if "(INT8)" in summary.stdout:
        assert "INT8 layers (4): " in summary.stdout, summary.stdout
    else:
        assert "has no int8 dot-product instructions (VNNI / AMX)" in summary.stdout, summary.stdout
    conversion = json.loads((int8 / "assets" / "kiln" / "conversion.json").read_text())
    assert conversion["precision_mode"] == "INT8" and conversion["int8"]["calibration_table"] == saved


def test_int8_residual_connections_on_held_out_digits_stay_within_one_point_of_fp32(kiln_bin, residual_digits_model,
                                                                                    tmp_path):
    # Each block's input is quantized for its first convolution; on CPUs with int8 dot products the
    # block's Add then reads that 8-bit tensor too (cpu-int8-residual), so the sum sees the
    # quantized value: accuracy on trained weights is what says whether that is acceptable.
    model, calib, test_x, test_y, tf_logits = residual_digits_model
    tf_accuracy = float(np.mean(np.argmax(tf_logits, axis=1) == test_y))
    assert tf_accuracy > 0.9, "the residual digits CNN did not train (%.3f)" % tf_accuracy
    fp32_accuracy, fp32_logits = _fp32_accuracy(kiln_bin, model, test_x, test_y, tf_logits, tmp_path)
    int8 = tmp_path / "int8"
    proc = run_kiln(kiln_bin, ["convert", model, int8, "--precision", "INT8", "--calibration-data",
                               _calibration_dir(calib, tmp_path / "calib"), "--build-shapes", "x:597x8x8x1"])
    if proc.returncode != 0:
        fail("INT8 conversion failed", proc)
    int8_accuracy, int8_logits = _accuracy(kiln_bin, int8, test_x, test_y, tmp_path / "run8")
    rel = np.linalg.norm(int8_logits - fp32_logits) / np.linalg.norm(fp32_logits)
    print("residual CNN: FP32 top-1 %.4f, INT8 top-1 %.4f, logits relative L2 %.3g" % (fp32_accuracy, int8_accuracy, rel))
    assert abs(int8_accuracy - fp32_accuracy) <= 0.01, (fp32_accuracy, int8_accuracy)
    assert 0 < rel < 0.1, rel
    summary = run_kiln(kiln_bin, ["summary", int8])
    assert summary.returncode == 0, summary.stderr
    if "(INT8)" not in summary.stdout:
        assert "has no int8 dot-product instructions (VNNI / AMX)" in summary.stdout, summary.stdout
        return
    # The engine's plan (KILN_CPU_PLAN) names the pass and its two rewrites, one per block.
    plan = subprocess.run([str(kiln_bin), "run", str(int8)] + [str(a) for a in write_inputs({"x": test_x[:4]}, tmp_path / "in")] +
                          ["--output-dir", str(tmp_path / "plan_out")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=dict(os.environ, KILN_CPU_PLAN="1"), timeout=600)
    assert plan.returncode == 0, plan.stderr
    assert re.search(r"pass cpu-int8-residual +2 rewrites", plan.stderr), plan.stderr


@pytest.mark.parametrize("calibrator", ["minmax", "entropy"])
def test_fp8_accuracy_on_held_out_digits_stays_within_one_point_of_fp32(kiln_bin, digits_model, tmp_path, calibrator):
    # FP8 (E4M3) takes INT8's calibration and quantizes each tensor with one scale (amax / 448);
    # the CPU has no FP8 kernels, so its float kernels run the quantize-dequantize steps, and the
    # summary says so.
    model, calib, test_x, test_y, tf_logits = digits_model
    fp32 = tmp_path / "fp32"
    proc = run_kiln(kiln_bin, ["convert", model, fp32, "--build-shapes", "x:597x8x8x1"])
    if proc.returncode != 0:
        fail("FP32 conversion failed", proc)
    fp32_accuracy, fp32_logits = _accuracy(kiln_bin, fp32, test_x, test_y, tmp_path / "run32")
    fp8 = tmp_path / "fp8"
    proc = run_kiln(kiln_bin, ["convert", model, fp8, "--precision", "FP8", "--calibrator", calibrator,
                               "--calibration-data", _calibration_dir(calib, tmp_path / "calib"),
                               "--build-shapes", "x:597x8x8x1"])
    if proc.returncode != 0:
        fail("FP8 conversion failed", proc)
    assert "FP8: 4 activation tensor(s) quantized per tensor and 4 weight(s) per tensor (E4M3)" in proc.stderr, proc.stderr
    fp8_accuracy, fp8_logits = _accuracy(kiln_bin, fp8, test_x, test_y, tmp_path / "run8")
    rel = np.linalg.norm(fp8_logits - fp32_logits) / np.linalg.norm(fp32_logits)
    print("%s: FP32 top-1 %.4f, FP8 top-1 %.4f, logits relative L2 %.3g" % (calibrator, fp32_accuracy, fp8_accuracy, rel))
    assert abs(fp8_accuracy - fp32_accuracy) <= 0.01, (fp32_accuracy, fp8_accuracy)
    # 3 mantissa bits: about 2^-4 relative per rounding, averaging down over the sums.
    assert 0 < rel < 0.1, rel
    summary = run_kiln(kiln_bin, ["summary", fp8])
    assert summary.returncode == 0, summary.stderr
    assert "[*] FP8: 4 activation tensor(s) and 4 weight(s) quantized to E4M3 per tensor" in summary.stdout, summary.stdout
    assert "has no FP8 kernels" in summary.stdout, summary.stdout
    conversion = json.loads((fp8 / "assets" / "kiln" / "conversion.json").read_text())
    assert conversion["precision_mode"] == "FP8" and conversion["int8"]["calibration_table"]["calibrator"] == calibrator


def test_fp8_needs_calibration(kiln_bin, digits_model, tmp_path):
    model = digits_model[0]
    proc = run_kiln(kiln_bin, ["convert", model, tmp_path / "a", "--precision", "FP8"])
    assert proc.returncode != 0 and "precision_mode FP8 with use_calibration=true needs calibration data" in proc.stderr, \
        proc.stderr
    proc = run_kiln(kiln_bin, ["convert", model, tmp_path / "b", "--precision", "FP8", "--no-calibration"])
    assert proc.returncode != 0 and "precision_mode FP8 needs use_calibration=true" in proc.stderr, proc.stderr


def test_a_saved_calibration_table_reproduces_the_int8_model(kiln_bin, digits_model, tmp_path):
    model, calib, test_x, test_y, _ = digits_model
    table = tmp_path / "table.json"
    first = tmp_path / "first"
    proc = run_kiln(kiln_bin, ["convert", model, first, "--precision", "INT8", "--calibration-data",
                               _calibration_dir(calib, tmp_path / "calib"), "--save-calibration-table", table])
    if proc.returncode != 0:
        fail("INT8 conversion failed", proc)
    second = tmp_path / "second"
    proc = run_kiln(kiln_bin, ["convert", model, second, "--precision", "INT8", "--calibration-table", table])
    if proc.returncode != 0:
        fail("INT8 conversion from a table failed", proc)
    _, a = _accuracy(kiln_bin, first, test_x[:50], test_y[:50], tmp_path / "a")
    _, b = _accuracy(kiln_bin, second, test_x[:50], test_y[:50], tmp_path / "b")
    assert np.array_equal(a, b)
    # An edited table without a tensor the model needs is refused, naming the tensor.
    saved = json.loads(table.read_text())
    missing = sorted(saved["tensors"])[0]
    del saved["tensors"][missing]
    table.write_text(json.dumps(saved))
    proc = run_kiln(kiln_bin, ["convert", model, tmp_path / "third", "--precision", "INT8", "--calibration-table", table])
    assert proc.returncode != 0 and "no range for tensor '%s'" % missing in proc.stderr, proc.stderr


def test_kiln_build_and_bench_take_the_int8_options(kiln_bin, digits_model, tmp_path):
    # kiln build --precision INT8 with the same calibration data writes a .kiln file whose outputs
    # equal kiln convert's INT8 model; kiln bench converts in memory with them; the INT8 options on
    # an already converted model are refused, saying why.
    model, calib, test_x, test_y, _ = digits_model
    data = _calibration_dir(calib, tmp_path / "calib")
    converted = tmp_path / "converted"
    proc = run_kiln(kiln_bin, ["convert", model, converted, "--precision", "INT8", "--calibration-data", data,
                               "--calibrator", "minmax"])
    if proc.returncode != 0:
        fail("INT8 conversion failed", proc)
    built = tmp_path / "digits.kiln"
    proc = run_kiln(kiln_bin, ["build", model, "-o", built, "--precision", "INT8", "--calibration-data", data,
                               "--calibrator", "minmax", "--shapes", "x:50x8x8x1"])
    if proc.returncode != 0:
        fail("kiln build --precision INT8 failed", proc)
    # CPUs with int8 dot-product instructions list the INT8 layers; others say why they run FP32.
    assert "INT8 layers (" in proc.stdout or "has no int8 dot-product instructions" in proc.stdout, proc.stdout
    _, a = _accuracy(kiln_bin, converted, test_x[:50], test_y[:50], tmp_path / "a")
    _, b = _accuracy(kiln_bin, built, test_x[:50], test_y[:50], tmp_path / "b")
    assert np.array_equal(a, b)
    table = tmp_path / "bench_table.json"
    proc = run_kiln(kiln_bin, ["bench", model, "--precision", "INT8", "--calibration-data", data, "--iterations", "3",
                               "--warmup", "1", "--json", "--save-calibration-table", table])
    if proc.returncode != 0:
        fail("kiln bench --precision INT8 failed", proc)
    assert json.loads(proc.stdout)["precision"] == "INT8"  # stdout is the JSON alone, table message or not
    assert table.is_file() and "wrote the calibration table" in proc.stderr, proc.stderr
    proc = run_kiln(kiln_bin, ["bench", converted, "--no-calibration", "--iterations", "1"])
    assert proc.returncode != 0 and "the INT8 options apply to the in-memory conversion" in proc.stderr, proc.stderr


def test_int8_parameter_errors(kiln_bin, digits_model, tmp_path):
    model, calib, _, _, _ = digits_model
    data = _calibration_dir(calib[:10], tmp_path / "calib")
    proc = run_kiln(kiln_bin, ["convert", model, tmp_path / "a", "--calibration-data", data])
    assert proc.returncode != 0 and "calibration is only used for INT8" in proc.stderr, proc.stderr
    proc = run_kiln(kiln_bin, ["convert", model, tmp_path / "b", "--precision", "INT8", "--calibration-data", data,
                               "--calibration-table", tmp_path / "t.json"])
    assert proc.returncode != 0 and "use one" in proc.stderr, proc.stderr
    proc = run_kiln(kiln_bin, ["convert", model, tmp_path / "c", "--precision", "INT8", "--calibration-table",
                               tmp_path / "missing.json"])
    assert proc.returncode != 0 and "missing.json" in proc.stderr and "not a regular file" in proc.stderr, proc.stderr
    proc = run_kiln(kiln_bin, ["convert", model, tmp_path / "d", "--save-calibration-table", tmp_path / "t.json"])
    assert proc.returncode != 0 and "no calibration table was used" in proc.stderr, proc.stderr
    proc = run_kiln(kiln_bin, ["convert", model, tmp_path / "e", "--keep-precision", "MatMul", "--calibration-data", data])
    assert proc.returncode != 0 and "keep_precision (MatMul) is only used with precision_mode INT8 or FP8" in proc.stderr, proc.stderr
    proc = run_kiln(kiln_bin, ["convert", model, tmp_path / "f", "--precision", "INT8", "--calibration-data", data,
                               "--keep-precision", "*"])
    assert proc.returncode != 0 and "keep_precision '*' would match every layer or none" in proc.stderr, proc.stderr


def test_keep_precision_and_the_quantization_error_report(kiln_bin, digits_model, tmp_path):
    """--keep-precision leaves the named layers in floating point (here both dense layers, by op
    type); the summary lists them and the calibration tensors with the largest quantization error,
    and a pattern that names nothing is refused."""
    model, calib, test_x, test_y, _ = digits_model
    data = _calibration_dir(calib, tmp_path / "calib")
    out = tmp_path / "kept"
    proc = run_kiln(kiln_bin, ["convert", model, out, "--precision", "INT8", "--calibration-data", data,
                               "--keep-precision", "MatMul", "--build-shapes", "x:50x8x8x1"])
    if proc.returncode != 0:
        fail("INT8 conversion with --keep-precision failed", proc)
    assert "INT8: 2 activation tensor(s) quantized per tensor and 2 weight(s) per output channel" in proc.stderr, proc.stderr
    assert "INT8: 2 layer(s) kept in floating point (keep_precision): " in proc.stderr, proc.stderr
    assert "INT8 quantization error on the calibration data (relative RMS), worst first:" in proc.stderr, proc.stderr
    summary = run_kiln(kiln_bin, ["summary", out])
    assert summary.returncode == 0, summary.stderr
    assert "[*] INT8: 2 layer(s) kept in floating point (keep_precision): " in summary.stdout, summary.stdout
    report = summary.stdout.split("worst first:\n", 1)[1].splitlines()
    errors = [float(line.split(": ", 1)[1].split(" ")[0]) for line in report if line.startswith("  ")]
    assert len(errors) == 4 and errors == sorted(errors, reverse=True) and 0 < errors[-1] and errors[0] < 0.2, report
    if "(INT8)" in summary.stdout:  # CPUs with int8 dot-product instructions: only the convolutions run int8
        assert "INT8 layers (2): " in summary.stdout, summary.stdout
    accuracy, _ = _accuracy(kiln_bin, out, test_x, test_y, tmp_path / "run")
    assert accuracy > 0.95, accuracy
    proc = run_kiln(kiln_bin, ["convert", model, tmp_path / "bad", "--precision", "INT8", "--calibration-data", data,
                               "--keep-precision", "Conv2D,no_such_layer*"])
    assert proc.returncode != 0 and "keep_precision 'no_such_layer*' matches no quantizable layer" in proc.stderr, proc.stderr
