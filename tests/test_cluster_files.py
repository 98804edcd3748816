"""The cluster files are safe as shipped: Ray token authentication on, dashboards not public.

The launcher YAML goes through Ray's own config schema (what `ray up` checks before it starts
anything); the KubeRay manifest through a structural check of the fields KubeRay requires and of
its auth settings (KubeRay's CRD schema is not installed here); local_cluster.sh's token step runs
for real in a temporary HOME."""

import copy
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER = Path(__file__).resolve().parent.parent / "cluster"
RAY_CLI = str(Path(sys.executable).with_name("ray"))


def launcher_config():
    with open(CLUSTER / "ray-cluster.yaml") as f:
        return yaml.safe_load(f)


def test_launcher_yaml_passes_rays_schema_with_token_auth_on():
    config = launcher_config()
    validate_config(prepare_config(copy.deepcopy(config)))
    with pytest.raises(Exception, match="file_mountz"):  # the check is live: a typo fails it
        validate_config(prepare_config(dict(copy.deepcopy(config), file_mountz={})))
    assert config["file_mounts"]["/home/ubuntu/.ray/auth_token"] == "~/.ray/auth_token"
    assert config["auth"]["ssh_user"] == "ubuntu"  # the home the token is mounted into
    assert "export RAY_AUTH_MODE=token" in " ".join(config["initialization_commands"])
    starts = [shlex.split(c) for c in config["head_start_ray_commands"] + config["worker_start_ray_commands"]
              if "ray start" in c]
    assert len(starts) == 2 and all(c[:3] == ["RAY_AUTH_MODE=token", "ray", "start"] for c in starts)
    head = next(c for c in starts if "--head" in c)
    assert "--dashboard-host=127.0.0.1" in head
    assert "0.0.0.0" not in (CLUSTER / "ray-cluster.yaml").read_text()


def test_kuberay_manifest_has_token_auth_from_a_secret_and_no_public_service():
    with open(CLUSTER / "kuberay-rayjob.yaml") as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    assert [(d["apiVersion"], d["kind"]) for d in docs] == [("ray.io/v1", "RayJob")]  # no Service / Ingress
    spec = docs[0]["spec"]
    assert spec["entrypoint"] and docs[0]["metadata"]["name"]
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == ray.__version__  # the image's Ray must be this Ray
    assert cluster["authOptions"] == {"mode": "token", "secretName": "genesis-dist-ray-token"}
    head = cluster["headGroupSpec"]
    groups = [head] + cluster["workerGroupSpecs"]
    for group in groups:
        assert isinstance(group["rayStartParams"], dict)
        containers = group["template"]["spec"]["containers"]
        assert containers and all(c["name"] and c["image"] for c in containers)
        # the operator injects the token; a hand-written RAY_AUTH_* would bypass the Secret
        assert not any(e["name"].startswith("RAY_AUTH") for c in containers for e in c.get("env", []))
    for group in cluster["workerGroupSpecs"]:
        assert group["groupName"] and group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    assert set(_values(docs, "serviceType")) == {"ClusterIP"}  # nowhere a LoadBalancer or NodePort


def _values(tree, key):
    if isinstance(tree, dict):
        return [v for k, v in tree.items() if k == key] + [x for v in tree.values() for x in _values(v, key)]
    return [x for v in tree for x in _values(v, key)] if isinstance(tree, list) else []


def _token_step(home, **env):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")} | {"HOME": str(home), "RAY": RAY_CLI} | env
    return subprocess.run(["bash", str(CLUSTER / "local_cluster.sh"), "token"], env=env, capture_output=True,
                          text=True, timeout=120)


def test_local_cluster_creates_a_private_token_when_there_is_none(tmp_path):
    token = tmp_path / ".ray" / "auth_token"
    proc = _token_step(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "created a Ray token" in proc.stderr and proc.stdout == ""  # the token is not printed
    value = token.read_text()
    assert len(value) >= 32 and stat.S_IMODE(token.stat().st_mode) == 0o600
    assert _token_step(tmp_path).returncode == 0 and token.read_text() == value  # kept, not replaced
    other = tmp_path / "other"
    other.mkdir()
    assert _token_step(other, RAY_AUTH_TOKEN="given").returncode == 0
    assert not (other / ".ray").exists()  # a token in the environment is used as it is
