"""What a Python call of a loaded model costs over the C++ Signature::Run, in one process.

For each model: converts it (CPU engines, FP32, built for the batch), loads the converted model
with kiln.load, then alternates rounds of (a) Signature::Run in a C++ loop (kiln._kiln._time_run,
the same inputs wrapped once) and (b) the Python call f(**inputs) (numpy in, numpy out: argument
binding, input wrapping without copies, the GIL released, outputs wrapped as numpy). Reports the
median per-call latency of each and the overhead (b/a - 1). Also checks that the inputs are read
in place (zero-copy) for numpy and for a DLPack-only object.

    python bench/python_overhead.py --models bert_keras3 --batch 1
(PYTHONPATH=build/python; the zoo models come from tests/models/zoo.py, KILN_TEST_MODELS)
"""

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "models"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["bert_keras3"])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--dims", default="", help="named dims, e.g. seq=128 (the zoo's dim names)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=1.0, help="per round and side")
    ap.add_argument("--zoo", default=os.environ.get("KILN_TEST_MODELS", str(ROOT / "build" / "test_models")))
    args = ap.parse_args()

    import kiln
    from reference import load_meta, make_inputs

    print("# %s, %s, %d CPUs, kiln %s, command: %s" % (datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
                                                     platform.processor() or platform.machine(), os.cpu_count(),
                                                     kiln.__version__, " ".join(sys.argv)))
    print("| model | input shapes | C++ Run (µs) | Python call (µs) | overhead | zero-copy inputs |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        src = Path(args.zoo) / name
        meta = load_meta(Path(args.zoo), name)
        dims = {k: int(v) for k, v in (item.split("=") for item in args.dims.split(",") if item)} or None
        inputs = make_inputs(meta, np.random.default_rng(0), batch=args.batch, dims=dims)
        with tempfile.TemporaryDirectory() as d:
            c = kiln.Converter(src, progress=False)
            c.convert()
            c.build(input_fn=lambda: iter([dict(inputs)]))
            c.save(Path(d) / "m")
            f = kiln.load(Path(d) / "m").signatures["serving_default"]
            f(**inputs)
            native = f._bind((), inputs)
            zero_copy = all(kiln._kiln._data_address(v) == v.ctypes.data for v in inputs.values())
            cpp, py = [], []
            per = max(1, int(args.seconds / max(kiln._kiln._time_run(f._native, native, 3), 1e-6)))
            for _ in range(args.rounds):
                cpp.append(kiln._kiln._time_run(f._native, native, per))
                start = time.perf_counter()
                for _ in range(per):
                    f(**inputs)
                py.append((time.perf_counter() - start) / per)
            a, b = statistics.median(cpp), statistics.median(py)
            stats = f.stats()
            assert stats["native_runs"] == 0 and stats["engines_built"] == 0, stats
            shapes = ", ".join("%s %s" % (k, "x".join(map(str, v.shape))) for k, v in sorted(inputs.items()))
            print("| %s | %s | %.1f | %.1f | %+.1f%% | %s |" % (name, shapes, a * 1e6, b * 1e6, (b / a - 1) * 100,
                                                               "yes" if zero_copy else "NO"))


if __name__ == "__main__":
    main()
