"""DistributedScene: the sim.Scene API over N shard actors, with global env indices.

Every request is validated in the driver, against the global layout, before any shard is
called, so bad input changes nothing. Checkpoints are the format of `sim.checkpoint`, merged
into one file exactly as a single sim.Scene with the same n_envs writes it, and split again on
load for whatever layout the loading scene has.
"""

from __future__ import annotations

import functools
import time
import warnings

import cloudpickle
import numpy as np
import ray
from ray.util.placement_group import get_placement_group, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from sim import checkpoint
from sim.envs_idx import normalize_envs_idx
from sim.state import SimState
from genesis_dist import ray_session, step_channel
from genesis_dist.errors import ShardDiedError, ShardError
from genesis_dist.layout import Layout
from genesis_dist.recovery import Journal, Recovery, logger
from genesis_dist.shard import Shard
from genesis_dist.task import TaskSpec

_ShardActor = ray.remote(max_restarts=0, max_task_retries=0)(Shard)
STRATEGIES = ("SPREAD", "PACK", "STRICT_SPREAD", "STRICT_PACK")
TRANSPORTS = ("socket", "ray")
SHARD_INFO_KEYS = ("backend", "node_id", "pid", "channel")  # `shard_info`: where each shard runs, its step address
_RESOURCE_KEYS = {"num_cpus", "num_gpus", "memory", "resources"}
CLOSE_TIMEOUT_S = 30.0  # for the shards to end Taichi (and write its kernel cache) before they are killed
MAX_STEP_INDEX = 2**62  # a step index (t) beyond this is refused: the shards count steps in int64
MAX_EPISODE_LENGTH = 2**24  # episode lengths travel in float32 step replies, exact below 2**24


def _bundle(resources: dict | None, backend: str | None) -> dict:
    """Placement-group bundle for one shard from `resources_per_shard`."""
    res = dict(resources or {})
    unknown = sorted(set(res) - _RESOURCE_KEYS)
    if unknown:
        raise ValueError(f"resources_per_shard has unknown keys {unknown}; allowed: {sorted(_RESOURCE_KEYS)}")
    amounts = {"CPU": res.get("num_cpus", 1), "GPU": res.get("num_gpus", 1 if backend == "gpu" else 0),
               "memory": res.get("memory", 0), **dict(res.get("resources") or {})}
    for name, value in amounts.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"resources_per_shard: {name} must be a number >= 0, got {value!r}")
    if backend == "gpu" and amounts["GPU"] <= 0:
        raise ValueError("backend='gpu' needs resources_per_shard={'num_gpus': > 0}")
    bundle = {k: v for k, v in amounts.items() if v > 0}
    if not bundle:
        raise ValueError("resources_per_shard reserves nothing; give each shard some num_cpus or num_gpus")
    return bundle


def _recovering(method=None, *, snapshot: bool = True):
    """With a recovery policy, a call that meets a dead shard recovers the scene (see
    genesis_dist.recovery) and is made again. Where the call changes the state relative to the
    current one (`snapshot`), a due snapshot is taken first, here, so that a snapshot that fails is
    never mistaken for a failed call. Calls made inside another such call (or while replaying)
    run plainly: only the outermost recovers."""
    if method is None:
        return functools.partial(_recovering, snapshot=snapshot)

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        if self._journal is None or self._depth:
            return method(self, *args, **kwargs)
        self._depth += 1
        try:
            error = None
            attempts = self._journal.policy.max_attempts
            for _ in range(attempts + 1):
                try:
                    if error is not None:
                        self._recover(error)
                    if snapshot and self._journal.snapshot_due():
                        self._journal.keep_snapshot(self.get_state())
                    return method(self, *args, **kwargs)
                except ShardDiedError as e:
                    error = e
            raise ShardDiedError(error.shard, self._where(error.shard), f"recovery gave up after {attempts} "
                                 f"attempt{'s' if attempts > 1 else ''}; the last failure: {error}", error.cause) from error
        finally:
            self._depth -= 1

    return call


def _check_step_index(t, what: str) -> None:
    """Refuse a step index the shards cannot count on from (before any shard is called)."""
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t <= MAX_STEP_INDEX:
        raise checkpoint.CheckpointError(f"{what} must be an integer in 0..2**62, got {t!r}")


