"""The checkpoint file: format, bit-exact round trips across processes, safety, compatibility, atomicity."""

import os
import pickle

import numpy as np
import pytest

import sim as gs
from isolated import run_isolated
from sim import checkpoint
from test_scene_state import assert_states_equal, make_scene, run

N = 5


def test_file_is_the_spec_dict_plus_meta(tmp_path):
    scene = make_scene(n_envs=N)
    run(scene, 9)
    path = tmp_path / "ckpt.pkl"
    scene.save_checkpoint(path)
    with open(path, "rb") as f:
        data = pickle.load(f)
    assert set(data) == {"timestamp", "step_index", "arrays", "meta"}
    assert data["step_index"] == 9 and isinstance(data["timestamp"], float)
    assert all(isinstance(v, np.ndarray) for v in data["arrays"].values())
    assert_states_equal(gs.SimState(data["arrays"], 9, N), scene.get_state())
    meta = data["meta"]
    assert meta["format"] == 1 and meta["n_envs"] == N and meta["fingerprint"] == scene.fingerprint
    assert ["ToySolver.pos", [3, 3], "<f4"] in meta["layout"]


def test_save_load_round_trip_in_process(tmp_path):
    scene = make_scene(n_envs=N)
    run(scene, 11)
    saved = scene.get_state()
    scene.save_checkpoint(tmp_path / "a.pkl")
    run(scene, 30)
    scene.load_checkpoint(tmp_path / "a.pkl")
    assert scene.t == 11
    assert_states_equal(scene.get_state(), saved)


def _load_continue_in_new_process(path, steps):
    scene = make_scene(n_envs=N)
    scene.load_checkpoint(path)
    loaded = scene.get_state().arrays()
    run(scene, steps)
    return scene.t, loaded, scene.get_state().arrays()


def test_checkpoint_loaded_in_a_new_process_is_bit_identical(tmp_path):
    scene = make_scene(n_envs=N)
    run(scene, 13)
    path = str(tmp_path / "b.pkl")
    scene.save_checkpoint(path)
    saved = scene.get_state()
    run(scene, 50)
    t, loaded, continued = run_isolated(_load_continue_in_new_process, path, 50, deterministic=True)
    assert t == 63
    assert_states_equal(gs.SimState(loaded, 13, N), saved)
    assert_states_equal(gs.SimState(continued, 63, N), scene.get_state())


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    scene = make_scene(n_envs=N)
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    arrays = scene.get_state().arrays()
    with open(path, "wb") as f:
        pickle.dump({"timestamp": 0.0, "step_index": 0, "arrays": arrays, "meta": _Payload(marker)}, f)
    before = scene.get_state()
    with pytest.raises(gs.UnsafeCheckpointError, match="posix.system|os.system"):
        scene.load_checkpoint(path)
    assert not marker.exists()
    assert_states_equal(scene.get_state(), before)


def test_truncated_file_gives_a_clear_error(tmp_path):
    scene = make_scene(n_envs=N)
    path = tmp_path / "t.pkl"
    scene.save_checkpoint(path)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(gs.CheckpointError, match="truncated or corrupt"):
        scene.load_checkpoint(path)
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(gs.CheckpointError, match="not a checkpoint"):
        scene.load_checkpoint(path)


def test_file_for_another_scene_names_what_differs(tmp_path):
    scene = make_scene(n_envs=N)
    before = scene.get_state()
    cases = [
        (make_scene(n_envs=N + 2), r"saved with n_envs=7, the scene has n_envs=5"),
        (make_scene(n_envs=N, n_points=4), r"n_points: file has 4, scene has 3"),
        (make_scene(n_envs=N, pos=(0, 0, 2.0)), r"morph.pos\[2\]: file has 2.0, scene has 1.0"),
        (make_scene(n_envs=N, toy_options=gs.options.ToyOptions(damping=0.1)),
         r"options.damping: file has 0.1, scene has 0.0"),
    ]
    for i, (other, words) in enumerate(cases):
        path = tmp_path / f"other{i}.pkl"
        other.save_checkpoint(path)
        with pytest.raises(gs.CheckpointError, match=words):
            scene.load_checkpoint(path)
    assert_states_equal(scene.get_state(), before)


def _save_float64(path):
    make_scene(n_envs=N).save_checkpoint(path)


def test_file_of_another_precision_names_the_dtype(tmp_path):
    path = str(tmp_path / "f64.pkl")
    run_isolated(_save_float64, path, precision="64")
    scene = make_scene(n_envs=N)
    with pytest.raises(gs.CheckpointError, match=r"precision: file has '64', scene has '32'.*layout.ToySolver.pos.dtype: file has '<f8'"):
        scene.load_checkpoint(path)
    data = checkpoint.read(path)
    del data["meta"]
    with pytest.raises(gs.CheckpointError, match="dtype float64, the scene expects float32"):
        checkpoint.check_compatible(data, scene.checkpoint_meta())


def test_file_without_meta_loads_when_names_and_shapes_match(tmp_path):
    scene = make_scene(n_envs=N)
    run(scene, 6)
    state = scene.get_state()
    path = tmp_path / "plain.pkl"
    with open(path, "wb") as f:
        pickle.dump({"timestamp": 1.0, "step_index": scene.t, "arrays": state.arrays()}, f)
    scene.reset()
    scene.load_checkpoint(path)
    assert scene.t == 6
    assert_states_equal(scene.get_state(), state)
    arrays = state.arrays()
    arrays.pop("ToySolver.hits")
    with open(path, "wb") as f:
        pickle.dump({"timestamp": 1.0, "step_index": 0, "arrays": arrays}, f)
    with pytest.raises(gs.CheckpointError, match=r"missing \['ToySolver.hits'\]"):
        scene.load_checkpoint(path)


def test_crash_mid_save_leaves_previous_file_loadable(tmp_path, monkeypatch):
    scene = make_scene(n_envs=N)
    run(scene, 3)
    path = tmp_path / "c.pkl"
    scene.save_checkpoint(path)
    good = scene.get_state()
    run(scene, 10)

    def dump_half_then_die(obj, f, protocol=None):
        f.write(pickle.dumps(obj, protocol=protocol)[:100])
        raise KeyboardInterrupt("simulated crash mid-save")

    monkeypatch.setattr(checkpoint.pickle, "dump", dump_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        scene.save_checkpoint(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["c.pkl"]  # the temp file is gone too
    scene.load_checkpoint(path)
    assert scene.t == 3
    assert_states_equal(scene.get_state(), good)


def test_unbatched_checkpoint_round_trip(tmp_path):
    scene = make_scene(n_envs=0)
    run(scene, 8)
    state = scene.get_state()
    scene.save_checkpoint(tmp_path / "u.pkl")
    run(scene, 8)
    scene.load_checkpoint(tmp_path / "u.pkl")
    assert_states_equal(scene.get_state(), state)
    with pytest.raises(gs.CheckpointError, match="n_envs=0"):
        make_scene(n_envs=2).load_checkpoint(tmp_path / "u.pkl")
