"""VecEnv: rsl-rl-lib's VecEnv over a DistributedScene whose shards each run a Task.

Actions are split by shard and sent in one round trip; the shards step, evaluate and reset
their finished envs in place; observations, rewards and dones come back as raw float32 bytes read
straight into one array in global env order (see step_channel), which torch shares without a copy.
"""

from __future__ import annotations

import numpy as np
import torch

from genesis_dist.scene import DistributedScene
from genesis_dist.task_env import TaskEnv


class VecEnv(TaskEnv):
    """gd.VecEnv(TaskClass, n_envs, n_shards, task_cfg): `TaskClass(n_local, task_cfg, env_offset)`
    runs in every shard. Other keywords go to DistributedScene (backend, resources_per_shard,
    log_level, metrics_enabled, ...): its steps, resets and checkpoints are the scene's metrics.
    The underlying scene is `env.scene`: save_checkpoint / load_checkpoint there include the
    Task's per-env buffers and reshard them."""

    def __init__(self, task_cls, n_envs: int, n_shards: int = 1, task_cfg: dict | None = None,
                 device: str | torch.device = "cpu", **scene_kwargs):
        self.scene = DistributedScene.for_task(task_cls, task_cfg, n_envs, n_shards, **scene_kwargs)
        self._init_task(task_cls, task_cfg, self.scene.task_info, n_envs, device)
        self.last_compute_s = 0.0  # the slowest shard's own time for the last step
        self._refresh()

    def _refresh(self):
        """Observations and episode lengths as the shards hold them now (after build or load)."""
        parts = self.scene.run_on_shards("task_view", what="observations")
        self._show({g: np.concatenate([p["obs"][g] for p in parts]) for g in self._step_layout.obs_shapes},
                   np.concatenate([p["episode_length"] for p in parts]))

    def _packed_step(self, actions: np.ndarray) -> np.ndarray:
        packed, self.last_compute_s = self.scene.task_step(actions)
        return packed

    def _send_episode_length(self, values: np.ndarray) -> None:
        self.scene.set_episode_length(values)

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
