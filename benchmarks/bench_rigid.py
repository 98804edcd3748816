"""Rigid solver throughput: env-steps/s on a plane, at several n_envs, beside MuJoCo stepping
the same model with `mujoco.rollout` on all cores; and build time (scene build + first step,
where the kernels compile) with a cold and a warm Taichi cache.

Models: `franka` (our bundled franka.xml: capsule/box colliders) and `panda_mesh` (Genesis's
xml/franka_emika_panda/panda_no_tendon.xml: 13 convex mesh colliders and 10 boxes: 171 convex
candidate pairs per env, of which the bounding spheres leave 6 and then bounding boxes 4 in the
home pose to run MPR; one of them, link0 on link1, touches and builds a 4-point patch).

    .venv/bin/python benchmarks/bench_rigid.py            # n_envs 1, 64, 1024, 8192
    .venv/bin/python benchmarks/bench_rigid.py --quick    # n_envs 1, 64; few steps
    .venv/bin/python benchmarks/bench_rigid.py --model panda_mesh --sizes 1024 --no-build-times
    .venv/bin/python benchmarks/bench_rigid.py --backend gpu --out benchmarks/results/rigid.md
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


PANDA_HOME = [0, 0, 0, -1.57079, 0, 1.57079, -0.7853, 0.04, 0.04]


def model_file(model):
    if model == "franka":
        return os.path.join(ROOT, "sim", "assets", "franka.xml")
    from sim.model_wheels import genesis_assets

    return str(genesis_assets(fetch=True) / "xml" / "franka_emika_panda" / "panda_no_tendon.xml")


def build_scene(gs, n_envs, model="franka"):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01))
    scene.add_entity(gs.morphs.Plane())
    robot = scene.add_entity(gs.morphs.MJCF(file=model_file(model)))
    scene.build(n_envs=n_envs)
    if model == "panda_mesh":  # the file has no keyframe: start and hold a usual home pose
        home = np.tile(PANDA_HOME, (max(n_envs, 1), 1)) if n_envs else np.array(PANDA_HOME)
        robot.set_dofs_position(home)
        robot.control_dofs_position(home)
    return scene, robot


def child_build(backend):
    """Runs in a fresh process: seconds to build and take the first step."""
    sys.path.insert(0, ROOT)
    import sim as gs

    gs.init(backend=backend)
    start = time.perf_counter()
    scene, _ = build_scene(gs, 16)
    scene.step()
    return time.perf_counter() - start


def build_times(backend):
    """(cold, warm): a fresh Taichi offline cache, then the same cache again, each in a new process."""
    out = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, TI_OFFLINE_CACHE_FILE_PATH=cache)
        for _ in range(2):
            res = subprocess.run([sys.executable, __file__, "--child-build", "--backend", backend],
                                 env=env, capture_output=True, text=True, check=True)
            out.append(json.loads(res.stdout.strip().splitlines()[-1])["build_s"])
    return tuple(out)


REPEATS = 3  # each side reports its best of three timed runs: the machine may be shared


def ours(gs, n_envs, steps, model):
    import taichi as ti

    scene, _ = build_scene(gs, n_envs, model)
    scene.step()  # compile
    best = 0.0
    for _ in range(REPEATS):
        ti.sync()
        start = time.perf_counter()
        for _ in range(steps):
            scene.step()
        ti.sync()
        best = max(best, max(n_envs, 1) * steps / (time.perf_counter() - start))
    return best


def mujoco_rollout(n_envs, steps, model_name):
    import mujoco
    from mujoco import rollout

    spec = mujoco.MjSpec.from_file(model_file(model_name))
    spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 1])
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST  # what our servos match
    spec.option.timestep = 0.01  # our step
    model = spec.compile()
    nthread = os.cpu_count()
    datas = [mujoco.MjData(model) for _ in range(nthread)]
    if model.nkey:
        mujoco.mj_resetDataKeyframe(model, datas[0], 0)
        ctrl = model.key_ctrl[0]
    else:
        datas[0].qpos[:] = PANDA_HOME
        ctrl = np.array(PANDA_HOME)  # one position actuator per joint
    state = np.zeros(mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_FULLPHYSICS))
    mujoco.mj_getState(model, datas[0], state, mujoco.mjtState.mjSTATE_FULLPHYSICS)
    initial = np.tile(state, (n_envs, 1))
    control = np.tile(ctrl, (n_envs, steps, 1))
    rollout.rollout(model, datas, initial, control[:, :2], persistent_pool=True)  # warm the pool
    best = 0.0
    for _ in range(REPEATS):
        start = time.perf_counter()
        rollout.rollout(model, datas, initial, control, persistent_pool=True)
        best = max(best, n_envs * steps / (time.perf_counter() - start))
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="n_envs 1 and 64, few steps")
    parser.add_argument("--backend", default="cpu", choices=["cpu", "gpu", "vulkan"])
    parser.add_argument("--model", default="franka", choices=["franka", "panda_mesh"])
    parser.add_argument("--sizes", type=int, nargs="+", help="n_envs to measure (overrides --quick)")
    parser.add_argument("--no-build-times", action="store_true", help="skip the cold/warm build measurement")
    parser.add_argument("--out", help="write a markdown table here")
    parser.add_argument("--child-build", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_build:
        print(json.dumps({"build_s": child_build(args.backend)}))
        return
    sys.path.insert(0, ROOT)
    import sim as gs

    cold, warm = (None, None) if args.no_build_times else build_times(args.backend)
    gs.init(backend=args.backend)
    import taichi as ti

    device = f"{args.backend} (Taichi arch {ti.lang.impl.current_cfg().arch.name})"
    sizes = args.sizes or ([1, 64] if args.quick else [1, 64, 1024, 8192])
    rows = []
    for n in sizes:
        steps = 20 if args.quick else max(10, min(500, 200_000 // n))
        rows.append((n, ours(gs, n, steps, args.model), mujoco_rollout(n, steps, args.model)))
        print(f"{args.model} n_envs {n:5d}: ours on {device} {rows[-1][1]:12.0f} env-steps/s   mujoco.rollout "
              f"({os.cpu_count()} threads) {rows[-1][2]:12.0f} env-steps/s", flush=True)
    if cold is not None:
        print(f"build + first step: cold cache {cold:.2f} s, warm cache {warm:.2f} s")
    if args.out:
        lines = [f"| {args.model} n_envs | ours ({device}) env-steps/s | mujoco.rollout ({os.cpu_count()} threads) env-steps/s | ratio |",
                 "|---:|---:|---:|---:|"]
        lines += [f"| {n} | {a:,.0f} | {b:,.0f} | {a / b:.2f} |" for n, a, b in rows]
        if cold is not None:
            lines.append(f"\nBuild + first step (franka + plane, 16 envs): cold cache {cold:.2f} s, warm cache {warm:.2f} s")
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
