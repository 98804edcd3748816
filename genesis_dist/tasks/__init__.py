"""Example Tasks for gd.VecEnv."""

from genesis_dist.tasks.go2_walk import Go2Walk
from genesis_dist.tasks.reach import FrankaReach

__all__ = ["FrankaReach", "Go2Walk"]
