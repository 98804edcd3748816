"""The constraint solver on contact-rich scenes: CPU microseconds per env-step for each rigid
stage (as profile_rigid.py measures them), and how still the bodies rest.

Scenes: `go2` (Genesis's go2 URDF standing on four feet under joint PD, as in
tests/test_rigid_robots.py), `stack` (three boxes stacked on the plane and a box on an upright
cylinder). Settles for --settle steps, then times --steps steps and prints the largest
angular speed of any free body at the end (rad/s).

    .venv/bin/python benchmarks/profile_contacts.py --scene go2 --envs 256
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from profile_rigid import profile_steps  # noqa: E402

LEGS = [f"{leg}_{part}_joint" for leg in ("FR", "FL", "RR", "RL") for part in ("hip", "thigh", "calf")]
STAND = np.array([0.0, 0.8, -1.5, 0.0, 0.8, -1.5, 0.0, 1.0, -1.5, 0.0, 1.0, -1.5])
STACK = ('<mujoco><worldbody>'
         '<body pos="0 0 0.3"><freejoint/><geom type="cylinder" size="0.05 0.08"/></body>'
         '<body pos="0 0 0.6"><freejoint/><geom type="box" size="0.1 0.1 0.05"/></body>'
         + "".join(f'<body pos="1 0 {0.06 + 0.11 * i:.2f}"><freejoint/><geom type="box" size="0.1 0.1 0.05"/></body>'
                   for i in range(3))
         + '</worldbody></mujoco>')


def build(gs, scene_name, n_envs, iterations):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01),
                     rigid_options=gs.options.RigidOptions(**({"iterations": iterations} if iterations else {})))
    scene.add_entity(gs.morphs.Plane())
    if scene_name == "go2":
        from sim.model_wheels import genesis_assets

        robot = scene.add_entity(gs.morphs.URDF(file=str(genesis_assets(fetch=True) / "urdf/go2/urdf/go2.urdf")))
        scene.build(n_envs=n_envs)
        dofs = [robot.get_joint(name).dof_idx_local for name in LEGS]
        qpos = np.tile(robot.get_qpos().numpy()[0], (n_envs, 1))
        qpos[:, 2] = 0.42
        qpos[:, 7:] = STAND
        robot.set_qpos(qpos)
        robot.set_dofs_kp(np.full((n_envs, 12), 20.0), dofs)
        robot.set_dofs_kv(np.full((n_envs, 12), 0.5), dofs)
        robot.control_dofs_position(np.tile(STAND, (n_envs, 1)), dofs)
        return scene, lambda: robot.get_dofs_velocity().numpy()[:, 3:6]  # the trunk's
    robot = scene.add_entity(gs.morphs.MJCF(file=STACK))
    scene.build(n_envs=n_envs)
    return scene, lambda: robot.get_dofs_velocity().numpy().reshape(n_envs, 5, 6)[:, :, 3:]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", default="go2", choices=["go2", "stack"])
    parser.add_argument("--envs", type=int, default=256)
    parser.add_argument("--settle", type=int, default=200)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=0, help="RigidOptions.iterations (0: the default)")
    args = parser.parse_args()

    import taichi as ti

    import sim as gs

    gs.init(backend=gs.cpu, logging_level="warning")
    scene, angular = build(gs, args.scene, args.envs, args.iterations)
    for _ in range(args.settle):
        scene.step()
    profile_steps(ti, scene, args.steps, args.envs, f"{args.scene}, {args.envs} envs, {args.steps} steps after {args.settle}")
    print(f"  largest angular speed of a free body: {np.abs(angular()).max():.1e} rad/s")


if __name__ == "__main__":
    main()
