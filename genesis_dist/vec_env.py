"""VecEnv: rsl-rl-lib's VecEnv over a DistributedScene whose shards each run a Task.

Actions are split by shard and sent in one round trip; the shards step, evaluate and reset
their finished envs in place; observations, rewards and dones come back (numpy arrays through
Ray's object store, read without a copy) and are joined into torch tensors in global env order.
"""

from __future__ import annotations

import numpy as np
import torch
from rsl_rl.env import VecEnv as RslVecEnv
from tensordict import TensorDict

from genesis_dist.scene import DistributedScene


class VecEnv(RslVecEnv):
    """gd.VecEnv(TaskClass, n_envs, n_shards, task_cfg): `TaskClass(n_local, task_cfg, env_offset)`
    runs in every shard. Other keywords go to DistributedScene (backend, resources_per_shard, ...).
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
        self._refresh()

    def _join(self, parts, key):
        """Concatenate one numpy array per shard into a torch tensor on self.device."""
        return torch.from_numpy(np.concatenate(parts if key is None else [p[key] for p in parts])).to(self.device)

    def _refresh(self):
        """Observations and episode lengths as the shards hold them now (after build or load)."""
        parts = self.scene.run_on_shards("task_view", what="observations")
        self._obs = self._to_tensordict([p["obs"] for p in parts])
        self._episode_length = self._join(parts, "episode_length").long()

    def _to_tensordict(self, obs_parts: list[dict]) -> TensorDict:
        groups = {g: self._join([p[g] for p in obs_parts], None) for g in obs_parts[0]}
        return TensorDict(groups, batch_size=[self.num_envs], device=self.device)

    # ------------------------------------------------------------------ rsl-rl VecEnv
    def get_observations(self) -> TensorDict:
        return self._obs

    def step(self, actions: torch.Tensor):
        if not isinstance(actions, torch.Tensor):
            raise TypeError(f"actions must be a torch.Tensor, got {type(actions).__name__}")
        results = self.scene.task_step(actions.detach().to("cpu", torch.float32).numpy())
        self._obs = self._to_tensordict([r["obs"] for r in results])
        self._episode_length = self._join(results, "episode_length").long()
        extras = {"time_outs": self._join(results, "time_outs")}
        return self._obs, self._join(results, "reward"), self._join(results, "done"), extras

    @property
    def episode_length_buf(self) -> torch.Tensor:
        return self._episode_length

    @episode_length_buf.setter
    def episode_length_buf(self, value: torch.Tensor) -> None:
        """Set by OnPolicyRunner.learn(init_at_random_ep_len=True): sent to the shards' Tasks."""
        value = torch.as_tensor(value)
        if tuple(value.shape) != (self.num_envs,):
            raise ValueError(f"episode_length_buf must have shape ({self.num_envs},), got {tuple(value.shape)}")
        parts = self.scene.layout.split(value.detach().cpu().numpy().astype(np.int32))
        self.scene.run_on_shards("set_episode_length", [(p,) for p in parts], what="setting episode lengths")
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
