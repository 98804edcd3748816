"""Controlling a robot, Genesis-style: joints by name, gains and force ranges, a hard reset,
then PD position control, velocity control and force control in turn, printing what the
controllers command.

    python examples/genesis/control_franka.py [--steps 750]
"""

import argparse

import numpy as np

import sim as gs


def main(steps: int = 750):
    gs.init(backend=gs.cpu)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01), show_viewer=False,
                     rigid_options=gs.options.RigidOptions(enable_self_collision=False, enable_joint_limit=True))
    scene.add_entity(gs.morphs.Plane())
    franka = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    scene.build()

    joint_names = ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "joint7", "finger_joint1",
                   "finger_joint2"]
    dofs_idx = [franka.get_joint(name).dof_idx_local for name in joint_names]
    franka.set_dofs_kp(np.array([4500, 4500, 3500, 3500, 2000, 2000, 2000, 100, 100]), dofs_idx)
    franka.set_dofs_kv(np.array([450, 450, 350, 350, 200, 200, 200, 10, 10]), dofs_idx)
    franka.set_dofs_force_range(np.array([-87, -87, -87, -87, -12, -12, -12, -100, -100]),
                                np.array([87, 87, 87, 87, 12, 12, 12, 100, 100]), dofs_idx)

    phases = [(0.0, np.array([1, 1, 0, 0, 0, 0, 0, 0.04, 0.04])), (0.2, np.array([-1, 0.8, 1, -2, 1, 0.5, -0.5, 0.04, 0.04])),
              (0.4, np.array([0, 0, 0, 0, 0, 0, 0, 0, 0]))]
    for i in range(steps):
        t = i / max(steps, 1)
        if i == 0:  # a hard reset of the pose
            franka.set_dofs_position(phases[0][1], dofs_idx)
        elif t < 0.6:
            target = [p for start, p in phases if t >= start][-1]
            franka.control_dofs_position(target, dofs_idx)
        elif t < 0.8:  # joint 1 by velocity, the rest by position
            franka.control_dofs_velocity(np.array([1.0]), dofs_idx[:1])
            franka.control_dofs_position(np.zeros(8), dofs_idx[1:])
        else:  # joint 1 by force
            franka.control_dofs_force(np.array([0.0]), dofs_idx[:1])
        if i % max(steps // 5, 1) == 0:
            print(f"step {i:4d} control force {franka.get_dofs_control_force(dofs_idx).numpy().round(1)}")
        scene.step()
    print("final dofs", franka.get_dofs_position(dofs_idx).numpy().round(3))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=750)
    main(parser.parse_args().steps)
