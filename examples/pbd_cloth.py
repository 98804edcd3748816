"""A PBD cloth pinned at two corners and a block of loose particles, in 3 environments.

Env 0 keeps both pins, env 1 lets one corner go half-way, env 2 never pins the cloth (it falls
onto the floor with the particles). Then env 1 is reset to the half-way state, pins and all,
and the scene goes through a checkpoint file. PBD bodies land on the scene's gs.morphs.Plane
(a static floor for them) but do not meet other solvers' bodies.

    python examples/pbd_cloth.py
"""

import os
import tempfile

import numpy as np

import sim as gs

gs.init(backend=gs.cpu, precision="32")

scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01),
                 pbd_options=gs.options.PBDOptions(substeps=10, damping=1.0, particle_size=0.02))
scene.add_entity(gs.morphs.Plane())
nx, ny = 21, 21
cloth = scene.add_entity(gs.morphs.Cloth(pos=(0.0, 0.0, 1.0), size=(0.6, 0.6), res=(nx, ny)),
                         material=gs.materials.PBD.Cloth(rho=0.2, bending_compliance=1e-3))
sand = scene.add_entity(gs.morphs.Box(pos=(1.0, 0.0, 0.3), size=(0.1, 0.1, 0.1)),
                        material=gs.materials.PBD.Particle())
scene.build(n_envs=3)

far_corners = [(ny - 1) * nx, ny * nx - 1]           # the two corners at y = +0.3
cloth.set_free(far_corners, False, envs_idx=[0, 1])


def report(label):
    pos = scene.get_state()["PBDSolver.pos"]
    lowest = pos[:, cloth.particles, 2].min(1)
    print(f"{label:>28s}  t={scene.t:3d}  cloth lowest z={lowest.round(3)}  "
          f"sand top z={pos[:, sand.particles, 2].max(1).round(3)}")


report("built, 2 corners pinned")
for _ in range(60):
    scene.step()
mid = scene.get_state()
report("hanging")
cloth.set_free([far_corners[0]], True, envs_idx=[1])   # env 1 lets one corner go
for _ in range(60):
    scene.step()
report("env 1 released a corner")

scene.reset(state=mid, envs_idx=[1])                 # env 1 back to t=60, both pins again
report("env 1 reset to t=60")
print("pins in env 1:", scene.get_state()["PBDSolver.free"][1, far_corners])

path = os.path.join(tempfile.mkdtemp(), "cloth.pkl")
scene.save_checkpoint(path)
scene.load_checkpoint(path)
print(f"checkpoint {os.path.getsize(path) / 1e3:.0f} kB")
assert np.isfinite(scene.get_state()["PBDSolver.pos"]).all()
