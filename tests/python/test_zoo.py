"""Whole-model tests: `kiln run` on every zoo model against TensorFlow.

Run:  ~/.cache/kiln/venv-test/bin/python -m pytest tests/python -v
See conftest.py for KILN_BIN / KILN_TEST_MODELS / KILN_TEST_SEED.
"""

import numpy as np
import pytest

import zoo
from conftest import run_kiln, seeded_rng, write_inputs
from reference import load_meta, make_inputs, tf_outputs


def _compare(name, out, ref, rtol):
    """Return a list of problems (empty when `out` matches `ref`)."""
    problems = []
    if out.shape != ref.shape:
        problems.append("%s: shape %s, expected %s" % (name, out.shape, ref.shape))
    if out.dtype != ref.dtype:
        problems.append("%s: dtype %s, expected %s" % (name, out.dtype, ref.dtype))
    if problems:
        return problems
    if np.issubdtype(ref.dtype, np.floating) or np.issubdtype(ref.dtype, np.complexfloating):
        nan = int(np.isnan(out).sum())
        if nan:
            problems.append("%s: %d NaN value(s)" % (name, nan))
            return problems
        if np.all(np.isfinite(ref)) and not np.all(np.isfinite(out)):
            problems.append("%s: %d inf value(s) where TF is finite"
                            % (name, int((~np.isfinite(out)).sum())))
            return problems
        o = out.astype(np.complex128 if np.iscomplexobj(out) else np.float64)
        r = ref.astype(o.dtype)
        err = float(np.linalg.norm((o - r).ravel()))
        ref_norm = float(np.linalg.norm(r.ravel()))
        rel = err / ref_norm if ref_norm > 0 else (0.0 if err == 0 else float("inf"))
        print("%s: shape %s relative L2 error %.3g (rtol %.2g), max abs diff %.3g"
              % (name, out.shape, rel, rtol, float(np.max(np.abs(o - r))) if o.size else 0.0))
        if not rel <= rtol:
            problems.append("%s: relative L2 error %.3g > %.2g (max abs diff %.3g, |ref| %.3g)"
                            % (name, rel, rtol, float(np.max(np.abs(o - r))), ref_norm))
    else:
        bad = int(np.sum(out != ref))
        if bad:
            problems.append("%s: %d of %d elements differ (exact match required for %s)"
                            % (name, bad, ref.size, ref.dtype))
    return problems


def _fail(msg, proc):
    pytest.fail("%s\n--- kiln exit code %d; stderr:\n%s\n--- stdout (tail):\n%s"
                % (msg, proc.returncode, proc.stderr[-6000:], proc.stdout[-2000:]),
                pytrace=False)


@pytest.mark.parametrize("model_name", zoo.MODEL_NAMES)
def test_model_matches_tensorflow(model_name, kiln_bin, zoo_dir, tmp_path):
    meta = load_meta(zoo_dir, model_name)
    model_dir = zoo_dir / model_name
    rng = seeded_rng(model_name)
    inputs = make_inputs(meta, rng)
    ref = tf_outputs(str(model_dir), meta, inputs)
    assert sorted(ref) == sorted(meta["outputs"]), "zoo metadata is stale"

    out_dir = tmp_path / "out"
    args = ["run", model_dir] + write_inputs(inputs, tmp_path / "in") + ["--output-dir", out_dir]
    proc = run_kiln(kiln_bin, args)
    if proc.returncode != 0:
        _fail("kiln run failed on %s" % model_name, proc)

    rtol = float(meta.get("rtol", 1e-5))
    problems = []
    for name in meta["outputs"]:
        path = out_dir / (name + ".npy")
        if not path.is_file():
            problems.append("%s: output file %s not written" % (name, path))
            continue
        problems += _compare(name, np.load(path), ref[name], rtol)
    if problems:
        _fail("%s does not match TensorFlow (inputs: %s):\n  %s"
              % (model_name, {k: (v.dtype.name, v.shape) for k, v in inputs.items()},
                 "\n  ".join(problems)), proc)


@pytest.mark.parametrize("model_name", ["bert_keras3", "mlp_keras3"])
def test_run_without_inputs(model_name, kiln_bin, zoo_dir, tmp_path):
    """`kiln run DIR --batch-size 3 --input-size 5` makes up its own inputs:
    batch dims become 3, other unknown dims 5."""
    meta = load_meta(zoo_dir, model_name)
    out_dir = tmp_path / "out"
    proc = run_kiln(kiln_bin, ["run", zoo_dir / model_name, "--batch-size", "3",
                               "--input-size", "5", "--output-dir", out_dir])
    if proc.returncode != 0:
        _fail("kiln run without inputs failed on %s" % model_name, proc)
    problems = []
    for name in meta["outputs"]:
        path = out_dir / (name + ".npy")
        if not path.is_file():
            problems.append("%s: output file %s not written" % (name, path))
            continue
        out = np.load(path)
        spec = meta["output_specs"][name]["shape"]
        if spec is not None:
            expected = tuple((3 if i == 0 else 5) if d is None else d
                             for i, d in enumerate(spec))
            if out.shape != expected:
                problems.append("%s: shape %s, expected %s" % (name, out.shape, expected))
        if np.issubdtype(out.dtype, np.floating) and np.isnan(out).any():
            problems.append("%s: NaN in output" % name)
    if problems:
        _fail("\n  ".join(problems), proc)
