"""gd.VecEnv + Task on a local Ray: rsl-rl's VecEnv interface, Task buffers in checkpoints and
resharding, bad actions, and a short OnPolicyRunner training run."""

import sys

import cloudpickle
import numpy as np
import pytest
import torch
from rsl_rl.env import VecEnv as RslVecEnv
from rsl_rl.runners import OnPolicyRunner

import genesis_dist as gd
import sim as gs
from genesis_dist import step_channel
from genesis_dist.ppo_config import ppo_config
from local_ray import local_ray_fixture
from sim import checkpoint

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # shards never import this module


class PointTargetTask(gd.Task):
    """Toy points fall; the action should match a per-env target drawn from (global env, episode)."""

    num_actions = 2
    max_episode_length = 6
    buffers = ("target", "episodes")

    def build_scene(self, n_envs):
        import toy_solver  # noqa: F401  (registers ToySolver in the shard)

        scene = gs.Scene()
        scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 0.2)), material=gs.materials.Toy.Points(n_points=2))
        scene.build(n_envs=n_envs)
        # ToySolver's build-time state depends on the env's index in its scene, which changes with
        # the layout: start every episode from env 0's row so a reshard keeps trajectories exact
        self.start = {k: v[:1] for k, v in scene.get_state().arrays().items()}
        self.episodes = np.zeros(n_envs, np.int32)
        self.target = np.zeros((n_envs, 2), np.float32)
        self._draw_targets(np.arange(n_envs))
        return scene

    def _draw_targets(self, envs_idx):
        for i in envs_idx:
            rng = np.random.default_rng([self.cfg.get("seed", 0), self.env_offset + i, self.episodes[i]])
            self.target[i] = rng.uniform(-1, 1, 2)

    def apply_actions(self, actions):
        if self.env_offset > 0 and (actions > 5).any():
            raise ValueError("an action beyond 5")
        self.actions = actions

    def evaluate(self):
        error = np.square(self.actions - self.target).sum(axis=1)
        return -error, error < 0.01

    def observations(self):
        height = self.scene.get_state()["ToySolver.pos"][:, :, 2]
        return {"policy": np.concatenate([self.target, height], axis=1).astype(np.float32)}

    def reset_envs(self, envs_idx):
        self.scene.reset_rows({k: np.repeat(v, len(envs_idx), axis=0) for k, v in self.start.items()}, envs_idx)
        self.episodes[envs_idx] += 1
        self._draw_targets(envs_idx)


local_ray = local_ray_fixture()


@pytest.fixture(scope="module")
def env():
    with gd.VecEnv(PointTargetTask, n_envs=10, n_shards=3, task_cfg={"seed": 1}, deterministic=True) as env:
        yield env


def actions_for(step, n=10):
    return torch.as_tensor(np.random.default_rng(step).uniform(-1, 1, (n, 2)), dtype=torch.float32)


def rollout(env, first_step, n_steps):
    out = []
    for k in range(first_step, first_step + n_steps):
        obs, reward, done, extras = env.step(actions_for(k))
        out.append((obs["policy"].clone(), reward.clone(), done.clone(), extras["time_outs"].clone()))
    return out


def test_follows_rsl_rl_vec_env_interface(env):
    assert isinstance(env, RslVecEnv)
    assert env.num_envs == 10 and env.num_actions == 2 and env.max_episode_length == 6
    assert env.scene.layout.sizes == [4, 3, 3]
    obs = env.get_observations()
    assert obs["policy"].shape == (10, 4) and obs["policy"].dtype == torch.float32
    obs, reward, done, extras = env.step(torch.zeros(10, 2))
    assert reward.shape == (10,) and reward.dtype == torch.float32
    assert done.dtype == torch.bool and extras["time_outs"].dtype == torch.bool
    # the targets in the observation are each env's own, in global order
    targets = env.scene.get_state()["Task.target"]
    np.testing.assert_array_equal(obs["policy"][:, :2].numpy(), targets)
    np.testing.assert_allclose(reward.numpy(), -np.square(targets).sum(axis=1), rtol=1e-6)


def test_episodes_time_out_and_reset_in_place(env):
    env.episode_length_buf = torch.zeros(10, dtype=torch.long)
    env.episode_length_buf = torch.arange(10) % 3  # what OnPolicyRunner does with init_at_random_ep_len
    np.testing.assert_array_equal(env.scene.get_state()["Task.episode_length"], np.arange(10) % 3)
    before = env.scene.get_state()["Task.episodes"]
    for k in range(4):
        _, _, done, extras = env.step(actions_for(100 + k))
    timed_out = extras["time_outs"].numpy()
    np.testing.assert_array_equal(timed_out, np.arange(10) % 3 == 2)
    assert done[extras["time_outs"]].all()
    state = env.scene.get_state()
    assert (state["Task.episodes"][timed_out] > before[timed_out]).all()
    assert (env.episode_length_buf[extras["time_outs"]] == 0).all()


