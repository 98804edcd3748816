"""What a DistributedScene tells the people running it: `log_level`, one INFO line per shard (after
the build and after a recovery replaced one), quiet shard processes in a Ray the user initialised,
and its own metrics (steps, resets, recoveries, checkpoints) read back from Ray's Prometheus endpoint.

One 2-shard toy scene with a recovery policy goes through it all once (module fixture)."""

import logging
import os
import signal
import sys

import cloudpickle
import pytest
import ray

import genesis_dist as gd
from genesis_dist import logs, metrics
from local_ray import WORKER_PATH
from toy_solver import build_toy
from test_dist_vec_env import PointTargetTask
from test_metrics import free_port, scrape

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # shards never import this module
SCENE = "test-dist-observability"  # the placement group's name, hence the metrics' scene tag
P = "ray_genesis_dist_"


@pytest.fixture(scope="module")
def metrics_url():
    """A local Ray like local_ray's (the shards find toy_solver), that also exports metrics."""
    port = free_port()
    ray.init(address="local", num_cpus=4, include_dashboard=False, object_store_memory=150 * 2**20,
             configure_logging=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": WORKER_PATH}},
             _metrics_export_port=port, _system_config={"metrics_report_interval_ms": 200})
    yield f"http://127.0.0.1:{port}/metrics"
    ray.shutdown()


@pytest.fixture(scope="module")
def observed(metrics_url, tmp_path_factory):
    """Build (log_level="info"), step 3, kill shard 1, step (recovered: 3 steps replayed), two resets,
    save and load a checkpoint, shut down. Returns the genesis_dist records and what the shards saw."""
    logger, level, handlers = logs.logger, logs.logger.level, list(logs.logger.handlers)
    records = []
    catch = logging.Handler()
    catch.emit = records.append
    logger.addHandler(catch)
    path = str(tmp_path_factory.mktemp("obs") / "ckpt.pkl")
    try:
        with gd.DistributedScene(build_toy, n_envs=4, n_shards=2, deterministic=True, log_level="info",
                                 recovery=gd.Recovery(), placement_group_name=SCENE) as scene:
            shard_env = scene.gather(lambda s: {k: os.environ.get(k) for k in ("TI_ENABLE_PYBUF",
                                                                             "ENABLE_TAICHI_HEADER_PRINT")})
            for _ in range(3):
                scene.step()
            os.kill(scene.shard_info[1]["pid"], signal.SIGKILL)
            scene.step()
            scene.reset(envs_idx=[0, 3])
            scene.reset()
            scene.save_checkpoint(path)
            scene.load_checkpoint(path)
            recoveries = list(scene.recoveries)
    finally:
        logger.removeHandler(catch)
        logger.setLevel(level)
        logger.handlers[:] = handlers
    return {"records": records, "shard_env": shard_env, "recoveries": recoveries, "url": metrics_url,
            "bytes": os.path.getsize(path)}


@pytest.mark.parametrize("level", ["loud", "error", 20, ""])
def test_a_bad_log_level_is_refused_before_anything_starts(level, metrics_url):
    before = (logs.logger.level, len(ray.util.placement_group_table()))
    with pytest.raises(ValueError, match="log_level must be one of"):
        gd.DistributedScene(build_toy, n_envs=4, n_shards=2, log_level=level)
    with pytest.raises(ValueError, match="log_level must be one of"):
        gd.VecEnv(PointTargetTask, 4, 2, log_level=level)
    assert (logs.logger.level, len(ray.util.placement_group_table())) == before


def test_one_info_line_per_shard_after_the_build_and_after_a_recovery(observed):
    info = [r.getMessage() for r in observed["records"] if r.levelno == logging.INFO]
    assert len(info) == 3, info
    assert info[0].startswith("shard 0: envs 0..1 (2) on node ") and "backend cpu" in info[0]
    assert info[1].startswith("shard 1: envs 2..3 (2) on node ") and info[2].startswith("shard 1: envs 2..3 (2)")
    assert info[1] != info[2]  # the replacement runs in another process
    assert [e["shards"] for e in observed["recoveries"]] == [[1]]
    warnings = [r.getMessage() for r in observed["records"] if r.levelno == logging.WARNING]
    assert any("recovered shard(s) [1]" in w for w in warnings)


def test_shards_in_a_ray_the_user_initialised_start_quietly(observed):
    # the user's runtime_env (the fixture's) sets only PYTHONPATH; the scene adds the quiet-shard variables
    assert observed["shard_env"] == [{"TI_ENABLE_PYBUF": "0", "ENABLE_TAICHI_HEADER_PRINT": "0"}] * 2


def test_the_scene_records_its_steps_resets_recoveries_and_checkpoints(observed):
    from ray._private.utils import get_dashboard_dependency_error

    if get_dashboard_dependency_error() is not None:
        pytest.skip(f"Ray exports metrics only with ray[default]: {get_dashboard_dependency_error()}")
    wanted = {
        (P + "env_steps_total", None): 4.0 * 4,  # 4 steps of 4 envs: the 3 replayed ones are not counted again
        (P + "step_seconds_count", None): 4.0,
        (P + "shard_step_seconds_count", None): 4.0,  # socket steps report the slowest shard's time
        (P + "resets_total", None): 2.0, (P + "reset_envs_total", None): 2.0 + 4,  # not the recovery's restore
        (P + "recoveries_total", None): 1.0,
        (P + "checkpoint_seconds_count", None): 2.0,  # one save, one load
        (P + "checkpoint_bytes_count", None): 2.0,
    }
    found = scrape(observed["url"], wanted, scene=SCENE)
    assert {k: found.get(k) for k in wanted} == wanted
    assert found[(P + "recovery_seconds_count", None)] == 1.0
    # a histogram's buckets are cumulative: both files fall in the first bucket that holds their size
    bucket = min(b for b in metrics.BYTES_BUCKETS if b >= observed["bytes"])
    assert found[(P + "checkpoint_bytes_bucket", str(bucket))] == 2.0
    assert found[(P + "checkpoint_bytes_bucket", str(bucket / 4))] == 0.0
