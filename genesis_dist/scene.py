"""DistributedScene: the sim.Scene API over N shard actors, with global env indices.

Every request is validated in the driver, against the global layout, before any shard is
called, so bad input changes nothing. Checkpoints are the format of `sim.checkpoint`, merged
into one file exactly as a single sim.Scene with the same n_envs writes it, and split again on
load for whatever layout the loading scene has. The shards themselves are a ShardGroup; steps
travel over StepLinks (or Ray calls); recovery is genesis_dist.recovery's.
"""

from __future__ import annotations

import os
import time

import cloudpickle
import numpy as np

from sim import checkpoint
from sim.envs_idx import normalize_envs_idx
from sim.state import SimState
from genesis_dist import logs, metrics, progress, ray_session, step_channel
from genesis_dist.errors import ShardError
from genesis_dist.layout import Layout
from genesis_dist.recovery import EpisodeLengths, Recoverer, Recovery, ResetRows, ResetToStart, Step, recovering
from genesis_dist.shard_group import STRATEGIES, ShardGroup, bundle_for
from genesis_dist.step_links import StepLinks
from genesis_dist.step_layout import episode_lengths
from genesis_dist.task import TaskSpec

TRANSPORTS = ("socket", "ray")


def _check_step_index(t, what: str) -> None:
    """Refuse a step index the shards cannot count on from (before any shard is called)."""
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t <= checkpoint.MAX_STEP_INDEX:
        raise checkpoint.CheckpointError(f"{what} must be an integer in 0..2**53, got {t!r}")


