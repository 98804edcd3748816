"""Ray Tune: genesis_dist.tune.train_ppo reports (the mean episode return too) and checkpoints, and a
trial that fails resumes from its last checkpoint and ends exactly where an uninterrupted trial ends."""

import os
import sys

import cloudpickle
import numpy as np
import pytest
import torch
from ray import tune

from genesis_dist.training import ENV_FILE, POLICY_FILE
from genesis_dist.tune import train_ppo
from sim import checkpoint
from local_ray import local_ray_fixture
from test_dist_vec_env import PointTargetTask

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # trials and shards never import this module
PPO = dict(num_steps_per_env=4, hidden_dims=(8, 8), num_learning_epochs=1, num_mini_batches=1)


class FlakyPointTarget(PointTargetTask):
    """Raises once, when the scene reaches t == cfg["fail_at"] and cfg["marker"] does not exist yet."""

    def apply_actions(self, actions):
        marker = self.cfg.get("marker")
        if marker and self.scene.t == self.cfg["fail_at"] and not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("injected failure")
        super().apply_actions(actions)


local_ray = local_ray_fixture()


def fit(tmp_path, name, task_cfg, max_failures=0):
    config = {"task": FlakyPointTarget, "n_envs": 6, "n_shards": 2, "task_cfg": task_cfg, "iterations": 4,
              "checkpoint_every": 1, "ppo": PPO, "scene": {"deterministic": True}}
    tuner = tune.Tuner(tune.with_resources(train_ppo, {"cpu": 1}), param_space=config,
                       run_config=tune.RunConfig(name=name, storage_path=str(tmp_path),
                                                 failure_config=tune.FailureConfig(max_failures=max_failures)))
    (result,) = tuner.fit()
    assert result.error is None, result.error
    return result


def saved(result):
    with result.checkpoint.as_directory() as folder:
        policy = torch.load(os.path.join(folder, POLICY_FILE), weights_only=False)
        env = checkpoint.read(os.path.join(folder, ENV_FILE))
    return policy, env


def test_a_failed_trial_resumes_from_its_checkpoint_and_ends_the_same(tmp_path):
    steady = fit(tmp_path, "steady", {"seed": 1})
    marker = tmp_path / "failed-once"
    flaky = fit(tmp_path, "flaky", {"seed": 1, "marker": str(marker), "fail_at": 6}, max_failures=1)
    assert marker.exists()  # the failure did happen, in the second iteration (t = 4..8)
    for result in (steady, flaky):
        assert result.metrics["iteration"] == 4 and result.metrics["env_steps"] == 4 * 4 * 6
        # episodes (6 steps at most) have ended by then; rewards are -squared error, so returns are < 0
        assert result.metrics["mean_reward"] < 0 <= result.metrics["mean_reward_sem"], result.metrics
    assert steady.metrics_dataframe["mean_reward"].iloc[1:].notna().all()  # reported from iteration 2 on
    (policy_a, env_a), (policy_b, env_b) = saved(steady), saved(flaky)
    assert policy_a["iter"] == policy_b["iter"] == 4
    for part in ("actor_state_dict", "critic_state_dict"):
        for key, value in policy_a[part].items():
            assert torch.equal(value, policy_b[part][key]), (part, key)
    assert env_a["step_index"] == env_b["step_index"] == 16
    for key, value in env_a["arrays"].items():
        np.testing.assert_array_equal(value, env_b["arrays"][key], err_msg=key)


def test_a_config_with_unknown_keys_is_refused_by_name():
    with pytest.raises(ValueError, match=r"missing \['n_envs'\], unknown \['n_env'\]"):
        train_ppo({"task": PointTargetTask, "n_env": 6})
