"""genesis_dist benchmark: what a recovery policy costs while nothing fails, and how long a recovery takes.

FrankaReach through gd.VecEnv on 2 shards, every shard's Taichi on one thread:
  steady state   env-steps/s without a policy, and with gd.Recovery(snapshot_every=N) in memory
                 and on disk (the snapshots' cost, spread over N steps)
  snapshot       one get_state of the whole scene (what each snapshot costs)
  recovery       after a warm-up, one shard killed (SIGKILL) k steps after a snapshot: the seconds of the
                 step that meets it (replace the shard, build its scene, restore, replay k steps, step again)

Usage: python benchmarks/bench_recovery.py [--quick] [--out benchmarks/results/recovery.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import tempfile
import time

import numpy as np
import ray
import torch

import genesis_dist as gd
from genesis_dist import ray_session
from genesis_dist.tasks import FrankaReach

SHARD_KW = dict(backend="cpu", deterministic=True, resources_per_shard={"num_cpus": 1})
N_SHARDS = 2


def actions(n, seed):
    return torch.as_tensor(np.random.default_rng(seed).uniform(-1, 1, (n, FrankaReach.num_actions)), dtype=torch.float32)


def steps_per_second(env, n_steps):
    acts = actions(env.num_envs, 0)
    for _ in range(3):
        env.step(acts)
    start = time.perf_counter()
    for _ in range(n_steps):
        env.step(acts)
    return n_steps / (time.perf_counter() - start)


def steady_state(n_envs, every, n_steps, folder):
    rows = []
    policies = {"none": None, f"memory, every {every}": gd.Recovery(snapshot_every=every),
                f"disk, every {every}": gd.Recovery(snapshot_every=every, snapshot_dir=folder)}
    for name, policy in policies.items():
        with gd.VecEnv(FrankaReach, n_envs=n_envs, n_shards=N_SHARDS, recovery=policy, **SHARD_KW) as env:
            rate = steps_per_second(env, n_steps)
            start = time.perf_counter()
            state = env.scene.get_state()
            snapshot_s = time.perf_counter() - start
        rows.append((name, rate, snapshot_s, sum(v.nbytes for v in state.arrays().values())))
    return rows


def recovery_time(n_envs, replay, warmup):
    """Warm up (every shard compiles its kernels), then `replay` steps, the first of which takes the
    snapshot; then kill shard 1 and time the next step."""
    policy = gd.Recovery(snapshot_every=warmup)
    with gd.VecEnv(FrankaReach, n_envs=n_envs, n_shards=N_SHARDS, recovery=policy, **SHARD_KW) as env:
        for k in range(warmup + replay):
            env.step(actions(n_envs, k))
        os.kill(env.scene.shard_info[1]["pid"], signal.SIGKILL)
        start = time.perf_counter()
        env.step(actions(n_envs, warmup + replay))
        wall = time.perf_counter() - start
        (event,) = env.scene.recoveries
    return wall, event


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: about two minutes")
    parser.add_argument("--out", default=None, help="write the markdown report here")
    args = parser.parse_args()
    sizes = [256] if args.quick else [512, 4096]
    every, n_steps = (20, 60) if args.quick else (100, 300)
    replays = [1, 10] if args.quick else [1, 50]
    ray.init(address="local", num_cpus=8, include_dashboard=False, configure_logging=False, log_to_driver=False,
             _system_config=ray_session.SYSTEM_CONFIG)
    lines = [f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared), CPU backend, float32, "
             f"{N_SHARDS} shards; ray {ray.__version__}, python {platform.python_version()}. "
             f"Command: `python benchmarks/bench_recovery.py {' '.join(sys.argv[1:])}`.", "",
             "### While nothing fails", "",
             "| envs/shard | policy | env-steps/s | vs none | one snapshot (get_state) s | state MB |",
             "|---:|---|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            rows = steady_state(size * N_SHARDS, every, n_steps, folder)
            base = rows[0][1]
            for name, rate, snapshot_s, nbytes in rows:
                lines.append(f"| {size} | {name} | {rate * size * N_SHARDS:,.0f} | {rate / base:.2f}x | "
                             f"{snapshot_s:.4f} | {nbytes / 1e6:.1f} |")
                print(lines[-1], flush=True)
    lines += ["", "### One shard killed", "",
              "| envs/shard | steps replayed | step that meets the failure, s | of which recovery, s |",
              "|---:|---:|---:|---:|"]
    for size in sizes:
        for replay in replays:
            wall, event = recovery_time(size * N_SHARDS, replay, warmup=max(replays) + 10)
            lines.append(f"| {size} | {event['replayed_calls']} | {wall:.2f} | {event['seconds']:.2f} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
