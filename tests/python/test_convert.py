"""The converter end to end: `kiln convert` (segments, engines built for the test shapes,
saved), `kiln run` on the converted SavedModel, compared with TensorFlow.

Accuracy bounds by requested precision (relative L2 error per output, see docs/testing.md):
  FP32: the model's own bound (1e-5; ResNet50 1e-4, TF's own float32 noise on it is 2e-5)
  FP16: 2e-2 -- 11-bit significand: each rounding is <= 4.9e-4 relative and errors grow with depth
  BF16: 5e-2 -- 8-bit significand: each rounding is <= 3.9e-3 relative
  (reference.MODEL_PRECISION_RTOL: larger for models that amplify rounding past these even in an
  ideal reduced-precision engine, as measured: ResNet50 BF16 0.25)
On a CPU without native FP16/BF16 arithmetic the engines run FP32 (and the summary says so),
so there the FP32 bound is what they actually meet; the looser bounds are what the precision allows.
"""

import re

import numpy as np
import pytest

import zoo
from conftest import run_kiln, seeded_rng
from kiln_checks import fail, run_and_compare, shapes_arg, stats, tf_case
from reference import load_meta, make_inputs, precision_rtol, tf_outputs


def _convert(kiln_bin, model_dir, out_dir, inputs, *extra):
    build_shapes = shapes_arg({name: arr.shape for name, arr in inputs.items()})
    proc = run_kiln(kiln_bin, ["convert", model_dir, out_dir, "--build-shapes", build_shapes] + list(extra))
    if proc.returncode != 0:
        fail("kiln convert failed on %s" % model_dir, proc)
    return proc


def _converted_mlp(kiln_bin, zoo_dir, tmp_path, *extra):
    """mlp_keras3 converted with engines for its test inputs: (converted dir, meta, inputs, TF's outputs)."""
    meta, inputs, ref = tf_case(zoo_dir, "mlp_keras3")
    converted = tmp_path / "converted"
    _convert(kiln_bin, zoo_dir / "mlp_keras3", converted, inputs, *extra)
    return converted, meta, inputs, ref


@pytest.mark.parametrize("precision", ["FP32", "FP16", "BF16"])
@pytest.mark.parametrize("model_name", zoo.MODEL_NAMES)
def test_converted_model_matches_tensorflow(model_name, precision, kiln_bin, zoo_dir, tmp_path):
    meta, inputs, ref = tf_case(zoo_dir, model_name)
    converted = tmp_path / "converted"
    conv = _convert(kiln_bin, zoo_dir / model_name, converted, inputs, "--precision", precision)
    assert "% of OPs Converted" in conv.stdout and "Total number of engines" in conv.stdout
    rtol = precision_rtol(meta, precision)
    proc = run_and_compare(kiln_bin, converted, inputs, ref, meta, tmp_path, rtol=rtol)
    counts = stats(proc)
    engines = int(re.search(r"Total number of engines: (\d+)", conv.stdout).group(1))
    if engines:
        assert counts is not None, proc.stdout
        loaded, built, engine_runs, native = counts
        # The engines built for these shapes were saved and are loaded, not rebuilt.
        assert built == 0 and loaded >= 1 and native == 0, proc.stdout + proc.stderr


@pytest.mark.zoo_models("mlp_keras3")
def test_corrupted_engine_file_is_rebuilt(kiln_bin, zoo_dir, tmp_path):
    converted, meta, inputs, ref = _converted_mlp(kiln_bin, zoo_dir, tmp_path)
    files = sorted((converted / "assets" / "kiln" / "engines").glob("*.kiln-engine"))
    assert files, "no engine file was saved"
    data = bytearray(files[0].read_bytes())
    data[-5] ^= 0xFF  # inside the payload
    files[0].write_bytes(bytes(data))
    proc = run_and_compare(kiln_bin, converted, inputs, ref, meta, tmp_path, rtol=1e-5)
    assert "checksum" in proc.stderr.lower() and files[0].name in proc.stderr, proc.stderr
    assert "rebuilt" in proc.stderr, proc.stderr
    loaded, built, engine_runs, native = stats(proc)
    assert built == 1 and native == 0


@pytest.mark.zoo_models("mlp_keras3")
def test_corrupted_engine_without_runtime_builds_runs_natively(kiln_bin, zoo_dir, tmp_path):
    converted, meta, inputs, ref = _converted_mlp(kiln_bin, zoo_dir, tmp_path, "--no-build-at-runtime")
    engine = sorted((converted / "assets" / "kiln" / "engines").glob("*.kiln-engine"))[0]
    engine.write_bytes(engine.read_bytes()[:40])  # truncated
    proc = run_and_compare(kiln_bin, converted, inputs, ref, meta, tmp_path, rtol=1e-5)
    assert "natively" in proc.stderr, proc.stderr
    loaded, built, engine_runs, native = stats(proc)
    assert built == 0 and native >= 1


