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
from rsl_rl.env import VecEnv as RslVecEnv
from tensordict import TensorDict

from genesis_dist.layout import Layout
from genesis_dist.shard import Shard
from genesis_dist.task import TaskSpec
from sim import checkpoint


class LocalTaskEnv(RslVecEnv):
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
        self.num_envs = hi - lo
        self.num_actions = info["task"]["num_actions"]
        self.max_episode_length = info["task"]["max_episode_length"]
        self.device = torch.device(device)
        self.cfg = {"task": task_cls.__qualname__, **dict(task_cfg or {})}
        self._step_layout = info["task"]["step_layout"]
        self._refresh()

    def _refresh(self) -> None:
        view = self.shard.task_view()
        self._obs = TensorDict({g: torch.from_numpy(v).to(self.device) for g, v in view["obs"].items()},
                               batch_size=[self.num_envs], device=self.device)
        self._episode_length = torch.from_numpy(view["episode_length"]).long().to(self.device)

    # ------------------------------------------------------------------ rsl-rl VecEnv
    def get_observations(self) -> TensorDict:
        return self._obs

    def step(self, actions: torch.Tensor):
        packed = self.shard.packed_task_step(actions.detach().to("cpu", torch.float32).numpy())
        self.t += 1
        out = self._step_layout.unpack(torch.from_numpy(packed).to(self.device))
        self._obs = TensorDict(out["obs"], batch_size=[self.num_envs], device=self.device)
        self._episode_length = out["episode_length"].long()
        return self._obs, out["reward"], out["done"], {"time_outs": out["time_outs"]}

    @property
    def episode_length_buf(self) -> torch.Tensor:
        return self._episode_length

    @episode_length_buf.setter
    def episode_length_buf(self, value: torch.Tensor) -> None:
        """Set by OnPolicyRunner.learn(init_at_random_ep_len=True)."""
        value = torch.as_tensor(value)
        self.shard.set_episode_length(value.detach().cpu().numpy().astype(np.int32))
        self._episode_length = value.to(self.device, torch.long)

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
