"""FEM: a clamped elastic beam sagging under its own weight next to an elastic ball dropped on
the floor, in 2 environments, compared with Euler-Bernoulli's tip deflection q L^4 / (8 E I).

In env 1 the clamp is switched off after 0.3 s: the beam falls and lands on the floor.
FEMOptions.damping (mass-proportional, 30/s here so that the beam settles fast) also slows the
ball's fall, like a strong air drag. Linear tetrahedra are stiffer in bending than beam theory
(shear locking): with 2 elements across the beam the deflection is about half of
Euler-Bernoulli's.

    python examples/fem_beam.py
"""

import numpy as np

import sim as gs

gs.init(backend=gs.cpu, precision="32")

length, width, E, rho = 0.4, 0.04, 1e7, 1000.0
steel_ish = gs.materials.FEM.Elastic(E=E, nu=0.3, rho=rho)
scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01),
                 fem_options=gs.options.FEMOptions(substeps=200, element_size=width / 2, damping=30.0,
                                                   floor_height=0.0))
beam = scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 0.5), size=(length, width, width)), material=steel_ish)
ball = scene.add_entity(gs.morphs.Sphere(pos=(0.5, 0.0, 0.2), radius=0.05),
                        material=gs.materials.FEM.Elastic(E=5e4, nu=0.4, rho=500.0))
scene.build(n_envs=2)
fem = scene.solvers["FEMSolver"]
print(f"{beam.n_elements + ball.n_elements} tets; substep {fem.substep_dt:.2e} s, "
      f"CFL estimate {fem.stable_substep():.2e} s")

clamped = beam.rest_pos[:, 0] < -length / 2 + 1e-6
tip = np.flatnonzero(beam.rest_pos[:, 0] > length / 2 - 1e-6)
beam.set_fixed(clamped)

euler_bernoulli = rho * 9.81 * width ** 2 * length ** 4 / (8 * E * width ** 4 / 12)
for second in range(1, 7):
    for _ in range(10):
        scene.step()
    if scene.t == 30:
        beam.set_fixed(clamped, False, envs_idx=[1])
    pos = scene.get_state()["FEMSolver.pos"]
    deflection = 0.5 - pos[:, beam.particles][:, tip, 2].mean(1)
    print(f"t={scene.t * 0.01:.1f} s  tip deflection / Euler-Bernoulli = {(deflection / euler_bernoulli).round(3)}  "
          f"ball lowest z = {pos[:, ball.particles, 2].min(1).round(4)}")
