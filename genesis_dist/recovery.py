"""Recovery policy: a DistributedScene that replaces dead shards and continues the same trajectory.

With `DistributedScene(..., recovery=gd.Recovery())` the coordinator keeps a snapshot of the whole
state, taken when the scene is built and then every `snapshot_every` steps (in the
driver's memory, or as one checkpoint file in `snapshot_dir`), and a journal of every
state-changing call since (steps with their actions, partial resets with their rows, episode
lengths). When a call meets a dead shard (its process or its node is gone, or it did not answer
within step_timeout_s), the coordinator re-creates the dead shards in their placement-group
bundles (Ray moves a lost node's bundles to nodes with room), restores every shard from the
snapshot, replays the journal and makes the call again. The caller gets the call's result as if
nothing had happened; the event is logged (logger "genesis_dist"), kept in `scene.recoveries` and
counted in the scene's metrics; a replay that takes over a second shows a progress bar.
On the CPU with deterministic=True the continuation is bit-identical to a run without the failure.

Cost: the snapshot (one get_state every `snapshot_every` steps, and one copy of the state in
the driver or on disk) and the journal (one copy of the actions per step since the snapshot).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import dataclass

import numpy as np

from sim import checkpoint
from sim.state import SimState
from genesis_dist import progress
from genesis_dist.errors import ShardDiedError

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


# ---------------------------------------------------------------------- journal records
@dataclass(frozen=True)
class Step:
    """One step: of the scene (actions None) or of every shard's Task."""

    actions: np.ndarray | None = None

    def __post_init__(self):  # the caller may reuse its buffer
        if self.actions is not None:
            object.__setattr__(self, "actions", self.actions.copy())

    def replay(self, scene) -> None:
        if self.actions is None:
            scene.step()
        else:
            scene.task_step(self.actions)


@dataclass(frozen=True)
class ResetToStart:
    """Every env back to its build-time state, t = 0."""

    def replay(self, scene) -> None:
        scene.reset()


@dataclass(frozen=True)
class ResetRows:
    """Env envs_idx[i] takes row i of `rows` (None: its build-time state); both are the scene's own copies."""

    rows: dict | None
    envs_idx: np.ndarray

    def replay(self, scene) -> None:
        scene._reset_rows(self.rows, self.envs_idx)


@dataclass(frozen=True)
class EpisodeLengths:
    """Every env's Task episode length (the scene's own int32 copy)."""

    values: np.ndarray

    def replay(self, scene) -> None:
        scene.set_episode_length(self.values)


class Journal:
    """The snapshot and the records of the calls made since."""

    def __init__(self, policy: Recovery, meta: dict):
        self.policy = policy
        self._meta = meta
        self._snapshot: SimState | None = None  # in memory (no snapshot_dir)
        self.records: list = []
        self._steps = 0

    @property
    def path(self) -> str | None:
        if self.policy.snapshot_dir is None:
            return None
        return os.path.join(self.policy.snapshot_dir, "recovery-snapshot.pkl")

    def snapshot_due(self) -> bool:
        return self._steps >= self.policy.snapshot_every

    def keep_snapshot(self, state: SimState) -> None:
        """Make `state` (owned by the journal from now on) the snapshot; the journal starts afresh."""
        if self.path is None:
            self._snapshot = state
        else:
            checkpoint.write(self.path, state.arrays(), state.t, self._meta)
        self.records.clear()
        self._steps = 0

    def snapshot(self) -> SimState:
        if self.path is None:
            return self._snapshot
        data = checkpoint.read(self.path)
        return SimState(data["arrays"], data["step_index"], self._meta["n_envs"])

    def note(self, record) -> None:
        self.records.append(record)
        self._steps += isinstance(record, Step)


class Recoverer:
    """A scene's recovery: its journal, the recoveries made, and how one is made."""

    def __init__(self, policy: Recovery, scene):
        self.journal = Journal(policy, scene.checkpoint_meta())
        self.recoveries: list[dict] = scene.recoveries
        self.depth = 0  # nesting of `recovering` calls
        self.replaying = False

    def note(self, record) -> None:
        """Journal a state-changing call (not while replaying one)."""
        if not self.replaying:
            self.journal.note(record)

    def keep_snapshot(self, state: SimState, owned: bool) -> None:
        """After a whole-state reset: `state` becomes the snapshot (copied unless `owned`)."""
        if self.replaying:
            return
        if not owned and self.journal.path is None:
            state = SimState({k: v.copy() for k, v in state.arrays().items()}, state.t, state.n_envs)
        self.journal.keep_snapshot(state)

    def recover(self, scene, error: ShardDiedError) -> None:
        """Replace the dead shards, restore the snapshot and replay the journal."""
        start = time.perf_counter()
        policy = self.journal.policy
        dead = sorted(set(scene.dead_shards(policy.replace_timeout_s)) | {error.shard})
        lost_nodes = [scene.shard_info[s]["node_id"] for s in dead]
        logger.warning("genesis_dist: %s; replacing shard(s) %s, then restoring the snapshot and replaying "
                       "%d call(s)", error, dead, len(self.journal.records))
        for s in dead:
            scene.restart_shard(s, timeout_s=policy.replace_timeout_s)
        snapshot = self.journal.snapshot()
        self.replaying = True
        try:
            scene.reset(state=snapshot)
            with progress.bar(len(self.journal.records), "recovering: replaying", unit="call") as bar:
                for record in self.journal.records:
                    record.replay(scene)
                    bar.update()
        finally:
            self.replaying = False
        event = {"shards": dead, "error": str(error), "lost_nodes": lost_nodes,
                 "new_nodes": [scene.shard_info[s]["node_id"] for s in dead], "snapshot_t": snapshot.t,
                 "replayed_calls": len(self.journal.records), "seconds": time.perf_counter() - start}
        self.recoveries.append(event)
        scene.metrics.recovery(event["seconds"])
        logger.warning("genesis_dist: recovered shard(s) %s in %.1f s (restored t=%d, replayed %d call(s))",
                       dead, event["seconds"], snapshot.t, event["replayed_calls"])


def recovering(method=None, *, snapshot: bool = True):
    """With a recovery policy (`self._recoverer`), a call that meets a dead shard recovers the scene
    and is made again, up to the policy's max_attempts. Where the call changes the state relative
    to the current one (`snapshot`), a due snapshot is taken first, here, so that a snapshot that
    fails is never mistaken for a failed call. Calls made inside another such call (or while
    replaying) run plainly: only the outermost recovers."""
    if method is None:
        return functools.partial(recovering, snapshot=snapshot)

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        recoverer = self._recoverer
        if recoverer is None or recoverer.depth:
            return method(self, *args, **kwargs)
        recoverer.depth += 1
        try:
            error, attempts = None, recoverer.journal.policy.max_attempts
            for _ in range(attempts + 1):
                try:
                    if error is not None:
                        recoverer.recover(self, error)
                    if snapshot and recoverer.journal.snapshot_due():
                        recoverer.journal.keep_snapshot(self.get_state())
                    return method(self, *args, **kwargs)
                except ShardDiedError as e:
                    error = e
            raise ShardDiedError(error.shard, error.where, f"recovery gave up after {attempts} "
                                 f"attempt{'s' if attempts > 1 else ''}; the last failure: {error}", error.cause) from error
        finally:
            recoverer.depth -= 1

    return call
