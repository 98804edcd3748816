"""The shipped FrankaReach task on the rigid solver through gd.VecEnv: observations and rewards
agree with the robot, targets do not depend on the sharding, and a reshard continues bit for bit."""

import numpy as np
import torch

import genesis_dist as gd
from genesis_dist.tasks import FrankaReach
from local_ray import local_ray_fixture

CFG = {"episode_length": 4, "seed": 3}


local_ray = local_ray_fixture()


def rollout(env, first, n):
    out = []
    for k in range(first, first + n):
        actions = torch.as_tensor(np.random.default_rng(k).uniform(-1, 1, (env.num_envs, 7)), dtype=torch.float32)
        obs, reward, done, extras = env.step(actions)
        out.append((obs["policy"].clone(), reward.clone(), done.clone(), extras["time_outs"].clone()))
    return out


def test_reach_observes_the_hand_and_reshards_bit_exact(tmp_path):
    with gd.VecEnv(FrankaReach, n_envs=4, n_shards=2, task_cfg=CFG, deterministic=True) as env:
        assert env.num_actions == 7 and env.max_episode_length == 4
        first_targets = env.scene.get_state()["Task.target"]
        obs, reward, _, _ = env.step(torch.zeros(4, 7))
        policy = obs["policy"].numpy()
        hand = env.scene.gather(lambda s: s.entities[1].get_link("hand").get_pos().numpy())
        np.testing.assert_array_equal(policy[:, :9], env.scene.get_state()["RigidSolver.qpos"])
        np.testing.assert_allclose(policy[:, 18:21], hand, atol=1e-6)
        np.testing.assert_allclose(policy[:, 21:24], first_targets)
        np.testing.assert_allclose(reward.numpy(), -np.linalg.norm(hand - first_targets, axis=1), rtol=1e-5)

        rollout(env, 0, 2)
        env.save_checkpoint(tmp_path / "reach.pkl")
        reference = rollout(env, 10, 6)  # crosses episode ends: in-place resets with new targets
        assert any(step[3].any() for step in reference)

    with gd.VecEnv(FrankaReach, n_envs=4, n_shards=1, task_cfg=CFG, deterministic=True) as other:
        np.testing.assert_array_equal(other.scene.get_state()["Task.target"], first_targets)
        other.load_checkpoint(tmp_path / "reach.pkl")
        for got, want in zip(rollout(other, 10, 6), reference):
            for a, b in zip(got, want):
                assert torch.equal(a, b)
