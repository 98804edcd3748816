"""DistributedScene on a local Ray: spec snippets, resharding, partial resets, bad input, dead shards."""

import concurrent.futures
import os
import pickle
import re
import signal
import sys

import cloudpickle
import numpy as np
import pytest
import ray
import torch

import genesis_dist as gd
import sim as gs
from sim import checkpoint
from genesis_dist.shard_group import bundle_for
from local_ray import local_ray_fixture
from spec_snippets import spec_blocks
from toy_solver import build_toy

SHARD_KW = dict(deterministic=True)  # like the test process: CPU, float32, deterministic
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # shards never import this module


def build_failing_on_five(n_envs):
    if n_envs == 5:
        raise ValueError("no scene for five envs")
    return build_toy(n_envs)


local_ray = local_ray_fixture(num_cpus=16)


@pytest.fixture(scope="module")
def dscene():
    with gd.DistributedScene(build_toy, n_envs=16, n_shards=3, **SHARD_KW) as scene:
        yield scene


def stepped(scene, n):
    for _ in range(n):
        scene.step()
    return scene.get_state()


def assert_states_equal(a, b):
    assert a.t == b.t and set(a.keys()) == set(b.keys())
    for key in a.keys():
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_layout_and_placement(dscene):
    assert dscene.layout.sizes == [6, 5, 5] and dscene.n_envs == 16 and dscene.n_shards == 3
    assert [info["backend"] for info in dscene.shard_info] == ["cpu"] * 3
    assert len({info["pid"] for info in dscene.shard_info}) == 3


def on_distributed(code):
    """A spec block with `gs.Scene() / add_entity / build()` replaced by a 3-shard DistributedScene."""
    code, n_new = re.subn(r"(\w+) = gs\.Scene\(\)\n\w+ = \1\.add_entity\(.*\)\n\1\.build\(\)\n",
                          r"\1 = gd.DistributedScene(build_scene, n_envs=16, n_shards=3, **SHARD_KW)\n", code)
    code, n_build = re.subn(r"\w+\.build\(n_envs=\w+\)\n", "", code)
    return code, n_new + n_build


