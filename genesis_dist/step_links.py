"""The coordinator's step connections, one per shard (see step_channel), and one round trip over
all of them: every shard's request sent, every reply read before the first failure is raised, each
under the step's deadline. A shard that misses the deadline is killed (ShardGroup.kill).

Each shard answers on its connection from a running `serve` Ray call; `release` ends those calls
before any other Ray call reaches the shard (ShardGroup does it before each of its calls).
"""

from __future__ import annotations

import time
import warnings

import ray

from genesis_dist import step_channel
from genesis_dist.errors import ShardDiedError, ShardError


class StepLinks:
    """Links to every shard of `group` (which must have been started with `channel`)."""

    def __init__(self, group, channel: dict):
        self._group = group
        self._token = channel["token"]
        self._links: list = [None] * group.n_shards
        self._serving: list = [None] * group.n_shards  # a shard's running `serve` call, while it has one
        self.active = True  # False once a shard could not be reached: the scene steps through Ray calls
        group.links = self
        for s in range(group.n_shards):
            self.connect(s)

    def connect(self, shard: int) -> None:
        """Open shard `shard`'s connection. A shard serving an older connection sees it close, stops
        serving it and takes this one on its next `serve`. Where it cannot be reached (or fails the
        handshake), warn and deactivate every link."""
        if not self.active:
            return
        self.drop(shard)
        address = self._group.info[shard]["channel"]
        try:
            self._links[shard] = step_channel.CoordinatorLink(address, self._token)
        except OSError as e:
            warnings.warn(f"{self._group.where(shard)}: its step connection to {address} failed ({e}); "
                          "this scene steps through Ray calls instead, which is slower. Open the ports given as "
                          "step_ports between the driver and the shards' nodes, or pass step_transport='ray'.",
                          RuntimeWarning, stacklevel=4)
            self.close()
            self.active = False

    def release(self, shards) -> None:
        """End these shards' `serve` calls, so that the Ray calls that follow reach them."""
        for s in shards:
            if self._serving[s] is not None:
                self._serving[s] = None
                try:
                    self._links[s].send(step_channel.RELEASE)
                except step_channel.ChannelClosed:
                    self.drop(s)  # a dead shard: the Ray call that follows says so

    def drop(self, shard: int) -> None:
        if self._links[shard] is not None:
            self._links[shard].close()
            self._links[shard] = None
        self._serving[shard] = None

    def close(self) -> None:
        self.release(range(len(self._links)))
        for s in range(len(self._links)):
            self.drop(s)

    def round_trip(self, op: int, payloads: list, replies: list, what: str, timeout_s: float) -> float:
        """One request to every shard, in parallel; shard s's reply is read into replies[s] within
        timeout_s of sending. Returns the slowest shard's own seconds. Every shard's reply is read
        before the first failure is raised (as ShardError / ShardDiedError naming its shard), so
        the connections stay usable."""
        lost = [s for s, link in enumerate(self._links) if link is None]
        if lost:
            raise ShardDiedError(lost[0], self._group.where(lost[0]), f"{what} failed: the shard's connection was "
                                 "lost earlier (its actor is dead). Call restart_shard() and restore the scene.")
        for s, actor in enumerate(self._group.actors):
            if self._serving[s] is None:
                self._serving[s] = actor.serve.remote()
        errors, answered, slowest = {}, set(), 0.0
        deadline = time.monotonic() + timeout_s
        try:
            for s, payload in enumerate(payloads):
                try:
                    self._links[s].send(op, payload, deadline)
                except step_channel.ChannelClosed as e:
                    errors[s] = e
            for s, link in enumerate(self._links):
                if s in errors:
                    continue
                try:
                    slowest = max(slowest, link.receive_into(replies[s], lambda: self._check_serving(s, what), deadline))
                    answered.add(s)
                except step_channel.ShardFailed as e:
                    errors[s] = e
                    answered.add(s)
                except (step_channel.ChannelClosed, ShardError) as e:
                    errors[s] = e
        except BaseException:  # e.g. KeyboardInterrupt: a reply still on its way must not be read
            for s in set(range(len(self._links))) - answered - set(errors):  # as the next step's: start afresh
                self.connect(s)
            raise
        if errors:
            raise self._failure(errors, what, timeout_s)
        return slowest

    def _failure(self, errors: dict, what: str, timeout_s: float) -> ShardError:
        """The error to raise for a round trip's failures (the lowest shard's); links out of step
        are dropped, shards that missed the deadline killed."""
        for s, e in errors.items():
            if isinstance(e, step_channel.StepTimeout):
                self._group.kill(s)
            elif not isinstance(e, step_channel.ShardFailed):
                self.drop(s)
        shard = min(errors)
        error = errors[shard]
        if isinstance(error, step_channel.ShardFailed):
            return self._group.raised(shard, what, error.cause, error.type_name)
        if isinstance(error, step_channel.StepTimeout):
            return self._group.timed_out(shard, what, timeout_s)
        if isinstance(error, ShardError):
            return error
        return ShardDiedError(shard, self._group.where(shard), f"{what} failed: the shard's connection closed "
                              f"({error}); its actor is dead. Re-create the scene (or restart_shard) and restore "
                              "it from a checkpoint.")

    def _check_serving(self, shard: int, what: str) -> None:
        """Raise if shard `shard`'s `serve` call has ended while a reply is awaited (its actor or
        node died without closing the connection)."""
        ref = self._serving[shard]
        if ray.wait([ref], timeout=0)[0]:
            self._group.fetch(shard, ref, what)
            raise ShardDiedError(shard, self._group.where(shard), f"{what} failed: the shard stopped serving its connection")
