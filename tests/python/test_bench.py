"""`kiln bench`: the JSON summary's fields and their sanity (no timing assertions), the human
summary, and the errors (bad --shapes, unknown input, missing model) exiting non-zero with a
clear message."""

import json

import pytest

from conftest import run_kiln

pytestmark = pytest.mark.zoo_models("mlp_keras3", "bert_keras3")

BENCH_FAST = ["--warmup", "2", "--iterations", "12"]


def _bench_json(kiln_bin, model, *args):
    proc = run_kiln(kiln_bin, ["bench", model, "--json"] + BENCH_FAST + list(args))
    assert proc.returncode == 0, "kiln bench failed (exit %d):\n%s" % (proc.returncode, proc.stderr[-4000:])
    try:
        return json.loads(proc.stdout), proc
    except json.JSONDecodeError as e:  # stdout must carry only the JSON
        pytest.fail("kiln bench --json stdout is not JSON (%s):\n%s" % (e, proc.stdout[-2000:]))


def _check_common(r, iterations=12, batch=1, threads=1):
    assert r["iterations"] == iterations
    assert r["warmup_iterations"] == 2
    assert r["batch"] == batch
    assert r["threads"] == threads
    assert r["load_ms"] > 0
    assert r["first_run_ms"] > 0
    assert r["wall_s"] > 0
    tp = r["throughput"]
    assert tp["inferences_per_s"] > 0
    assert tp["samples_per_s"] == pytest.approx(batch * tp["inferences_per_s"])
    lat = r["latency_ms"]
    for k in ("min", "mean", "median", "p90", "p95", "p99", "max"):
        assert lat[k] > 0, k
    assert lat["min"] <= lat["median"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert lat["min"] <= lat["mean"] <= lat["max"]
    copies = r["host_device_copies"]
    assert copies["note"] == "none: CPU engines"
    assert copies["h2d_ms"] is None and copies["d2h_ms"] is None
    for k in ("engine_runs", "native_fallbacks", "engine_runs_total", "native_fallbacks_total"):
        assert r["runs"][k] >= 0


def test_bench_converts_savedmodel_in_memory(kiln_bin, zoo_dir):
    r, _ = _bench_json(kiln_bin, zoo_dir / "mlp_keras3", "--batch-size", "4")
    _check_common(r, batch=4)
    assert r["model_kind"] == "SavedModel"
    assert r["mode"] == "converted in memory"
    assert r["precision"] == "FP32"
    assert r["convert_ms"] > 0 and r["engine_build_ms"] > 0 and r["save_ms"] >= 0
    assert r["engines"]["loaded"] >= 1          # the temp converted model's engines, not rebuilt
    assert r["engines"]["built_at_run_time"] == 0
    assert r["runs"]["engine_runs"] >= 12       # every measured iteration ran the engine(s)
    assert r["runs"]["native_fallbacks"] == 0
    assert r["inputs"] == {"features": {"dtype": "float32", "shape": [4, 32]}}


def test_bench_native(kiln_bin, zoo_dir):
    r, _ = _bench_json(kiln_bin, zoo_dir / "mlp_keras3", "--native")
    _check_common(r)
    assert r["mode"] == "native (reference executor)"
    assert r["engine_build_ms"] is None and r["convert_ms"] is None and r["precision"] is None
    assert r["engines"]["loaded"] == 0
    assert r["runs"]["engine_runs"] == 0


def test_bench_converted_model_threads(kiln_bin, zoo_dir, tmp_path):
    out = tmp_path / "mlp_kiln"
    proc = run_kiln(kiln_bin, ["convert", zoo_dir / "mlp_keras3", out, "--build-shapes", "features:2x32"])
    assert proc.returncode == 0, proc.stderr
    r, _ = _bench_json(kiln_bin, out, "--batch-size", "2", "--threads", "3")
    _check_common(r, batch=2, threads=3)
    assert r["model_kind"] == "converted SavedModel"
    assert r["mode"] == "engines as loaded"
    assert r["engine_build_ms"] is None
    assert r["engines"]["loaded"] >= 1 and r["engines"]["built_at_run_time"] == 0
    assert r["runs"]["native_fallbacks"] == 0


def test_bench_int_inputs_with_shapes(kiln_bin, zoo_dir):
    # token ids and mask are int32: random values must be valid ids, or the gather fails.
    r, _ = _bench_json(kiln_bin, zoo_dir / "bert_keras3", "--shapes", "token_ids:2x16,attention_mask:2x16")
    _check_common(r, batch=2)
    assert r["inputs"]["token_ids"] == {"dtype": "int32", "shape": [2, 16]}
    assert r["runs"]["native_fallbacks"] == 0


def test_bench_human_summary(kiln_bin, zoo_dir):
    proc = run_kiln(kiln_bin, ["bench", zoo_dir / "mlp_keras3", "--native"] + BENCH_FAST)
    assert proc.returncode == 0, proc.stderr
    for key in ("model kind:", "load time:", "engines:", "iterations:", "throughput:", "latency (ms):",
                "host<->device copies: none: CPU engines"):
        assert key in proc.stdout, key


@pytest.mark.parametrize("args, message", [
    (["--shapes", "nope:4x32"], "--shapes names input 'nope', which the signature does not have"),
    (["--shapes", "features:4xabc"], "--shapes: 'abc' in 'features:4xabc' is not a dimension"),
    (["--shapes", "features"], "--shapes: 'features' is not NAME:DIMxDIM"),
    (["--shapes", "features:4x31"], "does not match its signature shape"),
    (["--threads", "0"], "--threads must be at least 1"),
    (["--io", "device"], "--io device needs engines on a GPU"),
    (["--io", "gpu"], "--io"),
    (["--profile-layers", "-1"], "--profile-layers must be >= 0"),
    (["--cuda-graph", "maybe"], "--cuda-graph"),
])
def test_bench_bad_options(kiln_bin, zoo_dir, args, message):
    proc = run_kiln(kiln_bin, ["bench", zoo_dir / "mlp_keras3", "--native"] + BENCH_FAST + args)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def test_bench_layer_profile_times_cpu_engine_steps(kiln_bin, zoo_dir):
    # CPU engines time each step by wall clock: every step of the MLP's engine is listed with its
    # kernel (op) and output, the per-kernel times add up to the per-run total; a native run
    # (no engine) says why it has no layers.
    proc = run_kiln(kiln_bin, ["bench", zoo_dir / "mlp_keras3", "--profile-layers", "2"] + BENCH_FAST)
    assert proc.returncode == 0, proc.stderr
    assert "layer profile:       2 runs; the engines' layers took" in proc.stdout, proc.stdout
    assert "cpu.FusedMatMul" in proc.stdout, proc.stdout
    r, _ = _bench_json(kiln_bin, zoo_dir / "mlp_keras3", "--profile-layers", "2")
    prof = r["layer_profile"]
    assert prof["runs"] == 2 and prof["layer_ms_per_run"] > 0, prof
    assert prof["layers"] and all(l["calls_per_run"] == 1 and l["ms_per_run"] >= 0 for l in prof["layers"]), prof
    assert "cpu.FusedMatMul" in prof["by_kernel"], prof
    total = sum(k["ms_per_run"] for k in prof["by_kernel"].values())
    assert abs(total - prof["layer_ms_per_run"]) <= 1e-6 * max(1.0, total), prof
    proc = run_kiln(kiln_bin, ["bench", zoo_dir / "mlp_keras3", "--native", "--profile-layers", "2"] + BENCH_FAST)
    assert proc.returncode == 0, proc.stderr
    assert "layer profile:       no layer timings (the run went through no engine" in proc.stdout, proc.stdout
    r, _ = _bench_json(kiln_bin, zoo_dir / "mlp_keras3")
    assert "layer_profile" not in r


def test_bench_unknown_dim_needs_shapes(kiln_bin, zoo_dir):
    proc = run_kiln(kiln_bin, ["bench", zoo_dir / "bert_keras3", "--native"] + BENCH_FAST)
    assert proc.returncode != 0
    assert "has unknown dim 1: give its shape with --shapes" in proc.stderr, proc.stderr


def test_bench_missing_model(kiln_bin, tmp_path):
    proc = run_kiln(kiln_bin, ["bench", tmp_path / "no_such_model"] + BENCH_FAST)
    assert proc.returncode != 0
    assert "does not exist" in proc.stderr and "no_such_model" in proc.stderr, proc.stderr


def test_bench_iterations_excludes_duration(kiln_bin, zoo_dir):
    proc = run_kiln(kiln_bin, ["bench", zoo_dir / "mlp_keras3", "--iterations", "3", "--duration", "1"])
    assert proc.returncode != 0
    assert "excludes" in proc.stderr, proc.stderr
