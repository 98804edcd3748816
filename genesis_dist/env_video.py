"""A video of one env of a distributed scene, drawn in the driver from states it already has.

The shards hold the simulation; the driver builds the same scene once more with one env (the
same build function: the same entities, so the same state layout), gives that env the chosen
env's row of each state (scene.reset_rows) and renders it with a sim camera (MuJoCo's renderer;
headless through EGL, see sim.camera). Nothing here runs unless a video is asked for, so a run
without one pays nothing. Only the fields the local scene has are copied (a Task's buffers are
not drawn).
"""

from __future__ import annotations

import numpy as np

import sim as gs


class EnvVideo:
    """Record env `env_idx` of states from a scene built by `build_scene(n_envs)`."""

    def __init__(self, build_scene, env_idx: int = 0, res=(320, 240), pos=(2.0, 1.2, 1.3), lookat=(0.0, 0.0, 0.4),
                 fov=40.0):
        if not gs.is_initialized():
            gs.init(backend=gs.cpu)
        self.env_idx = int(env_idx)
        self.scene = build_scene(1)
        self.keys = sorted(self.scene.get_state().arrays())
        self.camera = self.scene.add_camera(res=res, pos=pos, lookat=lookat, fov=fov, GUI=False)
        self.camera.start_recording()
        self.n_frames = 0

    def add(self, state) -> np.ndarray:
        """Draw the env's row of `state` (a SimState or a dict of arrays, env axis first); returns the rgb frame."""
        rows = {k: np.asarray(state[k])[self.env_idx:self.env_idx + 1] for k in self.keys}
        self.scene.reset_rows(rows, [0])
        self.n_frames += 1
        return self.camera.render(rgb=True)[0]

    def save(self, path, fps: int = 30) -> str:
        """Write the frames drawn so far as a video (mp4 by its extension); returns the path."""
        return self.camera.stop_recording(save_to_filename=path, fps=fps)
