"""genesis_dist.train: data-parallel PPO on Ray Train (gloo on CPU) with FrankaReach.

One steady two-worker run is shared by the tests: its replicas stay identical, its checkpoints are
one merged env file in our format, a run whose worker is killed mid-run ends bit-identical to it, and
its checkpoints resume on 3 workers, on 1, and in the central VecEnv (and a central run's on 1
worker, bit-identical to the central run itself). It learns as well per env-step as the central run.
"""

import math
import os
import signal
import sys

import cloudpickle
import numpy as np
import pytest
import torch

from genesis_dist import training
from genesis_dist.tasks import FrankaReach
from genesis_dist.train import train
from local_ray import local_ray_fixture
from sim import checkpoint

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers never import this module

N_ENVS, ITERATIONS = 6, 8
PPO = dict(num_steps_per_env=16, hidden_dims=(32, 32), num_learning_epochs=2, num_mini_batches=2, learning_rate=3e-3)
TASK_CFG = {"episode_length": 16, "seed": 2}


class KilledReach(FrankaReach):
    """FrankaReach whose process SIGKILLs itself once, in the worker that holds env 3, when the scene
    reaches t == cfg["kill_at"] and the file cfg["marker"] does not exist yet (it creates it first)."""

    def __init__(self, n_envs, cfg=None, env_offset=0):
        cfg = dict(cfg or {})
        self.marker, self.kill_at = cfg.pop("marker", None), cfg.pop("kill_at", None)
        super().__init__(n_envs, cfg, env_offset)

    def apply_actions(self, actions):
        owns_env_3 = self.env_offset <= 3 < self.env_offset + self.n_envs
        if self.marker and owns_env_3 and self.scene.t == self.kill_at and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        super().apply_actions(actions)


local_ray = local_ray_fixture(num_cpus=4)


def run(out, workers, mode="data-parallel", **kwargs):
    kwargs = {"iterations": ITERATIONS, "checkpoint_every": 2, "task_cfg": TASK_CFG, "ppo": PPO,
              "deterministic": True, "tensorboard": False, **kwargs}
    return train(KilledReach, N_ENVS, workers, mode=mode, out=str(out), **kwargs)


def saved(folder):
    policy = torch.load(os.path.join(folder, training.POLICY_FILE), weights_only=False)
    return policy, checkpoint.read(os.path.join(folder, training.ENV_FILE)), torch.load(os.path.join(folder, training.RNG_FILE))


def assert_same_run(folder_a, folder_b):
    (policy_a, env_a, rng_a), (policy_b, env_b, rng_b) = saved(folder_a), saved(folder_b)
    assert policy_a["iter"] == policy_b["iter"]
    for part in ("actor_state_dict", "critic_state_dict"):
        for key, value in policy_a[part].items():
            assert torch.equal(value, policy_b[part][key]), (part, key)
    assert env_a["step_index"] == env_b["step_index"]
    for key, value in env_a["arrays"].items():
        np.testing.assert_array_equal(value, env_b["arrays"][key], err_msg=key)
    assert torch.equal(rng_a, rng_b)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def steady(runs):
    return run(runs / "steady", 2, tensorboard=True)


@pytest.fixture(scope="module")
def central(runs):
    return run(runs / "central", 2, mode="central")


def checkpoint_of(result, iteration):
    return os.path.join(os.path.dirname(result["checkpoint"]), f"checkpoint_{iteration:06d}")


def test_replicas_stay_identical_and_checkpoints_are_one_env_file(steady, runs):
    assert steady["iterations"] == ITERATIONS and steady["workers"] == 2
    assert steady["env_steps"] == ITERATIONS * PPO["num_steps_per_env"] * N_ENVS
    digests = steady["param_digests"]
    assert len(digests) == ITERATIONS and all(len(d) == 2 and d[0] == d[1] for d in digests)
    assert len({d[0] for d in digests}) == ITERATIONS  # and every update changed them
    folders = sorted(p.name for p in (runs / "steady").glob("checkpoint_*") if p.is_dir())
    assert folders == [f"checkpoint_{i:06d}" for i in (2, 4, 6, 8)]
    _, env, _ = saved(steady["checkpoint"])
    assert env["meta"]["n_envs"] == N_ENVS and env["step_index"] == ITERATIONS * PPO["num_steps_per_env"]
    assert env["arrays"]["Task.target"].shape == (N_ENVS, 3)
    ranks = torch.load(os.path.join(steady["checkpoint"], training.RANK_RNG_FILE))
    assert ranks.shape[0] == 2 and not torch.equal(ranks[0], ranks[1])
    assert list((runs / "steady" / "tensorboard").glob("events.out.tfevents.*"))


