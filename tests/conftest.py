"""One Taichi runtime per process: the test process runs on the CPU, float32, deterministic.
Tests that need another precision, or a fresh process, use `isolated.run_isolated`.

`make test` runs two pytest-xdist workers that take whole files in collection order
(`--dist loadfile --no-loadscope-reorder`); the slowest files are collected first so that
neither worker is left with a long file at the end while the other waits idle."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import sim as gs  # noqa: E402
import toy_solver  # noqa: E402,F401  (registers the test-only ToySolver)

gs.init(backend=gs.cpu, precision="32", deterministic=True)

# Slowest first (a cold CI run's seconds per file, 2 workers); files not named follow, in
# the usual order. Only the order changes: every collected test still runs.
SLOWEST_FIRST = (
    "test_rigid_mujoco.py",
    "test_genesis_examples.py",
    "test_dist_scene.py",
    "test_inspect.py",
    "test_device_vulkan.py",
    "test_rigid_collision.py",
    "test_rigid_models.py",
    "test_rigid_entity.py",
    "test_spec_snippets.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's tests stay in order
