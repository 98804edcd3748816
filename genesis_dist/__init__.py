"""genesis_dist: the sim scene sharded over Ray actors, with one checkpoint that reshards on load."""

import os

os.environ.setdefault("ENABLE_TAICHI_HEADER_PRINT", "0")  # no "[Taichi] version ..." banner at import (1: show it)

from genesis_dist.errors import ShardDiedError, ShardError
from genesis_dist.layout import Layout
from genesis_dist.recovery import Recovery
from genesis_dist.scene import DistributedScene
from genesis_dist.task import Task

__all__ = ["DistributedScene", "Layout", "Recovery", "ShardError", "ShardDiedError", "Task", "VecEnv"]


def __getattr__(name):
    """VecEnv imports torch; load it only when asked for, so shard processes stay light."""
    if name == "VecEnv":
        from genesis_dist.vec_env import VecEnv
        return VecEnv
    raise AttributeError(f"module 'genesis_dist' has no attribute {name!r}")
