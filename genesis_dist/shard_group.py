"""The shard actors of one scene: where they run (a placement group), their lifetime (spawn,
restart, ping, shutdown), and calling them with every failure mapped to a ShardError naming its
shard. DistributedScene drives a ShardGroup; the group knows nothing of states or steps.

Its step links (genesis_dist.step_links), where the scene has them, are released before every
Ray call the group makes, so that the call reaches a shard that was serving its connection.
"""

from __future__ import annotations

import contextlib

import ray
from ray.util.placement_group import get_placement_group, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from sim import checkpoint
from genesis_dist import progress, ray_session
from genesis_dist.errors import ShardDiedError, ShardError
from genesis_dist.layout import Layout
from genesis_dist.shard import Shard

_ShardActor = ray.remote(max_restarts=0, max_task_retries=0)(Shard)
STRATEGIES = ("SPREAD", "PACK", "STRICT_SPREAD", "STRICT_PACK")
BACKENDS = ("cpu", "gpu", "cuda", "vulkan")
GPU_BACKENDS = ("gpu", "cuda")  # reserve a GPU per shard by default (Vulkan may be software: lavapipe)
SHARD_INFO_KEYS = ("backend", "node_id", "pid", "channel")  # `shard_info`: where each shard runs, its step address
_RESOURCE_KEYS = {"num_cpus", "num_gpus", "memory", "resources"}
CLOSE_TIMEOUT_S = 30.0  # for the shards to end Taichi (and write its kernel cache) before they are killed


def bundle_for(resources: dict | None, backend: str | None) -> dict:
    """Placement-group bundle for one shard from `resources_per_shard` (validated, nothing started)."""
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend must be None or one of {BACKENDS}, got {backend!r}")
    res = dict(resources or {})
    unknown = sorted(set(res) - _RESOURCE_KEYS)
    if unknown:
        raise ValueError(f"resources_per_shard has unknown keys {unknown}; allowed: {sorted(_RESOURCE_KEYS)}")
    amounts = {"CPU": res.get("num_cpus", 1), "GPU": res.get("num_gpus", 1 if backend in GPU_BACKENDS else 0),
               "memory": res.get("memory", 0), **dict(res.get("resources") or {})}
    for name, value in amounts.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"resources_per_shard: {name} must be a number >= 0, got {value!r}")
    if backend in GPU_BACKENDS and amounts["GPU"] <= 0:
        raise ValueError(f"backend={backend!r} needs resources_per_shard={{'num_gpus': > 0}}")
    bundle = {k: v for k, v in amounts.items() if v > 0}
    if not bundle:
        raise ValueError("resources_per_shard reserves nothing; give each shard some num_cpus or num_gpus")
    return bundle


def _shard_runtime_env() -> dict | None:
    """The quiet-shard variables (ray_session.shard_env) the job's runtime_env does not set: a Ray
    initialised by the user has none of them unless the user gave them (theirs win; Ray merges an
    actor's env_vars into the job's)."""
    job_vars = ray.get_runtime_context().runtime_env.get("env_vars") or {}
    missing = {k: v for k, v in ray_session.shard_env().items() if k not in job_vars}
    return {"env_vars": missing} if missing else None


