"""SPH: a block of water dropped into a box, Genesis-style (gs.materials.SPH.Liquid on a Box
morph, with Genesis's viscosity mu and surface tension gamma), drawn by a camera into a video if
asked.

    python examples/genesis/sph_liquid.py [--steps 200] [--video sph.mp4]
"""

import argparse

import sim as gs


def main(steps: int = 200, video: str | None = None, particle_size: float = 0.02):
    gs.init(backend=gs.cpu)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=4e-3, substeps=1),
                     sph_options=gs.options.SPHOptions(lower_bound=(-0.5, -0.5, 0.0), upper_bound=(0.5, 0.5, 1.0),
                                                       particle_size=particle_size),
                     vis_options=gs.options.VisOptions(visualize_sph_boundary=True), show_viewer=False)
    scene.add_entity(gs.morphs.Plane())
    water = scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 0.65), size=(0.3, 0.3, 0.3)),
                             material=gs.materials.SPH.Liquid(mu=0.005, gamma=0.01, sampler="regular"),
                             surface=gs.surfaces.Water(color=(0.4, 0.8, 1.0)))
    cam = scene.add_camera(res=(320, 240), pos=(1.6, 1.2, 1.2), lookat=(0.0, 0.0, 0.3), fov=40)
    scene.build()
    if video:
        cam.start_recording()
    for _ in range(steps):
        scene.step()
        if video:
            cam.render()
    if video:
        print("wrote", cam.stop_recording(save_to_filename=video, fps=50))
    z = water.get_particles_pos()[:, 2]
    print(f"water: {len(z)} particles, top at z={z.max():.3f} m, bottom at z={z.min():.3f} m")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--video", default=None)
    args = parser.parse_args()
    main(args.steps, args.video)
