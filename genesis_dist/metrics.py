"""Metrics of a distributed scene, published through Ray (`ray.util.metrics`), so they show on the
Ray dashboard and on each node's Prometheus endpoint (cluster/grafana-dashboard.json charts them).

Ray exports them only where its dashboard agent runs in full, i.e. with `ray[default]` installed
(the `metrics` extra of this package): a minimal Ray (`ray` or `ray[tune]` alone) drops them.
Prometheus sees every name with Ray's prefix "ray_" (e.g. ray_genesis_dist_env_steps_total).

The coordinator calls one `Recorder` per scene: `step` once per step, `reset`, `recovery`,
`checkpoint`, and `flush` at shutdown. A recorder made with enabled=False does nothing and costs a
method call; an enabled one keeps its Ray metric objects and their tags, allocates nothing of its
own per step, and talks to Ray on a small fraction of steps (see Recorder).
"""

from __future__ import annotations

import time

from ray.util import metrics as ray_metrics

PREFIX = "genesis_dist_"
TAG_KEYS = ("scene",)
SECONDS_BUCKETS = [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
                   60.0, 300.0]
BYTES_BUCKETS = [2.0**k for k in range(10, 41, 2)]  # 1 KiB .. 1 TiB
RATE_WINDOW_S = 1.0  # env_steps_per_second is averaged over at least this long; counts reach Ray this often
MAX_SAMPLES_PER_S = 100  # step-time histograms observe about this many steps a second, at most

# name (without PREFIX): (kind, description, histogram buckets)
METRICS = {
    "env_steps": ("counter", "environment steps taken (n_envs per scene step)", None),
    "env_steps_per_second": ("gauge", "environment steps per second, averaged over >= 1 s", None),
    "step_seconds": ("histogram", "seconds of one scene step, as the caller sees it (sampled)", SECONDS_BUCKETS),
    "coordinator_overhead_seconds": ("histogram", "step seconds not spent stepping in the slowest shard "
                                     "(transport, splitting, gathering; sampled)", SECONDS_BUCKETS),
    "shard_step_seconds": ("histogram", "seconds the slowest shard spent on its own step (sampled)", SECONDS_BUCKETS),
    "resets": ("counter", "reset calls", None),
    "reset_envs": ("counter", "environments reset", None),
    "recoveries": ("counter", "recoveries from a dead shard or node", None),
    "recovery_seconds": ("histogram", "seconds of one recovery (replace, restore, replay)", SECONDS_BUCKETS),
    "checkpoint_bytes": ("histogram", "bytes of one checkpoint file saved or loaded", BYTES_BUCKETS),
    "checkpoint_seconds": ("histogram", "seconds to save or load one checkpoint", SECONDS_BUCKETS),
}


def prometheus_series() -> dict[str, str]:
    """{series name Prometheus gets: metric name in METRICS}: Ray adds the prefix "ray_"; a counter's
    series ends in _total, a histogram gives _bucket, _sum and _count."""
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
    return {"ray_" + PREFIX + name + suffix: name
            for name, (kind, _, _) in METRICS.items() for suffix in suffixes[kind]}


def _make(name: str, scene: str):
    kind, description, buckets = METRICS[name]
    full = PREFIX + name
    if kind == "counter":
        metric = ray_metrics.Counter(full, description, tag_keys=TAG_KEYS)
    elif kind == "gauge":
        metric = ray_metrics.Gauge(full, description, tag_keys=TAG_KEYS)
    else:
        metric = ray_metrics.Histogram(full, description, boundaries=buckets, tag_keys=TAG_KEYS)
    return metric.set_default_tags({"scene": scene})


class Recorder:
    """The metrics of one scene, tagged scene=`scene` (a name that tells scenes apart on a dashboard).

    A Ray metric record costs 10-40 us, so `step` keeps its counts in Python and hands them to Ray
    once per RATE_WINDOW_S (call `flush` at the end, so the last window is not lost), and observes
    the step-time histograms for at most about MAX_SAMPLES_PER_S steps a second (every k-th step,
    k set from the last window's step rate): their counts are samples, their quantiles are the
    steps'. Resets, recoveries and checkpoints are rare and recorded as they happen.
    """

    def __init__(self, scene: str, enabled: bool = True):
        if not isinstance(scene, str) or not scene:
            raise ValueError(f"scene must be a non-empty name, got {scene!r}")
        self.scene = scene
        self.enabled = bool(enabled)
        if not self.enabled:
            return
        m = {name: _make(name, scene) for name in METRICS}
        self._env_steps, self._rate, self._step_s = m["env_steps"], m["env_steps_per_second"], m["step_seconds"]
        self._overhead_s, self._shard_s = m["coordinator_overhead_seconds"], m["shard_step_seconds"]
        self._resets, self._reset_envs = m["resets"], m["reset_envs"]
        self._recoveries, self._recovery_s = m["recoveries"], m["recovery_seconds"]
        self._ckpt_bytes, self._ckpt_s = m["checkpoint_bytes"], m["checkpoint_seconds"]
        self._window_start = time.perf_counter()
        self._window_envs = 0  # env-steps in this window (for the rate)
        self._window_steps = 0  # scene steps in this window (for the sampling stride)
        self._unsent = 0  # env-steps not yet added to the Ray counter
        self._stride = 1

    def step(self, n_envs: int, seconds: float, shard_seconds: float | None = None) -> None:
        """One scene step of `n_envs` envs that took `seconds` for the caller, of which the slowest
        shard spent `shard_seconds` stepping (None where the transport does not report it)."""
        if not self.enabled:
            return
        self._unsent += n_envs
        self._window_envs += n_envs
        self._window_steps += 1
        if self._window_steps % self._stride == 0:
            self._step_s.observe(seconds)
            if shard_seconds is not None:
                self._shard_s.observe(shard_seconds)
                self._overhead_s.observe(max(seconds - shard_seconds, 0.0))
        now = time.perf_counter()
        if now - self._window_start >= RATE_WINDOW_S:
            elapsed = now - self._window_start
            self._rate.set(self._window_envs / elapsed)
            self._stride = max(1, int(self._window_steps / elapsed / MAX_SAMPLES_PER_S))
            self._window_start, self._window_envs, self._window_steps = now, 0, 0
            self.flush()

    def flush(self) -> None:
        """Hand the env-steps counted since the last window to Ray (at shutdown, or before reading)."""
        if self.enabled and self._unsent:
            self._env_steps.inc(int(self._unsent))
            self._unsent = 0

    def reset(self, n_envs: int) -> None:
        """One reset call that reset `n_envs` envs (0: an empty envs_idx)."""
        if not self.enabled:
            return
        self._resets.inc()
        if n_envs:
            self._reset_envs.inc(int(n_envs))

    def recovery(self, seconds: float) -> None:
        if not self.enabled:
            return
        self._recoveries.inc()
        self._recovery_s.observe(seconds)

    def checkpoint(self, nbytes: int, seconds: float) -> None:
        """One checkpoint file of `nbytes` saved or loaded in `seconds`."""
        if not self.enabled:
            return
        self._ckpt_bytes.observe(nbytes)
        self._ckpt_s.observe(seconds)