@pytest.mark.parametrize("value", [2**40, -1, 2**24])
def test_episode_lengths_the_shards_cannot_hold_are_refused(env, value):
    """(2**40 used to wrap to 0 in the shards' int32 buffers while the VecEnv reported 2**40.)"""
    before = env.episode_length_buf.clone()
    lengths = torch.zeros(10, dtype=torch.long)
    lengths[4] = value
    with pytest.raises(ValueError, match=rf"episode lengths must be in 0\.\.16777215, got values from {min(value, 0)} to {max(value, 0)}"):
        env.episode_length_buf = lengths
    assert torch.equal(env.episode_length_buf, before)
    np.testing.assert_array_equal(env.scene.get_state()["Task.episode_length"], before.numpy())


def test_wrong_actions_are_refused_before_any_shard_steps(env):
    t = env.scene.t
    with pytest.raises(ValueError, match=r"actions have shape \(10, 3\), expected \(10, 2\)"):
        env.step(torch.zeros(10, 3))
    with pytest.raises(TypeError, match="torch.Tensor"):
        env.step(np.zeros((10, 2)))
    assert env.scene.t == t


def test_task_buffers_are_checkpointed_and_reshard(env, tmp_path):
    rollout(env, 200, 5)
    path = tmp_path / "env.pkl"
    env.save_checkpoint(path)
    data = checkpoint.read(path)
    assert {"Task.episode_length", "Task.target", "Task.episodes"} <= set(data["arrays"])
    assert data["arrays"]["Task.target"].shape == (10, 2) and data["meta"]["n_envs"] == 10
    reference = rollout(env, 300, 9)
    # stepped through Ray calls here, through the socket connections in `env`: the same rollout
    with gd.VecEnv(PointTargetTask, n_envs=10, n_shards=2, task_cfg={"seed": 1}, deterministic=True,
                   step_transport="ray") as other:
        other.load_checkpoint(path)
        np.testing.assert_array_equal(other.episode_length_buf.numpy(), data["arrays"]["Task.episode_length"])
        for got, want in zip(rollout(other, 300, 9), reference):
            for a, b in zip(got, want):
                assert torch.equal(a, b)
    plain = PointTargetTask(10, {"seed": 1}).scene  # the same scene in this process, without the task
    with pytest.raises(gs.CheckpointError, match="scene.task is in the file but not in the scene"):
        plain.load_checkpoint(path)


def test_on_policy_runner_trains_unchanged(env, tmp_path):
    cfg = ppo_config(num_steps_per_env=6, hidden_dims=(16, 16), num_learning_epochs=2, num_mini_batches=2)
    runner = OnPolicyRunner(env, cfg, log_dir=None, device="cpu")
    before = [p.detach().clone() for p in runner.alg.get_policy().parameters()]
    runner.learn(num_learning_iterations=2, init_at_random_ep_len=True)
    after = list(runner.alg.get_policy().parameters())
    assert runner.current_learning_iteration == 1
    assert any(not torch.equal(a, b) for a, b in zip(after, before))
    assert all(torch.isfinite(p).all() for p in after)


def test_an_error_in_a_task_names_its_shard(env, tmp_path):
    env.save_checkpoint(tmp_path / "before.pkl")
    bad = torch.zeros(10, 2)
    bad[8, 0] = 9.0  # shard 2 holds envs 7..9
    with pytest.raises(gd.ShardError, match=r"shard 2 of 3 \(envs 7\.\.9\): the task's step raised "
                                            r"ValueError: an action beyond 5") as info:
        env.step(bad)
    assert info.value.shard == 2 and isinstance(info.value.cause, ValueError)
    env.load_checkpoint(tmp_path / "before.pkl")  # the other shards did step: restore them


def test_an_interrupted_step_leaves_no_reply_behind(env, tmp_path, monkeypatch):
    """Ctrl-C while the shards' replies are on their way: the next steps must not read them."""
    env.save_checkpoint(tmp_path / "before.pkl")
    reference = rollout(env, 400, 3)
    env.load_checkpoint(tmp_path / "before.pkl")
    receive_into = step_channel.CoordinatorLink.receive_into

    def interrupted(link, out, alive, deadline):
        monkeypatch.setattr(step_channel.CoordinatorLink, "receive_into", receive_into)
        raise KeyboardInterrupt

    monkeypatch.setattr(step_channel.CoordinatorLink, "receive_into", interrupted)
    with pytest.raises(KeyboardInterrupt):
        env.step(actions_for(0))
    env.load_checkpoint(tmp_path / "before.pkl")  # the shards did step: restore them
    for got, want in zip(rollout(env, 400, 3), reference):
        for a, b in zip(got, want):
            assert torch.equal(a, b)
