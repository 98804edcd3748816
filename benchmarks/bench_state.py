"""Cost of the core state API against n_envs and state size (CPU backend).

Times get_state, full reset, partial reset of 1% / 10% / 100% of envs (by envs_idx), and
save / load of a checkpoint; save and load throughput are also given as a ratio to writing
and reading the same bytes with numpy.save / numpy.load on the same disk. The solver is the
test suite's ToySolver (tests/toy_solver.py): the core is what is measured, not physics.

    python benchmarks/bench_state.py [--quick] [--out benchmarks/results/state.md]
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import sim as gs  # noqa: E402
import toy_solver  # noqa: E402,F401  (registers ToySolver)


def best_of(fn, repeats):
    """Best wall time of `repeats` calls, after one untimed call that pays Taichi's compile."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure(n_envs, n_points, folder, repeats):
    scene = gs.Scene()
    scene.add_entity(gs.morphs.Box(pos=(0, 0, 1)), material=gs.materials.Toy.Points(n_points=n_points))
    scene.build(n_envs=n_envs)
    scene.step()
    state = scene.get_state()
    nbytes = state.nbytes()
    rng = np.random.default_rng(0)
    row = {"n_envs": n_envs, "MB": nbytes / 1e6,
           "get_state": best_of(scene.get_state, repeats),
           "reset_all": best_of(lambda: scene.reset(state=state), repeats)}
    for frac in (0.01, 0.10, 1.0):
        k = max(1, int(round(frac * n_envs)))
        idx = rng.choice(n_envs, size=k, replace=False)
        row[f"reset_{int(frac * 100)}%"] = best_of(lambda: scene.reset(state=state, envs_idx=idx), repeats)
    path = os.path.join(folder, "bench.pkl")
    row["save"] = best_of(lambda: scene.save_checkpoint(path), repeats)
    row["load"] = best_of(lambda: scene.load_checkpoint(path), repeats)
    arrays = state.arrays()
    npy = os.path.join(folder, "bench.npy")
    flat = np.concatenate([a.reshape(-1).view(np.uint8) for a in arrays.values()])

    def np_save():
        with open(npy, "wb") as f:
            np.save(f, flat)
            f.flush()
            os.fsync(f.fileno())

    row["np_save"] = best_of(np_save, repeats)
    row["np_load"] = best_of(lambda: np.load(npy), repeats)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat (CI smoke run)")
    parser.add_argument("--out", help="write the markdown table here too")
    args = parser.parse_args()
    gs.init(backend=gs.cpu)
    envs = [1, 1024] if args.quick else [1, 64, 1024, 16384]
    points = [8, 128] if args.quick else [8, 512]
    repeats = 1 if args.quick else 5
    header = ("| n_envs | points/env | state MB | get_state ms | full reset ms | reset 1% ms | reset 10% ms "
              "| reset 100% (envs_idx) ms | save ms | load ms | save vs np.save | load vs np.load |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    with tempfile.TemporaryDirectory(dir=os.getcwd()) as folder:
        for n_points in points:
            for n_envs in envs:
                r = measure(n_envs, n_points, folder, repeats)
                ms = {k: v * 1e3 for k, v in r.items() if k not in ("n_envs", "MB")}
                lines.append(
                    f"| {n_envs} | {n_points} | {r['MB']:.2f} | {ms['get_state']:.3f} | {ms['reset_all']:.3f} "
                    f"| {ms['reset_1%']:.3f} | {ms['reset_10%']:.3f} | {ms['reset_100%']:.3f} | {ms['save']:.2f} "
                    f"| {ms['load']:.2f} | {r['np_save'] / r['save']:.2f}x | {r['np_load'] / r['load']:.2f}x |")
                print(lines[-1], flush=True)
    table = "\n".join(lines)
    print("\n" + table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(f"# bench_state ({'quick' if args.quick else 'full'})\n\n"
                    "Ratios are numpy's time / ours: 1.0x means as fast as numpy.save/np.load of the same bytes.\n\n"
                    + table + "\n")


if __name__ == "__main__":
    main()
