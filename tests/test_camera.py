"""Cameras through MuJoCo's renderer (headless EGL): frames show the scene and follow the
robot, depth is in metres, segmentation labels entities, recording writes an mp4, and
particles are drawn."""

import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

import sim as gs  # noqa: E402


def build(n_envs):
    scene = gs.Scene(vis_options=gs.options.VisOptions(segmentation_level="entity"))
    scene.add_entity(gs.morphs.Plane(), surface=gs.surfaces.Rough(color=(0.5, 0.5, 0.5)))
    scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    scene.add_entity(gs.morphs.Box(pos=(0.5, 0.3, 0.05), size=(0.1, 0.1, 0.1)), surface=gs.surfaces.Default(color=(1, 0, 0)))
    scene.build(n_envs=n_envs)
    return scene


@pytest.fixture(scope="module")
def scene_and_cams():
    scene = build(2)
    top = scene.add_camera(res=(80, 60), pos=(0.5, 0.3, 2.0), lookat=(0.5, 0.3, 0.0), up=(0, 1, 0), fov=40)
    side = scene.add_camera(res=(80, 60), pos=(2.0, 1.0, 1.2), lookat=(0.3, 0.0, 0.4), fov=40)
    return scene, scene.entities[1], top, side


def test_depth_in_metres_and_segmentation(scene_and_cams):
    scene, _, top, _ = scene_and_cams
    rgb, depth, seg, normal = top.render(rgb=True, depth=True, segmentation=True)
    assert rgb.shape == (60, 80, 3) and rgb.dtype == np.uint8 and normal is None
    assert abs(depth[30, 40] - 1.9) < 1e-3  # the box top (z = 0.1) seen from z = 2 straight down
    assert abs(depth[2, 2] - 2.0) < 1e-3  # the floor: depth is along the view axis
    assert seg[30, 40] == 2 and seg[2, 2] == 0  # the box is entity 2, the floor entity 0
    assert rgb[30, 40, 0] > 150 and rgb[30, 40, 1] < 80  # drawn in its surface colour


def test_frames_follow_the_robot_and_record(scene_and_cams, tmp_path):
    scene, robot, _, side = scene_and_cams
    scene.reset()
    side.start_recording()
    first = side.render()[0]
    assert first.std() > 5  # not blank
    robot.set_dofs_position(np.array([1.2, 0.5]), dofs_idx_local=[0, 1], envs_idx=[1])
    assert np.array_equal(side.render(env_idx=0)[0], first)  # env 0 did not move
    moved = side.render(env_idx=1)[0]
    assert np.abs(moved.astype(int) - first.astype(int)).mean() > 1
    path = side.stop_recording(save_to_filename=str(tmp_path / "clip.mp4"), fps=10)
    import imageio.v3 as iio

    frames = iio.imread(path)
    assert frames.shape[0] == 3 and frames.shape[1:3] == (60, 80)
    with pytest.raises(ValueError, match="GUI"):
        scene.add_camera(GUI=True)


def test_env_video_redraws_an_env_from_its_state(scene_and_cams, tmp_path):
    """genesis_dist.env_video (the demo's and render_reach's videos): a scene built anew from the
    same function, given env 1's row of a state, draws what env 1 itself looks like."""
    from genesis_dist.env_video import EnvVideo

    scene, robot, _, side = scene_and_cams
    scene.reset()
    video = EnvVideo(build, env_idx=1, res=side.res, pos=side.pos, lookat=side.lookat, fov=side.fov)
    still = video.add(scene.get_state())
    robot.set_dofs_position(np.array([-1.0, 0.7]), dofs_idx_local=[0, 1], envs_idx=[1])
    moved = video.add(scene.get_state())
    assert np.abs(moved.astype(int) - still).mean() > 1
    assert np.abs(moved.astype(int) - side.render(env_idx=1)[0]).mean() < 0.5  # env 1 as its own camera sees it
    import imageio.v3 as iio

    frames = iio.imread(video.save(tmp_path / "env1.mp4", fps=10))
    assert frames.shape == (2, 60, 80, 3) and np.abs(frames[1].astype(int) - frames[0]).mean() > 1


def test_particles_are_drawn():
    scene = gs.Scene(sph_options=gs.options.SPHOptions(particle_size=0.05))
    scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 0.3), size=(0.2, 0.2, 0.2)), material=gs.materials.SPH.Liquid(),
                     surface=gs.surfaces.Water(color=(0.1, 0.3, 1.0)))
    cam = scene.add_camera(res=(64, 48), pos=(0.0, 0.0, 2.0), lookat=(0.0, 0.0, 0.0), up=(0, 1, 0), fov=30)
    scene.build()
    rgb, depth, _, _ = cam.render(depth=True)
    assert rgb[24, 32, 2] > 50 and rgb[24, 32, 2] > 3 * rgb[24, 32, 0]  # blue water in the middle
    assert 1.5 < depth[24, 32] < 1.8  # the top of the particle block (z ~ 0.4)
