"""genesis_dist benchmark: RL stepping through the coordinator, and checkpoint save / load / reshard.

Stepping, side by side in one run, on the FrankaReach task (actions in; observations, rewards
and dones out as torch tensors in global env order), every shard's Taichi on one thread:
  in-process  one FrankaReach with all envs in this process (no Ray)
  gd          gd.VecEnv with 1, 2, 4 shards, stepped over its socket connections (the default)
  gd-ray      the same with step_transport="ray": one Ray actor call per shard and step
  gd+cgraph   gd-ray's shard actors driven through a Ray Compiled Graph (measured, not shipped)
  naive       hand-written actors, one per shard, each a FrankaReach returning Task.step's dict,
              driven by `ray.get([shard.step.remote(part) ...])` and joined with torch.from_numpy(np.concatenate)
  gym-async   gymnasium AsyncVectorEnv, one worker process per shard, observations in shared memory
Overhead per step = wall time per step - the slowest shard's own step time (measured inside it).

Checkpoints: a PBD particle scene holding ~1 GiB of state (--quick: 64 MiB) on 4 shards:
save (merge into one file), load on 4, load on 2 (reshard), load into one plain sim.Scene;
the driver's peak Python heap while saving is measured with tracemalloc.

Usage: python benchmarks/bench_distributed.py [--quick] [--out benchmarks/results/distributed.md]
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import platform
import sys
import tempfile
import time
import tracemalloc

import gymnasium as gym
import numpy as np
import ray
import torch
from gymnasium.vector import AsyncVectorEnv
from ray.dag import InputNode, MultiOutputNode

import genesis_dist as gd
from genesis_dist import ray_session
import sim as gs
from genesis_dist.tasks import FrankaReach

SHARD_KW = dict(backend="cpu", deterministic=True, resources_per_shard={"num_cpus": 1})
TARGET_SECONDS = 1.0  # per measurement, after warm-up


def measure(step, min_steps=5, max_steps=200):
    """(seconds per step, mean of the compute times step() returns), over ~TARGET_SECONDS."""
    for _ in range(2):
        step()
    start = time.perf_counter()
    step()
    estimate = time.perf_counter() - start
    n = int(min(max_steps, max(min_steps, TARGET_SECONDS / max(estimate, 1e-6))))
    computes = []
    start = time.perf_counter()
    for _ in range(n):
        computes.append(step())
    return (time.perf_counter() - start) / n, float(np.mean(computes))


def actions(n):
    return torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, (n, FrankaReach.num_actions)), dtype=torch.float32)


def to_torch(results):
    """What a hand-written driver does with its actors' Task.step dicts: join them into torch tensors."""
    obs = torch.from_numpy(np.concatenate([r["obs"]["policy"] for r in results]))
    reward = torch.from_numpy(np.concatenate([r["reward"] for r in results]))
    done = torch.from_numpy(np.concatenate([r["done"] for r in results]))
    return obs, reward, done


class NaiveShard:
    """The actor a user would write without genesis_dist: a FrankaReach shard whose step returns
    Task.step's dict (plus its own step time)."""

    def __init__(self, n_envs: int, env_offset: int):
        gs.init(backend=gs.cpu, deterministic=True)
        self.task = FrankaReach(n_envs, None, env_offset)

    def step(self, actions):
        start = time.perf_counter()
        out = self.task.step(actions)
        out["compute_s"] = time.perf_counter() - start
        return out


class ShardGymEnv(gym.Env):
    """One AsyncVectorEnv worker holding a FrankaReach shard. Rewards and dones ride in the
    observation array so that they, too, use gymnasium's shared memory."""

    def __init__(self, n_envs: int, env_offset: int):
        gs.init(backend=gs.cpu, deterministic=True)
        self.task = FrankaReach(n_envs, None, env_offset)
        dim = self.task.observations()["policy"].shape[1] + 2
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (n_envs, dim), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n_envs, FrankaReach.num_actions), np.float32)

    def _pack(self, out):
        return np.concatenate([out["obs"]["policy"], out["reward"][:, None], out["done"][:, None]], axis=1)

    def reset(self, *, seed=None, options=None):
        return self._pack({"obs": self.task.observations(), "reward": np.zeros(self.task.n_envs, np.float32),
                           "done": np.zeros(self.task.n_envs, np.float32)}), {}

    def step(self, action):
        start = time.perf_counter()
        out = self.task.step(np.asarray(action, np.float32))
        return self._pack(out), 0.0, False, False, {"compute_s": time.perf_counter() - start}