@pytest.mark.zoo_models("bert_keras3")
def test_shape_outside_the_built_engines(kiln_bin, zoo_dir, tmp_path):
    """A new shape builds a new engine at run time (allowed by default), or runs natively
    (with --no-build-at-runtime); either way the answer is right and the fallback is reported."""
    meta = load_meta(zoo_dir, "bert_keras3")
    rng = seeded_rng("bert_keras3")
    build_inputs = make_inputs(meta, rng)
    other = {k: np.concatenate([v, v], axis=1) for k, v in build_inputs.items()}  # longer sequence
    ref = tf_outputs(str(zoo_dir / "bert_keras3"), meta, other)
    for flags, expect_built in (([], True), (["--no-build-at-runtime"], False)):
        converted = tmp_path / ("converted" + "".join(flags))
        _convert(kiln_bin, zoo_dir / "bert_keras3", converted, build_inputs, *flags)
        proc = run_and_compare(kiln_bin, converted, other, ref, meta, tmp_path / converted.name, rtol=1e-5)
        loaded, built, engine_runs, native = stats(proc)
        if expect_built:
            assert built >= 1 and native == 0, proc.stdout
        else:
            assert built == 0 and native >= 1 and "allow_build_at_runtime is false" in proc.stderr, proc.stderr


@pytest.mark.zoo_models("cnn_tfkeras")
def test_summary_and_report(kiln_bin, zoo_dir, tmp_path):
    converted = tmp_path / "converted"
    csv = tmp_path / "report.csv"
    proc = run_kiln(kiln_bin, ["convert", zoo_dir / "cnn_tfkeras", converted, "--denylist", "Softmax",
                               "--report-csv", csv])
    if proc.returncode != 0:
        fail("kiln convert failed", proc)
    assert "Softmax" in csv.read_text() and "denylist" in csv.read_text()
    proc = run_kiln(kiln_bin, ["summary", converted])
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"\[\*\] Total number of engines: \d+", proc.stdout), proc.stdout
    assert re.search(r"\[\*\] % of OPs Converted: \d+\.\d\d% \[\d+/\d+\]", proc.stdout), proc.stdout
    assert "Conv2D" in proc.stdout


@pytest.mark.zoo_models("mlp_keras3")
@pytest.mark.parametrize("args,words", [
    (["--precision", "FP64"], ["precision_mode", "FP64", "FP16"]),
    (["--precision", "int8"], ["INT8", "calibration", "--calibration-data", "use_calibration=false"]),
    (["--calibrator", "kl"], ["calibrator", "kl", "entropy, minmax, percentile"]),
    (["--precision", "INT8", "--calibration-percentile", "0"], ["calibration_percentile"]),
    (["--calibration-table", "t.json"], ["calibration_table", "INT8"]),
    (["--maximum-cached-engines", "0"], ["maximum_cached_engines"]),
    (["--profile-strategy", "Optimal"], ["dynamic_shape_profile_strategy", "use_dynamic_shape"]),
    (["--device", "tpu"], ["device", "tpu"]),
])
def test_convert_rejects_bad_parameters(kiln_bin, zoo_dir, tmp_path, args, words):
    proc = run_kiln(kiln_bin, ["convert", zoo_dir / "mlp_keras3", tmp_path / "out"] + args)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for w in words:
        assert w.lower() in proc.stderr.lower(), proc.stderr


def test_device_cuda_without_a_gpu_is_a_clear_error(kiln_bin, tmp_path):
    """--device cuda on a machine (or build) without a GPU: exit 1 naming why, nothing written.
    With a GPU the conversion succeeds; either way the outcome is checked."""
    from conftest import REPO_ROOT
    out = tmp_path / "out"
    proc = run_kiln(kiln_bin, ["convert", REPO_ROOT / "models" / "demo", out, "--device", "cuda"])
    if proc.returncode == 0:
        assert (out / "saved_model.pb").is_file()
        return
    if proc.returncode != 1:
        fail("expected exit 1 (or success on a GPU machine)", proc)
    assert ("no CUDA GPU is visible" in proc.stderr or "no CUDA engine backend" in proc.stderr), proc.stderr
    assert not out.exists()
