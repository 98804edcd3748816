"""`genesis-dist inspect` on real checkpoints (a Franka scene, an MPM scene, a VecEnv's with Task
buffers), `--diff` naming what differs, and damaged files refused in one line with exit code 2."""

import pickle

import numpy as np
import pytest

import genesis_dist as gd
import sim as gs
from genesis_dist import cli
from genesis_dist.tasks.reach import FrankaReach
from local_ray import local_ray_fixture

local_ray = local_ray_fixture(num_cpus=2)


def franka(n_envs):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01))
    scene.add_entity(gs.morphs.Plane())
    scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    scene.build(n_envs=n_envs)
    return scene


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Checkpoints written by the real save paths, and facts about them to compare with."""
    folder = tmp_path_factory.mktemp("ckpt")
    out = {}
    scene = franka(4)
    for _ in range(3):
        scene.step()
    scene.save_checkpoint(folder / "franka.pkl")
    out["franka_state"] = scene.get_state()
    scene.reset(envs_idx=[2])
    scene.save_checkpoint(folder / "franka_reset2.pkl")
    single = franka(0)  # unbatched: no env axis
    single.save_checkpoint(folder / "single.pkl")
    single.step()
    single.save_checkpoint(folder / "single_stepped.pkl")

    mpm = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01),
                   mpm_options=gs.options.MPMOptions(lower_bound=(-0.5, -0.5, 0.0), upper_bound=(0.5, 0.5, 1.0),
                                                     grid_density=16))
    mpm.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 0.5), size=(0.2, 0.2, 0.2)), gs.materials.MPM.Elastic())
    mpm.build(n_envs=2)
    mpm.step()
    mpm.save_checkpoint(folder / "mpm.pkl")

    with gd.VecEnv(FrankaReach, n_envs=4, n_shards=1, task_cfg={"episode_length": 5},
                   backend="cpu", resources_per_shard={"num_cpus": 1}) as env:
        import torch
        for _ in range(2):
            env.step(torch.zeros(4, env.num_actions))
        env.save_checkpoint(folder / "vecenv.pkl")
    out.update({name: folder / f"{name}.pkl" for name in ("franka", "franka_reset2", "single", "single_stepped",
                                                                  "mpm", "vecenv")})
    return out


def run(capsys, *argv):
    code = cli.main(["inspect", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def row(out, name):
    """The table row of array `name`: [name, shape, dtype, min, max, nan]."""
    for line in out.splitlines():
        cells = line.split()
        if cells and cells[0] == name:
            return [cells[0], " ".join(cells[1:-4]), *cells[-4:]]
    raise AssertionError(f"{name} not listed in:\n{out}")


def test_franka_checkpoint_lists_every_array_with_its_stats(files, capsys):
    code, out, err = run(capsys, files["franka"])
    assert code == 0 and err == ""
    state = files["franka_state"]
    meta = gs.checkpoint.read(files["franka"])["meta"]
    assert "n_envs       4" in out and "step_index   3" in out and f"fingerprint  {meta['fingerprint']}" in out
    assert "Task buffers" not in out
    for key in state.keys():
        a = state[key]
        name, shape, dtype, lo, hi, nans = row(out, key)
        assert (shape, dtype, nans) == (str(a.shape), str(a.dtype), "0")
        assert np.isclose(float(lo), a.min(), rtol=1e-5) and np.isclose(float(hi), a.max(), rtol=1e-5)


def test_mpm_checkpoint_and_nan_counts(files, capsys, tmp_path):
    code, out, _ = run(capsys, files["mpm"])
    assert code == 0 and "n_envs       2" in out
    data = gs.checkpoint.read(files["mpm"])
    for key in ("MPMSolver.pos", "MPMSolver.F", "MPMSolver.active"):
        assert row(out, key)[1:3] == [str(data["arrays"][key].shape), str(data["arrays"][key].dtype)]
    arrays = dict(data["arrays"])  # a file in the spec's format (no meta) with NaNs in it
    arrays["MPMSolver.vel"] = arrays["MPMSolver.vel"].copy()
    arrays["MPMSolver.vel"][1, :5, 0] = np.nan
    gs.checkpoint.write(tmp_path / "nan.pkl", arrays, 7, None)
    code, out, _ = run(capsys, tmp_path / "nan.pkl")
    assert code == 0 and "no meta" in out and "step_index   7" in out
    assert row(out, "MPMSolver.vel")[5] == "5"


def test_vecenv_checkpoint_shows_task_buffers(files, capsys):
    code, out, _ = run(capsys, files["vecenv"])
    assert code == 0 and "step_index   2" in out
    task_part = out.split("Task buffers")[1]
    assert "Task.target" in task_part and "Task.episodes" in task_part and "Task.episode_length" in task_part
    assert row(out, "Task.episode_length")[1:4] == ["(4,)", "int32", "2"]  # 2 steps of episodes of 5
    assert "RigidSolver.qpos" in out.split("Task buffers")[0]


def test_diff_names_the_first_differing_env(files, capsys):
    code, out, _ = run(capsys, files["franka"], "--diff", files["franka_reset2"])
    assert code == 1
    assert "RigidSolver.qpos: values differ in 1 env(s), first env 2" in out
    assert "fingerprint" not in out and "only in" not in out
    code, out, _ = run(capsys, files["franka"], "--diff", files["franka"])
    assert code == 0 and "hold the same arrays" in out


def test_unbatched_checkpoint_names_no_env(files, capsys):
    code, out, _ = run(capsys, files["single"])
    assert code == 0 and "n_envs       0 (unbatched" in out and row(out, "RigidSolver.qpos")[1] == "(9,)"
    code, out, _ = run(capsys, files["single"], "--diff", files["single_stepped"])
    assert code == 1 and "step_index: 0 vs 1" in out and "RigidSolver.qpos: values differ (an unbatched scene)" in out


def test_diff_names_keys_shapes_and_scene(files, capsys):
    code, out, _ = run(capsys, files["franka"], "--diff", files["single"])
    assert code == 1
    assert "n_envs: 4 vs 0" in out and "RigidSolver.qpos: shape (4, 9) vs (9,)" in out
    code, out, _ = run(capsys, files["franka"], "--diff", files["mpm"])
    assert code == 1 and "fingerprint:" in out and "scene.solvers.MPMSolver is only in the second" in out
    first = out.split("only in the first: ")[1].split("\n")[0].split(", ")
    assert first[0].startswith("RigidSolver.") and "RigidSolver.ctrl_force" in first
    assert "MPMSolver.pos" in out.split("only in the second:")[1]
    code, out, _ = run(capsys, files["franka"], "--diff", files["vecenv"])
    assert "only in the second: Task.episode_length, Task.episodes, Task.target" in out


@pytest.mark.parametrize("damage", ["truncated", "garbage", "crafted", "not_a_checkpoint", "missing"])
def test_damaged_file_is_one_line_and_exit_code_2(files, capsys, tmp_path, damage):
    path = tmp_path / "bad.pkl"
    blob = files["franka"].read_bytes()
    if damage == "truncated":
        path.write_bytes(blob[: len(blob) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x80\x05 this is not a pickle" * 10)
    elif damage == "crafted":
        path.write_bytes(pickle.dumps({"step_index": 0, "arrays": {}, "x": print}))
    elif damage == "not_a_checkpoint":
        path.write_bytes(pickle.dumps([1, 2, 3]))
    code, out, err = run(capsys, path)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("genesis-dist: cannot read the checkpoint") and "Traceback" not in err
    assert "bad.pkl" in err
    code, _, err = run(capsys, files["franka"], "--diff", path)
    assert code == 2 and err.count("\n") == 1
