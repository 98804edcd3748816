"""What one RL step of a Task sends back, packed into one float32 array: the one owner of that format.

A shard packs its Task.step result (`pack`); the coordinator reads every shard's rows straight
into one (n_envs, width) array and the VecEnv views it (`unpack`), without a copy. Columns: every
observation group flattened, in order, then COLUMNS (booleans as 0/1; episode lengths are exact in
float32 below 2**24, which `episode_lengths` enforces on every way in).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COLUMNS = ("reward", "done", "time_outs", "episode_length")
MAX_EXACT_INT = 2**24  # the integers float32 holds exactly


def episode_lengths(values, n_envs: int) -> np.ndarray:
    """`values` checked as n_envs episode lengths the packed reply carries exactly, as int32."""
    values = np.asarray(values)
    if values.shape != (n_envs,) or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"episode lengths must be {n_envs} integers, got shape {values.shape} of {values.dtype}")
    if values.size and not (0 <= values.min() and values.max() < MAX_EXACT_INT):
        raise ValueError(f"episode lengths must be in 0..{MAX_EXACT_INT - 1}, got values from {values.min()} "
                         f"to {values.max()}")
    return values.astype(np.int32)


@dataclass(frozen=True)
class StepLayout:
    """obs_shapes: {group: per-env shape} in the Task's order."""

    obs_shapes: dict

    @classmethod
    def of(cls, observations: dict[str, np.ndarray]) -> "StepLayout":
        return cls({name: tuple(v.shape[1:]) for name, v in observations.items()})

    @property
    def widths(self) -> list[int]:
        return [int(np.prod(shape)) for shape in self.obs_shapes.values()]

    @property
    def width(self) -> int:
        return sum(self.widths) + len(COLUMNS)

    def pack(self, out: dict) -> np.ndarray:
        """Task.step's dict -> (n_envs, width) float32."""
        columns = [v.reshape(len(v), -1) for v in out["obs"].values()] + [out[k][:, None] for k in COLUMNS]
        return np.concatenate(columns, axis=1, dtype=np.float32)

    def unpack(self, packed) -> dict:
        """(n, width) numpy array or torch tensor -> {"obs": {group: (n, *shape)}, "reward",
        "done" and "time_outs" (bools), "episode_length" (still float32)}: views of `packed`."""
        obs, col = {}, 0
        for (name, shape), width in zip(self.obs_shapes.items(), self.widths):
            obs[name] = packed[:, col:col + width].reshape(len(packed), *shape)
            col += width
        reward, done, time_outs, episode_length = (packed[:, col + i] for i in range(len(COLUMNS)))
        return {"obs": obs, "reward": reward, "done": done > 0, "time_outs": time_outs > 0,
                "episode_length": episode_length}
