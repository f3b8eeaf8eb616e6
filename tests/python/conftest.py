"""Shared fixtures for Kiln's Python tests.

Environment:
  KILN_BIN          kiln executable (default: <repo>/build/tools/kiln). Tests that
                    run it are skipped when it does not exist.
  KILN_TEST_MODELS  where the test-model zoo is generated (default:
                    <repo>/build/test_models). Re-generation is skipped per model
                    when its stamp matches (see tests/models/zoo.py).
  KILN_TEST_SEED    base seed for random test inputs; a fresh one is drawn and
                    printed (in the pytest header and by every test) when unset.
"""

import os
import secrets
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_SRC = REPO_ROOT / "tests" / "models"
if str(MODELS_SRC) not in sys.path:
    sys.path.insert(0, str(MODELS_SRC))

import zoo  # noqa: E402  (cheap: TensorFlow is imported lazily)

BASE_SEED = (int(os.environ["KILN_TEST_SEED"]) if os.environ.get("KILN_TEST_SEED")
             else secrets.randbelow(2**31))

KILN_TIMEOUT_S = 600


def kiln_path():
    return Path(os.environ.get("KILN_BIN") or REPO_ROOT / "build" / "tools" / "kiln")


def models_path():
    return Path(os.environ.get("KILN_TEST_MODELS") or REPO_ROOT / "build" / "test_models")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "zoo_models(*names): zoo models (tests/models/zoo.py) a test needs")


def pytest_report_header(config):
    return ["KILN_TEST_SEED=%d  KILN_BIN=%s  KILN_TEST_MODELS=%s"
            % (BASE_SEED, kiln_path(), models_path())]


def seeded_rng(model_name):
    """Per-test RNG derived from the base seed and the model name (so one test
    reproduces on its own with the same KILN_TEST_SEED)."""
    print("KILN_TEST_SEED=%d (model %s); reproduce with KILN_TEST_SEED=%d"
          % (BASE_SEED, model_name, BASE_SEED))
    return np.random.default_rng([BASE_SEED, zlib.crc32(model_name.encode())])




@pytest.fixture(scope="session")
def kiln_bin():
    path = kiln_path()
    if not path.is_file():
        pytest.skip("kiln binary not found at %s (build it, or set KILN_BIN)" % path)
    return path


def _needed_models(session):
    names = set()
    for item in session.items:
        cs = getattr(item, "callspec", None)
        if cs is not None and cs.params.get("model_name") in zoo.MODELS:
            names.add(cs.params["model_name"])
        for mark in item.iter_markers("zoo_models"):
            names.update(mark.args)
    return sorted(names) or list(zoo.MODEL_NAMES)


@pytest.fixture(scope="session")
def zoo_dir(request, kiln_bin):
    """Generate (or reuse) the zoo models the selected tests need; return the dir.

    Depends on kiln_bin so nothing is generated when the tests will be skipped.
    """
    out = models_path()
    out.mkdir(parents=True, exist_ok=True)
    names = _needed_models(request.session)
    cmd = [sys.executable, str(MODELS_SRC / "zoo.py"), "--out", str(out), "--only"] + names
    print("generating test models:", " ".join(cmd))
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace")
    print("\n".join(l for l in proc.stdout.splitlines() if l.startswith("[zoo]")))
    if proc.returncode != 0:
        pytest.fail("tests/models/zoo.py failed (exit %d):\n%s"
                    % (proc.returncode, proc.stdout[-8000:]), pytrace=False)
    return out


def run_kiln(kiln, args, timeout=KILN_TIMEOUT_S):
    """Run kiln with args; return the CompletedProcess (text stdout/stderr)."""
    cmd = [str(kiln)] + [str(a) for a in args]
    print("$ " + " ".join(cmd))
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, errors="replace", timeout=timeout)


def write_inputs(inputs, directory):
    """Save {name: array} as .npy files; return the kiln --input arguments."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    args = []
    for i, (name, arr) in enumerate(sorted(inputs.items())):
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        path = directory / ("%02d_%s.npy" % (i, safe))
        np.save(path, arr)
        args += ["--input", "%s=%s" % (name, path)]
    return args


def kiln_python_dir():
    """Where the kiln Python package was built (build/python; KILN_PYTHON_DIR overrides)."""
    return Path(os.environ.get("KILN_PYTHON_DIR") or REPO_ROOT / "build" / "python")


@pytest.fixture(scope="session")
def kiln_py():
    """The kiln Python package built by the CMake build (KILN_PYTHON_DIR)."""
    d = kiln_python_dir()
    if not list((d / "kiln").glob("_kiln*.so")):
        pytest.skip("kiln Python extension not found in %s (build with nanobind installed, or set "
                    "KILN_PYTHON_DIR)" % d)
    if str(d) not in sys.path:
        sys.path.insert(0, str(d))
    import kiln
    return kiln
