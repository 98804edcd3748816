"""DistributedScene's checkpoint bars: writing and reading count the file's bytes (every byte,
so a bar ends at the file's size), and GENESIS_DIST_PROGRESS=0 turns them off."""

import sys

import cloudpickle
import pytest

import genesis_dist as gd
from genesis_dist import progress
from local_ray import local_ray_fixture
from toy_solver import build_toy

local_ray = local_ray_fixture(num_cpus=1)
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # shards never import this module


@pytest.fixture(scope="module")
def scene():
    with gd.DistributedScene(build_toy, n_envs=4, n_shards=1, deterministic=True) as s:
        yield s


def _recorded_bars(monkeypatch, show):
    """Every bar the scene makes, kept (closed bars keep their count)."""
    made, real = [], progress.bar

    def recording(total, desc, unit="it", **kwargs):
        made.append(real(total, desc, unit, **{**kwargs, "show": show, "delay": 0}))
        return made[-1]

    monkeypatch.setattr(progress, "bar", recording)
    return made


def test_save_and_load_bars_count_the_file_bytes(scene, tmp_path, monkeypatch, capsys):
    path = tmp_path / "c.pkl"
    for _ in range(3):
        scene.step()
    bars = _recorded_bars(monkeypatch, show=True)
    scene.save_checkpoint(path)
    scene.step()
    scene.load_checkpoint(path)
    assert scene.t == 3
    by_name = {b.desc: b for b in bars}
    size = path.stat().st_size
    assert by_name["writing checkpoint"].n == size and by_name["reading checkpoint"].n == size
    assert by_name["reading checkpoint"].total == size and by_name["gathering state"].n == 1
    err = capsys.readouterr().err
    assert "writing checkpoint" in err and "reading checkpoint" in err


def test_checkpoint_bars_off_when_asked(scene, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(progress.ENV_VAR, "0")
    bars = _recorded_bars(monkeypatch, show=None)  # None: the environment decides
    scene.save_checkpoint(tmp_path / "c.pkl")
    scene.load_checkpoint(tmp_path / "c.pkl")
    assert bars and all(b.disable for b in bars)
    assert "checkpoint" not in capsys.readouterr().err
