"""`genesis-dist train` and cluster/train-rayjob.yaml, without starting Ray: the manifest runs a
command our parser accepts, one GPU per worker, on storage every pod sees; bad input exits 2 first."""

import argparse
import shlex
from pathlib import Path

import pytest
import ray
import yaml

from genesis_dist import cli, train_cli

MANIFEST = Path(__file__).resolve().parent.parent / "cluster" / "train-rayjob.yaml"


def parse(argv):
    parser = argparse.ArgumentParser(prog="genesis-dist")
    train_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_the_rayjob_runs_data_parallel_training_with_one_gpu_per_worker():
    (job,) = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d is not None]
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:2] == ["genesis-dist", "train"]
    args = parse(argv[1:])
    assert (args.task, args.mode, args.backend) == ("FrankaReach", "data-parallel", "gpu")
    cluster = job["spec"]["rayClusterSpec"]
    assert cluster["rayVersion"] == ray.__version__
    assert cluster["authOptions"] == {"mode": "token", "secretName": "genesis-dist-ray-token"}
    assert cluster["headGroupSpec"]["serviceType"] == "ClusterIP"
    (gpus,) = cluster["workerGroupSpecs"]
    (container,) = gpus["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert gpus["minReplicas"] == gpus["replicas"] == gpus["maxReplicas"] == args.workers
    assert args.n_envs % args.workers == 0
    # every pod mounts the claim that holds --out, so rank 0's checkpoints are where every worker resumes
    for group in [cluster["headGroupSpec"], gpus]:
        spec = group["template"]["spec"]
        (volume,) = spec["volumes"]
        mounts = {m["name"]: m["mountPath"] for c in spec["containers"] for m in c["volumeMounts"]}
        assert args.out.startswith(mounts[volume["name"]] + "/")
        assert volume["persistentVolumeClaim"]["claimName"]


@pytest.mark.parametrize("argv, message", [
    (["train", "FrankaRaech", "--n-envs", "4"], "unknown task 'FrankaRaech'"),
    (["train", "FrankaReach", "--n-envs", "2", "--workers", "3"], "3 workers for 2 envs"),
    (["train", "FrankaReach", "--n-envs", "4", "--iterations", "0"], "iterations must be an integer >= 1"),
    (["train", "FrankaReach", "--n-envs", "4", "--resume", "/nonexistent"], "is not a saved training run"),
])
def test_bad_input_exits_2_naming_the_problem_before_ray_starts(argv, message, capsys, tmp_path):
    assert cli.main([*argv, "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err
    assert not ray.is_initialized() and not (tmp_path / "run").exists()
