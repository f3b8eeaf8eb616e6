"""`kiln build` writes one self-contained .kiln file (graph, weights, signature, conversion
record, engines); `kiln run` / `inspect` / `summary` load it without rebuilding engines, and a
damaged file is a clear error. Outputs are compared with TensorFlow (FP32: the model's own bound,
1e-5), as in test_convert.py.
"""

import re

import pytest

from conftest import run_kiln, seeded_rng
from kiln_checks import fail, run_and_compare, shapes_arg, stats, tf_case
from reference import load_meta, make_inputs, tf_outputs

SUMMARY = re.compile(r"kiln build: wrote (\S+) \(([\d.]+) MB\): (\d+) engine\(s\) for (\d+) profile\(s\)")


def _shapes(**shapes):
    return shapes_arg(shapes)


def _build(kiln_bin, model_dir, out, *flags):
    proc = run_kiln(kiln_bin, ["build", model_dir, "-o", out] + list(flags))
    if proc.returncode != 0:
        fail("kiln build failed on %s" % model_dir, proc)
    m = SUMMARY.search(proc.stdout)
    assert m, "no summary line:\n" + proc.stdout
    assert out.is_file()
    return proc, int(m.group(3)), int(m.group(4))


# model, build flags (shapes), the shapes it is run at (batch, other dims)
CASES = {
    "mlp_keras3": (["--shapes", _shapes(features=(2, 32))], {}),
    "cnn_keras3": (["--min-shapes", _shapes(image=(1, 32, 32, 3)), "--max-shapes", _shapes(image=(4, 32, 32, 3))], {}),
    "mobilenetv2": (["--shapes", _shapes(input_1=(2, 224, 224, 3))], {}),
    "bert_keras3": (["--min-shapes", _shapes(token_ids=(1, 4), attention_mask=(1, 4)),
                     "--opt-shapes", _shapes(token_ids=(2, 8), attention_mask=(2, 8)),
                     "--max-shapes", _shapes(token_ids=(4, 16), attention_mask=(4, 16))], {"seq": 7}),
}


@pytest.mark.parametrize("model_name", sorted(CASES))
def test_kiln_file_matches_tensorflow_without_rebuilding(model_name, kiln_bin, zoo_dir, tmp_path):
    flags, dims = CASES[model_name]
    meta, inputs, ref = tf_case(zoo_dir, model_name, dims=dims)
    kiln_file = tmp_path / (model_name + ".kiln")
    build, engines, profiles = _build(kiln_bin, zoo_dir / model_name, kiln_file, *flags)
    assert profiles == 1 and engines >= 1, build.stdout
    assert "building engine" in build.stderr, build.stderr  # progress while building
    proc = run_and_compare(kiln_bin, kiln_file, inputs, ref, meta, tmp_path)
    loaded, built, engine_runs, native = stats(proc)
    assert built == 0 and loaded == engines and engine_runs >= 1 and native == 0, proc.stdout + proc.stderr


@pytest.mark.zoo_models("bert_keras3")
def test_shapes_outside_the_profile_build_or_run_natively(kiln_bin, zoo_dir, tmp_path):
    flags, _ = CASES["bert_keras3"]
    meta = load_meta(zoo_dir, "bert_keras3")
    rng = seeded_rng("bert_keras3")
    inside = make_inputs(meta, rng, batch=3, dims={"seq": 12})
    outside = make_inputs(meta, rng, batch=2, dims={"seq": 24})  # seq 24 > max 16
    ref_inside = tf_outputs(str(zoo_dir / "bert_keras3"), meta, inside)
    ref_outside = tf_outputs(str(zoo_dir / "bert_keras3"), meta, outside)
    for extra, expect_built in (([], True), (["--no-build-at-runtime"], False)):
        kiln_file = tmp_path / ("bert%s.kiln" % "".join(extra))
        _, engines, _ = _build(kiln_bin, zoo_dir / "bert_keras3", kiln_file, *(flags + extra))
        proc = run_and_compare(kiln_bin, kiln_file, inside, ref_inside, meta, tmp_path / ("in" + kiln_file.stem))
        assert stats(proc) == (engines, 0, stats(proc)[2], 0), proc.stdout
        proc = run_and_compare(kiln_bin, kiln_file, outside, ref_outside, meta, tmp_path / ("out" + kiln_file.stem))
        loaded, built, engine_runs, native = stats(proc)
        if expect_built:
            assert built >= 1 and native == 0, proc.stdout + proc.stderr
        else:
            assert built == 0 and native >= 1 and "allow_build_at_runtime is false" in proc.stderr, proc.stderr


