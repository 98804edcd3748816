"""One data-parallel worker's run (see genesis_dist.train): build, restore, train, checkpoint, report."""

from __future__ import annotations

import os
import tempfile
import time

import ray.train
import ray.train.torch
import torch

from genesis_dist import train_sync, training
from genesis_dist.layout import Layout
from genesis_dist.ppo_config import ppo_config
from genesis_dist.train import progress_line, rank_seed
from genesis_dist.train_env import LocalTaskEnv
from genesis_dist.train_runner import Runner
from sim import checkpoint


class WorkerRun:
    def __init__(self, settings: dict):
        self.s = settings
        context = ray.train.get_context()
        self.rank, self.world = context.get_world_rank(), context.get_world_size()
        local_rank = context.get_local_rank()
        self.layout = Layout(settings["n_envs"], self.world)
        gpu = settings["backend"] == "gpu"
        device = str(ray.train.torch.get_device()) if gpu else "cpu"  # the GPU Ray Train gave this worker
        init = {"precision": "32", "deterministic": settings["deterministic"], "seed": settings["seed"],
                **({} if gpu else {"backend": "cpu"})}
        self.env = LocalTaskEnv(settings["task"], settings["task_cfg"], self.layout, self.rank, init, device)
        torch.manual_seed(rank_seed(settings["seed"], self.rank))  # before the runner draws its initial weights
        log_dir = os.path.join(settings["out"], "tensorboard") if settings["tensorboard"] and self.rank == 0 else None
        self.runner = Runner(self.env, ppo_config(**settings["ppo"]), log_dir, device, self._after_iteration, local_rank)
        self.digests: list[list[str]] = []
        self.metrics: dict = {}
        self.history: list[dict] = []
        self.start_time = time.perf_counter()

    def run(self) -> dict:
        restart = ray.train.get_checkpoint()  # set when Ray Train restarts the group after a failure
        if restart is not None:
            with restart.as_directory() as folder:
                self._restore(folder)
        elif self.s["resume"] is not None:
            self._restore(self.s["resume"])
        first = restart is None and self.s["resume"] is None
        self.start_iteration = self.runner.current_learning_iteration
        self.runner.train(self.s["iterations"], first=first)
        self.env.close()
        return {"iterations": self.runner.current_learning_iteration, "env_steps": self.env.t * self.s["n_envs"],
                "workers": self.world, "start_iteration": self.start_iteration, "param_digests": self.digests,
                "history": self.history,
                **{k: v for k, v in self.metrics.items() if k.startswith("mean_reward")}}

    # ------------------------------------------------------------------ checkpoints
    def _restore(self, folder: str) -> None:
        """Env rows of this rank, the learner, and the random state (see genesis_dist.train)."""
        training.check_run_folder(folder)
        self.env.load_merged(checkpoint.read(os.path.join(folder, training.ENV_FILE)))
        self.runner.load(os.path.join(folder, training.POLICY_FILE), map_location=self.runner.device)
        ranks_file = os.path.join(folder, training.RANK_RNG_FILE)
        states = (torch.load(ranks_file) if os.path.exists(ranks_file)
                  else torch.load(os.path.join(folder, training.RNG_FILE))[None])
        # set_rng_state on a row view of the stacked states segfaulted in a restarted worker; a clone does not
        if len(states) == self.world:
            torch.set_rng_state(states[self.rank].clone())
        elif self.rank == 0:
            torch.set_rng_state(states[0].clone())
        else:
            torch.manual_seed(rank_seed(self.s["seed"], self.rank, self.runner.current_learning_iteration))

    def _save_and_report(self, done: int) -> None:
        """Collective: every rank sends its env rows and random state to rank 0, which writes the folder."""
        state = train_sync.gather_state(self.env.local_state(), self.env.meta["layout"], self.layout)
        rngs = train_sync.gather_rng_states()
        if self.rank != 0:
            ray.train.report(self.metrics)
            return
        with tempfile.TemporaryDirectory() as folder:
            checkpoint.write(os.path.join(folder, training.ENV_FILE), state, self.env.t, self.env.meta)
            self.runner.save(os.path.join(folder, training.POLICY_FILE))
            torch.save(rngs[0].clone(), os.path.join(folder, training.RNG_FILE))
            torch.save(rngs, os.path.join(folder, training.RANK_RNG_FILE))
            ray.train.report(self.metrics, checkpoint=ray.train.Checkpoint.from_directory(folder),
                             checkpoint_dir_name=f"checkpoint_{done:06d}")

    # ------------------------------------------------------------------ per iteration (every rank)
    def _after_iteration(self, runner: Runner, done: int, times: dict) -> None:
        digest = train_sync.params_digest(torch.nn.ModuleList([runner.alg.actor, runner.alg.critic]))
        digests = train_sync.all_digests(digest)
        if len(set(digests)) > 1:
            raise RuntimeError(f"after iteration {done} the policy replicas differ: parameter hashes {digests}")
        self.digests.append(digests)
        returns = train_sync.global_mean_sem(runner.logger.episode_returns)
        self.metrics = {"iteration": done, "env_steps": self.env.t * self.s["n_envs"], **times,
                        **({} if returns is None else {"mean_reward": returns[0], "mean_reward_sem": returns[1]})}
        self.history.append(self.metrics)
        if done % self.s["checkpoint_every"] == 0 or done == self.s["iterations"]:
            self._save_and_report(done)
        else:
            ray.train.report(self.metrics)
        if self.rank == 0:
            print(progress_line(done - self.start_iteration, self.s["iterations"] - self.start_iteration,
                                time.perf_counter() - self.start_time, self.metrics), flush=True)
