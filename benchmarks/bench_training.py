"""genesis_dist benchmark: PPO on FrankaReach, central VecEnv vs data-parallel Ray Train, side by side.

For W = 1, 2, 4 (--quick: 1, 2) and the same total envs, in one run on one local Ray:
  central        genesis_dist.train(mode="central"): gd.VecEnv with W shard actors, one learner here
  data-parallel  genesis_dist.train(mode="data-parallel"): W Ray Train workers (gloo), each with its
                 envs in-process and a policy replica, gradients all-reduced
Every learner (the central one here, each data-parallel worker) uses one torch thread.
Per iteration (the warm-up iteration, which compiles kernels, left out; median of the rest):
  rollout_s  collecting num_steps_per_env steps of every env
  update_s   the PPO update (for data-parallel it includes the gradient all-reduce)
  comm_s     central: the steps' wall time less the slowest shard's own time (sending actions,
             gathering observations); data-parallel: the gradient all-reduces (part of update_s)
  env-steps/s, and the bytes each design moves per iteration (counted from the sizes, see
  bytes_per_iteration), then a projection to 8 and 64 GPUs (see project()).

Usage: python benchmarks/bench_training.py [--quick] [--out benchmarks/results/training.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import ray
import torch

from genesis_dist.ppo_config import ppo_config
from genesis_dist.step_layout import COLUMNS
from genesis_dist.train import train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # Ray workers import this checkout
OBS_DIM, NUM_ACTIONS = 27, 7  # FrankaReach's "policy" group and actions
# Assumed, stated: 4096 FrankaReach envs per GPU step in 4 ms, and one GPU's PPO update on its own
# 4096 x 24 samples takes 50 ms (a central learner with G GPUs' samples takes G times that).
PROJECTION = {"envs_per_gpu": 4096, "gpu_step_s": 0.004, "gpu_update_s": 0.05}


def n_params(ppo: dict) -> int:
    """Parameters of the actor + critic MLPs (and the actor's std) that ppo_config builds for FrankaReach."""
    hidden = list(ppo_config(**ppo)["actor"]["hidden_dims"])
    total = 0
    for out in (NUM_ACTIONS, 1):
        sizes = [OBS_DIM, *hidden, out]
        total += sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    return total + NUM_ACTIONS


def bytes_per_iteration(design: str, workers: int, n_envs: int, ppo: dict) -> int:
    """Bytes on the network per iteration, all machines together.
    central: every step, actions (float32) out to the shards and the packed results (observations,
    reward, done, time_out, episode length as float32) back: (A + O + 4) * 4 * n_envs * steps.
    data-parallel: every minibatch update, a ring all-reduce of the gradients (float32): each of W
    workers sends 2 (W - 1) / W of them; plus one KL value and one learning rate (negligible).
    Within one machine both travel through memory, not a network: these are the cluster's numbers."""
    cfg = ppo_config(**ppo)
    if design == "central":
        return (NUM_ACTIONS + OBS_DIM + len(COLUMNS)) * 4 * n_envs * cfg["num_steps_per_env"]
    updates = cfg["algorithm"]["num_learning_epochs"] * cfg["algorithm"]["num_mini_batches"]
    return int(2 * (workers - 1) * n_params(ppo) * 4 * updates)


def run_design(design: str, workers: int, n_envs: int, iterations: int, ppo: dict, folder: str) -> dict:
    start = time.perf_counter()
    summary = train("FrankaReach", n_envs, workers, mode=design, iterations=iterations,
                    checkpoint_every=iterations, out=os.path.join(folder, f"{design}-{workers}"), ppo=ppo,
                    deterministic=True, tensorboard=False)
    wall = time.perf_counter() - start
    steady = summary["history"][1:]  # the first iteration compiles the kernels
    med = {k: statistics.median(h[k] for h in steady) for k in ("rollout_s", "update_s", "comm_s")}
    steps = ppo_config(**ppo)["num_steps_per_env"] * n_envs
    return {"design": design, "workers": workers, **med, "env_steps_per_s": steps / (med["rollout_s"] + med["update_s"]),
            "bytes": bytes_per_iteration(design, workers, n_envs, ppo), "wall_s": wall,
            "mean_reward": summary.get("mean_reward")}


def table(rows) -> list[str]:
    lines = ["| design | W | rollout s/it | update s/it | comm s/it | env-steps/s | bytes/it (network) | whole run s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['design']} | {r['workers']} | {r['rollout_s']:.3f} | {r['update_s']:.3f} | "
                     f"{r['comm_s']:.3f} | {r['env_steps_per_s']:.0f} | {r['bytes']:,} | {r['wall_s']:.0f} |")
    return lines


def project(ppo: dict, envs_per_gpu: int, gpu_step_s: float, gpu_update_s: float) -> list[str]:
    """Iteration time on G GPUs for each design at 25 and 100 Gb/s, from the byte counts above:
    central: G shards step in parallel (gpu_step_s per step), every step's results cross the
    learner's one link (its bandwidth is the limit), and one learner updates on all G * envs_per_gpu
    envs (gpu_update_s scaled by G). data-parallel: each GPU steps and updates its own envs; the
    all-reduce moves 2 (G-1)/G of the gradients per worker per update over each worker's link."""
    cfg = ppo_config(**ppo)
    steps = cfg["num_steps_per_env"]
    updates = cfg["algorithm"]["num_learning_epochs"] * cfg["algorithm"]["num_mini_batches"]
    lines = ["| GPUs | Gb/s | central: bytes/it | central: s/it (step + link + update) | "
             "data-parallel: bytes/it | data-parallel: s/it (step + all-reduce + update) | env-steps/s central | env-steps/s data-parallel |",
             "|---|---|---|---|---|---|---|---|"]
    for gpus in (8, 64):
        n = gpus * envs_per_gpu
        for gbps in (25, 100):
            link = gbps * 1e9 / 8
            c_bytes = bytes_per_iteration("central", gpus, n, ppo)
            c_time = steps * gpu_step_s + c_bytes / link + gpu_update_s * gpus
            d_bytes = bytes_per_iteration("data-parallel", gpus, n, ppo)
            per_worker = d_bytes / gpus
            d_time = steps * gpu_step_s + per_worker / link + gpu_update_s
            lines.append(f"| {gpus} | {gbps} | {c_bytes / 1e9:.2f} GB | {c_time:.2f} | {d_bytes / 1e6:.1f} MB | "
                         f"{d_time:.2f} | {steps * n / c_time:,.0f} | {steps * n / d_time:,.0f} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="W = 1, 2 only, fewer envs and iterations")
    parser.add_argument("--out", default=None, help="write the results (markdown) here")
    args = parser.parse_args()
    workers = (1, 2) if args.quick else (1, 2, 4)
    n_envs, iterations = (8, 3) if args.quick else (32, 5)
    ppo = dict(num_steps_per_env=24, hidden_dims=(128, 128), num_learning_epochs=5, num_mini_batches=4)
    torch.set_num_threads(1)  # the central learner gets one thread, as each Ray worker does (OMP_NUM_THREADS=1)
    ray.init(address="local", num_cpus=max(workers) + 1, include_dashboard=False, configure_logging=False,
             log_to_driver=False, object_store_memory=256 * 2**20,
             runtime_env={"env_vars": {"PYTHONPATH": REPO}})
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for w in workers:
            for design in ("central", "data-parallel"):
                rows.append(run_design(design, w, n_envs, iterations, ppo, folder))
                print(table(rows)[-1], flush=True)
    lines = [f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs (load average "
             f"{os.getloadavg()[0]:.1f} at the end), no GPU; torch {torch.__version__}, ray {ray.__version__}.",
             f"FrankaReach, {n_envs} envs in total, {iterations} iterations (the first one left out), PPO: {ppo}, "
             f"{n_params(ppo):,} parameters.", "", *table(rows), "",
             f"Projection (arithmetic, not a measurement): {PROJECTION}", "", *project(ppo, **PROJECTION), ""]
    print("\n".join(lines))
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
    ray.shutdown()


if __name__ == "__main__":
    main()
