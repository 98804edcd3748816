"""Example Tasks for gd.VecEnv."""

from genesis_dist.tasks.reach import FrankaReach

__all__ = ["FrankaReach"]