def test_a_killed_worker_restarts_the_group_and_the_run_ends_bit_identical(steady, runs):
    marker = runs / "killed-once"
    steps = PPO["num_steps_per_env"]
    killed = run(runs / "killed", 2, max_failures=1,
                 task_cfg={**TASK_CFG, "marker": str(marker), "kill_at": 5 * steps + 3})  # in iteration 6
    assert marker.exists()
    assert killed["start_iteration"] == 4  # the restarted group began at the last checkpoint
    assert_same_run(steady["checkpoint"], killed["checkpoint"])


def test_a_two_worker_run_resumes_on_one_worker_and_in_the_central_vec_env_identically(steady, runs):
    """Rank 0's random state, the learner and the merged envs are all a one-learner run needs:
    one worker and the central VecEnv (3 shards) continue the two-worker run bit-identically."""
    central = run(runs / "central-resumed", 3, mode="central", resume=checkpoint_of(steady, 6), checkpoint_every=1)
    one = run(runs / "one", 1, resume=checkpoint_of(steady, 6))
    assert central["start_iteration"] == one["start_iteration"] == 6
    assert_same_run(central["checkpoint"], one["checkpoint"])
    # and back: the central run's checkpoint resumes on three workers
    three = run(runs / "three", 3, resume=checkpoint_of(central, 7))
    assert three["start_iteration"] == 7 and three["iterations"] == ITERATIONS
    assert all(len(d) == 3 and len(set(d)) == 1 for d in three["param_digests"])
    _, env, _ = saved(three["checkpoint"])
    assert env["step_index"] == ITERATIONS * PPO["num_steps_per_env"] and env["meta"]["n_envs"] == N_ENVS


def test_two_workers_learn_reach_as_well_per_env_step_as_central(steady, central):
    """Same envs, env-steps, seed and initial weights (rank 0 is seeded as the central learner is);
    the designs differ in the random actions rank 1 samples and in averaging two half-batch
    gradients. The margin is two standard errors of the difference of the two mean episode returns
    (each over the run's last <= 100 episodes per rank): what the episodes' own spread allows."""
    assert steady["env_steps"] == central["env_steps"]
    margin = 2 * math.hypot(steady["mean_reward_sem"], central["mean_reward_sem"])
    print(f"mean episode return: data-parallel {steady['mean_reward']:.3f} +- {steady['mean_reward_sem']:.3f}, "
          f"central {central['mean_reward']:.3f} +- {central['mean_reward_sem']:.3f}")
    assert steady["mean_reward"] >= central["mean_reward"] - margin


@pytest.mark.parametrize("kwargs, error", [
    (dict(task=FrankaReach, n_envs=2, workers=3), "3 workers for 2 envs"),
    (dict(task="FrankaRaech", n_envs=4, workers=2), r"unknown task 'FrankaRaech'; the bundled tasks are \['FrankaReach', 'Go2Walk'\]"),
    (dict(task="FrankaReach", n_envs=4, workers=2, backend="gpu"), "backend='gpu' needs 2 GPUs"),
    (dict(task="FrankaReach", n_envs=4, workers=2, mode="centrall"), "mode must be one of"),
    (dict(task="FrankaReach", n_envs=4, workers=2, ppo={"learning_rat": 1}), "learning_rat"),
    (dict(task="FrankaReach", n_envs=4, workers=2, resume="/nonexistent/run"), "is not a saved training run"),
])
def test_bad_input_is_refused_before_anything_starts(kwargs, error, tmp_path):
    with pytest.raises((ValueError, TypeError, FileNotFoundError), match=error):
        train(out=str(tmp_path / "never"), **kwargs)
    assert not (tmp_path / "never").exists()
