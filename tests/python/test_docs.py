"""Docs that are generated from the code must be current."""

from conftest import REPO_ROOT, run_kiln


def test_supported_ops_doc_is_current(kiln_bin):
    proc = run_kiln(kiln_bin, ["ops"], timeout=60)
    assert proc.returncode == 0, proc.stderr
    doc = (REPO_ROOT / "docs" / "supported-ops.md").read_text()
    assert proc.stdout == doc, ("docs/supported-ops.md is stale: regenerate it with "
                                "`build/tools/kiln ops > docs/supported-ops.md`")


def test_python_walkthrough_runs(kiln_py):
    """docs/examples/python_walkthrough.py (the notebook-style example) runs from top to bottom."""
    import os
    import subprocess
    import sys

    from conftest import kiln_python_dir

    env = dict(os.environ, PYTHONPATH=str(kiln_python_dir()), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "docs" / "examples" / "python_walkthrough.py")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert "tf.saved_model.load ran the Kiln-converted model" in proc.stdout, proc.stdout[-3000:]
