"""Where a rigid step's time goes: CPU microseconds per env-step for each stage (kernel) of
`RigidSolver.step`, on the models of `bench_rigid.py`.

Each stage is timed on its own (`ti.sync()` before and after) in process CPU time, which
counts every thread of the Taichi CPU backend and is less disturbed by other jobs on a shared
machine than wall time. The sum is therefore the CPU cost of a step, not its wall time on
several cores. Syncing between stages adds a little launch overhead; `bench_rigid.py` gives the
end-to-end throughput.

    .venv/bin/python benchmarks/profile_rigid.py --model panda_mesh --envs 1024
"""

import argparse
import os
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_rigid import build_scene  # noqa: E402  (the same scenes as the throughput benchmark)

STAGES = {  # module name in sim.solvers.rigid -> its step kernels
    "kinematics": ["forward_kinematics"],
    "dynamics": ["mass_matrix", "bias_forces", "smooth_acceleration"],
    "collision": ["detect_primitive", "prune_convex", "detect_convex"],
    "constraint": ["solve_constraints", "relax_constraints"],
    "integrator": ["integrate_positions"],
}


def timed_stages(ti):
    """Wraps each stage kernel in its module so that calls accumulate CPU seconds by name."""
    import importlib

    totals = defaultdict(float)
    for module_name, kernels in STAGES.items():
        module = importlib.import_module(f"sim.solvers.rigid.{module_name}")
        for kernel_name in kernels:
            kernel = getattr(module, kernel_name)

            def wrapper(*args, _kernel=kernel, _name=kernel_name, **kwargs):
                ti.sync()
                start = time.process_time()
                out = _kernel(*args, **kwargs)
                ti.sync()
                totals[_name] += time.process_time() - start
                return out

            setattr(module, kernel_name, wrapper)
    return totals


def profile_steps(ti, scene, steps, n_envs, title):
    """Times `steps` scene steps stage by stage and prints CPU us per env-step under `title`."""
    totals = timed_stages(ti)
    ti.sync()
    start = time.process_time()
    for _ in range(steps):
        scene.step()
    ti.sync()
    whole = time.process_time() - start
    per = 1e6 / (steps * n_envs)
    print(f"{title}: CPU us per env-step")
    for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {name:22s} {seconds * per:8.2f}")
    print(f"  {'(other)':22s} {(whole - sum(totals.values())) * per:8.2f}")
    print(f"  {'step, synced stages':22s} {whole * per:8.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="panda_mesh", choices=["franka", "panda_mesh"])
    parser.add_argument("--envs", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--backend", default="cpu", choices=["cpu", "gpu", "vulkan"])
    args = parser.parse_args()

    import taichi as ti

    import sim as gs

    gs.init(backend={"cpu": gs.cpu, "gpu": gs.gpu, "vulkan": gs.vulkan}[args.backend], logging_level="warning")
    scene, _ = build_scene(gs, args.envs, args.model)
    for _ in range(5):  # compile and settle
        scene.step()
    profile_steps(ti, scene, args.steps, args.envs, f"{args.model}, {args.envs} envs, {args.steps} steps, {args.backend}")


if __name__ == "__main__":
    main()
