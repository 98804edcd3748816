"""genesis_dist.metrics read back from a local Ray's Prometheus endpoint, and the Grafana dashboard
in cluster/ charting exactly the names the module publishes.

Ray exports metrics only where its dashboard agent runs in full (`ray[default]`, this package's
`metrics` extra, which the `test` extra includes); without it the read-back test is skipped."""

import json
import os
import re
import socket
import time
import urllib.request

import pytest
import ray

from genesis_dist import metrics

DASHBOARD = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cluster", "grafana-dashboard.json")
SCENE = "test-metrics"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def metrics_ray():
    from ray._private.utils import get_dashboard_dependency_error

    if get_dashboard_dependency_error() is not None:
        pytest.skip(f"Ray exports metrics only with ray[default] (pip install 'genesis-dist[metrics]'): "
                    f"{get_dashboard_dependency_error()}")
    port = free_port()
    ray.init(address="local", num_cpus=1, include_dashboard=False, configure_logging=False, log_to_driver=False,
             _metrics_export_port=port, _system_config={"metrics_report_interval_ms": 200})
    yield f"http://127.0.0.1:{port}/metrics"
    ray.shutdown()


def scrape(url: str, wanted: dict, scene: str = SCENE, timeout_s: float = 60.0) -> dict:
    """{(series name, le or None): value} of `scene`, once every `wanted` series has its value."""
    from prometheus_client.parser import text_string_to_metric_families

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            text = urllib.request.urlopen(url, timeout=5).read().decode()
        except OSError:
            text = ""
        found = {(s.name, s.labels.get("le")): s.value for family in text_string_to_metric_families(text)
                 for s in family.samples if s.labels.get("scene") == scene}
        if all(found.get(k) == v for k, v in wanted.items()) or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def test_recorded_values_come_back_through_rays_prometheus_endpoint(metrics_ray):
    recorder = metrics.Recorder(SCENE)
    for seconds in (0.004, 0.004, 0.03):
        recorder.step(16, seconds, shard_seconds=0.003)
    recorder.step(16, 0.004)  # a transport that does not report shard time
    recorder.reset(3)
    recorder.reset(0)
    recorder.recovery(2.5)
    recorder.checkpoint(4096, 0.2)
    recorder.flush()  # env-steps reach Ray once a second, or now
    p = "ray_genesis_dist_"
    wanted = {
        (p + "env_steps_total", None): 64.0,
        (p + "resets_total", None): 2.0, (p + "reset_envs_total", None): 3.0,
        (p + "recoveries_total", None): 1.0,
        (p + "step_seconds_count", None): 4.0,
        (p + "step_seconds_bucket", "0.005"): 3.0, (p + "step_seconds_bucket", "0.05"): 4.0,
        (p + "shard_step_seconds_count", None): 3.0,
        (p + "coordinator_overhead_seconds_bucket", "0.002"): 2.0,  # 0.004 - 0.003
        (p + "coordinator_overhead_seconds_bucket", "0.05"): 3.0,  # 0.03 - 0.003
        (p + "recovery_seconds_bucket", "2.0"): 0.0, (p + "recovery_seconds_bucket", "5.0"): 1.0,
        (p + "checkpoint_bytes_bucket", "1024.0"): 0.0, (p + "checkpoint_bytes_bucket", "4096.0"): 1.0,
        (p + "checkpoint_seconds_count", None): 1.0,
    }
    found = scrape(metrics_ray, wanted)
    assert {k: found.get(k) for k in wanted} == wanted
    # Ray keeps a histogram's sum as bucket midpoints, so only counts and buckets are exact
    assert found[(p + "step_seconds_sum", None)] > 0


def test_env_steps_per_second_is_published_after_a_window(metrics_ray, monkeypatch):
    clock = iter([100.0, 100.4, 101.0])  # the recorder's start, then two steps
    monkeypatch.setattr(metrics.time, "perf_counter", lambda: next(clock))
    recorder = metrics.Recorder(SCENE)
    recorder.step(100, 0.01)  # 0.4 s: not a full window yet
    recorder.step(200, 0.01)  # 1.0 s: 300 env-steps per second
    found = scrape(metrics_ray, {("ray_genesis_dist_env_steps_per_second", None): 300.0})
    assert found.get(("ray_genesis_dist_env_steps_per_second", None)) == 300.0


def test_step_times_are_sampled_at_high_step_rates_and_counts_stay_exact(metrics_ray, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(metrics.time, "perf_counter", lambda: now[0])
    recorder = metrics.Recorder("test-metrics-sampled")
    for i in range(1, 1001):  # 1000 steps a second: every step observed in the first window
        now[0] = i / 1000
        recorder.step(8, 0.001, 0.0005)
    for i in range(1, 101):  # then every 1000 / MAX_SAMPLES_PER_S = 10th step
        now[0] = 1.0 + i / 1000
        recorder.step(8, 0.001, 0.0005)
    recorder.flush()
    wanted = {("ray_genesis_dist_env_steps_total", None): 8.0 * 1100,
              ("ray_genesis_dist_step_seconds_count", None): 1000.0 + 10,
              ("ray_genesis_dist_shard_step_seconds_count", None): 1000.0 + 10}
    found = scrape(metrics_ray, wanted, scene="test-metrics-sampled")
    assert {k: found.get(k) for k in wanted} == wanted


def test_a_disabled_recorder_records_nothing():
    recorder = metrics.Recorder("off", enabled=False)
    recorder.step(16, 0.01, 0.005)
    recorder.reset(2)
    recorder.recovery(1.0)
    recorder.checkpoint(10, 0.1)
    recorder.flush()
    assert not hasattr(recorder, "_env_steps")
    with pytest.raises(ValueError, match="non-empty name"):
        metrics.Recorder("")


def test_grafana_dashboard_charts_exactly_the_published_metrics():
    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    queried = {name for e in exprs for name in re.findall(r"\bray_genesis_dist_[a-z_]+", e)}
    series = metrics.prometheus_series()
    assert queried and queried <= set(series), f"not published: {sorted(queried - set(series))}"
    assert {series[name] for name in queried} == set(metrics.METRICS), "a published metric is on no panel"
