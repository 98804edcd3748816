"""The `genesis-dist` command. `genesis-dist demo`: a DistributedScene on the local Ray (CPU),
stepped, partly reset, saved, reloaded on another shard count, and continued, saying what it did."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np


def build_franka(n_envs: int):
    """The demo scene (runs in each shard): a ground plane and the bundled Franka arm."""
    import sim as gs

    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01))
    scene.add_entity(gs.morphs.Plane())
    scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    scene.build(n_envs=n_envs)
    return scene


def _say(t0: float, message: str) -> None:
    print(f"[{time.perf_counter() - t0:6.1f} s] {message}", flush=True)


def demo(n_envs: int, n_shards: int, reload_shards: int, steps: int) -> int:
    import ray

    import genesis_dist as gd

    t0 = time.perf_counter()
    kwargs = dict(backend="cpu", deterministic=True, resources_per_shard={"num_cpus": 1})
    joined = ray.is_initialized() or bool(os.environ.get("RAY_ADDRESS"))
    scene = gd.DistributedScene(build_franka, n_envs=n_envs, n_shards=n_shards, **kwargs)
    _say(t0, f"{'joined' if joined else 'started a local'} Ray ({ray.cluster_resources().get('CPU', 0):g} CPUs); "
             f"built {scene.n_envs} Franka envs on {scene.n_shards} CPU shards of {scene.layout.sizes} envs, "
             f"spread over {len({info['node_id'] for info in scene.shard_info})} Ray node(s)")
    for _ in range(steps):
        scene.step()
    qpos = scene.get_state()["RigidSolver.qpos"]
    _say(t0, f"stepped {steps} times in one round trip each: t={scene.t}, mean |qpos| = {np.abs(qpos).mean():.4f}")

    idx = [0, scene.layout.range(1)[0] if n_shards > 1 else 1, n_envs - 1]
    scene.reset(envs_idx=idx)
    shards = sorted({s for s, _, _ in scene.layout.group(idx)})
    changed = np.flatnonzero((scene.get_state()["RigidSolver.qpos"] != qpos).any(axis=1)).tolist()
    _say(t0, f"reset envs {idx} by global index: shards {shards} were called, envs {changed} changed")

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "demo_checkpoint.pkl")
        scene.save_checkpoint(path)
        _say(t0, f"saved one checkpoint ({os.path.getsize(path) / 1024:.0f} KiB) merged from {n_shards} shards")
        for _ in range(steps):
            scene.step()
        reference = scene.get_state()
        scene.shutdown()
        _say(t0, f"continued {steps} steps on {n_shards} shards (t={reference.t}) as the reference, then shut them down")
        with gd.DistributedScene(build_franka, n_envs=n_envs, n_shards=reload_shards, **kwargs) as other:
            other.load_checkpoint(path)
            _say(t0, f"loaded the checkpoint on {reload_shards} shards of {other.layout.sizes} envs: t={other.t}")
            for _ in range(steps):
                other.step()
            state = other.get_state()
    identical = all(np.array_equal(state[k], reference[k]) for k in reference.keys())
    _say(t0, f"continued {steps} steps on {reload_shards} shards: t={state.t}; the trajectory is "
             f"{'bit-identical to' if identical else 'DIFFERENT from'} the {n_shards}-shard reference")
    return 0 if identical else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="genesis-dist", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="distributed scene on the local Ray: step, reset, save, reshard, continue")
    p.add_argument("--n-envs", type=int, default=12)
    p.add_argument("--shards", type=int, default=3)
    p.add_argument("--reload-shards", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    return demo(args.n_envs, args.shards, args.reload_shards, args.steps)


if __name__ == "__main__":
    sys.exit(main())
