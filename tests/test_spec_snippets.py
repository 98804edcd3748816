"""Every runnable snippet of the specification, as written, on the bundled franka."""

import filecmp
from pathlib import Path

import numpy as np
import pytest
import torch

import sim as gs
from spec_snippets import SPEC, spec_blocks

BLOCKS = spec_blocks()


def fresh_franka_scene():
    scene = gs.Scene()
    robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    return scene, robot


def test_spec_copy_matches_the_shared_spec_when_present():
    shared = Path(__file__).resolve().parents[2] / "shared" / "spec" / "checkpoints.md"
    if not shared.exists():
        pytest.skip("no ../shared/spec beside this checkout")
    assert filecmp.cmp(shared, SPEC, shallow=False)


def test_the_runnable_blocks_are_the_ones_we_run():
    assert set(BLOCKS) == {"Basic Save/Load", "State Objects", "RL Episode Resets", "Selective Environment Reset",
                           "Checkpoint File Format", "Serialization for Transfer"}


def test_spec_snippets_run_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(BLOCKS["Basic Save/Load"], ns)
    assert ns["scene"].t == 100 and ns["scene2"].t == 100
    for key, value in ns["scene"].get_state().arrays().items():
        np.testing.assert_array_equal(ns["scene2"].get_state()[key], value, err_msg=key)

    exec(BLOCKS["State Objects"], ns)
    assert ns["scene"].t == 100

    rng = torch.Generator().manual_seed(0)
    resets = []

    def get_observations():
        scene = ns["scene"]
        obs = torch.as_tensor(ns["robot"].get_dofs_position())
        done = torch.rand(scene.n_envs, generator=rng) < 0.2
        resets.append(int(done.sum()))
        return obs, torch.zeros(scene.n_envs), done

    ns["scene"], ns["robot"] = fresh_franka_scene()
    ns.update(N=16, num_episodes=2, episode_length=5, get_observations=get_observations, torch=torch)
    exec(BLOCKS["RL Episode Resets"], ns)
    assert sum(resets) > 0 and ns["scene"].t == 5

    ns["scene"], ns["robot"] = fresh_franka_scene()
    exec(BLOCKS["Selective Environment Reset"], ns)
    assert ns["scene"].n_envs == 16

    exec(BLOCKS["Serialization for Transfer"], ns)
    assert (tmp_path / "state.pkl").exists() and (tmp_path / "checkpoint.pkl").exists()