class DistributedScene:
    """A scene of `n_envs` envs split over `n_shards` Ray actors (see DESIGN.md).

    build_scene(n_envs) runs in every shard, after gs.init, and returns a built sim.Scene (or it
    is a TaskSpec: see for_task).
    backend: None picks gs.gpu in a shard exactly when Ray gave it a GPU; "cpu", "gpu", "cuda",
    "vulkan" force one. "gpu" and "cuda" reserve one GPU per shard unless resources_per_shard
    says otherwise; "vulkan" reserves none unless it says so (a software Vulkan device, lavapipe,
    needs no GPU).
    resources_per_shard: {"num_cpus": 1, "num_gpus": 0.25, "memory": bytes, "resources": {...}}.
    placement_strategy: "SPREAD" (default; across nodes where it can), "PACK", or the STRICT_ forms.
    step_transport: "socket" (default) steps the shards over one TCP connection each, raw bytes
    both ways (see step_channel); "ray" makes every step a Ray actor call, for clusters whose
    nodes do not accept connections on arbitrary ports. Everything else always goes through Ray.
    step_ports: (first, last): the shards listen on a free port in this range (open it between
    the driver and the worker nodes); None: any free port. Where a shard cannot be reached, the
    scene warns and steps through Ray calls instead.
    step_timeout_s: a shard that has not answered a step within this many seconds is killed and
    treated as dead (frozen process, hung GPU call, swapped-out node); keep it above the slowest
    healthy step, the first included (it compiles kernels). Settable at any time.
    placement_group_name: names the shards' placement group. A placement group outlives the
    actor that made it when that actor dies (only its job's end frees it), so a scene built inside
    an actor that may be killed and re-created (a Tune trial) should pass a name unique to it: a
    group left with that name by a dead predecessor is removed before the new one is made.
    recovery: a gd.Recovery policy: dead shards are then replaced and the scene restored and
    continued without an error (see genesis_dist.recovery); None: a dead shard raises ShardDiedError.
    log_level: "debug", "info" or "warning" for the `genesis_dist` logger (see genesis_dist.logs;
    "info" logs one line per shard once built or replaced); None leaves the logger as it is.
    metrics_enabled: publish the scene's metrics through Ray (genesis_dist.metrics; tag `scene` =
    placement_group_name, or scene-PID-ID): steps, resets, recoveries, checkpoints.
    """

    def __init__(self, build_scene, n_envs: int, n_shards: int = 1, *, backend: str | None = None,
                 precision: str = "32", deterministic: bool = False, seed: int = 0,
                 resources_per_shard: dict | None = None, placement_strategy: str = "SPREAD",
                 placement_timeout_s: float = 120.0, step_transport: str = "socket",
                 step_ports: tuple[int, int] | None = None, recovery: Recovery | None = None,
                 placement_group_name: str | None = None, step_timeout_s: float = 300.0,
                 log_level: str | None = None, metrics_enabled: bool = True):
        if not isinstance(build_scene, TaskSpec) and not callable(build_scene):
            raise TypeError(f"build_scene must be a function build_scene(n_envs) -> sim.Scene, got {build_scene!r}")
        self.layout = Layout(n_envs, n_shards)
        if placement_strategy not in STRATEGIES:
            raise ValueError(f"placement_strategy must be one of {STRATEGIES}, got {placement_strategy!r}")
        if step_transport not in TRANSPORTS:
            raise ValueError(f"step_transport must be one of {TRANSPORTS}, got {step_transport!r}")
        if step_ports is not None and not (len(step_ports) == 2 and all(isinstance(p, int) for p in step_ports)
                                           and 0 < step_ports[0] <= step_ports[1] < 65536):
            raise ValueError(f"step_ports must be (first, last) with 0 < first <= last < 65536, got {step_ports!r}")
        self.step_timeout_s = step_timeout_s
        if recovery is not None and not isinstance(recovery, Recovery):
            raise TypeError(f"recovery must be a gd.Recovery policy or None, got {recovery!r}")
        bundle = bundle_for(resources_per_shard, backend)
        init = {"precision": precision, "deterministic": deterministic, "seed": seed,
                **({} if backend is None else {"backend": backend})}
        channel = {"token": step_channel.new_token(), "ports": step_ports} if step_transport == "socket" else None
        self.recoveries: list[dict] = []  # one entry per recovery: what died, what was replayed
        self._recoverer = None
        logs.set_level(log_level)  # validated here too: a bad level starts nothing
        ray_session.connect(bundle.get("CPU", 0) * n_shards)
        self.metrics = metrics.Recorder(placement_group_name or f"scene-{os.getpid()}-{id(self):x}", metrics_enabled)
        self._group, infos = ShardGroup.start(self.layout, bundle, cloudpickle.dumps(build_scene), init, channel,
                                              strategy=placement_strategy, timeout_s=placement_timeout_s,
                                              name=placement_group_name)
        with self._group.shut_down_on_error():  # the rest of the start, cleaned up the same way
            logs.shards_started(self)
            meta0 = infos[0]["meta"]
            self._meta = checkpoint.make_meta(meta0["scene"], meta0["layout"], self.n_envs)
            self._t = infos[0]["t"]
            self.task_info = infos[0].get("task")
            self._links = StepLinks(self._group, channel) if channel is not None else None
            if recovery is not None:
                self._recoverer = Recoverer(recovery, self)
                self._recoverer.journal.keep_snapshot(self.get_state())

    @classmethod
    def for_task(cls, task_cls, task_cfg: dict | None, n_envs: int, n_shards: int = 1, **kwargs) -> "DistributedScene":
        """A scene whose shards each run `task_cls(n_local_envs, task_cfg, env_offset)` (see VecEnv)."""
        return cls(TaskSpec(task_cls, task_cfg), n_envs, n_shards, **kwargs)

    # ------------------------------------------------------------------ shards
    @property
    def shard_info(self) -> list[dict]:
        """Per shard: backend, node_id, pid, channel (its step address)."""
        return self._group.info

    def run_on_shards(self, method: str, args=None, shards=None, what: str | None = None) -> list:
        """Call the Shard actor's `method` on the given shards (default all) in parallel, one argument
        tuple per shard, and wait for all of them; the first failure is raised as ShardError naming
        its shard. The building block of every other call, for code that extends the shards."""
        return self._group.call(method, args, shards, what)

    def restart_shard(self, shard: int, timeout_s: float | None = None) -> None:
        """Replace shard `shard` (e.g. after ShardDiedError) by a freshly built one in the same
        bundle (which Ray moves to another node if its node is gone). Its envs come back in their
        build-time state: restore the scene afterwards with reset(state=...) or load_checkpoint(...).
        timeout_s: how long to wait for the new shard (None: as long as it takes)."""
        if not 0 <= shard < self.n_shards:
            raise ValueError(f"shard must be in 0..{self.n_shards - 1}, got {shard}")
        self._group.restart(shard, self.fingerprint, timeout_s)
        if self._links is not None:
            self._links.connect(shard)
        logs.shards_started(self, [shard])

    def dead_shards(self, timeout_s: float) -> list[int]:
        """The shards whose actors do not answer within timeout_s."""
        return self._group.dead(timeout_s)

    def _stepping_over_links(self) -> bool:
        return self._links is not None and self._links.active

    def _note(self, record_type, *fields) -> None:
        if self._recoverer is not None:
            self._recoverer.note(record_type(*fields))

    def _replaying(self) -> bool:
        """A recovery is replaying the journal: its calls are not the caller's, so not counted in metrics."""
        return self._recoverer is not None and self._recoverer.replaying

    # ------------------------------------------------------------------ Scene API
    @property
    def n_envs(self) -> int:
        return self.layout.n_envs

    @property
    def n_shards(self) -> int:
        return self.layout.n_shards

    @property
    def t(self) -> int:
        return self._t

    @property
    def step_timeout_s(self) -> float:
        return self._step_timeout_s

    @step_timeout_s.setter
    def step_timeout_s(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
            raise ValueError(f"step_timeout_s must be a number of seconds > 0, got {value!r}")
        self._step_timeout_s = float(value)

    @property
    def fingerprint(self) -> str:
        return self._meta["fingerprint"]

    def checkpoint_meta(self) -> dict:
        """The "meta" this scene writes: a single sim.Scene's with the same total n_envs."""
        return self._meta

    @recovering
    def step(self) -> None:
        """Step every shard once, in parallel: one round trip. Every shard must answer with the new t."""
        start = time.perf_counter()
        if self._stepping_over_links():
            times = np.empty((self.n_shards, 1), np.int64)
            slowest = self._links.round_trip(step_channel.SCENE_STEP, [None] * self.n_shards, list(times), "step",
                                             self.step_timeout_s)
        else:
            times = np.array(self._group.call("step", timeout_s=self.step_timeout_s))
            slowest = None  # a Ray-call step reports no shard time
        self._t += 1
        behind = np.flatnonzero(times.ravel() != self._t)
        if behind.size:
            s = int(behind[0])
            raise ShardError(s, self._group.where(s), f"the shard is at t={int(times.ravel()[s])} after a step, "
                             f"the scene at t={self._t}: out of step; restore the scene")
        self._note(Step)
        if not self._replaying():
            self.metrics.step(self.n_envs, time.perf_counter() - start, slowest)

    @recovering(snapshot=False)
    def get_state(self) -> SimState:
        """The whole state in global env order. Filled shard by shard into preallocated arrays
        (fetching the next shard while copying one), so the driver holds about one copy."""
        arrays = {k: np.empty((self.n_envs, *shape), dtype=np.dtype(dt)) for k, shape, dt in self._meta["layout"]}
        pending = self._group.call_one(0, "get_state")
        with progress.bar(self.n_shards, "gathering state", unit="shard") as bar:  # shows only after 1 s
            for s in range(self.n_shards):
                ref = pending
                pending = self._group.call_one(s + 1, "get_state") if s + 1 < self.n_shards else None
                part = self._group.fetch(s, ref, "get_state")
                lo, hi = self.layout.range(s)
                for k, out in arrays.items():
                    out[lo:hi] = part[k]
                del part, ref
                bar.update()
        return SimState(arrays, self._t, self.n_envs, self.fingerprint)

    @recovering
    def reset(self, state: SimState | None = None, envs_idx=None) -> None:
        """As sim.Scene.reset, with global indices. Validated once, globally; then only the shards
        owning some of `envs_idx` are called, each with its local indices (and rows of `state`)."""
        if state is not None:
            if not isinstance(state, SimState):
                raise TypeError(f"state must be a SimState (scene.get_state()), got {type(state).__name__}")
            checkpoint.check_arrays(state.arrays(), self._meta["layout"], self.n_envs)
            _check_step_index(state.t, "state.t")
        if envs_idx is None:
            if state is None:
                self._group.call("reset_to_start", [(None,)] * self.n_shards)
                self._t = 0
                self._note(ResetToStart)
            else:
                self._reset_all(state, owned=False)
            n_reset = self.n_envs
        else:
            idx = normalize_envs_idx(envs_idx, self.n_envs)
            if len(idx) == 0:  # nothing finished this step: no shard is called, nothing is journalled
                return
            self._reset_rows(None if state is None else {k: v[idx] for k, v in state.arrays().items()}, idx)
            n_reset = len(idx)
        if not self._replaying():
            self.metrics.reset(n_reset)

    def _reset_all(self, state: SimState, owned: bool) -> None:
        """Every env takes its row of `state` (validated), and t its t. owned: the arrays are this
        scene's to keep (a recovery snapshot need not copy them)."""
        parts = {k: self.layout.split(v) for k, v in state.arrays().items()}
        self._group.call("reset_all", [({k: p[s] for k, p in parts.items()}, state.t) for s in range(self.n_shards)])
        self._t = state.t
        if self._recoverer is not None:
            self._recoverer.keep_snapshot(state, owned)

    def _reset_rows(self, rows: dict | None, idx: np.ndarray) -> None:
        """Env idx[i] takes row i of `rows` (validated global indices and rows; None: its build-time state)."""
        groups = self.layout.group(idx)
        if rows is None:
            self._group.call("reset_to_start", [(local,) for _, local, _ in groups], shards=[s for s, _, _ in groups])
        else:
            self._group.call("reset_rows", [({k: v[pos] for k, v in rows.items()}, local) for _, local, pos in groups],
                             shards=[s for s, _, _ in groups])
        self._note(ResetRows, rows, idx)

    def save_checkpoint(self, path) -> None:
        """One file, the same as a single sim.Scene with this n_envs writes (see sim.checkpoint)."""
        start = time.perf_counter()
        state = self.get_state()  # its own bar while the shards' arrays come in
        arrays = state.arrays()
        with progress.bar(sum(a.nbytes for a in arrays.values()), "writing checkpoint", **progress.BYTES) as bar:
            checkpoint.write(path, arrays, state.t, self._meta, on_bytes=bar.update)
        self.metrics.checkpoint(os.path.getsize(path), time.perf_counter() - start)

    @recovering(snapshot=False)
    def load_checkpoint(self, path) -> None:
        """Load a file saved by any layout (or by a plain sim.Scene) and split it over these shards.
        The file is validated once: read, then compared with this scene, then split."""
        start = time.perf_counter()
        with progress.bar(os.path.getsize(path), "reading checkpoint", **progress.BYTES) as bar:
            data = checkpoint.read(path, on_bytes=bar.update)
        checkpoint.check_compatible(data, self._meta, path)  # every array's key, shape and dtype
        _check_step_index(data["step_index"], f"{path}: step_index")
        self._reset_all(SimState(data["arrays"], data["step_index"], self.n_envs), owned=True)
        self.metrics.checkpoint(os.path.getsize(path), time.perf_counter() - start)

    # ------------------------------------------------------------------ Task API (see VecEnv)
    def _check_task(self) -> None:
        if self.task_info is None:
            raise RuntimeError("this scene runs no Task; build it with DistributedScene.for_task / gd.VecEnv")

    @recovering
    def task_step(self, actions: np.ndarray) -> tuple[np.ndarray, float]:
        """One RL step of every shard's Task: `actions` (n_envs, num_actions) float32 is split by
        shard. Returns the packed results of all envs in global order ((n_envs, width) float32, see
        task_info["step_layout"]) and the slowest shard's own seconds. One round trip."""
        start = time.perf_counter()
        self._check_task()
        expected = (self.n_envs, self.task_info["num_actions"])
        if actions.shape != expected:
            raise ValueError(f"actions have shape {tuple(actions.shape)}, expected {expected} (n_envs, num_actions)")
        actions = np.ascontiguousarray(actions, np.float32)
        what = "the task's step"
        if self._stepping_over_links():
            packed = np.empty((self.n_envs, self.task_info["step_layout"].width), np.float32)
            seconds = self._links.round_trip(step_channel.TASK_STEP, self.layout.split(actions),
                                             self.layout.split(packed), what, self.step_timeout_s)
        else:
            results = self._group.call("task_step", [(part,) for part in self.layout.split(actions)], what=what,
                                       timeout_s=self.step_timeout_s)
            packed, seconds = np.concatenate([p for p, _ in results]), max(s for _, s in results)
        self._t += 1
        self._note(Step, actions)
        if not self._replaying():
            self.metrics.step(self.n_envs, time.perf_counter() - start, seconds)
        return packed, seconds

    @recovering
    def set_episode_length(self, episode_length) -> None:
        """Every env's Task episode length, in global order (e.g. rsl-rl's random episode starts)."""
        self._check_task()
        values = episode_lengths(episode_length, self.n_envs)
        self._group.call("set_episode_length", [(p,) for p in self.layout.split(values)], what="setting episode lengths")
        self._note(EpisodeLengths, values)

    @recovering(snapshot=False)
    def gather(self, fn) -> np.ndarray | list:
        """fn(scene) in every shard (e.g. `lambda s: robot_of(s).get_dofs_position()`); arrays with
        the env axis first are merged in global order, anything else comes back as a list."""
        parts = self._group.call("apply", [(fn,)] * self.n_shards)
        if all(isinstance(p, np.ndarray) for p in parts):
            return self.layout.merge(parts)
        return parts

    # ------------------------------------------------------------------ lifetime
    def shutdown(self) -> None:
        """Stop the shard actors and free their placement group (Ray itself keeps running); the
        metrics counted since the last report go to Ray first."""
        self.metrics.flush()
        self._group.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def __repr__(self):
        return f"DistributedScene(n_envs={self.n_envs}, n_shards={self.n_shards}, sizes={self.layout.sizes}, t={self._t})"
