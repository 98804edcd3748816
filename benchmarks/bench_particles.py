"""Particle-steps per second of every particle solver against particle count and n_envs, and
checkpoint size and save / load time at the largest size.

A solver takes part when its module (or its package) defines `benchmark_scene(n_particles_target)
-> (morph, material, scene_kwargs)` (see /work/notes/bench_particles_api.md): one body of about
that many particles. A "particle-step" is one particle advanced by one scene.step() (dt = 0.01 s,
with the solver's own substeps, listed where the solver has a `substeps` attribute). Runs are multi-threaded (deterministic=False).

    python benchmarks/bench_particles.py [--quick] [--backend cpu|gpu] [--solver SPHSolver ...]
                                         [--out benchmarks/results/particles.md]
"""

import argparse
import os
import platform
import sys
import tempfile
import time

import sim as gs
from sim.solvers.base import registered_solvers

FULL = dict(sizes=(1000, 8000, 64000), envs=(1, 4, 16), max_total=200_000, min_seconds=2.0)
QUICK = dict(sizes=(500, 2000), envs=(1, 4), max_total=10_000, min_seconds=0.3)
GPU_FULL = dict(sizes=(1000, 8000, 64000), envs=(1, 16, 128), max_total=5_000_000, min_seconds=2.0)


def benchmark_scene_of(solver_cls):
    """The solver's benchmark_scene, from its module or the package above it, or None."""
    module_name = solver_cls.__module__
    while module_name:
        fn = getattr(sys.modules.get(module_name), "benchmark_scene", None)
        if fn is not None:
            return fn
        module_name = module_name.rpartition(".")[0] if module_name.count(".") > 2 else ""
    return None


def build(solver_cls, n_target, n_envs):
    morph, material, scene_kwargs = benchmark_scene_of(solver_cls)(n_target)
    scene = gs.Scene(**scene_kwargs)
    scene.add_entity(morph, material=material)
    scene.build(n_envs=n_envs)
    return scene


def time_steps(scene, min_seconds):
    """Steps per second, after one untimed step that pays Taichi's compile; syncs the device."""
    import taichi as ti

    scene.step()
    ti.sync()
    steps, start = 0, time.perf_counter()
    while True:
        scene.step()
        steps += 1
        ti.sync()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return steps / elapsed


def checkpoint_cost(scene, folder):
    path = os.path.join(folder, "bench_particles.pkl")
    t0 = time.perf_counter()
    scene.save_checkpoint(path)
    save = time.perf_counter() - t0
    t0 = time.perf_counter()
    scene.load_checkpoint(path)
    load = time.perf_counter() - t0
    return os.path.getsize(path), save, load


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, short timings")
    parser.add_argument("--backend", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--out", default=None, help="write a markdown table here")
    parser.add_argument("--solver", action="append", default=None,
                        help="only this solver (e.g. SPHSolver); repeat for several")
    args = parser.parse_args()
    plan = QUICK if args.quick else (GPU_FULL if args.backend == "gpu" else FULL)
    gs.init(backend=args.backend, precision="32", deterministic=False)
    solvers = [cls for _, cls in sorted(registered_solvers().items()) if benchmark_scene_of(cls)]
    unknown = set(args.solver or ()) - {cls.name for cls in solvers}
    if unknown:
        parser.error(f"--solver {sorted(unknown)}: not a benchmarked solver; choose from {[c.name for c in solvers]}")
    solvers = [cls for cls in solvers if not args.solver or cls.name in args.solver]
    rows, ckpt_rows = [], []
    with tempfile.TemporaryDirectory() as folder:
        for cls in solvers:
            largest = None
            for n_target in plan["sizes"]:
                for n_envs in plan["envs"]:
                    if n_target * n_envs > plan["max_total"]:
                        continue
                    scene = build(cls, n_target, n_envs)
                    n = scene.get_state()[f"{cls.name}.pos"].shape[-2]
                    steps_per_s = time_steps(scene, plan["min_seconds"])
                    substeps = getattr(scene.solvers[cls.name], "substeps", "-")
                    rows.append((cls.name, n, n_envs, substeps, steps_per_s, steps_per_s * n * n_envs))
                    print(f"{cls.name:10s} particles={n:7d} n_envs={n_envs:4d} substeps={substeps!s:>3s} "
                          f"steps/s={steps_per_s:9.2f} particle-steps/s={rows[-1][-1]:.3g}", flush=True)
                    largest = scene
            size, save, load = checkpoint_cost(largest, folder)
            n = largest.get_state()[f"{cls.name}.pos"].shape[-2]
            ckpt_rows.append((cls.name, n, largest.n_envs, size, save, load))
            print(f"{cls.name:10s} checkpoint {size / 1e6:.2f} MB save {save * 1e3:.1f} ms load {load * 1e3:.1f} ms")
    if args.out:
        write_markdown(args, rows, ckpt_rows)


def write_markdown(args, rows, ckpt_rows):
    lines = [f"# Particle solvers: throughput ({args.backend}{', --quick' if args.quick else ''})", "",
             f"`python benchmarks/bench_particles.py{' --quick' if args.quick else ''} --backend {args.backend}`"
             f" on {platform.machine()}, {os.cpu_count()} CPU cores, float32, deterministic=False,"
             f" SimOptions dt = 0.01 s; load average {os.getloadavg()[0]:.1f} at the end (shared machine:"
             " other processes' load makes numbers noisy).", "",
             "| solver | particles | n_envs | substeps/step | steps/s | particle-steps/s |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {s} | {n} | {e} | {sub} | {sps:.2f} | {ps:.3g} |" for s, n, e, sub, sps, ps in rows]
    lines += ["", "Checkpoint at the largest size per solver:", "",
              "| solver | particles | n_envs | file MB | save ms | load ms |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {s} | {n} | {e} | {b / 1e6:.2f} | {sv * 1e3:.1f} | {ld * 1e3:.1f} |"
              for s, n, e, b, sv, ld in ckpt_rows]
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
