"""The `genesis-dist` command.

demo: a DistributedScene on the local Ray (CPU), stepped, partly reset, saved, reloaded on another
shard count, and continued, saying what it did (its scenes publish their metrics, see genesis_dist.metrics).
inspect: what a checkpoint file holds, or (--diff) how two differ.
assets: fetch the pinned third-party model wheels (Genesis's assets, ...) and say where they are.
train: PPO on a bundled task, data-parallel on Ray Train or central (genesis_dist.train_cli).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from genesis_dist import logs, progress, train_cli


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


def _steps(scene, steps: int, show_progress: bool | None, recorder=None) -> None:
    """Step; with a recorder (genesis_dist.env_video.EnvVideo), also draw env 0 after every step."""
    with progress.bar(steps, f"stepping {scene.n_envs} envs", unit="step", show=show_progress) as bar:
        for _ in range(steps):
            scene.step()
            if recorder is not None:
                recorder.add(scene.get_state())
            bar.update()


def demo(n_envs: int, n_shards: int, reload_shards: int, steps: int, metrics: bool = True,
         show_progress: bool | None = None, video: str | None = None) -> int:
    import ray

    import genesis_dist as gd

    t0 = time.perf_counter()
    kwargs = dict(backend="cpu", deterministic=True, resources_per_shard={"num_cpus": 1}, metrics_enabled=metrics)
    joined = ray.is_initialized() or bool(os.environ.get("RAY_ADDRESS"))
    scene = gd.DistributedScene(build_franka, n_envs=n_envs, n_shards=n_shards, **kwargs)
    _say(t0, f"{'joined' if joined else 'started a local'} Ray ({ray.cluster_resources().get('CPU', 0):g} CPUs); "
             f"built {scene.n_envs} Franka envs on {scene.n_shards} CPU shards of {scene.layout.sizes} envs, "
             f"spread over {len({info['node_id'] for info in scene.shard_info})} Ray node(s)")
    recorder = None
    if video:
        from genesis_dist.env_video import EnvVideo

        recorder = EnvVideo(build_franka)
    _steps(scene, steps, show_progress, recorder)
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
        _steps(scene, steps, show_progress)
        reference = scene.get_state()
        scene.shutdown()
        _say(t0, f"continued {steps} steps on {n_shards} shards (t={reference.t}) as the reference, then shut them down")
        with gd.DistributedScene(build_franka, n_envs=n_envs, n_shards=reload_shards, **kwargs) as other:
            other.load_checkpoint(path)
            _say(t0, f"loaded the checkpoint on {reload_shards} shards of {other.layout.sizes} envs: t={other.t}")
            _steps(other, steps, show_progress, recorder)
            state = other.get_state()
    identical = all(np.array_equal(state[k], reference[k]) for k in reference.keys())
    _say(t0, f"continued {steps} steps on {reload_shards} shards: t={state.t}; the trajectory is "
             f"{'bit-identical to' if identical else 'DIFFERENT from'} the {n_shards}-shard reference")
    if recorder is not None:
        _say(t0, f"wrote {recorder.n_frames} frames of env 0 (the first {n_shards}-shard steps, then the "
                 f"{reload_shards}-shard continuation) to {recorder.save(video)}")
    return 0 if identical else 1


def _fail(message: str) -> int:
    """A problem the user can fix: one line on stderr, exit code 2, no traceback."""
    print("genesis-dist: " + " ".join(message.split()), file=sys.stderr)
    return 2


def inspect(path, other=None) -> int:
    """Print what `path` holds; with `other`, what differs (exit 1 if anything does, like diff)."""
    from sim import checkpoint
    from genesis_dist import inspect_checkpoint

    try:
        lines = inspect_checkpoint.describe(path) if other is None else inspect_checkpoint.diff(path, other)
    except (checkpoint.CheckpointError, OSError) as e:
        where = "" if os.fspath(path) in str(e) or (other and os.fspath(other) in str(e)) else f" ({path})"
        return _fail(f"cannot read the checkpoint{where}: {e}")
    if other is None:
        print("\n".join(lines))
        return 0
    print("\n".join(lines) if lines else
          f"{path} and {other} hold the same arrays, step index and scene (timestamps aside)")
    return 1 if lines else 0


def assets(fetch_all: bool) -> int:
    """Fetch genesis-world's wheel (or, with --all, every pinned model wheel) and print where each is."""
    from sim import model_wheels

    for package in sorted(model_wheels.WHEELS) if fetch_all else ["genesis-world"]:
        try:
            folder = model_wheels.wheel_dir(package, fetch=True)
        except model_wheels.ModelFetchError as e:
            return _fail(str(e))
        print(f"{package}=={model_wheels.WHEELS[package]}: {folder}")
        if package == "genesis-world":
            print(f"  Genesis assets (GS_ASSETS_DIR overrides): {model_wheels.genesis_assets()}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="genesis-dist", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="distributed scene on the local Ray: step, reset, save, reshard, continue")
    p.add_argument("--n-envs", type=int, default=12)
    p.add_argument("--shards", type=int, default=3)
    p.add_argument("--reload-shards", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--log-level", choices=logs.LEVELS, default="warning",
                   help="info: also one line per shard (where it runs, its envs, its backend)")
    p.add_argument("--no-metrics", action="store_true", help="publish no Ray metrics")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (they show only on a terminal)")
    p.add_argument("--video", metavar="PATH", help="also write a video (mp4) of env 0 as the demo steps it")
    p = sub.add_parser("inspect", help="what a checkpoint holds: n_envs, step, fingerprint, every array's stats")
    p.add_argument("checkpoint")
    p.add_argument("--diff", metavar="OTHER", help="name what differs from OTHER instead (exit code 1 if anything)")
    p = sub.add_parser("assets", help="fetch the pinned model wheels (Genesis's assets) and print where they are")
    p.add_argument("--all", action="store_true", help="every pinned wheel, not only genesis-world")
    train_cli.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "train":
        return train_cli.run(args)
    if args.command == "inspect":
        return inspect(args.checkpoint, args.diff)
    if args.command == "assets":
        return assets(args.all)
    logs.set_level(args.log_level)
    return demo(args.n_envs, args.shards, args.reload_shards, args.steps, metrics=not args.no_metrics,
                show_progress=False if args.no_progress else None, video=args.video)


if __name__ == "__main__":
    sys.exit(main())
