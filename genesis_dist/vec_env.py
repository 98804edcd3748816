"""VecEnv: rsl-rl-lib's VecEnv over a DistributedScene whose shards each run a Task.

Actions are split by shard and sent in one round trip; the shards step, evaluate and reset
their finished envs in place; observations, rewards and dones come back as raw float32 bytes read
straight into one array in global env order (see step_channel), which torch shares without a copy.
"""

from __future__ import annotations

import numpy as np
import torch
from rsl_rl.env import VecEnv as RslVecEnv
from tensordict import TensorDict

from genesis_dist.scene import DistributedScene


class VecEnv(RslVecEnv):
    """gd.VecEnv(TaskClass, n_envs, n_shards, task_cfg): `TaskClass(n_local, task_cfg, env_offset)`
    runs in every shard. Other keywords go to DistributedScene (backend, resources_per_shard,
    log_level, metrics_enabled, ...): its steps, resets and checkpoints are the scene's metrics.
    The underlying scene is `env.scene`: save_checkpoint / load_checkpoint there include the
    Task's per-env buffers and reshard them."""

    def __init__(self, task_cls, n_envs: int, n_shards: int = 1, task_cfg: dict | None = None,
                 device: str | torch.device = "cpu", **scene_kwargs):
        self.scene = DistributedScene.for_task(task_cls, task_cfg, n_envs, n_shards, **scene_kwargs)
        info = self.scene.task_info
        self.num_envs = n_envs
        self.num_actions = info["num_actions"]
        self.max_episode_length = info["max_episode_length"]
        self.device = torch.device(device)
        self.cfg = {"task": task_cls.__qualname__, **dict(task_cfg or {})}
        self.last_compute_s = 0.0
        self._step_layout = info["step_layout"]
        self._refresh()

    def _refresh(self):
        """Observations and episode lengths as the shards hold them now (after build or load)."""
        parts = self.scene.run_on_shards("task_view", what="observations")
        groups = {g: torch.from_numpy(np.concatenate([p["obs"][g] for p in parts])).to(self.device)
                  for g in self._step_layout.obs_shapes}
        self._obs = TensorDict(groups, batch_size=[self.num_envs], device=self.device)
        self._episode_length = torch.from_numpy(np.concatenate([p["episode_length"] for p in parts])).long().to(self.device)

    # ------------------------------------------------------------------ rsl-rl VecEnv
    def get_observations(self) -> TensorDict:
        return self._obs

    def step(self, actions: torch.Tensor):
        if not isinstance(actions, torch.Tensor):
            raise TypeError(f"actions must be a torch.Tensor, got {type(actions).__name__}")
        packed, self.last_compute_s = self.scene.task_step(actions.detach().to("cpu", torch.float32).numpy())
        # last_compute_s: the slowest shard's own step time
        out = self._step_layout.unpack(torch.from_numpy(packed).to(self.device))
        self._obs = TensorDict(out["obs"], batch_size=[self.num_envs], device=self.device)
        self._episode_length = out["episode_length"].long()
        return self._obs, out["reward"], out["done"], {"time_outs": out["time_outs"]}

    @property
    def episode_length_buf(self) -> torch.Tensor:
        return self._episode_length

    @episode_length_buf.setter
    def episode_length_buf(self, value: torch.Tensor) -> None:
        """Set by OnPolicyRunner.learn(init_at_random_ep_len=True): sent to the shards' Tasks."""
        value = torch.as_tensor(value)
        self.scene.set_episode_length(value.detach().cpu().numpy())
        self._episode_length = value.to(self.device, torch.long)

    # ------------------------------------------------------------------ checkpoints, lifetime
    def save_checkpoint(self, path) -> None:
        self.scene.save_checkpoint(path)

    def load_checkpoint(self, path) -> None:
        self.scene.load_checkpoint(path)
        self._refresh()

    def close(self) -> None:
        self.scene.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
