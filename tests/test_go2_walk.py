"""Go2Walk on Genesis's real go2.urdf (from the genesis-world wheel), in-process (the VecEnv and
rsl-rl path runs in test_genesis_examples): it stands under its PD servos, a tilted base ends
the episode, tracking rewards what the command asks, commands follow (seed, env, episode)."""

import numpy as np
import pytest

from sim import model_wheels
from genesis_dist.tasks import Go2Walk
from genesis_dist.tasks.go2_walk import STAND


@pytest.fixture(scope="module")
def task():
    try:
        model_wheels.genesis_assets()
    except model_wheels.ModelFetchError as e:
        pytest.skip(f"Genesis's assets are not available: {e}")
    return Go2Walk(2, {"seed": 3, "episode_length": 500})


def test_stands_under_pd_with_zero_actions(task):
    for _ in range(50):  # one second
        out = task.step(np.zeros((2, 12), np.float32))
        assert not out["done"].any()
    obs = task.observations()["policy"]
    assert obs.shape == (2, 45)
    height = task.robot.get_pos().numpy()[:, 2]
    assert ((height > 0.25) & (height < 0.35)).all(), height
    np.testing.assert_allclose(obs[:, 3:6], np.tile([0, 0, -1], (2, 1)), atol=0.05)  # gravity: level within 3 degrees
    # kp = 20 servos hold the weight with a sag (the calves most: about 0.4 rad)
    np.testing.assert_allclose(obs[:, 9:21], task.robot.get_dofs_position(task.dofs).numpy() - STAND, atol=1e-6)
    np.testing.assert_allclose(obs[:, 9:21], 0, atol=0.5)


def test_tracking_rewards_the_commanded_velocity(task):
    task.commands[:] = [[0.0, 0.0, 0.0], [1.0, 0.0, 1.0]]  # both stand still: env 0 does as told
    reward, fallen = task.evaluate()
    assert not fallen.any() and reward[0] > reward[1] + 0.01, reward


def test_a_tilted_base_ends_the_episode(task):
    task.robot.set_dofs_velocity(np.array([[0, 0, 0, 8.0, 0, 0], [0, 0, 0, 0, 0, 0]]), dofs_idx_local=range(6))
    for _ in range(5):  # a roll rate of 8 rad/s tilts env 0 past 10 degrees within 0.1 s
        out = task.step(np.zeros((2, 12), np.float32))
        if out["done"][0]:
            break
    assert out["done"][0] and not out["time_outs"][0] and not out["done"][1]
    assert task.episodes.tolist() == [1, 0] and task.episode_length[0] == 0


def test_commands_depend_on_seed_env_and_episode_only(task):
    before = task.commands.copy()
    task.reset_envs(np.array([1]))
    rng = np.random.default_rng([3, 1, 1, 0])  # seed 3, env 1, its second episode, first draw
    np.testing.assert_allclose(task.commands[1], rng.uniform([-1, -0.5, -1], [1, 0.5, 1]), rtol=1e-6)
    assert not np.allclose(task.commands[1], before[1])
    np.testing.assert_array_equal(task.commands[0], before[0])
    assert task.buffer_arrays()["Task.commands"].shape == (2, 3)


def test_bad_cfg_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown cfg keys.*'speed'"):
        Go2Walk(1, {"speed": 1.0})
    with pytest.raises(ValueError, match="unknown reward terms.*'jump'"):
        Go2Walk(1, {"reward_scales": {"jump": 1.0}})
    with pytest.raises(ValueError, match="command_ranges"):
        Go2Walk(1, {"command_ranges": ((1.0, -1.0), (0, 0), (0, 0))})