@pytest.mark.zoo_models("mlp_keras3")
def test_inspect_summary_and_run_without_inputs(kiln_bin, zoo_dir, tmp_path):
    kiln_file = tmp_path / "mlp.kiln"
    _, engines, _ = _build(kiln_bin, zoo_dir / "mlp_keras3", kiln_file, *CASES["mlp_keras3"][0])
    proc = run_kiln(kiln_bin, ["inspect", kiln_file])
    assert proc.returncode == 0, proc.stderr
    assert ".kiln file" in proc.stdout and "checksums OK" in proc.stdout, proc.stdout
    assert "Engines: %d" % engines in proc.stdout and "features" in proc.stdout, proc.stdout
    proc = run_kiln(kiln_bin, ["summary", kiln_file])
    assert proc.returncode == 0, proc.stderr
    assert "[*] Total number of engines: %d" % engines in proc.stdout, proc.stdout
    proc = run_kiln(kiln_bin, ["run", kiln_file, "--batch-size", "2"])
    assert proc.returncode == 0, proc.stderr
    assert stats(proc)[:2] == (engines, 0), proc.stdout


@pytest.mark.zoo_models("mlp_keras3")
def test_without_shapes_engines_are_built_at_first_run(kiln_bin, zoo_dir, tmp_path):
    meta, inputs, ref = tf_case(zoo_dir, "mlp_keras3")
    kiln_file = tmp_path / "mlp.kiln"
    build, engines, profiles = _build(kiln_bin, zoo_dir / "mlp_keras3", kiln_file)
    assert engines == 0 and profiles == 0 and "built at first run" in build.stdout, build.stdout
    proc = run_and_compare(kiln_bin, kiln_file, inputs, ref, meta, tmp_path)
    loaded, built, engine_runs, native = stats(proc)
    assert loaded == 0 and built >= 1 and native == 0, proc.stdout


@pytest.mark.zoo_models("mlp_keras3")
def test_damaged_kiln_file_is_a_clear_error(kiln_bin, zoo_dir, tmp_path):
    kiln_file = tmp_path / "mlp.kiln"
    _build(kiln_bin, zoo_dir / "mlp_keras3", kiln_file, *CASES["mlp_keras3"][0])
    data = kiln_file.read_bytes()
    cases = {
        "truncated.kiln": (data[: len(data) // 2], ["truncated"]),
        "flipped.kiln": (data[:-20] + bytes([data[-20] ^ 0x10]) + data[-19:], ["checksum", "section"]),
        "header.kiln": (data[:30] + bytes([data[30] ^ 0x01]) + data[31:], ["header checksum"]),
        "magic.kiln": (b"XILN" + data[4:], ["bad magic"]),
        "newer.kiln": (data[:8] + bytes([99]) + data[9:], ["newer Kiln", "format version 99"]),
    }
    for name, (content, words) in cases.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        for command in (["run", bad], ["inspect", bad], ["summary", bad]):
            proc = run_kiln(kiln_bin, command)
            assert proc.returncode == 1, "%s %s: exit %d\n%s" % (command[0], name, proc.returncode, proc.stderr)
            assert "kiln: error:" in proc.stderr and str(bad) in proc.stderr, proc.stderr
            for w in words:
                assert w in proc.stderr, "%s not in: %s" % (w, proc.stderr)


@pytest.mark.zoo_models("mlp_keras3")
@pytest.mark.parametrize("flags,words", [
    (["--min-shapes", "features:1x32"], ["--min-shapes", "--max-shapes"]),
    (["--max-shapes", "features:4x32"], ["--max-shapes", "--min-shapes"]),
    (["--shapes", "features:2x32", "--max-shapes", "features:4x32"], ["--shapes", "cannot be combined"]),
    (["--min-shapes", "features:4x32", "--max-shapes", "features:1x32"], ["features", "min <= opt <= max"]),
    (["--shapes", "features:2x31"], ["features", "dim 1 must be 32"]),
    (["--shapes", "nope:2x32"], ["nope"]),
    (["--shapes", "features:2xq"], ["--shapes", "not a dimension"]),
])
def test_build_rejects_bad_shapes(kiln_bin, zoo_dir, tmp_path, flags, words):
    out = tmp_path / "x.kiln"
    proc = run_kiln(kiln_bin, ["build", zoo_dir / "mlp_keras3", "-o", out] + flags)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for w in words:
        assert w in proc.stderr, proc.stderr
    assert not out.exists()
