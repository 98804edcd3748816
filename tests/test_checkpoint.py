"""The checkpoint file: format, bit-exact round trips across processes, safety, compatibility, atomicity."""

import os
import pickle

import numpy as np
import pytest

import sim as gs
import crafted
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
    with pytest.raises(gs.CheckpointError, match="truncated"):
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


# ------------------------------------------------------------------ files that try to steer the reader
@pytest.fixture(scope="module")
def scene():
    scene = make_scene(n_envs=N)
    run(scene, 4)
    return scene


@pytest.fixture(scope="module")
def base(scene):
    """A real checkpoint dict (toy scene: float32 and int32 arrays, and a meta)."""
    return {"timestamp": 1.0, "step_index": 4, "arrays": scene.get_state().arrays(), "meta": scene.checkpoint_meta()}


@pytest.fixture(scope="module")
def findings(base):
    return crafted.findings(base)


@pytest.mark.parametrize("name", crafted.FINDINGS)
def test_crafted_file_from_the_issue_raises_checkpoint_error(tmp_path, scene, findings, name):
    """Each finding of issue 9, which on the old reader segfaulted, loaded, or let another
    exception escape (see the note); the scene is left as it was."""
    blob, error, words = findings[name]
    path = tmp_path / "crafted.pkl"
    path.write_bytes(blob)
    with pytest.raises(error, match=words):
        checkpoint.read(path)
    before = scene.get_state()
    with pytest.raises(error):
        scene.load_checkpoint(path)
    assert_states_equal(scene.get_state(), before)


def test_a_crafted_recovery_snapshot_is_refused(tmp_path, base):
    """The recovery snapshot in snapshot_dir is a checkpoint file, read through checkpoint.read."""
    from genesis_dist.recovery import Journal, Recovery

    journal = Journal(Recovery(snapshot_dir=str(tmp_path)), base["meta"])
    journal.keep_snapshot(gs.SimState(base["arrays"], 4, N))
    assert journal.snapshot().t == 4
    with open(journal.path, "rb") as f:
        snapshot = pickle.load(f)
    snapshot["meta"] = dict(snapshot["meta"], n_envs=crafted.object_scalar())
    with open(journal.path, "wb") as f:
        f.write(crafted.dumps(snapshot))
    with pytest.raises(gs.UnsafeCheckpointError, match="'O8' is not a plain"):
        journal.snapshot()


@pytest.mark.parametrize("change, words", [
    (dict(step_index=-1), r"step_index is -1, not an int in \[0, 9007199254740992\]"),
    (dict(step_index=True), r"step_index is True, not an int"),
    (dict(step_index=2.0), r"step_index is 2.0, not an int"),
    (dict(timestamp=float("nan")), "timestamp is nan, not a finite number"),
    (dict(timestamp="now"), "timestamp is 'now', not a finite number"),
    (dict(extra=1), r"unexpected keys \['extra'\]"),
    (dict(arrays=[1]), r"'arrays' is \[1\], not a dict"),
    (dict(meta={"format": 2}), "unsupported checkpoint format 2, this version reads format 1"),
    (dict(meta=None), "meta is None, not a dict"),
    (dict(meta_n_envs=-3), r"meta n_envs is -3, not an int in \[0, 2147483647\]"),
    (dict(meta_n_envs=4), "arrays has n_envs=5 .* the file's meta has n_envs=4"),
    (dict(meta_fingerprint=["x"]), r"meta fingerprint is \['x'\], not 16 hex digits"),
    (dict(meta_scene=[]), r"meta scene is \[\], not a dict"),
    (dict(meta_scene={1: 2}), "has the key 1; keys are strings"),
    (dict(meta_scene={"s": {1, 2}}), r"\['s'\] is a set, not plain data"),
    (dict(meta_scene={"s": (1, 2)}), r"\['s'\] is \(1, 2\), not plain data"),
    (dict(meta_scene={"s": "x" * 5000}), "a string of 5000 characters"),
    (dict(meta_scene={"s": 2 ** 70}), r"\['s'\] is 1180591620717411303424, out of range"),
    (dict(meta_layout=[["a", [1], "<f4"], ["a", [1], "<f4"]]), r"layout\[1\] key 'a' is not a string or repeats one"),
    (dict(meta_layout=[["a", [-1], "<f4"]]), r"layout\[0\] \(a\) shape \[-1\]"),
    (dict(meta_layout=[["a", [1], "|O"]]), "dtype '|O' is not a plain"),
    (dict(meta_layout=[["a", [1], "<f4", 0]]), r"layout\[0\] is \['a', a list, '<f4', 0\], not \[key, shape, dtype\]"),
])
def test_every_malformed_value_is_named(tmp_path, base, change, words):
    data = dict(base, meta=dict(base["meta"]))
    for k, v in change.items():
        if k.startswith("meta_"):
            data["meta"][k[5:]] = v
        else:
            data[k] = v
    path = tmp_path / "bad.pkl"
    path.write_bytes(crafted.dumps(data))
    with pytest.raises(gs.CheckpointError, match=words):
        checkpoint.read(path)


