"""Recovery (gd.Recovery): a shard killed mid-run is replaced, the scene restored from its snapshot
and the calls since replayed; the run continues bit-identical to one without the failure."""

import functools
import logging
import os
import signal
import sys

import cloudpickle
import pytest
import torch

import genesis_dist as gd
from local_ray import local_ray_fixture
from test_dist_scene import assert_states_equal
from toy_solver import build_toy
from test_dist_vec_env import PointTargetTask, actions_for

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # shards never import this module
SHARD_KW = dict(deterministic=True)


local_ray = local_ray_fixture()


def kill(scene, shard):
    os.kill(scene.shard_info[shard]["pid"], signal.SIGKILL)


def run(scene, kills=(), fail=kill):
    """12 steps with partial resets (to the build-time state, and to other rows) in between;
    `kills` = {step: shard} kills that shard (`fail(scene, shard)`) just before that step."""
    rows = None
    for k in range(12):
        if k in kills:
            fail(scene, kills[k])
        scene.step()
        if k == 2:
            rows = scene.get_state()
        if k == 3:
            scene.reset(envs_idx=[0, 7, 15])
        if k == 5:
            scene.reset(state=rows, envs_idx=[2, 9])
    return scene.get_state()


def test_a_killed_shard_is_replaced_and_the_run_continues_bit_identical(caplog):
    with gd.DistributedScene(build_toy, n_envs=16, n_shards=3, **SHARD_KW) as plain:
        reference = run(plain)
    recovery = gd.Recovery(snapshot_every=4)
    with gd.DistributedScene(build_toy, n_envs=16, n_shards=3, recovery=recovery, **SHARD_KW) as scene:
        old_pid = scene.shard_info[1]["pid"]
        with caplog.at_level(logging.WARNING, logger="genesis_dist"):
            state = run(scene, kills={7: 1, 10: 2})
        assert_states_equal(state, reference)
        assert [event["shards"] for event in scene.recoveries] == [[1], [2]]
        first = scene.recoveries[0]
        assert first["snapshot_t"] == 4 and first["replayed_calls"] == 5  # steps 5..7, two resets
        assert "shard 1 of 3 (envs 6..10)" in first["error"] and first["seconds"] > 0
        assert scene.shard_info[1]["pid"] != old_pid
        assert "recovered shard(s) [1]" in caplog.text and "recovered shard(s) [2]" in caplog.text


def test_snapshots_on_disk_are_checkpoints_and_recover_the_same(tmp_path):
    with gd.DistributedScene(build_toy, n_envs=16, n_shards=3, **SHARD_KW) as plain:
        reference = run(plain)
    recovery = gd.Recovery(snapshot_every=5, snapshot_dir=tmp_path)
    with gd.DistributedScene(build_toy, n_envs=16, n_shards=3, recovery=recovery, **SHARD_KW) as scene:
        assert_states_equal(run(scene, kills={9: 0}), reference)
        assert scene.recoveries[0]["snapshot_t"] == 5
    single = build_toy(16)  # the snapshot is an ordinary checkpoint
    single.load_checkpoint(tmp_path / "recovery-snapshot.pkl")
    assert single.t == 10


def test_a_vec_env_recovers_its_tasks_and_episode_lengths():
    def rollout(env, kills=()):
        env.episode_length_buf = torch.arange(10) % 4
        out = []
        for k in range(9):
            if k in kills:
                kill(env.scene, kills[k])
            obs, reward, done, extras = env.step(actions_for(k))
            out.append((obs["policy"].clone(), reward.clone(), done.clone(), extras["time_outs"].clone()))
        return out, env.scene.get_state()

    kw = dict(n_envs=10, n_shards=3, task_cfg={"seed": 3}, deterministic=True)
    with gd.VecEnv(PointTargetTask, **kw) as plain:
        reference, reference_state = rollout(plain)
    with gd.VecEnv(PointTargetTask, recovery=gd.Recovery(snapshot_every=3), **kw) as env:
        got, state = rollout(env, kills={4: 2, 7: 0})
        assert [event["shards"] for event in env.scene.recoveries] == [[2], [0]]
    for a, b in zip(got, reference):
        for x, y in zip(a, b):
            assert torch.equal(x, y)
    assert_states_equal(state, reference_state)


def build_unless_marked(n_envs, marker):
    """Shard 1 (5 envs) dies while being built once `marker` exists: a shard that keeps failing."""
    if n_envs == 5 and os.path.exists(marker):
        os._exit(1)
    return build_toy(n_envs)


def test_a_shard_that_keeps_dying_is_an_error_after_max_attempts(tmp_path):
    marker = tmp_path / "die"
    build = functools.partial(build_unless_marked, marker=str(marker))
    with gd.DistributedScene(build, n_envs=15, n_shards=3, recovery=gd.Recovery(max_attempts=2), **SHARD_KW) as scene:
        scene.step()
        marker.touch()
        kill(scene, 1)
        with pytest.raises(gd.ShardDiedError, match=r"shard 1 of 3 \(envs 5\.\.9\): recovery gave up after 2 attempts"):
            scene.step()
        assert scene.recoveries == []


@pytest.mark.parametrize("kwargs, message", [
    ({"snapshot_every": 0}, "Recovery.snapshot_every must be an integer >= 1, got 0"),
    ({"max_attempts": 1.5}, "Recovery.max_attempts must be an integer >= 1, got 1.5"),
    ({"replace_timeout_s": -1}, "Recovery.replace_timeout_s must be a number of seconds > 0, got -1"),
    ({"snapshot_dir": "/no/such/folder"}, "Recovery.snapshot_dir '/no/such/folder' is not an existing folder"),
])
def test_bad_recovery_policies_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gd.Recovery(**kwargs)


def test_recovery_must_be_a_policy():
    with pytest.raises(TypeError, match="recovery must be a gd.Recovery policy or None, got True"):
        gd.DistributedScene(build_toy, n_envs=4, n_shards=2, recovery=True)