def test_spec_snippets_on_three_uneven_shards(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = spec_blocks()
    ns = {"gd": gd, "build_scene": build_toy, "SHARD_KW": SHARD_KW}
    code, n = on_distributed(blocks["Basic Save/Load"])
    assert n == 2
    exec(code, ns)
    scene, scene2 = ns["scene"], ns["scene2"]
    try:
        assert scene.layout.sizes == [6, 5, 5] and scene.t == 100 and scene2.t == 100
        assert_states_equal(scene.get_state(), scene2.get_state())
    finally:
        scene2.shutdown()

    exec(blocks["State Objects"], ns)
    assert scene.t == 100

    rng = torch.Generator().manual_seed(0)
    resets = []

    def get_observations():
        obs = torch.as_tensor(scene.gather(lambda s: s.get_state()["ToySolver.pos"]))
        done = torch.rand(scene.n_envs, generator=rng) < 0.2
        resets.append(int(done.sum()))
        return obs, torch.zeros(scene.n_envs), done

    ns.update(N=16, num_episodes=2, episode_length=5, get_observations=get_observations, torch=torch)
    for name in ("RL Episode Resets", "Selective Environment Reset"):
        code, n = on_distributed(blocks[name])
        assert n == 1
        exec(code, ns)
    assert sum(resets) > 0 and scene.t == 0  # the selective block ends with reset() and partial resets

    exec(blocks["Serialization for Transfer"], ns)
    with open("state.pkl", "rb") as f:
        assert_states_equal(pickle.load(f), scene.get_state())
    scene.shutdown()


def test_partial_reset_touches_exactly_those_envs_across_shard_boundaries(dscene):
    dscene.reset()
    init = dscene.get_state()
    s0 = stepped(dscene, 3)
    s1 = stepped(dscene, 4)
    idx = [11, 5, 6, 15]  # shard 0's last env, shard 1's first, two in shard 2; unsorted
    dscene.reset(state=s0, envs_idx=idx)
    after = dscene.get_state()
    assert after.t == s1.t
    chosen = np.zeros(16, bool)
    chosen[idx] = True
    for key in s0.keys():
        np.testing.assert_array_equal(after[key][chosen], s0[key][chosen], err_msg=key)
        np.testing.assert_array_equal(after[key][~chosen], s1[key][~chosen], err_msg=key)
    dscene.reset(envs_idx=torch.as_tensor(chosen))  # to the build-time state, by a torch mask
    again = dscene.get_state()
    for key in s0.keys():
        np.testing.assert_array_equal(again[key][chosen], init[key][chosen], err_msg=key)
        np.testing.assert_array_equal(again[key][~chosen], s1[key][~chosen], err_msg=key)


def test_checkpoint_is_what_a_plain_scene_writes(dscene, tmp_path):
    dscene.reset()
    state = stepped(dscene, 5)
    plain = build_toy(16)
    plain.reset(state=state)
    dscene.save_checkpoint(tmp_path / "dist.pkl")
    plain.save_checkpoint(tmp_path / "plain.pkl")
    dist, ref = checkpoint.read(tmp_path / "dist.pkl"), checkpoint.read(tmp_path / "plain.pkl")
    assert set(dist) == set(ref) == {"timestamp", "step_index", "arrays", "meta"}
    assert dist["step_index"] == ref["step_index"] == 5 and dist["meta"] == ref["meta"]
    assert list(dist["arrays"]) == list(ref["arrays"])
    for key, value in ref["arrays"].items():
        got = dist["arrays"][key]
        assert got.shape == value.shape and got.dtype == value.dtype, key
        np.testing.assert_array_equal(got, value, err_msg=key)


def test_reshard_3_2_1_plain_and_back_is_bit_identical(dscene, tmp_path):
    dscene.reset()
    stepped(dscene, 7)
    dscene.reset(envs_idx=[1, 8, 12])  # make the envs differ in phase
    path = tmp_path / "three.pkl"
    dscene.save_checkpoint(path)
    reference = stepped(dscene, 9)  # continuing without a save/load

    for n_shards, transport in ((2, "socket"), (1, "ray")):  # both ways of stepping, the same trajectory
        with gd.DistributedScene(build_toy, n_envs=16, n_shards=n_shards, step_transport=transport, **SHARD_KW) as other:
            other.load_checkpoint(path)
            assert other.t == 7
            assert_states_equal(stepped(other, 9), reference)
            if n_shards == 2:  # and back: a plain scene's checkpoint loads on 2 shards
                plain = build_toy(16)
                plain.load_checkpoint(path)
                assert_states_equal(stepped(plain, 9), reference)
                plain.save_checkpoint(tmp_path / "plain.pkl")
                other.load_checkpoint(tmp_path / "plain.pkl")
                assert_states_equal(other.get_state(), reference)
                assert_states_equal(stepped(other, 2), stepped(plain, 2))


def test_bad_input_changes_nothing(dscene, tmp_path):
    dscene.reset()
    before = stepped(dscene, 2)
    with pytest.raises(ValueError, match="out of range"):
        dscene.reset(envs_idx=[0, 16])
    with pytest.raises(ValueError, match="duplicates"):
        dscene.reset(state=before, envs_idx=[3, 9, 3])
    with pytest.raises(TypeError, match="integers or a boolean mask"):
        dscene.reset(envs_idx=np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="must be a SimState"):
        dscene.reset(state=before.arrays())
    short = gs.SimState({k: v[:12] for k, v in before.arrays().items()}, before.t, 12)
    with pytest.raises(gs.CheckpointError, match="n_envs=12"):
        dscene.reset(state=short, envs_idx=[0])
    build_toy(12).save_checkpoint(tmp_path / "twelve.pkl")
    with pytest.raises(gs.CheckpointError, match="saved with n_envs=12, the scene has n_envs=16"):
        dscene.load_checkpoint(tmp_path / "twelve.pkl")
    assert_states_equal(dscene.get_state(), before)


def test_a_step_index_the_shards_cannot_count_on_from_is_refused(dscene, tmp_path):
    """(2**63 - 1 used to be taken, and every later step raised OverflowError after the shards stepped.)"""
    dscene.reset()
    before = stepped(dscene, 2)
    huge = gs.SimState(before.arrays(), 2**63 - 1, 16)
    with pytest.raises(gs.CheckpointError, match=r"state.t must be an integer in 0..2\*\*53, got 9223372036854775807"):
        dscene.reset(state=huge)
    with open(tmp_path / "huge.pkl", "wb") as f:  # the spec's format, written by another tool
        pickle.dump({"timestamp": 0.0, "step_index": 2**63 - 1, "arrays": before.arrays(),
                     "meta": dscene.checkpoint_meta()}, f)
    with pytest.raises(gs.CheckpointError, match="step_index"):
        dscene.load_checkpoint(tmp_path / "huge.pkl")
    assert_states_equal(dscene.get_state(), before)
    assert_states_equal(stepped(dscene, 1), stepped(build_and_reset(before), 1))




def test_an_empty_envs_idx_is_a_no_op(dscene):
    """RL loops reset "whatever finished", often nothing: validated, then nothing is called."""
    dscene.reset()
    before = stepped(dscene, 2)
    dscene.reset(envs_idx=[])
    dscene.reset(state=before, envs_idx=np.zeros(16, dtype=bool))
    assert_states_equal(dscene.get_state(), before)
    with pytest.raises(ValueError, match=r"mask has shape \(15,\), expected \(16,\)"):
        dscene.reset(envs_idx=np.zeros(15, dtype=bool))

@pytest.mark.parametrize("meta", [[1, 2, 3], {"format": 1, "n_envs": 16, "layout": 5}])
def test_malformed_meta_is_a_checkpoint_error_in_the_driver(dscene, tmp_path, meta):
    """(A list as meta used to escape DistributedScene.load_checkpoint as an AttributeError.)"""
    before = dscene.get_state()
    with open(tmp_path / "bad.pkl", "wb") as f:
        pickle.dump({"timestamp": 0.0, "step_index": 0, "arrays": before.arrays(), "meta": meta}, f)
    with pytest.raises(gs.CheckpointError, match="meta"):
        dscene.load_checkpoint(tmp_path / "bad.pkl")
    assert_states_equal(dscene.get_state(), before)

def build_and_reset(state):
    plain = build_toy(16)
    plain.reset(state=state)
    return plain


@pytest.mark.parametrize("kwargs, message", [
    ({"step_transport": "grpc"}, r"step_transport must be one of \('socket', 'ray'\), got 'grpc'"),
    ({"placement_strategy": "RANDOM"}, "placement_strategy must be one of"),
    ({"step_ports": (9000, 8000)}, r"step_ports must be \(first, last\)"),
    ({"backend": "tpu"}, r"backend must be None or one of \('cpu', 'gpu', 'cuda', 'vulkan'\), got 'tpu'"),
    ({"backend": "cuda", "resources_per_shard": {"num_gpus": 0}}, "backend='cuda' needs resources_per_shard"),
    ({"resources_per_shard": {"num_tpus": 1}}, r"unknown keys \['num_tpus'\]"),
])
def test_bad_arguments_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gd.DistributedScene(build_toy, n_envs=4, n_shards=2, **kwargs)


@pytest.mark.parametrize("backend, resources, bundle", [
    ("cpu", None, {"CPU": 1}), (None, None, {"CPU": 1}), ("gpu", None, {"CPU": 1, "GPU": 1}),
    ("cuda", {"num_gpus": 0.5}, {"CPU": 1, "GPU": 0.5}), ("vulkan", None, {"CPU": 1}),  # lavapipe needs no GPU
    ("vulkan", {"num_gpus": 1, "num_cpus": 2}, {"CPU": 2, "GPU": 1}),
])
def test_what_each_backend_reserves_per_shard(backend, resources, bundle):
    assert bundle_for(resources, backend) == bundle


def test_a_shard_out_of_step_is_an_error_naming_it(dscene):
    start = dscene.get_state()
    dscene.run_on_shards("apply", [(lambda s: s.step(),)], shards=[1])  # shard 1 alone steps
    with pytest.raises(gd.ShardError, match=r"shard 1 of 3 \(envs 6\.\.10\): the shard is at t=\d+ after a step, "
                                            r"the scene at t=\d+: out of step"):
        dscene.step()
    dscene.reset(state=start)


def test_step_ports_and_falling_back_to_ray_steps(dscene, monkeypatch):
    start = dscene.get_state()
    reference = stepped(dscene, 3)
    with gd.DistributedScene(build_toy, n_envs=16, n_shards=2, step_ports=(40100, 40199), **SHARD_KW) as ranged:
        assert all(40100 <= info["channel"][1] <= 40199 for info in ranged.shard_info)
        ranged.reset(state=start)
        assert_states_equal(stepped(ranged, 3), reference)

    def unreachable(*args, **kwargs):
        raise ConnectionRefusedError("refused (as a firewall would)")

    monkeypatch.setattr(gd.scene.step_channel, "CoordinatorLink", unreachable)
    with pytest.warns(RuntimeWarning, match=r"shard 0 of 2 \(envs 0\.\.7\): its step connection .* failed "
                                            r"\(refused \(as a firewall would\)\); this scene steps through Ray"):
        fallback = gd.DistributedScene(build_toy, n_envs=16, n_shards=2, **SHARD_KW)
    with fallback:
        fallback.reset(state=start)
        assert_states_equal(stepped(fallback, 3), reference)


def test_a_named_placement_group_left_by_a_killed_owner_is_removed():
    @ray.remote(num_cpus=0)
    class Owner:
        def build(self):
            self.scene = gd.DistributedScene(build_toy, n_envs=4, n_shards=2, placement_group_name="gd-test", **SHARD_KW)
            return self.scene._group._pg.id.hex()

    owner = Owner.remote()
    stale = ray.get(owner.build.remote())
    ray.kill(owner)  # as a Tune trial killed hard: its scene never shuts down
    assert ray.util.placement_group_table()[stale]["state"] == "CREATED"
    with gd.DistributedScene(build_toy, n_envs=4, n_shards=2, placement_group_name="gd-test", **SHARD_KW) as scene:
        assert ray.util.placement_group_table()[stale]["state"] == "REMOVED"
        scene.step()


def test_build_function_raising_in_a_shard_names_it():
    with pytest.raises(gd.ShardError, match=r"shard 2 of 3 \(envs 12\.\.16\).*ValueError: no scene for five envs") as info:
        gd.DistributedScene(build_failing_on_five, n_envs=17, n_shards=3, **SHARD_KW)
    assert info.value.shard == 2 and isinstance(info.value.cause, ValueError)


def test_dead_shard_is_a_clear_error_and_can_be_replaced():
    with gd.DistributedScene(build_toy, n_envs=7, n_shards=3, **SHARD_KW) as scene:
        snapshot = stepped(scene, 3)
        reference = stepped(scene, 2)
        os.kill(scene.shard_info[2]["pid"], signal.SIGKILL)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            scene.reset(envs_idx=[0, 3])  # shards 0 and 1 only: the dead shard is not called
            with pytest.raises(gd.ShardDiedError, match=r"shard 2 of 3 \(envs 5\.\.6\).*dead"):
                pool.submit(scene.step).result(timeout=120)
            with pytest.raises(gd.ShardDiedError, match="shard 2 of 3"):
                pool.submit(scene.reset, None, [6]).result(timeout=120)
        scene.restart_shard(2)
        scene.reset(state=snapshot)
        assert_states_equal(stepped(scene, 2), reference)
