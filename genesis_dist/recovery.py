"""Recovery policy: a DistributedScene that replaces dead shards and continues the same trajectory.

With `DistributedScene(..., recovery=gd.Recovery())` the coordinator keeps a snapshot of the whole
state, taken when the scene is built and then every `snapshot_every` steps (in the
driver's memory, or as one checkpoint file in `snapshot_dir`), and a log of every state-changing
call since (steps with their actions, partial resets with their rows, episode lengths). When a
call meets a dead shard (its process or its node is gone), the coordinator re-creates the dead
shards in their placement-group bundles (Ray moves a lost node's bundles to nodes with room),
restores every shard from the snapshot, replays the log and makes the call again. The caller
gets the call's result as if nothing had happened; the event is logged (logger "genesis_dist")
and kept in `scene.recoveries`. On the CPU with deterministic=True the continuation is
bit-identical to a run without the failure.

Cost: the snapshot (one get_state every `snapshot_every` steps, and one copy of the state in
the driver or on disk) and the log (one copy of the actions per step since the snapshot).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from sim import checkpoint
from sim.state import SimState

logger = logging.getLogger("genesis_dist")


@dataclass(frozen=True)
class Recovery:
    """snapshot_every: steps between snapshots (a replay after a failure is at most this long).
    snapshot_dir: None keeps the snapshot in the driver's memory; a folder keeps it there as one
    checkpoint file (`recovery-snapshot.pkl`, loadable like any checkpoint).
    max_attempts: recoveries tried for one call before its ShardDiedError is raised.
    replace_timeout_s: how long a dead shard's replacement may wait for room in the cluster."""

    snapshot_every: int = 100
    snapshot_dir: str | os.PathLike | None = None
    max_attempts: int = 3
    replace_timeout_s: float = 300.0

    def __post_init__(self):
        for name in ("snapshot_every", "max_attempts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Recovery.{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.replace_timeout_s, bool) or not isinstance(self.replace_timeout_s, (int, float)) \
                or not self.replace_timeout_s > 0:
            raise ValueError(f"Recovery.replace_timeout_s must be a number of seconds > 0, got {self.replace_timeout_s!r}")
        if self.snapshot_dir is not None and not os.path.isdir(self.snapshot_dir):
            raise ValueError(f"Recovery.snapshot_dir {os.fspath(self.snapshot_dir)!r} is not an existing folder")


class Journal:
    """The snapshot and the calls made since, as (method name, args) of the DistributedScene."""

    def __init__(self, policy: Recovery, meta: dict):
        self.policy = policy
        self._meta = meta
        self._snapshot: SimState | None = None  # in memory (no snapshot_dir)
        self.calls: list[tuple[str, tuple]] = []
        self._steps = 0

    @property
    def path(self) -> str | None:
        if self.policy.snapshot_dir is None:
            return None
        return os.path.join(self.policy.snapshot_dir, "recovery-snapshot.pkl")

    def snapshot_due(self) -> bool:
        return self._steps >= self.policy.snapshot_every

    def keep_snapshot(self, state: SimState) -> None:
        """Make `state` (owned by the journal from now on) the snapshot; the log starts afresh."""
        if self.path is None:
            self._snapshot = state
        else:
            checkpoint.write(self.path, state.arrays(), state.t, self._meta)
        self.calls.clear()
        self._steps = 0

    def snapshot(self) -> SimState:
        if self.path is None:
            return self._snapshot
        data = checkpoint.read(self.path)
        return SimState(data["arrays"], data["step_index"], self._meta["n_envs"])

    def note(self, method: str, *args, step: bool = False) -> None:
        """Log a call; array arguments are copied (the caller may reuse its buffers)."""
        self.calls.append((method, tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)))
        self._steps += step
