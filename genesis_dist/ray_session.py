"""Which Ray to use: an already-initialised one, the cluster at RAY_ADDRESS, or an embedded local one."""

from __future__ import annotations

import contextlib
import logging
import math
import os

import ray

EMBEDDED_OBJECT_STORE_BYTES = 512 * 2**20
# Results up to 16 MiB (a step's packed observations, with step_transport="ray") travel inline with
# the reply instead of through the object store: half the per-step overhead of Ray-call steps at
# 4096 envs per shard (benchmarks/results/distributed.md). On a cluster, start Ray with the same setting:
# `ray start ... --system-config='{"max_direct_call_object_size": 16777216}'`.
SYSTEM_CONFIG = {"max_direct_call_object_size": 16 * 2**20}

# What keeps a shard process quiet (Taichi reads both when it is imported): no "[Taichi] version ..."
# banner, and no Python print buffer: Ray gives a worker a wrapped sys.stdout, which Taichi takes for a
# notebook ("Graphical python shell detected, using wrapped sys.stdout"); without the buffer, prints
# from kernels go to the process's own stdout, which Ray already streams to the driver. Taichi's
# warnings and errors are untouched. A variable already set in the driver's environment wins.
QUIET_SHARD_ENV = {"ENABLE_TAICHI_HEADER_PRINT": "0", "TI_ENABLE_PYBUF": "0"}


def shard_env() -> dict[str, str]:
    """Environment variables for shard processes: QUIET_SHARD_ENV, overridden by the driver's own."""
    return {k: os.environ.get(k, v) for k, v in QUIET_SHARD_ENV.items()}


def connect(min_cpus: float) -> None:
    """Make sure this process is connected to Ray (a `ray start` cluster on this machine is joined
    only through RAY_ADDRESS: otherwise a new embedded Ray starts, as address="local" asks).

    Ray started or joined here gives its workers `shard_env()` (a Ray you initialised yourself
    keeps the runtime_env you gave it). An embedded local Ray is kept small: no dashboard, just
    enough logical CPUs for the shards (at least the machine's count), a 512 MiB object store (Ray
    spills to disk beyond it), and SYSTEM_CONFIG. It has Ray's token authentication on (Ray's default
    for a new local cluster) without Ray's notice that it turned it on.
    Tune it by calling `ray.init(...)` yourself before building a DistributedScene.
    """
    if ray.is_initialized():
        return
    runtime_env = {"env_vars": shard_env()}
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], runtime_env=runtime_env)
        return
    with _without_token_notice():
        ray.init(address="local", num_cpus=max(math.ceil(min_cpus), os.cpu_count() or 1), include_dashboard=False,
                 object_store_memory=EMBEDDED_OBJECT_STORE_BYTES, configure_logging=False,
                 _system_config=SYSTEM_CONFIG, runtime_env=runtime_env)


@contextlib.contextmanager
def _without_token_notice():
    """Drop Ray's warning "Token authentication is enabled for this Ray cluster ..." (logged when a
    new local Ray turns its default on: the secure setting, so nothing to warn about); every other
    record of that logger still shows."""
    notice = logging.getLogger("ray._private.authentication.authentication_token_setup")

    def keep(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Token authentication is enabled for this Ray cluster")

    notice.addFilter(keep)
    try:
        yield
    finally:
        notice.removeFilter(keep)
