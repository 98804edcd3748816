"""step_timeout_s: a shard that stops answering (a frozen process: SIGSTOP) is killed and treated
as dead, through both step transports, and with a recovery policy the run continues bit-identical."""

import os
import signal
import sys
import time

import cloudpickle
import pytest

import genesis_dist as gd
from local_ray import local_ray_fixture
from test_dist_recovery import run
from test_dist_scene import assert_states_equal
from toy_solver import build_toy

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # shards never import this module
SHARD_KW = dict(deterministic=True)

local_ray = local_ray_fixture()


def freeze(scene, shard):
    os.kill(scene.shard_info[shard]["pid"], signal.SIGSTOP)


def ended(pid, timeout_s=30.0):
    """Whether process `pid` is gone within timeout_s; if not, it is continued and killed here."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)
            return False
        time.sleep(0.1)


def test_a_frozen_shard_is_killed_at_step_timeout_s_and_named():
    with gd.DistributedScene(build_toy, n_envs=6, n_shards=2, step_transport="ray", **SHARD_KW) as scene:
        scene.step()  # the first step compiles: it runs under the default timeout
        before = scene.get_state()
        scene.step_timeout_s = 1.5
        pid = scene.shard_info[1]["pid"]
        freeze(scene, 1)
        try:
            with pytest.raises(gd.ShardDiedError, match=r"shard 1 of 2 \(envs 3\.\.5\): step failed: no answer "
                                                         r"within step_timeout_s=1.5 s; the shard was killed"):
                scene.step()
        finally:
            assert ended(pid), "the frozen shard's process was not ended"
        scene.step_timeout_s = 300
        scene.restart_shard(1)
        with pytest.raises(gd.ShardError, match=r"shard 0 of 2 \(envs 0\.\.2\): the shard is at t=3 after a step, "
                                                r"the scene at t=2: out of step"):
            scene.step()  # shard 0 stepped before the timeout, the new shard 1 starts at t=0
        scene.reset(state=before)
        scene.step()
        assert scene.t == 2


def test_with_recovery_a_frozen_shard_is_replaced_and_the_run_continues_bit_identical():
    with gd.DistributedScene(build_toy, n_envs=16, n_shards=3, **SHARD_KW) as plain:
        reference = run(plain)
    with gd.DistributedScene(build_toy, n_envs=16, n_shards=3, recovery=gd.Recovery(snapshot_every=4),
                             step_timeout_s=5, **SHARD_KW) as scene:  # above a replacement's first step here
        pid = scene.shard_info[2]["pid"]
        try:
            state = run(scene, kills={6: 2}, fail=freeze)
        finally:
            assert ended(pid), "the frozen shard's process was not ended"
        assert_states_equal(state, reference)
        assert [event["shards"] for event in scene.recoveries] == [[2]]
        assert "no answer within step_timeout_s=5 s" in scene.recoveries[0]["error"]


@pytest.mark.parametrize("value", [0, -1, float("inf"), "300", True])
def test_bad_step_timeouts_are_refused_before_anything_starts(value):
    with pytest.raises(ValueError, match=f"step_timeout_s must be a number of seconds > 0, got {value!r}"):
        gd.DistributedScene(build_toy, n_envs=4, n_shards=2, step_timeout_s=value)
    with pytest.raises(ValueError, match=f"step_timeout_s must be a number of seconds > 0, got {value!r}"):
        gd.VecEnv(None, n_envs=4, n_shards=2, step_timeout_s=value)