class DistributedScene:
    """A scene of `n_envs` envs split over `n_shards` Ray actors (see DESIGN.md).

    build_scene(n_envs) runs in every shard, after gs.init, and returns a built sim.Scene (or it
    is a TaskSpec: see for_task).
    backend: None picks gs.gpu in a shard exactly when Ray gave it a GPU; "cpu" / "gpu" force one.
    resources_per_shard: {"num_cpus": 1, "num_gpus": 0.25, "memory": bytes, "resources": {...}}.
    placement_strategy: "SPREAD" (default; across nodes where it can), "PACK", or the STRICT_ forms.
    step_transport: "socket" (default) steps the shards over one TCP connection each, raw bytes
    both ways (see step_channel); "ray" makes every step a Ray actor call, for clusters whose
    nodes do not accept connections on arbitrary ports. Everything else always goes through Ray.
    step_ports: (first, last): the shards listen on a free port in this range (open it between
    the driver and the worker nodes); None: any free port. Where a shard cannot be reached, the
    scene warns and steps through Ray calls instead.
    placement_group_name: names the shards' placement group. A placement group outlives the
    actor that made it when that actor dies (only its job's end frees it), so a scene built inside
    an actor that may be killed and re-created (a Tune trial) should pass a name unique to it: a
    group left with that name by a dead predecessor is removed before the new one is made.
    recovery: a gd.Recovery policy: dead shards are then replaced and the scene restored and
    continued without an error (see genesis_dist.recovery); None: a dead shard raises ShardDiedError.
    step_timeout_s: a shard that has not answered a step within this many seconds is killed and
    treated as dead (frozen process, hung GPU call, swapped-out node); keep it above the slowest
    healthy step.
    """

    def __init__(self, build_scene, n_envs: int, n_shards: int = 1, *, backend: str | None = None,
                 precision: str = "32", deterministic: bool = False, seed: int = 0,
                 resources_per_shard: dict | None = None, placement_strategy: str = "SPREAD",
                 placement_timeout_s: float = 120.0, step_transport: str = "socket",
                 step_ports: tuple[int, int] | None = None, recovery: Recovery | None = None,
                 placement_group_name: str | None = None, step_timeout_s: float = 300.0):
        if not isinstance(build_scene, TaskSpec) and not callable(build_scene):
            raise TypeError(f"build_scene must be a function build_scene(n_envs) -> sim.Scene, got {build_scene!r}")
        self._actors: list = []
        self._links: list = []
        self._journal = None
        self._depth = 0  # nesting of _recovering calls
        self._replaying = False
        self.recoveries: list[dict] = []  # one entry per recovery: what died, what was replayed
        self._pg = None
        self.layout = Layout(n_envs, n_shards)
        if backend not in (None, "cpu", "gpu"):
            raise ValueError(f"backend must be None, 'cpu' or 'gpu', got {backend!r}")
        if placement_strategy not in STRATEGIES:
            raise ValueError(f"placement_strategy must be one of {STRATEGIES}, got {placement_strategy!r}")
        if step_transport not in TRANSPORTS:
            raise ValueError(f"step_transport must be one of {TRANSPORTS}, got {step_transport!r}")
        if step_ports is not None and not (len(step_ports) == 2 and all(isinstance(p, int) for p in step_ports)
                                           and 0 < step_ports[0] <= step_ports[1] < 65536):
            raise ValueError(f"step_ports must be (first, last) with 0 < first <= last < 65536, got {step_ports!r}")
        self._channel = {"token": step_channel.new_token(), "ports": step_ports} if step_transport == "socket" else None
        if isinstance(step_timeout_s, bool) or not isinstance(step_timeout_s, (int, float)) \
                or not 0 < step_timeout_s < float("inf"):
            raise ValueError(f"step_timeout_s must be a number of seconds > 0, got {step_timeout_s!r}")
        self.step_timeout_s = float(step_timeout_s)
        if recovery is not None and not isinstance(recovery, Recovery):
            raise TypeError(f"recovery must be a gd.Recovery policy or None, got {recovery!r}")
        self._bundle = _bundle(resources_per_shard, backend)
        self._payload = cloudpickle.dumps(build_scene)
        self._init = {"precision": precision, "deterministic": deterministic, "seed": seed}
        if backend is not None:
            self._init["backend"] = backend
        ray_session.connect(self._bundle.get("CPU", 0) * n_shards)
        if placement_group_name:
            try:
                remove_placement_group(get_placement_group(placement_group_name))  # a dead predecessor's
            except ValueError:
                pass  # none by that name
        self._pg = placement_group([self._bundle] * n_shards, strategy=placement_strategy,
                                   name=placement_group_name or "")
        try:
            ray.get(self._pg.ready(), timeout=placement_timeout_s)
        except ray.exceptions.GetTimeoutError:
            self.shutdown()
            raise RuntimeError(f"could not place {n_shards} shards of {self._bundle} ({placement_strategy}) within "
                               f"{placement_timeout_s:.0f} s; the cluster has {ray.cluster_resources()}") from None
        self._actors = [self._spawn(s) for s in range(n_shards)]
        self._links = [None] * n_shards
        self._serving = [None] * n_shards  # a shard's running `serve` call, while it has one
        try:
            infos = self.run_on_shards("info", what="building the scene")
        except ShardError:
            self.shutdown()
            raise
        self._adopt(infos)
        for s in range(n_shards):
            self._connect(s)
        if recovery is not None:
            self._journal = Journal(recovery, self._meta)
            self._journal.keep_snapshot(self.get_state())

    @classmethod
    def for_task(cls, task_cls, task_cfg: dict | None, n_envs: int, n_shards: int = 1, **kwargs) -> "DistributedScene":
        """A scene whose shards each run `task_cls(n_local_envs, task_cfg, env_offset)` (see VecEnv)."""
        return cls(TaskSpec(task_cls, task_cfg), n_envs, n_shards, **kwargs)

    def _spawn(self, shard: int):
        """Create shard `shard`'s actor in its placement-group bundle (also how a lost shard is replaced)."""
        lo, hi = self.layout.range(shard)
        strategy = PlacementGroupSchedulingStrategy(self._pg, placement_group_bundle_index=shard)
        return _ShardActor.options(num_cpus=self._bundle.get("CPU", 0), num_gpus=self._bundle.get("GPU", 0),
                                   memory=self._bundle.get("memory"), scheduling_strategy=strategy,
                                   resources={k: v for k, v in self._bundle.items() if k not in ("CPU", "GPU", "memory")},
                                   ).remote(shard, hi - lo, lo, self._payload, self._init, self._channel)

    def _connect(self, shard: int) -> None:
        """Open shard `shard`'s step connection (socket transport). A shard serving an older
        connection sees it close, stops serving it and accepts this one on its next `serve`."""
        if self._channel is None:
            return
        self._drop_link(shard)
        try:
            self._links[shard] = step_channel.CoordinatorLink(self.shard_info[shard]["channel"], self._channel["token"])
        except OSError as e:
            warnings.warn(f"{self._where(shard)}: its step connection to {self.shard_info[shard]['channel']} failed ({e}); "
                          "this scene steps through Ray calls instead, which is slower. Open the ports given as "
                          "step_ports between the driver and the shards' nodes, or pass step_transport='ray'.",
                          RuntimeWarning, stacklevel=3)
            self._release(range(self.n_shards))
            for s in range(self.n_shards):
                self._drop_link(s)
            self._channel = None

    def restart_shard(self, shard: int, timeout_s: float | None = None) -> None:
        """Replace shard `shard` (e.g. after ShardDiedError) by a freshly built one in the same
        bundle (which Ray moves to another node if its node is gone). Its envs come back in their
        build-time state: restore the scene afterwards with reset(state=...) or load_checkpoint(...).
        timeout_s: how long to wait for the new shard (None: as long as it takes)."""
        if not 0 <= shard < self.n_shards:
            raise ValueError(f"shard must be in 0..{self.n_shards - 1}, got {shard}")
        ray.kill(self._actors[shard])
        self._drop_link(shard)
        self._actors[shard] = self._spawn(shard)
        ref = self._actors[shard].info.remote()
        if not ray.wait([ref], timeout=timeout_s)[0]:
            ray.kill(self._actors[shard])
            raise ShardDiedError(shard, self._where(shard), f"no replacement could be built within {timeout_s:.0f} s "
                                 f"(the cluster has {ray.available_resources()} free)")
        info = self._fetch(shard, ref, "rebuilding the scene")
        if info["meta"]["fingerprint"] != self.fingerprint:
            raise ShardError(shard, self._where(shard), "the rebuilt shard has a different scene fingerprint")
        self.shard_info[shard] = {k: info[k] for k in SHARD_INFO_KEYS}
        self._connect(shard)

    def _adopt(self, infos: list[dict]) -> None:
        fingerprints = [info["meta"]["fingerprint"] for info in infos]
        for s, fp in enumerate(fingerprints):
            if fp != fingerprints[0]:
                diffs = checkpoint.describe_differences(infos[s]["meta"]["scene"], infos[0]["meta"]["scene"], "scene")
                self.shutdown()
                raise ShardError(s, self._where(s), "the build function built a different scene here than in "
                                 "shard 0: " + "; ".join(diffs[:3] or ["fingerprint differs"]))
        meta0 = infos[0]["meta"]
        self._meta = checkpoint.make_meta(meta0["scene"], meta0["layout"], self.n_envs)
        self._t = infos[0]["t"]
        self.shard_info = [{k: info[k] for k in SHARD_INFO_KEYS} for info in infos]
        self.task_info = infos[0].get("task")

    # ------------------------------------------------------------------ calling shards
    def _where(self, shard: int) -> str:
        lo, hi = self.layout.range(shard)
        return f"shard {shard} of {self.n_shards} (envs {lo}..{hi - 1})"

    def run_on_shards(self, method: str, args=None, shards=None, what: str | None = None,
                      timeout_s: float | None = None) -> list:
        """Call the Shard actor's `method` on the given shards (default all) in parallel, one argument
        tuple per shard, and wait for all of them; the first failure is raised as ShardError naming
        its shard. The building block of every other call, for code that extends the shards.
        timeout_s: a shard that has not answered by then is killed (ShardDiedError)."""
        if not self._actors:
            raise RuntimeError("this DistributedScene has been shut down")
        shards = range(self.n_shards) if shards is None else shards
        args = [()] * len(shards) if args is None else args
        self._release(shards)
        refs = [getattr(self._actors[s], method).remote(*a) for s, a in zip(shards, args)]
        if timeout_s is not None:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
            late = [s for s, ref in zip(shards, refs) if ref not in ready]
            if late:
                for s in late:
                    self._kill_frozen(s)
                raise self._timed_out(late[0], what or method)
        try:
            return ray.get(refs)
        except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError):
            pass  # find out which shard failed, below
        results, error = [], None
        for s, ref in zip(shards, refs):
            try:
                results.append(self._fetch(s, ref, what or method))
            except ShardError as e:
                error = error or e
        if error is not None:
            raise error
        return results

    def _fetch(self, shard: int, ref, what: str):
        """ray.get one shard's result; a failure becomes a ShardError naming the shard."""
        try:
            return ray.get(ref)
        except ray.exceptions.RayActorError as e:
            raise ShardDiedError(
                shard, self._where(shard), f"{what} failed: the shard's actor is dead "
                f"({type(e).__name__}: {str(e).splitlines()[0]}). Re-create the scene (or the shard) and "
                f"restore it from a checkpoint.", e) from None
        except ray.exceptions.RayTaskError as e:
            cause = e.cause if e.cause is not None else e
            raise self._raised(shard, what, cause) from cause

    def _raised(self, shard: int, what: str, cause: BaseException, type_name: str | None = None) -> ShardError:
        """The error for `cause` (of type `type_name`), raised by shard `shard`'s code while doing `what`."""
        return ShardError(shard, self._where(shard), f"{what} raised {type_name or type(cause).__name__}: {cause}", cause)

    def _kill_frozen(self, shard: int) -> None:
        """A shard that did not answer within step_timeout_s is dead to this scene: kill it (Ray
        ends its process, frozen or not) so that recovery, or restart_shard, replaces it."""
        ray.kill(self._actors[shard])
        self._drop_link(shard)

    def _timed_out(self, shard: int, what: str) -> ShardDiedError:
        return ShardDiedError(shard, self._where(shard), f"{what} failed: no answer within step_timeout_s="
                              f"{self.step_timeout_s:g} s; the shard was killed and is treated as dead")

    # ------------------------------------------------------------------ the step connections
    def _release(self, shards) -> None:
        """End these shards' `serve` calls, so that the Ray calls that follow reach them."""
        for s in shards:
            if self._serving and self._serving[s] is not None:
                self._serving[s] = None
                try:
                    self._links[s].send(step_channel.RELEASE)
                except step_channel.ChannelClosed:
                    self._drop_link(s)  # a dead shard: the Ray call that follows says so

    def _drop_link(self, shard: int) -> None:
        if self._links and self._links[shard] is not None:
            self._links[shard].close()
            self._links[shard] = None
        if self._serving:
            self._serving[shard] = None

    def _round_trip(self, op: int, payloads: list, replies: list, what: str) -> float:
        """One request to every shard over its connection, in parallel; shard s's reply is read
        into replies[s]. Returns the slowest shard's own seconds. Every shard's reply is read
        before the first failure is raised (as ShardError / ShardDiedError naming its shard), so
        the connections stay usable."""
        lost = [s for s in range(self.n_shards) if self._links[s] is None]
        if lost:
            raise ShardDiedError(lost[0], self._where(lost[0]), f"{what} failed: the shard's connection was lost "
                                 "earlier (its actor is dead). Call restart_shard() and restore the scene.")
        for s in range(self.n_shards):
            if self._serving[s] is None:
                self._serving[s] = self._actors[s].serve.remote()
        errors, answered, slowest = {}, set(), 0.0
        deadline = time.monotonic() + self.step_timeout_s
        try:
            for s, payload in enumerate(payloads):
                try:
                    self._links[s].send(op, payload, deadline)
                except step_channel.ChannelClosed as e:
                    errors[s] = e
            for s in range(self.n_shards):
                if s in errors:
                    continue
                try:
                    slowest = max(slowest, self._links[s].receive_into(
                        replies[s], lambda: self._check_serving(s, what), deadline))
                    answered.add(s)
                except step_channel.ShardFailed as e:
                    errors[s] = e
                    answered.add(s)
                except (step_channel.ChannelClosed, ShardError) as e:
                    errors[s] = e
        except BaseException:  # e.g. KeyboardInterrupt: a reply still on its way must not be read
            for s in set(range(self.n_shards)) - answered - set(errors):  # as the next step's: start afresh
                self._connect(s)
            raise
        if not errors:
            return slowest
        shard = min(errors)
        error = errors[shard]
        if isinstance(error, step_channel.ShardFailed):
            raise self._raised(shard, what, error.cause, error.type_name)
        for s, e in errors.items():
            if isinstance(e, step_channel.StepTimeout):
                self._kill_frozen(s)
            elif not isinstance(e, step_channel.ShardFailed):
                self._drop_link(s)
        if isinstance(error, step_channel.StepTimeout):
            raise self._timed_out(shard, what)
        if isinstance(error, ShardError):
            raise error
        raise ShardDiedError(shard, self._where(shard), f"{what} failed: the shard's connection closed ({error}); "
                             "its actor is dead. Re-create the scene (or restart_shard) and restore it from a "
                             "checkpoint.")

    def _check_serving(self, shard: int, what: str) -> None:
        """Raise if shard `shard`'s `serve` call has ended while a reply is awaited (its actor or
        node died without closing the connection)."""
        ref = self._serving[shard]
        if ray.wait([ref], timeout=0)[0]:
            self._fetch(shard, ref, what)
            raise ShardDiedError(shard, self._where(shard), f"{what} failed: the shard stopped serving its connection")

    # ------------------------------------------------------------------ recovery
    def _dead_shards(self) -> list[int]:
        """The shards whose actors no longer answer."""
        self._release(range(self.n_shards))
        refs = [actor.ping.remote() for actor in self._actors]
        dead = []
        for s, ref in enumerate(refs):
            try:
                ray.get(ref, timeout=self._journal.policy.replace_timeout_s)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                dead.append(s)
        return dead

    def _recover(self, error: ShardDiedError) -> None:
        """Replace the dead shards, restore the snapshot and replay the calls made since."""
        start = time.perf_counter()
        dead = sorted(set(self._dead_shards()) | {error.shard})
        lost_nodes = [self.shard_info[s]["node_id"] for s in dead]
        logger.warning("genesis_dist: %s; replacing shard(s) %s, then restoring the snapshot and replaying "
                       "%d call(s)", error, dead, len(self._journal.calls))
        for s in dead:
            self.restart_shard(s, timeout_s=self._journal.policy.replace_timeout_s)
        snapshot = self._journal.snapshot()
        self._replaying = True
        try:
            self.reset(state=snapshot)
            for method, args in self._journal.calls:
                getattr(self, method)(*args)
        finally:
            self._replaying = False
        event = {"shards": dead, "error": str(error), "lost_nodes": lost_nodes,
                 "new_nodes": [self.shard_info[s]["node_id"] for s in dead], "snapshot_t": snapshot.t,
                 "replayed_calls": len(self._journal.calls), "seconds": time.perf_counter() - start}
        self.recoveries.append(event)
        logger.warning("genesis_dist: recovered shard(s) %s in %.1f s (restored t=%d, replayed %d call(s))",
                       dead, event["seconds"], snapshot.t, event["replayed_calls"])

    def _note(self, method: str, *args, step: bool = False) -> None:
        """Log a state-changing call for replay (with a recovery policy; not while replaying one)."""
        if self._journal is not None and not self._replaying:
            self._journal.note(method, *args, step=step)

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
    def fingerprint(self) -> str:
        return self._meta["fingerprint"]

    def checkpoint_meta(self) -> dict:
        """The "meta" this scene writes: a single sim.Scene's with the same total n_envs."""
        return self._meta

    @_recovering
    def step(self) -> None:
        """Step every shard once, in parallel: one round trip."""
        if self._channel is None:
            self.run_on_shards("step", timeout_s=self.step_timeout_s)
        else:
            times = np.empty((self.n_shards, 1), np.int64)
            self._round_trip(step_channel.SCENE_STEP, [None] * self.n_shards, list(times), "step")
        self._t += 1
        self._note("step", step=True)

    @_recovering(snapshot=False)
    def get_state(self) -> SimState:
        """The whole state in global env order. Filled shard by shard into preallocated arrays
        (fetching the next shard while copying one), so the driver holds about one copy."""
        if not self._actors:
            raise RuntimeError("this DistributedScene has been shut down")
        arrays = {k: np.empty((self.n_envs, *shape), dtype=np.dtype(dt)) for k, shape, dt in self._meta["layout"]}
        self._release(range(self.n_shards))
        pending = self._actors[0].get_state.remote()
        for s in range(self.n_shards):
            ref = pending
            pending = self._actors[s + 1].get_state.remote() if s + 1 < self.n_shards else None
            part = self._fetch(s, ref, "get_state")
            lo, hi = self.layout.range(s)
            for k, out in arrays.items():
                out[lo:hi] = part[k]
            del part, ref
        return SimState(arrays, self._t, self.n_envs, self.fingerprint)

    @_recovering
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
                self.run_on_shards("reset", [(None, None, None)] * self.n_shards)
                self._t = 0
                self._note("reset")
            else:
                self._reset_all(state, owned=False)
            return
        idx = normalize_envs_idx(envs_idx, self.n_envs)
        self._reset_envs(None if state is None else {k: v[idx] for k, v in state.arrays().items()}, idx)

    def _reset_all(self, state: SimState, owned: bool) -> None:
        """Every env takes its row of `state` (validated), and t its t. owned: the arrays are this
        scene's to keep (a recovery snapshot need not copy them)."""
        parts = {k: self.layout.split(v) for k, v in state.arrays().items()}
        self.run_on_shards("reset", [({k: p[s] for k, p in parts.items()}, state.t, None) for s in range(self.n_shards)])
        self._t = state.t
        if self._journal is not None and not self._replaying:
            if not owned and self._journal.path is None:
                state = SimState({k: v.copy() for k, v in state.arrays().items()}, state.t, self.n_envs)
            self._journal.keep_snapshot(state)

    def _reset_envs(self, rows: dict | None, idx: np.ndarray) -> None:
        """Env idx[i] takes row i of `rows` (validated global indices; None: its build-time state)."""
        groups = self.layout.group(idx)
        args = [(None if rows is None else {k: v[pos] for k, v in rows.items()}, None, local) for _, local, pos in groups]
        self.run_on_shards("reset", args, shards=[s for s, _, _ in groups])
        self._note("_reset_envs", rows, idx)

    def save_checkpoint(self, path) -> None:
        """One file, the same as a single sim.Scene with this n_envs writes (see sim.checkpoint)."""
        state = self.get_state()
        checkpoint.write(path, state.arrays(), state.t, self._meta)

    @_recovering(snapshot=False)
    def load_checkpoint(self, path) -> None:
        """Load a file saved by any layout (or by a plain sim.Scene) and split it over these shards."""
        data = checkpoint.read(path)
        checkpoint.check_compatible(data, self._meta, path)  # every array's key, shape and dtype
        _check_step_index(data["step_index"], f"{path}: step_index")
        self._reset_all(SimState(data["arrays"], data["step_index"], self.n_envs), owned=True)

    @_recovering
    def task_step(self, actions: np.ndarray) -> tuple[np.ndarray, float]:
        """One RL step of every shard's Task (see VecEnv): `actions` (n_envs, num_actions) float32 is
        split by shard. Returns the packed results of all envs in global order ((n_envs, columns)
        float32, see shard.pack_step) and the slowest shard's own seconds. One round trip."""
        if self.task_info is None:
            raise RuntimeError("this scene runs no Task; build it with DistributedScene.for_task / gd.VecEnv")
        expected = (self.n_envs, self.task_info["num_actions"])
        if actions.shape != expected:
            raise ValueError(f"actions have shape {tuple(actions.shape)}, expected {expected} (n_envs, num_actions)")
        actions = np.ascontiguousarray(actions, np.float32)
        what = "the task's step"
        if self._channel is None:
            results = self.run_on_shards("task_step", [(part,) for part in self.layout.split(actions)], what=what,
                                         timeout_s=self.step_timeout_s)
            packed, seconds = np.concatenate([p for p, _ in results]), max(s for _, s in results)
        else:
            packed = np.empty((self.n_envs, self.task_info["packed_columns"]), np.float32)
            seconds = self._round_trip(step_channel.TASK_STEP, self.layout.split(actions), self.layout.split(packed), what)
        self._t += 1
        self._note("task_step", actions, step=True)
        return packed, seconds

    @_recovering
    def set_episode_length(self, episode_length) -> None:
        """Every env's Task episode length, in global order (e.g. rsl-rl's random episode starts)."""
        if self.task_info is None:
            raise RuntimeError("this scene runs no Task; build it with DistributedScene.for_task / gd.VecEnv")
        values = np.asarray(episode_length)
        if values.shape != (self.n_envs,) or not np.issubdtype(values.dtype, np.integer):
            raise ValueError(f"episode lengths must be {self.n_envs} integers, got shape {values.shape} of {values.dtype}")
        if values.size and not (0 <= values.min() and values.max() < MAX_EPISODE_LENGTH):
            raise ValueError(f"episode lengths must be in 0..{MAX_EPISODE_LENGTH - 1}, got values from {values.min()} "
                             f"to {values.max()}")
        values = values.astype(np.int32)
        self.run_on_shards("set_episode_length", [(p,) for p in self.layout.split(values)], what="setting episode lengths")
        self._note("set_episode_length", values)

    @_recovering(snapshot=False)
    def gather(self, fn) -> np.ndarray | list:
        """fn(scene) in every shard (e.g. `lambda s: robot_of(s).get_dofs_position()`); arrays with
        the env axis first are merged in global order, anything else comes back as a list."""
        parts = self.run_on_shards("apply", [(fn,)] * self.n_shards)
        if all(isinstance(p, np.ndarray) for p in parts):
            return self.layout.merge(parts)
        return parts

    # ------------------------------------------------------------------ lifetime
    def shutdown(self) -> None:
        """Stop the shard actors and free their placement group (Ray itself keeps running)."""
        self._release(range(len(self._links)))
        actors, self._actors = self._actors, []
        if actors:
            ray.wait([actor.close.remote() for actor in actors], num_returns=len(actors), timeout=CLOSE_TIMEOUT_S)
        for actor in actors:
            ray.kill(actor)
        for s in range(len(self._links)):
            self._drop_link(s)
        if self._pg is not None:
            remove_placement_group(self._pg)
            self._pg = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def __repr__(self):
        return f"DistributedScene(n_envs={self.n_envs}, n_shards={self.n_shards}, sizes={self.layout.sizes}, t={self._t})"
