"""Errors raised in the driver for something that happened in a shard, naming the shard."""

from __future__ import annotations


class ShardError(RuntimeError):
    """A call failed inside a shard. `shard` is its index, `where` names it and its envs, `cause`
    is the shard's own exception."""

    def __init__(self, shard: int, where: str, message: str, cause: BaseException | None = None):
        super().__init__(f"{where}: {message}")
        self.shard = shard
        self.where = where
        self.cause = cause


class ShardDiedError(ShardError):
    """A shard's process or node is gone; the shard must be re-created and restored."""
