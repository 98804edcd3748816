"""How a scene's environments are split over shards: contiguous, balanced ranges.

Shard s owns global envs [starts[s], starts[s + 1]); the first n_envs % n_shards shards hold
one env more than the others. Pure numpy, so the coordinator and the tests share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Layout:
    n_envs: int
    n_shards: int
    starts: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        for name in ("n_envs", "n_shards"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if self.n_shards < 1:
            raise ValueError(f"n_shards must be >= 1, got {self.n_shards}")
        if self.n_envs < self.n_shards:
            raise ValueError(f"n_envs={self.n_envs} cannot be split over n_shards={self.n_shards}: "
                             f"every shard needs at least one environment")
        base, extra = divmod(int(self.n_envs), int(self.n_shards))
        sizes = np.full(self.n_shards, base, dtype=np.int64)
        sizes[:extra] += 1
        object.__setattr__(self, "starts", np.concatenate([[0], np.cumsum(sizes)]))

    @property
    def sizes(self) -> list[int]:
        return np.diff(self.starts).tolist()

    def range(self, shard: int) -> tuple[int, int]:
        """(start, stop) of the global envs shard `shard` owns."""
        return int(self.starts[shard]), int(self.starts[shard + 1])

    def locate(self, global_idx) -> tuple[np.ndarray, np.ndarray]:
        """(shard, local index) of each global index; indices must already be valid."""
        global_idx = np.asarray(global_idx, dtype=np.int64)
        shard = np.searchsorted(self.starts, global_idx, side="right") - 1
        return shard, global_idx - self.starts[shard]

    def group(self, global_idx) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """[(shard, local indices, positions in global_idx), ...] for the shards that own any
        of the (valid) indices, in shard order; the order within a shard follows global_idx."""
        shard, local = self.locate(global_idx)
        order = np.argsort(shard, kind="stable")
        bounds = np.searchsorted(shard[order], np.arange(self.n_shards + 1))
        return [(s, local[order[lo:hi]], order[lo:hi])
                for s, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])) if hi > lo]

    def split(self, array: np.ndarray) -> list[np.ndarray]:
        """Views of `array` (env axis first, n_envs rows), one per shard."""
        if array.shape[:1] != (self.n_envs,):
            raise ValueError(f"array has shape {array.shape}, expected {self.n_envs} rows on the env axis")
        return [array[lo:hi] for lo, hi in zip(self.starts[:-1], self.starts[1:])]

    def merge(self, parts, out: np.ndarray | None = None) -> np.ndarray:
        """Concatenate one array per shard along the env axis (into `out` when given)."""
        parts = list(parts)
        if len(parts) != self.n_shards:
            raise ValueError(f"merge got {len(parts)} parts for {self.n_shards} shards")
        for s, part in enumerate(parts):
            if part.shape[:1] != (self.sizes[s],):
                raise ValueError(f"shard {s} part has shape {part.shape}, expected {self.sizes[s]} rows")
        return np.concatenate(parts, axis=0, out=out)