def bench_stepping(per_shard_sizes, shard_counts, rows, rounds):
    """Every driver of one configuration is alive at once and measured in turn, `rounds` times;
    the fastest round of each counts (the machine is shared: slow rounds are interference)."""
    for size in per_shard_sizes:
        for k in shard_counts:
            n = size * k
            acts = actions(n)
            task = FrankaReach(n)  # in-process, this process's Taichi (one thread)
            env = gd.VecEnv(FrankaReach, n_envs=n, n_shards=k, **SHARD_KW)
            env_ray = gd.VecEnv(FrankaReach, n_envs=n, n_shards=k, step_transport="ray", **SHARD_KW)
            bounds = [env.scene.layout.range(s) for s in range(k)]
            naive_actors = [ray.remote(NaiveShard).options(num_cpus=1).remote(hi - lo, lo) for lo, hi in bounds]
            venv = AsyncVectorEnv([functools.partial(ShardGymEnv, hi - lo, lo) for lo, hi in bounds],
                                  shared_memory=True, context="spawn")
            venv.reset()

            def inproc():
                start = time.perf_counter()
                out = task.step(acts.numpy())
                torch.from_numpy(out["obs"]["policy"]), torch.from_numpy(out["reward"]), torch.from_numpy(out["done"])
                return time.perf_counter() - start

            def coordinated(env=env):
                env.step(acts)
                return env.last_compute_s

            def naive():
                a = acts.numpy()
                results = ray.get([actor.step.remote(a[lo:hi]) for actor, (lo, hi) in zip(naive_actors, bounds)])
                to_torch(results)
                return max(r["compute_s"] for r in results)

            def gym_async():
                packed, _, _, _, info = venv.step(acts.numpy().reshape(k, size, -1))
                packed = torch.from_numpy(packed.reshape(n, -1))
                packed[:, :-2], packed[:, -2], packed[:, -1] > 0.5
                return float(np.max(info["compute_s"]))

            drivers = {"in-process": inproc, "gd": coordinated, "gd-ray": functools.partial(coordinated, env_ray),
                       "naive": naive, "gym-async": gym_async}
            rounds_of = {name: [measure(step)] for name, step in drivers.items()}
            for _ in range(rounds - 1):
                for name, step in drivers.items():
                    rounds_of[name].append(measure(step))

            # the same shard actors driven through a Ray Compiled Graph, measured on its own: the
            # graph holds a thread in every shard while it exists
            with InputNode() as inp:
                graph = MultiOutputNode([a.task_step.bind(inp[s]) for s, a in enumerate(env_ray.scene._group.actors)])
            graph = graph.experimental_compile()
            try:
                def compiled():
                    results = ray.get(graph.execute(*env.scene.layout.split(acts.numpy())), timeout=600)
                    torch.from_numpy(np.concatenate([packed for packed, _ in results]))
                    return max(seconds for _, seconds in results)
                rounds_of["gd+cgraph"] = [measure(compiled) for _ in range(rounds)]
            finally:
                graph.teardown()

            env.close()
            env_ray.close()
            venv.close()
            for actor in naive_actors:
                ray.kill(actor)
            del task
            for name, results in rounds_of.items():
                wall, compute = min(results)  # the fastest round
                rows.append((size, k, name, wall, compute))
                print(f"{name:>10} {size:>5}x{k} {wall * 1e3:8.2f} ms, shard {compute * 1e3:8.2f} ms", flush=True)


def build_particles(n_envs, side):
    """A PBD scene whose state is 28 bytes per particle per env."""
    scene = gs.Scene(pbd_options=gs.options.PBDOptions(particle_size=0.02))
    scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 1.0), size=(side, side, side)), material=gs.materials.PBD.Particle())
    scene.build(n_envs=n_envs)
    return scene


