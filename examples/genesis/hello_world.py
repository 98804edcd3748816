"""Hello, world, the way a Genesis tutorial starts: a Franka on a plane, stepped, with the
viewer arguments Genesis scripts pass (accepted; there is no viewer here) and a camera that
records a short video instead.

    python examples/genesis/hello_world.py [--steps 200] [--video hello.mp4]
"""

import argparse

import sim as gs


def main(steps: int = 200, video: str | None = None):
    gs.init(backend=gs.cpu)
    scene = gs.Scene(
        sim_options=gs.options.SimOptions(dt=0.01),
        viewer_options=gs.options.ViewerOptions(camera_pos=(3.5, 0.0, 2.5), camera_lookat=(0.0, 0.0, 0.5),
                                                camera_fov=40, max_FPS=60),
        vis_options=gs.options.VisOptions(show_world_frame=True, world_frame_size=1.0, plane_reflection=True,
                                          ambient_light=(0.1, 0.1, 0.1)),
        renderer=gs.renderers.Rasterizer(),
        show_viewer=False,
    )
    scene.add_entity(gs.morphs.Plane())
    franka = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    cam = scene.add_camera(res=(320, 240), pos=(2.5, 1.5, 1.5), lookat=(0.0, 0.0, 0.4), fov=40, GUI=False)
    scene.build()
    if video:
        cam.start_recording()
    for _ in range(steps):
        scene.step()
        if video:
            cam.render()
    if video:
        print("wrote", cam.stop_recording(save_to_filename=video, fps=30))
    print("hand at", franka.get_link("hand").get_pos().tolist())


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--video", default=None)
    args = parser.parse_args()
    main(args.steps, args.video)
