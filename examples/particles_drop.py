"""MPM and SPH bodies dropped on a ground plane in 4 environments: an elastic cube, a snow ball
and an MPM liquid block, plus an SPH liquid block. Env 1 switches the snow ball off half-way;
a partial reset brings it back. The solvers do not couple with each other (yet): each body
only meets its own solver's bodies, the domain walls and the plane.

    python examples/particles_drop.py
"""

import os
import tempfile

import numpy as np

import sim as gs

gs.init(backend=gs.cpu, precision="32")

scene = gs.Scene(
    sim_options=gs.options.SimOptions(dt=0.01),
    mpm_options=gs.options.MPMOptions(lower_bound=(-0.5, -0.5, 0.0), upper_bound=(0.5, 0.5, 1.0), grid_density=32),
    sph_options=gs.options.SPHOptions(lower_bound=(-0.5, -0.5, 0.0), upper_bound=(0.5, 0.5, 1.0), particle_size=0.02),
)
scene.add_entity(gs.morphs.Plane(pos=(0.0, 0.0, 0.05)))
cube = scene.add_entity(gs.morphs.Box(pos=(-0.2, -0.2, 0.4), size=(0.15, 0.15, 0.15)), gs.materials.MPM.Elastic())
snow = scene.add_entity(gs.morphs.Sphere(pos=(0.2, -0.2, 0.4), radius=0.08), gs.materials.MPM.Snow())
water = scene.add_entity(gs.morphs.Box(pos=(0.0, 0.2, 0.3), size=(0.15, 0.15, 0.15)), gs.materials.MPM.Liquid())
sph_water = scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 0.5), size=(0.12, 0.12, 0.12)), gs.materials.SPH.Liquid())
scene.build(n_envs=4)


def report(label):
    state = scene.get_state()
    mpm, sph = state["MPMSolver.pos"], state["SPHSolver.pos"]
    print(f"{label:>24s}  t={scene.t:3d}  cube z={mpm[:, cube.particles, 2].mean(1).round(3)}  "
          f"snow z={mpm[:, snow.particles, 2].mean(1).round(3)}  "
          f"SPH z={sph[:, sph_water.particles, 2].mean(1).round(3)}  "
          f"min Jp={state['MPMSolver.Jp'][:, snow.particles].min(1).round(3)}")


report("built")
for _ in range(25):
    scene.step()
mid = scene.get_state()
snow.set_active(False, envs_idx=[1])  # frozen in place in env 1 only
for _ in range(35):
    scene.step()
report("snow off in env 1")

scene.reset(state=mid, envs_idx=[1])  # env 1 back to t=25, snow active again
report("env 1 reset to t=25")

path = os.path.join(tempfile.mkdtemp(), "particles.pkl")
scene.save_checkpoint(path)
scene.load_checkpoint(path)
print(f"checkpoint {os.path.getsize(path) / 1e6:.2f} MB; state fields:",
      sorted(k for k in scene.get_state().keys() if not k.startswith("Rigid")))
assert np.isfinite(scene.get_state()["MPMSolver.pos"]).all()
