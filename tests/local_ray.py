"""The embedded local Ray that every genesis_dist test module runs on: its shards find this
checkout and the tests' helpers (toy_solver) on PYTHONPATH."""

import os

import pytest
import ray

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
WORKER_PATH = os.pathsep.join([TESTS_DIR, os.path.dirname(TESTS_DIR)])


def local_ray_fixture(num_cpus: int = 8, autouse: bool = True):
    """A module-scoped fixture, autouse unless told; in a test module: `local_ray = local_ray_fixture()`."""

    @pytest.fixture(scope="module", autouse=autouse)
    def local_ray():
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, object_store_memory=150 * 2**20,
                 configure_logging=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": WORKER_PATH}})
        yield
        ray.shutdown()

    return local_ray
