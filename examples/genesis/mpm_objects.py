"""MPM: an elastic cube, a snow ball and a block of liquid falling onto the ground.

    python examples/genesis/mpm_objects.py [--steps 150]
"""

import argparse

import sim as gs


def main(steps: int = 150, grid_density: int = 32):
    gs.init(backend=gs.cpu)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=2e-3, substeps=5),
                     mpm_options=gs.options.MPMOptions(lower_bound=(-0.5, -0.5, 0.0), upper_bound=(0.5, 0.5, 1.0),
                                                       grid_density=grid_density),
                     show_viewer=False)
    scene.add_entity(gs.morphs.Plane())
    cube = scene.add_entity(gs.morphs.Box(pos=(-0.2, 0.0, 0.4), size=(0.15, 0.15, 0.15)),
                            material=gs.materials.MPM.Elastic(), surface=gs.surfaces.Default(color=(0.9, 0.5, 0.2)))
    snow = scene.add_entity(gs.morphs.Sphere(pos=(0.2, 0.0, 0.4), radius=0.08), material=gs.materials.MPM.Snow())
    liquid = scene.add_entity(gs.morphs.Box(pos=(0.0, 0.2, 0.3), size=(0.12, 0.12, 0.12)),
                              material=gs.materials.MPM.Liquid())
    scene.build()
    for _ in range(steps):
        scene.step()
    pos = scene.get_state()["MPMSolver.pos"]
    for name, entity in (("cube", cube), ("snow", snow), ("liquid", liquid)):
        print(f"{name:>6s} centre z = {pos[entity.particles, 2].mean():.3f} m")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=150)
    main(parser.parse_args().steps)
