"""Checks shared by the end-to-end tests: running Kiln on a zoo model's inputs and comparing
what it writes with TensorFlow's outputs (relative L2 error for floats, exact otherwise)."""

import re

import numpy as np
import pytest

from conftest import run_kiln, seeded_rng, write_inputs
from reference import load_meta, make_inputs, tf_outputs

STATS = re.compile(r"engines: (\d+) loaded, (\d+) built; engine runs: (\d+), native fallbacks: (\d+)")


def fail(msg, proc):
    pytest.fail("%s\n--- kiln exit code %d; stderr:\n%s\n--- stdout (tail):\n%s"
                % (msg, proc.returncode, proc.stderr[-6000:], proc.stdout[-2000:]),
                pytrace=False)


def stats(proc):
    """(engines loaded, engines built, engine runs, native fallbacks) from `kiln run`'s
    summary line, or None when it printed none."""
    m = STATS.search(proc.stdout)
    return tuple(int(g) for g in m.groups()) if m else None


def shapes_arg(shapes):
    """{input name: shape} as kiln's shape list: "a:2x32,b:1x4"."""
    return ",".join("%s:%s" % (name, "x".join(str(d) for d in shape)) for name, shape in sorted(shapes.items()))


def tf_case(zoo_dir, model_name, rng=None, **input_args):
    """(meta, inputs, TensorFlow's outputs) for zoo model `model_name` on random inputs drawn
    with `rng` (default: seeded_rng(model_name)); input_args go to make_inputs()."""
    meta = load_meta(zoo_dir, model_name)
    inputs = make_inputs(meta, rng or seeded_rng(model_name), **input_args)
    return meta, inputs, tf_outputs(str(zoo_dir / model_name), meta, inputs)


def compare(name, out, ref, rtol):
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


def read_outputs(out_dir, names, file_names=None):
    """Load the outputs `names` that kiln wrote to out_dir as NAME.npy (or as
    file_names[NAME].npy): return ({name: array}, [a problem per missing file])."""
    outs, problems = {}, []
    for name in names:
        path = out_dir / ((name if file_names is None else file_names[name]) + ".npy")
        if path.is_file():
            outs[name] = np.load(path)
        else:
            problems.append("%s: output file %s not written" % (name, path))
    return outs, problems


def run_and_compare(kiln_bin, model, inputs, ref, meta, tmp_path, rtol=None, file_names=None, what=None):
    """`kiln run MODEL` on `inputs` (saved under tmp_path/in, outputs to tmp_path/out); fail the
    test unless it exits 0 and writes every output of meta["outputs"] matching `ref` within
    `rtol` (default: the model's own bound, meta["rtol"] or 1e-5). Return the CompletedProcess."""
    what = what or str(model)
    out_dir = tmp_path / "out"
    proc = run_kiln(kiln_bin, ["run", model] + write_inputs(inputs, tmp_path / "in") + ["--output-dir", out_dir])
    if proc.returncode != 0:
        fail("kiln run failed on %s" % what, proc)
    rtol = float(meta.get("rtol", 1e-5)) if rtol is None else rtol
    outs, problems = read_outputs(out_dir, meta["outputs"], file_names)
    for name, out in outs.items():
        problems += compare(name, out, ref[name], rtol)
    if problems:
        fail("%s does not match TensorFlow (inputs: %s):\n  %s"
             % (what, {k: (v.dtype.name, v.shape) for k, v in inputs.items()}, "\n  ".join(problems)), proc)
    return proc


def run_outputs(kiln_bin, model, inputs, tmp_path):
    """`kiln run` of `model` on `inputs` (name -> array): its outputs as {output file stem: array}."""
    proc = run_kiln(kiln_bin, ["run", model] + write_inputs(inputs, tmp_path / "in") + ["--output-dir", tmp_path / "out"])
    if proc.returncode != 0:
        fail("kiln run failed on %s" % model, proc)
    return {p.stem: np.load(p) for p in (tmp_path / "out").glob("*.npy")}
