"""rsl-rl-lib's OnPolicyRunner in a process group that Ray Train set up, with a call after every iteration.

OnPolicyRunner's multi-GPU mode (gradients all-reduced, KL averaged, learning rate broadcast,
parameters broadcast at the start of learn) is what we want, but its setup insists on NCCL and
`cuda:LOCAL_RANK` and creates the process group itself. Ray Train has already created the group
(gloo on CPU, NCCL on GPU), so `Runner` replaces only that setup: it reads the group's rank and
size, and leaves the library's training code untouched.

After each iteration the runner calls `after_iteration(runner, it, times)`, from rsl-rl's own
logging call (made on every rank): the place for checkpoints, reports and progress lines, which
read what the run got from `runner.logger` (episode returns and lengths, the rollout's mean reward
per step: the one place genesis_dist measures them). Train with `runner.train(until, first)`, not
genesis_dist.training.learn: this runner counts its iterations itself.
rsl-rl writes TensorBoard scalars where log_dir is given (rank 0); its console table is dropped
(TensorBoard has the same numbers; the caller prints one line per iteration instead).
"""

from __future__ import annotations

import collections
import contextlib
import io
import time

import torch
import torch.distributed as dist
from rsl_rl.runners import OnPolicyRunner
from rsl_rl.utils.logger import Logger


class _HookedLogger(Logger):
    """rsl-rl's Logger plus what a run reports, kept on every rank (rsl-rl keeps episode returns only
    where it writes logs): `episode_returns` and `episode_lengths` of the last 100 episodes that
    ended, and `rollout_reward`, the mean reward per env step of the last iteration's rollout."""

    def __init__(self, runner: "Runner", **kwargs):
        super().__init__(**kwargs)
        self.runner = runner
        self.episode_returns = collections.deque(maxlen=100)
        self.episode_lengths = collections.deque(maxlen=100)
        self.rollout_reward = float("nan")
        self._running_return = torch.zeros(self.num_envs, dtype=torch.float64, device=self.device)
        self._running_length = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self._rollout_sum = torch.zeros((), dtype=torch.float64, device=self.device)  # summed on the device: no sync per step
        self._rollout_steps = 0

    def process_env_step(self, rewards, dones, extras, intrinsic_rewards=None):
        super().process_env_step(rewards, dones, extras, intrinsic_rewards)
        self._rollout_sum += rewards.sum()
        self._rollout_steps += rewards.numel()
        self._running_return += rewards
        self._running_length += 1
        ended = dones > 0
        self.episode_returns.extend(self._running_return[ended].tolist())
        self.episode_lengths.extend(self._running_length[ended].tolist())
        self._running_return[ended] = 0.0
        self._running_length[ended] = 0

    def log(self, **kwargs):
        with contextlib.redirect_stdout(io.StringIO()):
            super().log(**kwargs)
        self.rollout_reward = self._rollout_sum.item() / max(self._rollout_steps, 1)
        self._rollout_sum.zero_()
        self._rollout_steps = 0
        runner = self.runner
        runner.current_learning_iteration = kwargs["it"] + 1  # iterations done (what a checkpoint records)
        times = {"rollout_s": kwargs["collect_time"], "update_s": kwargs["learn_time"], "comm_s": runner.allreduce_s}
        runner.allreduce_s = 0.0
        runner.after_iteration(runner, kwargs["it"] + 1, times)


class Runner(OnPolicyRunner):
    """OnPolicyRunner(env, train_cfg, log_dir, device) in torch.distributed's current group, if any.
    local_rank: this process's index on its node (only used to name it in rsl-rl's config).
    `allreduce_s` accumulates the seconds spent averaging gradients (reported per iteration as comm_s:
    the part of update_s that is communication)."""

    def __init__(self, env, train_cfg: dict, log_dir: str | None, device: str, after_iteration, local_rank: int = 0):
        self.local_rank = local_rank
        self.after_iteration = after_iteration
        self.allreduce_s = 0.0
        super().__init__(env, train_cfg, log_dir=log_dir, device=device)
        self.logger = _HookedLogger(self, log_dir=log_dir, cfg=self.cfg, env_cfg=env.cfg, num_envs=env.num_envs,
                                    is_distributed=self.is_distributed, gpu_world_size=self.gpu_world_size,
                                    gpu_global_rank=self.gpu_global_rank, device=self.device)
        reduce = self.alg.reduce_parameters

        def timed_reduce():
            start = time.perf_counter()
            reduce()
            self.allreduce_s += time.perf_counter() - start

        self.alg.reduce_parameters = timed_reduce

    def _configure_multi_gpu(self) -> None:
        """The library's setup, minus creating the group (Ray Train did) and its NCCL/CUDA demands."""
        grouped = dist.is_available() and dist.is_initialized()
        self.gpu_world_size = dist.get_world_size() if grouped else 1
        self.gpu_global_rank = dist.get_rank() if grouped else 0
        self.gpu_local_rank = self.local_rank if grouped else 0
        self.is_distributed = self.gpu_world_size > 1
        self.cfg["multi_gpu"] = ({"global_rank": self.gpu_global_rank, "local_rank": self.gpu_local_rank,
                                  "world_size": self.gpu_world_size} if self.is_distributed else None)

    def train(self, until: int, first: bool) -> None:
        """Learn until `until` iterations are done. first: the run's very first call, which starts
        episodes at random lengths (rsl-rl's exploration start); a resumed run must not."""
        if self.current_learning_iteration < until:
            self.learn(until - self.current_learning_iteration, init_at_random_ep_len=first)

