"""genesis_dist benchmark: strangers on the shards' step ports (issue 9, findings 3 and 4).

  silent peers   3 peers connect to shard 0's step port just before its coordinator (re)connects
                 and say nothing; time of the next step.
  recovery       1 silent peer connects to the replacement shard's port just before the
                 coordinator does, during a recovery; time of the step that meets the dead shard.
  frozen         a shard is SIGSTOPped; time until step() returns (step_timeout_s=5 where the
                 scene has it; without it, the step is abandoned after --give-up seconds).

Usage: python benchmarks/bench_step_peers.py [--give-up 60]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import inspect
import os
import signal
import socket
import time

import ray

import genesis_dist as gd
import sim as gs
from genesis_dist import step_channel

PEERS: list[socket.socket] = []
SILENT = {"count": 0}


def build_box(n_envs):
    scene = gs.Scene()
    scene.add_entity(gs.morphs.Plane())
    scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 0.5), size=(0.1, 0.1, 0.1)))
    scene.build(n_envs=n_envs)
    return scene


def strangers_first(link_init):
    """CoordinatorLink.__init__, with SILENT["count"] silent peers connecting to the address first."""
    def init(self, address, *args, **kwargs):
        for _ in range(SILENT["count"]):
            PEERS.append(socket.create_connection(tuple(address)))
        SILENT["count"] = 0
        link_init(self, address, *args, **kwargs)
    return init


def reconnect(scene, shard):
    links = getattr(scene, "_links", None)
    if hasattr(links, "connect"):
        links.connect(shard)
    else:
        scene._connect(shard)


def timed_step(scene):
    start = time.perf_counter()
    scene.step()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--give-up", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="give up on a blocked step after 20 s (as `make bench`)")
    args = parser.parse_args()
    if args.quick:
        args.give_up = 20.0
    ray.init(address="local", num_cpus=8, include_dashboard=False, configure_logging=False, log_to_driver=False)
    step_channel.CoordinatorLink.__init__ = strangers_first(step_channel.CoordinatorLink.__init__)
    kw = dict(n_envs=8, n_shards=2, backend="cpu", deterministic=True, resources_per_shard={"num_cpus": 1})
    has_timeout = "step_timeout_s" in inspect.signature(gd.DistributedScene).parameters
    with gd.DistributedScene(build_box, **kw) as scene:
        for _ in range(3):
            scene.step()
        print(f"healthy step: {timed_step(scene):.3f} s", flush=True)
        SILENT["count"] = 3
        reconnect(scene, 0)
        print(f"silent peers: first step with 3 silent peers ahead of the coordinator: {timed_step(scene):.2f} s", flush=True)
    with gd.DistributedScene(build_box, recovery=gd.Recovery(snapshot_every=10), **kw) as scene:
        for _ in range(3):
            scene.step()
        os.kill(scene.shard_info[1]["pid"], signal.SIGKILL)
        print(f"recovery: step that replaces a killed shard: {timed_step(scene):.2f} s", flush=True)
        os.kill(scene.shard_info[1]["pid"], signal.SIGKILL)
        SILENT["count"] = 1
        print(f"recovery: the same with a silent peer on the replacement's port: {timed_step(scene):.2f} s", flush=True)
    with gd.DistributedScene(build_box, **kw) as scene:
        scene.step()  # the first step compiles: under the default timeout
        if has_timeout:
            scene.step_timeout_s = 5
        pid = scene.shard_info[1]["pid"]
        os.kill(pid, signal.SIGSTOP)
        pool = concurrent.futures.ThreadPoolExecutor(1)
        start = time.perf_counter()
        future = pool.submit(scene.step)
        try:
            future.result(timeout=args.give_up)
            outcome = "returned"
        except concurrent.futures.TimeoutError:
            outcome = f"still blocked after {args.give_up:g} s (abandoned)"
        except gd.ShardDiedError as e:
            outcome = f"ShardDiedError ({str(e)[:90]}...)"
        print(f"frozen shard: step {outcome} after {time.perf_counter() - start:.1f} s", flush=True)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        pool.shutdown(wait=False)
    for peer in PEERS:
        peer.close()
    os._exit(0)  # a step abandoned on a thread would keep the process alive


if __name__ == "__main__":
    main()
