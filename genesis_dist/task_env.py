"""TaskEnv: rsl-rl's VecEnv over Task shards, what the central VecEnv and a data-parallel worker's
LocalTaskEnv share. They differ only in transport: `_packed_step` sends actions and returns the
packed reply (genesis_dist.step_layout), `_send_episode_length` writes episode lengths to the Tasks.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import torch
from rsl_rl.env import VecEnv as RslVecEnv
from tensordict import TensorDict

from genesis_dist.step_layout import episode_lengths


class TaskEnv(RslVecEnv):
    def _init_task(self, task_cls, task_cfg: dict | None, info: dict, num_envs: int, device) -> None:
        """info: the Task's description a shard reports (num_actions, max_episode_length, step_layout)."""
        self.num_envs = num_envs
        self.num_actions = info["num_actions"]
        self.max_episode_length = info["max_episode_length"]
        self.device = torch.device(device)
        self.cfg = {"task": task_cls.__qualname__, **dict(task_cfg or {})}
        self._step_layout = info["step_layout"]

    @abstractmethod
    def _packed_step(self, actions: np.ndarray) -> np.ndarray:
        """Step every env with these actions; the packed (num_envs, width) float32 reply."""

    @abstractmethod
    def _send_episode_length(self, values: np.ndarray) -> None:
        """Write these (checked) episode lengths into the Tasks."""

    def _show(self, obs: dict, episode_length) -> None:
        """The observations and episode lengths the envs hold now (after build, load or a step)."""
        self._obs = TensorDict({g: torch.as_tensor(v).to(self.device) for g, v in obs.items()},
                               batch_size=[self.num_envs], device=self.device)
        self._episode_length = torch.as_tensor(episode_length).to(self.device, torch.long)

    # ------------------------------------------------------------------ rsl-rl VecEnv
    def get_observations(self) -> TensorDict:
        return self._obs

    def step(self, actions: torch.Tensor):
        if not isinstance(actions, torch.Tensor):
            raise TypeError(f"actions must be a torch.Tensor, got {type(actions).__name__}")
        packed = self._packed_step(actions.detach().to("cpu", torch.float32).numpy())
        out = self._step_layout.unpack(torch.from_numpy(packed).to(self.device))
        self._show(out["obs"], out["episode_length"])
        return self._obs, out["reward"], out["done"], {"time_outs": out["time_outs"]}

    @property
    def episode_length_buf(self) -> torch.Tensor:
        return self._episode_length

    @episode_length_buf.setter
    def episode_length_buf(self, value: torch.Tensor) -> None:
        """Set by OnPolicyRunner.learn(init_at_random_ep_len=True): sent to the Tasks."""
        values = episode_lengths(torch.as_tensor(value).detach().cpu().numpy(), self.num_envs)
        self._send_episode_length(values)
        self._episode_length = torch.from_numpy(values).to(self.device, torch.long)
