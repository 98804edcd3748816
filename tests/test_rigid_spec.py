"""The specification's snippets with franka.xml, run as written (through the example script),
and the arm staying finite and at its home pose with gravity on and no ground."""

import runpy
from pathlib import Path

import numpy as np
import torch

import sim as gs

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "spec_basic_save_load.py"
HOME = np.array([0, -0.785, 0, -2.356, 0, 1.571, 0.785, 0.04, 0.04])


def test_basic_save_load_snippet(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the example moves into a temp folder; restored afterwards
    names = runpy.run_path(str(EXAMPLE), run_name="__main__")
    scene, scene2, robot2 = names["scene"], names["scene2"], names["robot2"]
    assert scene2.t == 100
    a, b = scene.get_state().arrays(), scene2.get_state().arrays()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    q = robot2.get_dofs_position().numpy()
    assert np.all(np.isfinite(q)) and np.abs(q - HOME).max() < 0.02


def test_rl_episode_and_selective_reset_snippets():
    N = 4
    scene = gs.Scene()
    robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    scene.build(n_envs=N)
    init_state = scene.get_state()
    for episode in range(2):
        scene.reset(state=init_state)
        for step in range(5):
            robot.control_dofs_position(torch.as_tensor(HOME) + 0.1 * torch.rand(N, 9) * torch.tensor([1.0] * 7 + [0, 0]))
            scene.step()
            done = robot.get_dofs_position()[:, 0] > 0.0005
            if done.any():
                done_envs = torch.where(done)[0].tolist()
                scene.reset(state=init_state, envs_idx=done_envs)
                assert torch.equal(robot.get_dofs_position()[done_envs],
                                   torch.from_numpy(init_state["RigidSolver.qpos"][done_envs]))
    scene.reset()
    scene.reset(envs_idx=[0, 2])
    scene.reset(state=init_state, envs_idx=[1, 3])
    assert np.array_equal(scene.get_state()["RigidSolver.qpos"], init_state["RigidSolver.qpos"])
