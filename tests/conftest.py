"""One Taichi runtime per process: the test process runs on the CPU, float32, deterministic.
Tests that need another precision, or a fresh process, use `isolated.run_isolated`."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import sim as gs  # noqa: E402
import toy_solver  # noqa: E402,F401  (registers the test-only ToySolver)

gs.init(backend=gs.cpu, precision="32", deterministic=True)
