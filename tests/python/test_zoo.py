"""Whole-model tests: `kiln run` on every zoo model against TensorFlow.

Run:  ~/.cache/kiln/venv-test/bin/python -m pytest tests/python -v
See conftest.py for KILN_BIN / KILN_TEST_MODELS / KILN_TEST_SEED.
"""

import numpy as np
import pytest

import zoo
from conftest import run_kiln
from kiln_checks import fail, read_outputs, run_and_compare, tf_case
from reference import load_meta


@pytest.mark.parametrize("model_name", zoo.MODEL_NAMES)
def test_model_matches_tensorflow(model_name, kiln_bin, zoo_dir, tmp_path):
    meta, inputs, ref = tf_case(zoo_dir, model_name)
    assert sorted(ref) == sorted(meta["outputs"]), "zoo metadata is stale"
    run_and_compare(kiln_bin, zoo_dir / model_name, inputs, ref, meta, tmp_path, what=model_name)


@pytest.mark.parametrize("model_name", ["bert_keras3", "mlp_keras3"])
def test_run_without_inputs(model_name, kiln_bin, zoo_dir, tmp_path):
    """`kiln run DIR --batch-size 3 --input-size 5` makes up its own inputs:
    batch dims become 3, other unknown dims 5."""
    meta = load_meta(zoo_dir, model_name)
    out_dir = tmp_path / "out"
    proc = run_kiln(kiln_bin, ["run", zoo_dir / model_name, "--batch-size", "3",
                               "--input-size", "5", "--output-dir", out_dir])
    if proc.returncode != 0:
        fail("kiln run without inputs failed on %s" % model_name, proc)
    outs, problems = read_outputs(out_dir, meta["outputs"])
    for name, out in outs.items():
        spec = meta["output_specs"][name]["shape"]
        if spec is not None:
            expected = tuple((3 if i == 0 else 5) if d is None else d
                             for i, d in enumerate(spec))
            if out.shape != expected:
                problems.append("%s: shape %s, expected %s" % (name, out.shape, expected))
        if np.issubdtype(out.dtype, np.floating) and np.isnan(out).any():
            problems.append("%s: NaN in output" % name)
    if problems:
        fail("\n  ".join(problems), proc)
