"""DistributedScene on a Ray cluster of several nodes on this machine (ray.cluster_utils.Cluster):
shards SPREAD over the nodes, PACK on request, resharding across nodes, and a lost node."""

import os
import sys
import time

import cloudpickle
import numpy as np
import pytest
import ray
from ray.cluster_utils import Cluster

import genesis_dist as gd
import sim as gs

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
WORKER_PATH = os.pathsep.join([TESTS_DIR, os.path.dirname(TESTS_DIR)])  # toy_solver, and this checkout
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # shards never import this module
NODE = dict(num_cpus=2, object_store_memory=80 * 2**20)


def build_toy(n_envs):
    import toy_solver  # noqa: F401

    scene = gs.Scene()
    scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 0.5)), material=gs.materials.Toy.Points(n_points=2))
    scene.build(n_envs=n_envs)
    return scene


def wait_until_all_cpus_free(timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources()["CPU"]:
        assert time.monotonic() < deadline, "the previous scene's resources were not released"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster():
    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    workers = [cluster.add_node(**NODE) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, runtime_env={"env_vars": {"PYTHONPATH": WORKER_PATH}},
             configure_logging=False, log_to_driver=False)
    yield cluster, workers
    ray.shutdown()
    cluster.shutdown()


def test_spread_places_one_shard_per_node_and_reshards_across_nodes(cluster, tmp_path):
    with gd.DistributedScene(build_toy, n_envs=9, n_shards=3, deterministic=True) as spread:
        assert len({info["node_id"] for info in spread.shard_info}) == 3
        for _ in range(4):
            spread.step()
        spread.save_checkpoint(tmp_path / "c.pkl")
        for _ in range(3):
            spread.step()
        reference = spread.get_state()
    wait_until_all_cpus_free()  # PACK is best effort: it packs what fits at the time
    with gd.DistributedScene(build_toy, n_envs=9, n_shards=2, placement_strategy="PACK",
                             resources_per_shard={"num_cpus": 1}, deterministic=True) as packed:
        assert len({info["node_id"] for info in packed.shard_info}) == 1
        packed.load_checkpoint(tmp_path / "c.pkl")
        for _ in range(3):
            packed.step()
        state = packed.get_state()
        for key in reference.keys():
            np.testing.assert_array_equal(state[key], reference[key], err_msg=key)


def test_a_removed_node_is_a_clear_error_naming_its_shard(cluster):
    _, workers = cluster
    with gd.DistributedScene(build_toy, n_envs=6, n_shards=3, placement_strategy="STRICT_SPREAD",
                             deterministic=True) as scene:
        node_ids = [info["node_id"] for info in scene.shard_info]
        victim = workers[-1]
        shard = node_ids.index(victim.node_id)
        cluster[0].remove_node(victim)
        with pytest.raises(gd.ShardDiedError, match=f"shard {shard} of 3"):
            for _ in range(50):  # the node's death reaches the driver within a few calls
                scene.step()


def test_with_recovery_a_lost_node_is_replaced_and_the_run_continues(cluster):
    head, workers = cluster
    spare = head.add_node(**NODE)  # the nodes now: the head, a worker, this one
    head.wait_for_nodes()
    wait_until_all_cpus_free()

    def run(scene, victim=None):
        for k in range(8):
            if k == 5 and victim is not None:
                head.remove_node(victim)
            scene.step()
        return scene.get_state()

    with gd.DistributedScene(build_toy, n_envs=6, n_shards=3, deterministic=True) as plain:
        reference = run(plain)
    wait_until_all_cpus_free()
    with gd.DistributedScene(build_toy, n_envs=6, n_shards=3, deterministic=True,
                             recovery=gd.Recovery(snapshot_every=3, replace_timeout_s=120)) as scene:
        nodes = [info["node_id"] for info in scene.shard_info]
        assert spare.node_id in nodes, "SPREAD put no shard on the spare node"
        shard = nodes.index(spare.node_id)
        state = run(scene, victim=spare)
        for key in reference.keys():
            np.testing.assert_array_equal(state[key], reference[key], err_msg=key)
        assert [event["shards"] for event in scene.recoveries] == [[shard]]
        assert scene.recoveries[0]["lost_nodes"] == [spare.node_id]
        assert scene.shard_info[shard]["node_id"] != spare.node_id
