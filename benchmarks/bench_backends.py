"""The same rigid workload on each backend this machine has: env-steps/s of the bundled franka
on a plane (bench_rigid's scene and timing: best of three timed runs after a compiling step),
each backend in its own process (one Taichi runtime per process).

    .venv/bin/python benchmarks/bench_backends.py                      # cpu, vulkan; n_envs 64, 256
    .venv/bin/python benchmarks/bench_backends.py --backends cpu gpu --n-envs 64 1024 8192

On a machine without a GPU, vulkan is Mesa's software device (lavapipe), running the SPIR-V
kernels on the CPU cores: it checks the device path, it is not a GPU's speed.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def child(backend, sizes, steps):
    """Runs in a fresh process: {n_envs: env-steps/s} on `backend`, and the backend gs.gpu chose."""
    sys.path[:0] = [ROOT, HERE]
    import bench_rigid

    import sim as gs

    gs.init(backend=backend)
    return {"backend": gs.runtime.config().backend,
            "rates": {n: bench_rigid.ours(gs, n, steps, "franka") for n in sizes}}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=["cpu", "vulkan"], choices=["cpu", "cuda", "vulkan", "gpu"])
    parser.add_argument("--n-envs", nargs="+", type=int, default=[64, 256])
    parser.add_argument("--steps", type=int, default=50, help="timed steps per run")
    parser.add_argument("--quick", action="store_true", help="64 envs, 10 steps (a smoke run, as `make bench`)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.n_envs, args.steps = [64], 10
    if args.child:
        print(json.dumps(child(args.child, args.n_envs, args.steps)))
        return
    print(f"franka on a plane, env-steps/s (best of 3 x {args.steps} steps); {os.cpu_count()} CPU cores")
    print("| backend | " + " | ".join(f"{n} envs" for n in args.n_envs) + " |")
    print("|---|" + "---:|" * len(args.n_envs))
    for backend in args.backends:
        res = subprocess.run([sys.executable, __file__, "--child", backend, "--steps", str(args.steps),
                              "--n-envs", *map(str, args.n_envs)], capture_output=True, text=True)
        if res.returncode != 0:
            print(f"| {backend} | failed: {res.stderr.strip().splitlines()[-1]} |")
            continue
        out = json.loads(res.stdout.strip().splitlines()[-1])
        label = backend if out["backend"] == backend else f"{backend} ({out['backend']})"
        print(f"| {label} | " + " | ".join(f"{out['rates'][str(n)]:,.0f}" for n in args.n_envs) + " |", flush=True)


if __name__ == "__main__":
    main()
