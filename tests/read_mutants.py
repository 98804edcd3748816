"""Child process of test_checkpoint_fuzz: read every mutant in a bundle with checkpoint.read.

    python read_mutants.py BUNDLE SCRATCH_FILE
BUNDLE is a pickle (written by the test, trusted) of a list of file contents. Each is read from an
in-memory file (memfd, through its /proc path) where there is one, else from SCRATCH_FILE. Prints the index of
each mutant before reading it (unbuffered, so a crash names its mutant), then one JSON report.
Only numpy and sim's two reader modules are imported: `sim` is registered as a bare package so
its __init__ (Taichi) does not run; the reader needs none of it.
"""

import json
import os
import pickle
import resource
import sys
import time
import types

import numpy as np

sim = types.ModuleType("sim")
sim.__path__ = [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sim")]
sys.modules["sim"] = sim
from sim import checkpoint  # noqa: E402


def broken_promises(data) -> list[str]:
    """What read() promised (its docstring) and this value does not keep, checked independently."""
    out = []
    if type(data) is not dict or not {"step_index", "arrays"} <= set(data) <= {"timestamp", "step_index", "arrays", "meta"}:
        return [f"keys {sorted(data) if type(data) is dict else type(data)}"]
    if type(data["step_index"]) is not int or not 0 <= data["step_index"] <= checkpoint.MAX_STEP_INDEX:
        out.append(f"step_index {data['step_index']!r}")
    if "timestamp" in data and (type(data["timestamp"]) is not float or not np.isfinite(data["timestamp"])):
        out.append(f"timestamp {data['timestamp']!r}")
    for k, a in data["arrays"].items():
        if type(a) is not np.ndarray or a.dtype.kind not in "biufc" or a.dtype.hasobject or a.dtype.fields \
                or not a.flags.writeable:
            out.append(f"array {k}: {type(a)} {getattr(a, 'dtype', None)}")
    meta = data.get("meta")
    if meta is not None:
        if sorted(meta) != sorted(["format", "n_envs", "fingerprint", "layout", "scene"]) or meta["format"] != 1:
            out.append(f"meta keys {sorted(meta)}")
        else:
            try:
                checkpoint.check_arrays(data["arrays"], meta["layout"], meta["n_envs"])
            except checkpoint.CheckpointError as e:
                out.append(f"arrays vs layout: {e}")
    return out


def main(bundle, scratch):
    with open(bundle, "rb") as f:
        mutants = pickle.load(f)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    counts = {"accepted": 0, "CheckpointError": 0, "UnsafeCheckpointError": 0}
    escaped, broken, slowest = [], [], (0.0, -1)
    memfd = os.memfd_create("mutant") if hasattr(os, "memfd_create") else None
    if memfd is not None:
        scratch = f"/proc/self/fd/{memfd}"
    for i, blob in enumerate(mutants):
        os.write(1, f"{i}\n".encode())
        if memfd is None:
            with open(scratch, "wb") as f:
                f.write(blob)
        else:
            os.ftruncate(memfd, 0)
            os.pwrite(memfd, blob, 0)
        t0 = time.perf_counter()
        try:
            data = checkpoint.read(scratch)
        except checkpoint.CheckpointError as e:
            counts[type(e).__name__] += 1
        except BaseException as e:  # what the test is looking for
            escaped.append(f"mutant {i}: {type(e).__name__}: {str(e)[:300]}")
        else:
            counts["accepted"] += 1
            try:
                broken += [f"mutant {i}: {p}" for p in broken_promises(data)]
            except Exception as e:  # a value read() let through that breaks a plain check
                broken.append(f"mutant {i}: checking it raised {type(e).__name__}: {str(e)[:200]}")
        slowest = max(slowest, (time.perf_counter() - t0, i))
    report = {"counts": counts, "escaped": escaped[:20], "n_escaped": len(escaped), "broken": broken[:20],
              "slowest_s": slowest[0], "slowest_mutant": slowest[1],
              "rss_growth_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024}
    print("REPORT " + json.dumps(report), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
