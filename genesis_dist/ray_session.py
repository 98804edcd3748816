"""Which Ray to use: an already-initialised one, the cluster at RAY_ADDRESS, or an embedded local one."""

from __future__ import annotations

import math
import os

import ray

EMBEDDED_OBJECT_STORE_BYTES = 512 * 2**20
# Results up to 16 MiB (a step's packed observations, with step_transport="ray") travel inline with
# the reply instead of through the object store: half the per-step overhead of Ray-call steps at
# 4096 envs per shard (benchmarks/results/distributed.md). On a cluster, start Ray with the same setting:
# `ray start ... --system-config='{"max_direct_call_object_size": 16777216}'`.
SYSTEM_CONFIG = {"max_direct_call_object_size": 16 * 2**20}


def connect(min_cpus: float) -> None:
    """Make sure this process is connected to Ray (a `ray start` cluster on this machine is joined
    only through RAY_ADDRESS: otherwise a new embedded Ray starts, as address="local" asks).

    An embedded local Ray is kept small: no dashboard, just enough logical CPUs for the shards
    (at least the machine's count), a 512 MiB object store (Ray spills to disk beyond it), and
    SYSTEM_CONFIG.
    Tune it by calling `ray.init(...)` yourself before building a DistributedScene.
    """
    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"])
        return
    ray.init(address="local", num_cpus=max(math.ceil(min_cpus), os.cpu_count() or 1), include_dashboard=False,
             object_store_memory=EMBEDDED_OBJECT_STORE_BYTES, configure_logging=False, _system_config=SYSTEM_CONFIG)
