"""The central run of genesis_dist.train: one learner here over a gd.VecEnv of shard actors.

Its checkpoints are training.save_training folders, out/checkpoint_NNNNNN/, the same files a
data-parallel checkpoint holds (less every rank's random state), so either kind resumes the other.
"""

from __future__ import annotations

import os
import time

import torch

from genesis_dist import train_sync, training
from genesis_dist.ppo_config import ppo_config
from genesis_dist.train import progress_line
from genesis_dist.train_runner import Runner
from genesis_dist.vec_env import VecEnv


class _TimedVecEnv(VecEnv):
    """A VecEnv that adds up, over the steps of an iteration, each step's wall time less its slowest
    shard's own time: what the central design spends sending actions and gathering observations."""

    comm_s = 0.0

    def step(self, actions):
        start = time.perf_counter()
        out = super().step(actions)
        self.comm_s += time.perf_counter() - start - self.last_compute_s
        return out


def train_central(s: dict, shards: int) -> dict:
    gpu = s["backend"] == "gpu"
    resources = {"num_cpus": 1, **({"num_gpus": 1} if gpu else {})}
    start_time = time.perf_counter()
    summary: dict = {}
    history: list[dict] = []

    def after_iteration(runner: Runner, done: int, times: dict) -> None:
        returns = train_sync.global_mean_sem(runner.logger.episode_returns)
        times = {**times, "comm_s": times["comm_s"] + env.comm_s}
        env.comm_s = 0.0
        metrics = {"iteration": done, "env_steps": env.scene.t * env.num_envs, **times,
                   **({} if returns is None else {"mean_reward": returns[0], "mean_reward_sem": returns[1]})}
        if done % s["checkpoint_every"] == 0 or done == s["iterations"]:
            summary["checkpoint"] = os.path.join(s["out"], f"checkpoint_{done:06d}")
            training.save_training(summary["checkpoint"], env, runner)
        summary.update(metrics)
        history.append(metrics)
        print(progress_line(done - start, s["iterations"] - start, time.perf_counter() - start_time, metrics), flush=True)

    with _TimedVecEnv(s["task"], s["n_envs"], shards, s["task_cfg"], backend=s["backend"], deterministic=s["deterministic"],
                seed=s["seed"], resources_per_shard=resources) as env:
        device = "cuda" if gpu and torch.cuda.is_available() else "cpu"
        log_dir = os.path.join(s["out"], "tensorboard") if s["tensorboard"] else None
        torch.manual_seed(s["seed"])  # before the runner draws its initial weights
        runner = Runner(env, ppo_config(**s["ppo"]), log_dir, device, after_iteration)
        if s["resume"] is not None:
            training.load_training(s["resume"], env, runner)
        start = runner.current_learning_iteration
        runner.train(s["iterations"], first=s["resume"] is None)
        return {"iterations": runner.current_learning_iteration, "env_steps": env.scene.t * env.num_envs,
                "workers": shards, "start_iteration": start, "history": history,
                **{k: v for k, v in summary.items() if k.startswith("mean_reward") or k == "checkpoint"}}