def bench_checkpoint(target_bytes, lines):
    side = 1.0
    per_env = 28 * round(side / 0.02) ** 3
    n_envs = max(4, 4 * math.ceil(target_bytes / per_env / 4))
    build = functools.partial(build_particles, side=side)
    timings = {}
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(__file__))) as folder:
        path = os.path.join(folder, "big.pkl")
        with gd.DistributedScene(build, n_envs=n_envs, n_shards=4, **SHARD_KW) as four:
            four.step()
            tracemalloc.start()
            start = time.perf_counter()
            four.save_checkpoint(path)
            timings["save, merging 4 shards into one file"] = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            state_bytes = os.path.getsize(path)
            start = time.perf_counter()
            four.load_checkpoint(path)
            timings["load on the same 4 shards"] = time.perf_counter() - start
        with gd.DistributedScene(build, n_envs=n_envs, n_shards=2, **SHARD_KW) as two:
            start = time.perf_counter()
            two.load_checkpoint(path)
            timings["load on 2 shards (reshard 4 -> 2)"] = time.perf_counter() - start
        plain = build(n_envs)
        start = time.perf_counter()
        plain.load_checkpoint(path)
        timings["load into one plain sim.Scene (reshard 4 -> 1)"] = time.perf_counter() - start
        start = time.perf_counter()
        plain.save_checkpoint(os.path.join(folder, "plain.pkl"))
        timings["plain sim.Scene save, for comparison"] = time.perf_counter() - start
    lines.append(f"State: {state_bytes / 2**30:.3f} GiB in one file ({n_envs} envs x {per_env // 28} PBD particles).\n")
    lines.append("| operation | seconds | GiB/s |\n|---|---:|---:|")
    for name, seconds in timings.items():
        lines.append(f"| {name} | {seconds:.2f} | {state_bytes / 2**30 / seconds:.2f} |")
    lines.append(f"\nDriver peak Python heap while saving (tracemalloc): {peak / 2**30:.3f} GiB = "
                 f"{peak / state_bytes:.2f} x the state.")


def stepping_table(rows):
    lines = ["| envs/shard | shards | total envs | mode | step ms | env-steps/s | overhead us | overhead % |",
             "|---:|---:|---:|---|---:|---:|---:|---:|"]
    for size, k, mode, wall, compute in rows:
        overhead = 0.0 if mode == "in-process" else wall - compute
        lines.append(f"| {size} | {k} | {size * k} | {mode} | {wall * 1e3:.2f} | {size * k / wall:,.0f} | "
                     f"{overhead * 1e6:,.0f} | {100 * overhead / wall:.1f} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a 64 MiB state: about two minutes")
    parser.add_argument("--out", default=None, help="write the markdown report here")
    parser.add_argument("--sizes", default=None, help="envs per shard, comma-separated (default 64,512,4096)")
    parser.add_argument("--shards", default=None, help="shard counts, comma-separated (default 1,2,4)")
    parser.add_argument("--state-gib", type=float, default=None, help="checkpoint state size; 0 skips (default 1)")
    args = parser.parse_args()
    sizes, shards = ([16, 256], [1, 2]) if args.quick else ([64, 512, 4096], [1, 2, 4])
    sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else sizes
    shards = [int(x) for x in args.shards.split(",")] if args.shards else shards
    state_bytes = 64 * 2**20 if args.quick else 2**30
    state_bytes = int(args.state_gib * 2**30) if args.state_gib is not None else state_bytes
    gs.init(backend=gs.cpu, deterministic=True)
    ray.init(address="local", num_cpus=16, include_dashboard=False, object_store_memory=3 * state_bytes + 2**28,
             configure_logging=False, log_to_driver=False, _system_config=ray_session.SYSTEM_CONFIG)
    rows = []
    bench_stepping(sizes, shards, rows, rounds=2 if args.quick else 3)
    ckpt = []
    if state_bytes:
        bench_checkpoint(state_bytes, ckpt)
    load = os.getloadavg()[0]
    report = [f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (1-minute load average {load:.1f} at the end "
              f"of the run: the machine is shared), CPU backend, float32; ray {ray.__version__}, "
              f"python {platform.python_version()}. Command: `python benchmarks/bench_distributed.py "
              f"{' '.join(sys.argv[1:])}`.", "", "### Stepping (FrankaReach)", "", *stepping_table(rows),
              "", "### Checkpoints", "", *ckpt]
    text = "\n".join(report)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
