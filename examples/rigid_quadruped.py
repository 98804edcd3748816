"""The bundled quadruped on a plane, 4 envs: stand under the servos of its MJCF, then lower
the torso in two envs by moving the knee targets, and print the torso heights."""

import numpy as np

import sim as gs

gs.init(backend=gs.cpu)
scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01))
scene.add_entity(gs.morphs.Plane())
robot = scene.add_entity(gs.morphs.MJCF(file="quadruped.xml"))
scene.build(n_envs=4)

legs = np.arange(6, 18)          # dofs 0-5 are the free joint of the torso
stand = robot.get_dofs_position()[0, legs].numpy()
for _ in range(100):
    scene.step()
print("standing torso heights", robot.get_link("torso").get_pos()[:, 2])

crouch = stand.copy()
crouch[1::3] += 0.3               # hip flexion
crouch[2::3] -= 0.6               # knees
robot.control_dofs_position(crouch, dofs_idx_local=legs, envs_idx=[1, 3])
for _ in range(100):
    scene.step()
print("torso heights after envs 1 and 3 crouch", robot.get_link("torso").get_pos()[:, 2])
