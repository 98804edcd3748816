"""Cloth (PBD), Genesis-style: a sheet pinned at two corners found with
find_closest_particle / fix_particles, hanging under gravity, in two envs.

    python examples/genesis/cloth.py [--steps 200]
"""

import argparse

import sim as gs


def main(steps: int = 200, res: int = 21):
    gs.init(backend=gs.cpu)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=1e-2),
                     pbd_options=gs.options.PBDOptions(substeps=10, particle_size=0.02), show_viewer=False)
    scene.add_entity(gs.morphs.Plane())
    cloth = scene.add_entity(gs.morphs.Cloth(pos=(0.0, 0.0, 1.0), size=(0.6, 0.6), res=(res, res)),
                             material=gs.materials.PBD.Cloth(), surface=gs.surfaces.Default(color=(0.2, 0.4, 0.8)))
    scene.build(n_envs=2)
    for corner in ((-0.3, -0.3, 1.0), (0.3, -0.3, 1.0)):
        cloth.fix_particles(cloth.find_closest_particle(corner, envs_idx=[0]), envs_idx=[0])  # env 1 stays loose
    for _ in range(steps):
        scene.step()
    z = cloth.get_particles_pos()[..., 2]
    print("lowest cloth point per env:", z.min(dim=1).values.numpy().round(3))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    main(parser.parse_args().steps)
