"""Task: the RL side of one shard. It owns its scene, applies actions, computes observations,
rewards and dones, and resets its finished envs in place, so a step costs the coordinator one
round trip. Runs inside the shard process (numpy only, no torch).

Per-env buffers named in `buffers` (plus `episode_length`) are part of the scene's state: they
appear as "Task.<name>" in get_state() and checkpoints, and reshard with the solver arrays.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

BUFFER_PREFIX = "Task."


@dataclass(frozen=True)
class TaskSpec:
    """What a shard builds instead of a plain scene: task_cls(n_local_envs, cfg, env_offset)."""

    task_cls: type
    cfg: dict | None = None


class Task(ABC):
    num_actions: int
    max_episode_length: int
    buffers: tuple[str, ...] = ()  # names of numpy attributes, env axis first, saved with the state

    def __init__(self, n_envs: int, cfg: dict | None = None, env_offset: int = 0):
        """n_envs: envs of this shard; env_offset: global index of its first env (for per-env
        randomness that does not depend on how envs are sharded)."""
        self.n_envs = n_envs
        self.cfg = dict(cfg or {})
        self.env_offset = env_offset
        self.episode_length = np.zeros(n_envs, dtype=np.int32)
        self.scene = self.build_scene(n_envs)

    @abstractmethod
    def build_scene(self, n_envs: int):
        """Create, populate and build (with n_envs) this task's sim.Scene; return it."""

    @abstractmethod
    def apply_actions(self, actions: np.ndarray) -> None:
        """Turn (n_envs, num_actions) float32 actions into controls before the scene steps."""

    @abstractmethod
    def observations(self) -> dict[str, np.ndarray]:
        """Observation groups ("policy", ...), each (n_envs, dim) float32."""

    @abstractmethod
    def evaluate(self) -> tuple[np.ndarray, np.ndarray]:
        """(reward float32 (n_envs,), terminated bool (n_envs,)) after a step."""

    def reset_envs(self, envs_idx: np.ndarray) -> None:
        """Start new episodes in these local envs: back to the build-time scene state by default.
        Where a solver's build-time state depends on an env's index within its scene, override
        this with a start state that does not (see the tests' PointTargetTask), or trajectories
        will differ after a reshard."""
        self.scene.reset(envs_idx=envs_idx)

    def step(self, actions: np.ndarray) -> dict[str, np.ndarray]:
        if actions.shape != (self.n_envs, self.num_actions):
            raise ValueError(f"actions have shape {actions.shape}, expected {(self.n_envs, self.num_actions)}")
        self.apply_actions(actions)
        self.scene.step()
        self.episode_length += 1
        reward, terminated = self.evaluate()
        time_outs = self.episode_length >= self.max_episode_length
        done = terminated | time_outs
        finished = np.flatnonzero(done)
        if finished.size:
            self.reset_envs(finished)
            self.episode_length[finished] = 0
        return {"obs": self.observations(), "reward": np.asarray(reward, np.float32), "done": done,
                "time_outs": time_outs, "episode_length": self.episode_length.copy()}

    def buffer_arrays(self) -> dict[str, np.ndarray]:
        """Copies of the per-env buffers, keyed "Task.<name>"."""
        return {BUFFER_PREFIX + name: np.array(getattr(self, name), copy=True)
                for name in ("episode_length", *self.buffers)}

    def write_buffers(self, arrays: dict[str, np.ndarray], envs_idx: np.ndarray | None) -> None:
        """Set the buffers' rows (all when envs_idx is None) from arrays keyed "Task.<name>"."""
        rows = slice(None) if envs_idx is None else envs_idx
        for key, value in arrays.items():
            getattr(self, key[len(BUFFER_PREFIX):])[rows] = value