def test_a_fifo_or_device_is_refused_without_waiting(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    for path in (tmp_path / "fifo", "/dev/zero"):
        with pytest.raises(gs.CheckpointError, match="is not a regular file"):
            checkpoint.read(path)


def test_arrays_of_every_plain_dtype_and_pickle_protocol_load(tmp_path):
    """What numpy writes for plain arrays (C, Fortran, transposed, strided, empty, 0-d, big-endian,
    bool, complex, half) and numpy scalars, with pickle protocols 0-5, reads back equal and writable."""
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    arrays = {"c": a, "f": np.asfortranarray(a), "t": a.transpose(1, 0, 2), "s": a[:, ::2], "e": np.zeros((0, 3)),
              "z": np.array(True), "be": a.astype(">i8"), "cx": np.arange(3, dtype=np.complex64),
              "h": np.arange(3, dtype=np.float16), "u": np.arange(3, dtype=np.uint8)}
    for protocol in range(6):
        path = tmp_path / f"p{protocol}.pkl"
        with open(path, "wb") as f:
            pickle.dump({"timestamp": np.float64(1.5), "step_index": np.int64(3), "arrays": arrays}, f, protocol=protocol)
        data = checkpoint.read(path)
        assert data["step_index"] == 3 and type(data["step_index"]) is int and data["timestamp"] == 1.5
        for k, v in arrays.items():
            got = data["arrays"][k]
            assert type(got) is np.ndarray and got.dtype == v.dtype and np.array_equal(got, v) and got.flags.writeable


def test_write_refuses_what_read_would_and_writes_nothing(tmp_path, base):
    path = tmp_path / "w.pkl"
    for step_index, words in [(2 ** 63 - 1, "step_index is 9223372036854775807"), (-1, "step_index is -1"),
                              ("3", "step_index is '3'")]:
        with pytest.raises(gs.CheckpointError, match=f"cannot write {path}: {words}"):
            checkpoint.write(path, base["arrays"], step_index, base["meta"])
    with pytest.raises(gs.UnsafeCheckpointError, match=r"\['arrays'\]\['o'\] has the dtype object"):
        checkpoint.write(path, {"o": np.array([None])}, 0, None)
    with pytest.raises(gs.CheckpointError, match="arrays fields differ from the file's meta's"):
        checkpoint.write(path, {}, 0, base["meta"])
    assert os.listdir(tmp_path) == []
    checkpoint.write(path, base["arrays"], np.int64(2 ** 53), base["meta"])
    assert checkpoint.read(path)["step_index"] == 2 ** 53


def test_checkpoint_follows_the_umask(tmp_path, base):
    for umask, mode in [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)]:
        old = os.umask(umask)
        try:
            checkpoint.write(tmp_path / "m.pkl", base["arrays"], 0, base["meta"])
        finally:
            os.umask(old)
        assert os.stat(tmp_path / "m.pkl").st_mode & 0o777 == mode


def test_symlinked_path_is_written_through(tmp_path, base):
    """The link stays and the file it names is replaced (atomically); a dangling link creates
    its target; a link owned by another user is refused and nothing changes."""
    (tmp_path / "runs").mkdir()
    target, link = tmp_path / "runs" / "ckpt.pkl", tmp_path / "latest.pkl"
    link.symlink_to("runs/ckpt.pkl")
    checkpoint.write(link, base["arrays"], 7, base["meta"])  # dangling: creates the target
    checkpoint.write(link, base["arrays"], 8, base["meta"])
    assert link.is_symlink() and os.readlink(link) == "runs/ckpt.pkl"
    assert checkpoint.read(target)["step_index"] == 8 and sorted(os.listdir(tmp_path / "runs")) == ["ckpt.pkl"]
    if os.getuid() != 0:
        return  # only root can give a link to another user
    os.lchown(link, 12345, 12345)
    with pytest.raises(gs.CheckpointError, match=f"the symlink {link} belongs to another user"):
        checkpoint.write(link, base["arrays"], 9, base["meta"])
    assert checkpoint.read(target)["step_index"] == 8
