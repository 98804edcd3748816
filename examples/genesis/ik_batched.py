"""Batched inverse kinematics: every env gets its own target for the hand (pointing down),
IK solves them all at once, and the PD controller drives each arm there.

    python examples/genesis/ik_batched.py [--n-envs 16] [--steps 200]
"""

import argparse

import numpy as np

import sim as gs
from sim.utils import geom as gu


def main(n_envs: int = 16, steps: int = 200):
    gs.init(backend=gs.cpu)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01), show_viewer=False)
    scene.add_entity(gs.morphs.Plane())
    franka = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    scene.build(n_envs=n_envs)
    hand = franka.get_link("hand")
    rng = np.random.default_rng(0)
    targets = rng.uniform((0.35, -0.3, 0.25), (0.65, 0.3, 0.6), size=(n_envs, 3))
    down = gu.xyz_to_quat(np.array([180.0, 0.0, 0.0]), rpy=True, degrees=True)  # hand pointing at the floor
    qpos = franka.inverse_kinematics(link=hand, pos=targets, quat=np.tile(down, (n_envs, 1)))
    qpos[:, -2:] = 0.04  # open the gripper
    franka.control_dofs_position(qpos)
    for _ in range(steps):
        scene.step()
    error = np.linalg.norm(hand.get_pos().numpy() - targets, axis=1)
    print(f"hand-target distance after {steps} steps: mean {error.mean():.4f} m, max {error.max():.4f} m")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-envs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    main(args.n_envs, args.steps)
