"""LocalTaskEnv: rsl-rl's VecEnv over one worker's slice of the global envs, run in this process.

A data-parallel worker owns the envs [lo, hi) of a global Layout. It runs its Task with the very
code a VecEnv shard actor runs (genesis_dist.shard.Shard, created here as a plain object instead of
a Ray actor), with env_offset = lo, so env i draws the same targets and starts the same episodes
whichever worker (or central shard) holds it. Nothing crosses a process boundary on a step.
"""

from __future__ import annotations

import cloudpickle
import numpy as np
import torch

from genesis_dist.layout import Layout
from genesis_dist.shard import Shard
from genesis_dist.task import TaskSpec
from genesis_dist.task_env import TaskEnv
from sim import checkpoint


class LocalTaskEnv(TaskEnv):
    """Envs layout.range(rank) of `task_cls`. init: gs.init keywords (precision, deterministic, seed;
    backend: "cpu" forces it, absent picks the GPU Ray gave this process). `meta` is the checkpoint
    meta of the whole scene (every worker's envs), the one a single sim.Scene with all envs writes."""

    def __init__(self, task_cls, task_cfg: dict | None, layout: Layout, rank: int, init: dict,
                 device: str | torch.device = "cpu"):
        self.layout, self.rank = layout, rank
        lo, hi = layout.range(rank)
        self.shard = Shard(rank, hi - lo, lo, cloudpickle.dumps(TaskSpec(task_cls, task_cfg)), init)
        info = self.shard.info()  # raises what building the Task raised
        self.meta = checkpoint.make_meta(info["meta"]["scene"], info["meta"]["layout"], layout.n_envs)
        self.t = info["t"]
        self._init_task(task_cls, task_cfg, info["task"], hi - lo, device)
        self._refresh()

    def _refresh(self) -> None:
        view = self.shard.task_view()
        self._show(view["obs"], view["episode_length"])

    def _packed_step(self, actions: np.ndarray) -> np.ndarray:
        self.t += 1
        return self.shard.packed_task_step(actions)

    def _send_episode_length(self, values: np.ndarray) -> None:
        self.shard.set_episode_length(values)

    # ------------------------------------------------------------------ state
    def local_state(self) -> dict[str, np.ndarray]:
        """This worker's rows of every array of the whole scene's checkpoint (Task buffers included)."""
        return self.shard.get_state()

    def load_merged(self, data: dict) -> None:
        """Take this worker's rows of a checkpoint of the whole scene (sim.checkpoint.read's dict,
        saved on any layout), after checking it fits the whole scene."""
        checkpoint.check_compatible(data, self.meta, "the run's env checkpoint")
        lo, hi = self.layout.range(self.rank)
        self.shard.reset_all({k: v[lo:hi] for k, v in data["arrays"].items()}, data["step_index"])
        self.t = data["step_index"]
        self._refresh()

    def close(self) -> None:
        self.shard.close()