class ShardGroup:
    """Shard actors in one placement group, shard s owning layout.range(s). Build it with `start`."""

    def __init__(self, layout: Layout, bundle: dict, payload: bytes, init: dict, channel: dict | None):
        self.layout, self._bundle, self._payload, self._init, self._channel = layout, bundle, payload, init, channel
        self.actors: list = []
        self.links = None  # the scene's StepLinks, released before every Ray call
        self._pg = None
        self.info: list[dict] = []  # per shard: SHARD_INFO_KEYS
        self._runtime_env = _shard_runtime_env()

    @classmethod
    def start(cls, layout: Layout, bundle: dict, payload: bytes, init: dict, channel: dict | None, *,
              strategy: str, timeout_s: float, name: str | None) -> tuple["ShardGroup", list[dict]]:
        """Place, spawn and build every shard; returns the group and each shard's `info()`. Whatever
        fails on the way shuts down what was started."""
        group = cls(layout, bundle, payload, init, channel)
        with group.shut_down_on_error():
            group._place(strategy, timeout_s, name)
            group.actors = [group._spawn(s) for s in range(layout.n_shards)]
            infos = group._build()
            group._check_same_scene(infos)
            group.info = [{k: info[k] for k in SHARD_INFO_KEYS} for info in infos]
            return group, infos

    def _build(self) -> list[dict]:
        """Every shard's info() once its scene is built, with a progress bar while they build."""
        refs = self._remote("info", range(self.n_shards), [()] * self.n_shards)
        with progress.bar(self.n_shards, "building shards", unit="shard") as bar:
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                bar.update(len(done))
        return [self.fetch(s, ref, "building the scene") for s, ref in enumerate(refs)]

    @contextlib.contextmanager
    def shut_down_on_error(self):
        """Shut the group down if the block raises (a scene that fails to start leaves nothing behind)."""
        try:
            yield self
        except BaseException:
            self.shutdown()
            raise

    @property
    def n_shards(self) -> int:
        return self.layout.n_shards

    def where(self, shard: int) -> str:
        lo, hi = self.layout.range(shard)
        return f"shard {shard} of {self.n_shards} (envs {lo}..{hi - 1})"

    # ------------------------------------------------------------------ placement and lifetime
    def _place(self, strategy: str, timeout_s: float, name: str | None) -> None:
        if name:
            try:
                remove_placement_group(get_placement_group(name))  # a dead predecessor's
            except ValueError:
                pass  # none by that name
        self._pg = placement_group([self._bundle] * self.n_shards, strategy=strategy, name=name or "")
        try:
            ray.get(self._pg.ready(), timeout=timeout_s)
        except ray.exceptions.GetTimeoutError:
            raise RuntimeError(f"could not place {self.n_shards} shards of {self._bundle} ({strategy}) within "
                               f"{timeout_s:.0f} s; the cluster has {ray.cluster_resources()}") from None

    def _spawn(self, shard: int):
        """Create shard `shard`'s actor in its placement-group bundle (also how a lost shard is replaced)."""
        lo, hi = self.layout.range(shard)
        strategy = PlacementGroupSchedulingStrategy(self._pg, placement_group_bundle_index=shard)
        return _ShardActor.options(num_cpus=self._bundle.get("CPU", 0), num_gpus=self._bundle.get("GPU", 0),
                                   memory=self._bundle.get("memory"), scheduling_strategy=strategy,
                                   resources={k: v for k, v in self._bundle.items() if k not in ("CPU", "GPU", "memory")},
                                   runtime_env=self._runtime_env).remote(shard, hi - lo, lo, self._payload, self._init, self._channel)

    def _check_same_scene(self, infos: list[dict]) -> None:
        for s, info in enumerate(infos):
            if info["meta"]["fingerprint"] != infos[0]["meta"]["fingerprint"]:
                diffs = checkpoint.describe_differences(info["meta"]["scene"], infos[0]["meta"]["scene"], "scene")
                raise ShardError(s, self.where(s), "the build function built a different scene here than in "
                                 "shard 0: " + "; ".join(diffs[:3] or ["fingerprint differs"]))

    def restart(self, shard: int, fingerprint: str, timeout_s: float | None = None) -> None:
        """Replace shard `shard` by a freshly built one in the same bundle (Ray moves the bundle to
        another node if its node is gone); it must build a scene with this fingerprint."""
        self.kill(shard)
        self.actors[shard] = self._spawn(shard)
        ref = self.actors[shard].info.remote()
        if not ray.wait([ref], timeout=timeout_s)[0]:
            ray.kill(self.actors[shard])
            raise ShardDiedError(shard, self.where(shard), f"no replacement could be built within {timeout_s:.0f} s "
                                 f"(the cluster has {ray.available_resources()} free)")
        info = self.fetch(shard, ref, "rebuilding the scene")
        if info["meta"]["fingerprint"] != fingerprint:
            raise ShardError(shard, self.where(shard), "the rebuilt shard has a different scene fingerprint")
        self.info[shard] = {k: info[k] for k in SHARD_INFO_KEYS}

    def kill(self, shard: int) -> None:
        """End shard `shard`'s process (frozen or not) at once."""
        if self.links is not None:
            self.links.drop(shard)
        ray.kill(self.actors[shard])

    def dead(self, timeout_s: float) -> list[int]:
        """The shards whose actors do not answer a ping within timeout_s."""
        refs = self._remote("ping", range(self.n_shards), [()] * self.n_shards)
        dead = []
        for s, ref in enumerate(refs):
            try:
                ray.get(ref, timeout=timeout_s)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                dead.append(s)
        return dead

    def shutdown(self) -> None:
        """Stop the shard actors and free their placement group (Ray itself keeps running)."""
        actors, self.actors = self.actors, []
        if actors:
            if self.links is not None:
                self.links.close()
            ray.wait([actor.close.remote() for actor in actors], num_returns=len(actors), timeout=CLOSE_TIMEOUT_S)
        for actor in actors:
            ray.kill(actor)
        if self._pg is not None:
            remove_placement_group(self._pg)
            self._pg = None

    # ------------------------------------------------------------------ calling shards
    def _remote(self, method: str, shards, args) -> list:
        if not self.actors:
            raise RuntimeError("this DistributedScene has been shut down")
        if self.links is not None:
            self.links.release(shards)
        return [getattr(self.actors[s], method).remote(*a) for s, a in zip(shards, args)]

    def call(self, method: str, args=None, shards=None, what: str | None = None, timeout_s: float | None = None) -> list:
        """Call the Shard actor's `method` on the given shards (default all) in parallel, one
        argument tuple per shard, and wait for all of them; the first failure is raised as
        ShardError naming its shard. timeout_s: shards that have not answered by then are
        killed (ShardDiedError)."""
        shards = range(self.n_shards) if shards is None else shards
        args = [()] * len(shards) if args is None else args
        refs = self._remote(method, shards, args)
        what = what or method
        if timeout_s is not None:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
            late = [s for s, ref in zip(shards, refs) if ref not in ready]
            for s in late:
                self.kill(s)
            if late:
                raise self.timed_out(late[0], what, timeout_s)
        try:
            return ray.get(refs)
        except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError):
            pass  # find out which shard failed, below
        results, error = [], None
        for s, ref in zip(shards, refs):
            try:
                results.append(self.fetch(s, ref, what))
            except ShardError as e:
                error = error or e
        if error is not None:
            raise error
        return results

    def call_one(self, shard: int, method: str, *args):
        """Start `method` on one shard; returns its ref (for pipelined fetches, see DistributedScene.get_state)."""
        return self._remote(method, [shard], [args])[0]

    def fetch(self, shard: int, ref, what: str):
        """ray.get one shard's result; a failure becomes a ShardError naming the shard."""
        try:
            return ray.get(ref)
        except ray.exceptions.RayActorError as e:
            raise ShardDiedError(
                shard, self.where(shard), f"{what} failed: the shard's actor is dead "
                f"({type(e).__name__}: {str(e).splitlines()[0]}). Re-create the scene (or the shard) and "
                f"restore it from a checkpoint.", e) from None
        except ray.exceptions.RayTaskError as e:
            cause = e.cause if e.cause is not None else e
            raise self.raised(shard, what, cause) from cause

    def raised(self, shard: int, what: str, cause: BaseException, type_name: str | None = None) -> ShardError:
        """The error for `cause` (of type `type_name`), raised by shard `shard`'s code while doing `what`."""
        return ShardError(shard, self.where(shard), f"{what} raised {type_name or type(cause).__name__}: {cause}", cause)

    def timed_out(self, shard: int, what: str, timeout_s: float) -> ShardDiedError:
        return ShardDiedError(shard, self.where(shard), f"{what} failed: no answer within step_timeout_s="
                              f"{timeout_s:g} s; the shard was killed and is treated as dead")
