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
from conftest import run_kiln, seeded_rng, write_inputs
from reference import load_meta, make_inputs, precision_rtol, tf_outputs
from test_zoo import _compare, _fail

STATS = re.compile(r"engines: (\d+) loaded, (\d+) built; engine runs: (\d+), native fallbacks: (\d+)")


def _build_shapes(inputs):
    return ",".join("%s:%s" % (name, "x".join(str(d) for d in arr.shape)) for name, arr in sorted(inputs.items()))


def _stats(proc):
    m = STATS.search(proc.stdout)
    return tuple(int(g) for g in m.groups()) if m else None


def _convert(kiln_bin, model_dir, out_dir, inputs, *extra):
    proc = run_kiln(kiln_bin, ["convert", model_dir, out_dir, "--build-shapes", _build_shapes(inputs)] + list(extra))
    if proc.returncode != 0:
        _fail("kiln convert failed on %s" % model_dir, proc)
    return proc


def _run_and_compare(kiln_bin, converted, inputs, ref, meta, rtol, tmp_path):
    out_dir = tmp_path / "out"
    proc = run_kiln(kiln_bin, ["run", converted] + write_inputs(inputs, tmp_path / "in") + ["--output-dir", out_dir])
    if proc.returncode != 0:
        _fail("kiln run failed on the converted %s" % converted, proc)
    problems = []
    for name in meta["outputs"]:
        path = out_dir / (name + ".npy")
        if not path.is_file():
            problems.append("%s: output file %s not written" % (name, path))
            continue
        problems += _compare(name, np.load(path), ref[name], rtol)
    if problems:
        _fail("converted %s does not match TensorFlow:\n  %s" % (converted, "\n  ".join(problems)), proc)
    return proc


@pytest.mark.parametrize("precision", ["FP32", "FP16", "BF16"])
@pytest.mark.parametrize("model_name", zoo.MODEL_NAMES)
def test_converted_model_matches_tensorflow(model_name, precision, kiln_bin, zoo_dir, tmp_path):
    meta = load_meta(zoo_dir, model_name)
    rng = seeded_rng(model_name)
    inputs = make_inputs(meta, rng)
    ref = tf_outputs(str(zoo_dir / model_name), meta, inputs)
    converted = tmp_path / "converted"
    conv = _convert(kiln_bin, zoo_dir / model_name, converted, inputs, "--precision", precision)
    assert "% of OPs Converted" in conv.stdout and "Total number of engines" in conv.stdout
    rtol = precision_rtol(meta, precision)
    proc = _run_and_compare(kiln_bin, converted, inputs, ref, meta, rtol, tmp_path)
    stats = _stats(proc)
    engines = int(re.search(r"Total number of engines: (\d+)", conv.stdout).group(1))
    if engines:
        assert stats is not None, proc.stdout
        loaded, built, engine_runs, native = stats
        # The engines built for these shapes were saved and are loaded, not rebuilt.
        assert built == 0 and loaded >= 1 and native == 0, proc.stdout + proc.stderr


@pytest.mark.zoo_models("mlp_keras3")
def test_corrupted_engine_file_is_rebuilt(kiln_bin, zoo_dir, tmp_path):
    meta = load_meta(zoo_dir, "mlp_keras3")
    inputs = make_inputs(meta, seeded_rng("mlp_keras3"))
    ref = tf_outputs(str(zoo_dir / "mlp_keras3"), meta, inputs)
    converted = tmp_path / "converted"
    _convert(kiln_bin, zoo_dir / "mlp_keras3", converted, inputs)
    files = sorted((converted / "assets" / "kiln" / "engines").glob("*.kiln-engine"))
    assert files, "no engine file was saved"
    data = bytearray(files[0].read_bytes())
    data[-5] ^= 0xFF  # inside the payload
    files[0].write_bytes(bytes(data))
    proc = _run_and_compare(kiln_bin, converted, inputs, ref, meta, 1e-5, tmp_path)
    assert "checksum" in proc.stderr.lower() and files[0].name in proc.stderr, proc.stderr
    assert "rebuilt" in proc.stderr, proc.stderr
    loaded, built, engine_runs, native = _stats(proc)
    assert built == 1 and native == 0


@pytest.mark.zoo_models("mlp_keras3")
def test_corrupted_engine_without_runtime_builds_runs_natively(kiln_bin, zoo_dir, tmp_path):
    meta = load_meta(zoo_dir, "mlp_keras3")
    inputs = make_inputs(meta, seeded_rng("mlp_keras3"))
    ref = tf_outputs(str(zoo_dir / "mlp_keras3"), meta, inputs)
    converted = tmp_path / "converted"
    _convert(kiln_bin, zoo_dir / "mlp_keras3", converted, inputs, "--no-build-at-runtime")
    engine = sorted((converted / "assets" / "kiln" / "engines").glob("*.kiln-engine"))[0]
    engine.write_bytes(engine.read_bytes()[:40])  # truncated
    proc = _run_and_compare(kiln_bin, converted, inputs, ref, meta, 1e-5, tmp_path)
    assert "natively" in proc.stderr, proc.stderr
    loaded, built, engine_runs, native = _stats(proc)
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
        proc = _run_and_compare(kiln_bin, converted, other, ref, meta, 1e-5, tmp_path / converted.name)
        loaded, built, engine_runs, native = _stats(proc)
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
        _fail("kiln convert failed", proc)
    assert "Softmax" in csv.read_text() and "denylist" in csv.read_text()
    proc = run_kiln(kiln_bin, ["summary", converted])
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"\[\*\] Total number of engines: \d+", proc.stdout), proc.stdout
    assert re.search(r"\[\*\] % of OPs Converted: \d+\.\d\d% \[\d+/\d+\]", proc.stdout), proc.stdout
    assert "Conv2D" in proc.stdout


@pytest.mark.zoo_models("mlp_keras3")
@pytest.mark.parametrize("args,words", [
    (["--precision", "FP64"], ["precision_mode", "FP64", "FP16"]),
    (["--precision", "int8"], ["INT8", "calibration", "not implemented"]),
    (["--maximum-cached-engines", "0"], ["maximum_cached_engines"]),
    (["--profile-strategy", "Optimal"], ["dynamic_shape_profile_strategy", "use_dynamic_shape"]),
    (["--device", "tpu"], ["device", "tpu"]),
])
def test_convert_rejects_bad_parameters(kiln_bin, zoo_dir, tmp_path, args, words):
    proc = run_kiln(kiln_bin, ["convert", zoo_dir / "mlp_keras3", tmp_path / "out"] + args)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for w in words:
        assert w.lower() in proc.stderr.lower(), proc.stderr
