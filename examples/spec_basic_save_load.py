"""The specification's first snippet ("Basic Save/Load"), as written, on the bundled franka.xml:
no ground plane, gravity on; the arm holds its home pose under its position servos."""

import os
import tempfile

import sim as gs

folder = tempfile.mkdtemp()
os.chdir(folder)

scene = gs.Scene()
robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
scene.build()

# Simulate
for _ in range(100):
    scene.step()

# Save checkpoint
scene.save_checkpoint("checkpoint.pkl")

# Load in new scene
scene2 = gs.Scene()
robot2 = scene2.add_entity(gs.morphs.MJCF(file="franka.xml"))
scene2.build()
scene2.load_checkpoint("checkpoint.pkl")

print("step index", scene2.t)
print("franka dofs after load", robot2.get_dofs_position())
print("hand position", robot2.get_link("hand").get_pos())
