"""Ray Tune: PPO on a gd.VecEnv as a function trainable whose failed trials resume exactly.

    from ray import tune
    from genesis_dist.tune import train_ppo
    tuner = tune.Tuner(train_ppo, param_space={"task": FrankaReach, "n_envs": 4096, "n_shards": 4,
                                                "iterations": 500, "ppo": {"learning_rate": tune.grid_search([1e-3, 3e-4])}},
                       run_config=tune.RunConfig(failure_config=tune.FailureConfig(max_failures=3)))

Every iteration is reported with `tune.report`; every `checkpoint_every` iterations the report
carries a checkpoint: the whole training run (genesis_dist.training: env state and Task buffers,
learner, torch's random state). A trial that fails (its process, a node, an exception) restarts
from its last checkpoint (`tune.get_checkpoint()`) and continues the same trajectory. A shard
that dies inside a trial is handled first by the scene's own recovery policy when the config
gives one ("scene": {"recovery": gd.Recovery(...)}).
"""

from __future__ import annotations

import tempfile

import torch
from ray import tune

from genesis_dist.ppo_config import ppo_config
from genesis_dist.train_runner import Runner
from genesis_dist.train_sync import global_mean_sem
from genesis_dist.training import load_training, save_training
from genesis_dist.vec_env import VecEnv

DEFAULTS = {"task_cfg": None, "n_shards": 1, "iterations": 100, "checkpoint_every": 10, "seed": 0,
            "ppo": {}, "scene": {}, "device": "cpu"}
REQUIRED = ("task", "n_envs")


def _settings(config: dict) -> dict:
    missing = [k for k in REQUIRED if k not in config]
    unknown = sorted(set(config) - set(REQUIRED) - set(DEFAULTS))
    if missing or unknown:
        raise ValueError(f"train_ppo config: missing {missing}, unknown {unknown}; "
                         f"it takes {list(REQUIRED)} and optionally {sorted(DEFAULTS)}")
    return {**DEFAULTS, **config}


def train_ppo(config: dict) -> None:
    """config: task (a gd.Task class), n_envs, and optionally n_shards, task_cfg, iterations,
    checkpoint_every, seed, ppo (ppo_config keywords), scene (DistributedScene keywords), device
    (the learner's torch device).
    Reports {"iteration", "env_steps", "mean_reward" and "mean_reward_sem" (the mean return of the
    last 100 episodes and its standard error, once any episode ended)}."""
    cfg = _settings(config)
    torch.manual_seed(cfg["seed"])
    # named after the trial: a restarted trial removes the shards' group its killed predecessor left
    scene = {"placement_group_name": f"genesis_dist-{tune.get_context().get_trial_id()}", **cfg["scene"]}

    def after_iteration(runner: Runner, done: int, times: dict) -> None:
        returns = global_mean_sem(runner.logger.episode_returns)
        metrics = {"iteration": done, "env_steps": env.scene.t * env.num_envs,
                   **({} if returns is None else {"mean_reward": returns[0], "mean_reward_sem": returns[1]})}
        if done % cfg["checkpoint_every"] == 0 or done == cfg["iterations"]:
            with tempfile.TemporaryDirectory() as folder:
                save_training(folder, env, runner)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        else:
            tune.report(metrics)

    with VecEnv(cfg["task"], cfg["n_envs"], cfg["n_shards"], cfg["task_cfg"], **scene) as env:
        runner = Runner(env, ppo_config(**cfg["ppo"]), log_dir=None, device=cfg["device"], after_iteration=after_iteration)
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as folder:
                load_training(folder, env, runner)
        runner.train(cfg["iterations"], first=checkpoint is None)
