"""What genesis_dist says, through the `genesis_dist` logger: a scene's `log_level`, and one line per shard.

Warnings and errors are always shown, so `log_level` takes "debug", "info" or "warning" only.
Shard processes start quietly (see ray_session.QUIET_SHARD_ENV); what a shard is, where it runs,
is said once, in the driver, by `shards_started`.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("genesis_dist")
LEVELS = ("debug", "info", "warning")
FORMAT = "[genesis_dist] %(levelname)s %(message)s"


def set_level(log_level: str | None) -> None:
    """Let the `genesis_dist` logger show records from `log_level` up (None: leave it as the
    program configured it). Where nothing handles them (no handler on this logger or the root
    logger), a stderr handler is added once, so INFO lines show without configuring logging."""
    if log_level is None:
        return
    if not isinstance(log_level, str) or log_level.lower() not in LEVELS:
        raise ValueError(f"log_level must be one of {LEVELS} (warnings and errors are always shown), "
                         f"got {log_level!r}")
    logger.setLevel(log_level.upper())
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        logger.addHandler(handler)


def describe_shard(shard: int, env_range: tuple[int, int], info: dict) -> str:
    """One line: which envs, on which node and process, on which backend."""
    lo, hi = env_range
    return (f"shard {shard}: envs {lo}..{hi - 1} ({hi - lo}) on node {str(info['node_id'])[:12]} "
            f"pid {info['pid']}, backend {info['backend']}")


def shards_started(scene, shards=None) -> None:
    """Log one INFO line per shard of a DistributedScene (default: all; after a restart, the new ones)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    for s in range(scene.n_shards) if shards is None else shards:
        logger.info(describe_shard(s, scene.layout.range(s), scene.shard_info[s]))
