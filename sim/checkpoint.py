"""The checkpoint file: the specification's pickled dict plus "meta".

    {"timestamp": float, "step_index": int, "arrays": {"Solver.field": ndarray, ...},
     "meta": {"format": 1, "n_envs": int, "fingerprint": str, "layout": [[key, shape, dtype], ...],
              "scene": {...}}}

A plain pickle that `pickle.load` reads. `write` is atomic, follows the umask and writes through
a symlink (see write); it refuses what `read` would refuse. `read` unpickles through
sim.safe_unpickle (nothing in a file runs or steers numpy) and returns a fully validated dict (see
read). Compatibility failures raise `CheckpointError` naming what differs.

A solver's warm-start arrays (fields named `warmstart_*`: impulses that only speed its next
solve up) are optional: they stay out of the fingerprint, and a file or state without them loads
them as zeros, which is a cold start. So files written before a solver added one keep loading.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import re
import secrets
import stat
import time

import numpy as np

from sim import safe_unpickle
from sim.safe_unpickle import MAX_DIM, MAX_NDIM, brief, plain_dtype

FORMAT_VERSION = 1
MAX_STEP_INDEX = 2 ** 53  # every step count up to it is exact as a float64 (t * dt), with 2**10 x headroom in an int64
MAX_ENVS = 2 ** 31 - 1    # the device indexes envs with int32
_FINGERPRINT = re.compile(r"[0-9a-f]{16}")
_META_KEYS = ["format", "n_envs", "fingerprint", "layout", "scene"]
OPTIONAL_PREFIX = "warmstart_"  # field names that may be missing (see the module doc)


class CheckpointError(ValueError):
    """A checkpoint or state that does not fit the scene, or a file that cannot be read."""


class UnsafeCheckpointError(CheckpointError):
    """A file that asks for more than plain data: another global than numpy's array pieces, an
    object or structured dtype, dtype state numpy never writes for a plain dtype."""


def write(path, arrays: dict[str, np.ndarray], step_index: int, meta: dict | None, on_bytes=None) -> None:
    """Atomically write a checkpoint: a crash mid-write leaves any previous file at `path` intact.

    The file gets the mode any file the user creates gets (0666 less the umask). A symlink at
    `path` is written through: the file it names is replaced and the link stays (as `>` or an
    editor would), unless a link on the way belongs to another user (refused: a link planted in
    a shared folder must not redirect the write). What `read` would refuse raises
    CheckpointError and nothing is written. on_bytes(n) is called as each n bytes are written
    (a progress bar's update)."""
    path = os.fspath(path)
    if isinstance(step_index, np.integer):
        step_index = int(step_index)
    payload = {"timestamp": time.time(), "step_index": step_index, "arrays": arrays}
    if meta is not None:
        payload["meta"] = meta
    payload = _checked(payload, f"cannot write {path}", tree=True)
    target = _link_target(path)
    folder = os.path.dirname(os.path.abspath(target))
    tmp = os.path.join(folder, f"{os.path.basename(target)}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(payload, f if on_bytes is None else _Counted(f, on_bytes), protocol=5)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class _Counted:
    """A binary file that reports the bytes passing through it (for a progress bar)."""

    def __init__(self, f, on_bytes):
        self._f, self._on_bytes = f, on_bytes

    def __getattr__(self, name):  # fileno, tell, flush: the file's own
        return getattr(self._f, name)

    def write(self, data):
        n = self._f.write(data)
        self._on_bytes(memoryview(data).nbytes)
        return n

    def read(self, n=-1):
        data = self._f.read(n)
        self._on_bytes(len(data))
        return data

    def readinto(self, buf):
        n = self._f.readinto(buf)
        self._on_bytes(n or 0)
        return n

    def readline(self, limit=-1):
        data = self._f.readline(limit)
        self._on_bytes(len(data))
        return data


def _link_target(path: str) -> str:
    """The file a write to `path` replaces: `path` itself, or the file its symlinks lead to."""
    current = path
    for _ in range(40):  # the kernel's limit on links in a row
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return current
        if not stat.S_ISLNK(st.st_mode):
            return current
        if st.st_uid not in (os.getuid(), 0):
            raise CheckpointError(f"cannot write {path}: the symlink {current} belongs to another user "
                                  f"(uid {st.st_uid}); write to the file it names instead")
        current = os.path.join(os.path.dirname(current), os.readlink(current))
    raise CheckpointError(f"cannot write {path}: too many levels of symlinks")


def read(path, on_bytes=None) -> dict:
    """Read a checkpoint; nothing in it runs, and whatever is wrong with the file raises
    CheckpointError (UnsafeCheckpointError for a file that asks for more than plain data).

    What comes back is checked, so a caller only compares it with its scene (check_compatible):
      - exactly "step_index" and "arrays", optionally "timestamp" and "meta";
      - "step_index": an int in [0, MAX_STEP_INDEX]; "timestamp": a finite float;
      - "arrays": {str: writable ndarray}, each of a bool, int, uint, float or complex dtype;
      - "meta": format 1, "n_envs" an int in [0, MAX_ENVS], "fingerprint" 16 hex digits,
        "layout" [[str, [ints in [0, 2**31)], dtype str], ...] with distinct keys and plain
        dtypes, "scene" a dict of JSON-like data (str keys, list, str, int, float, bool, None);
        and "arrays" holds exactly the layout's keys, shapes ((n_envs,) + shape; no env axis
        when n_envs is 0) and dtypes.
    Everywhere: nesting at most 32 deep, strings at most 4096 characters, ints within 2**64,
    and no allocation larger than the file. on_bytes(n) is called as each n bytes are read."""
    path = os.fspath(path)
    # O_NONBLOCK: a FIFO at `path` is refused below instead of waiting for a writer
    with open(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise CheckpointError(f"{path} is not a regular file")
        try:
            data = safe_unpickle.load(f if on_bytes is None else _Counted(f, on_bytes), "checkpoint", "arrays")
        except safe_unpickle.Unsafe as e:
            raise UnsafeCheckpointError(f"{path}: refusing to load: {e}") from None
        except safe_unpickle.Refused as e:
            raise CheckpointError(f"{path}: {e}") from None
    return _checked(data, path, tree=False)


def _checked(data, where: str, tree: bool) -> dict:
    """`data` (tree-checked first if `tree`) if it is a valid checkpoint dict, else CheckpointError."""
    try:
        if tree:
            data = safe_unpickle.check_tree(data, "checkpoint", "arrays")
        _check_payload(data, where)
    except safe_unpickle.Unsafe as e:
        raise UnsafeCheckpointError(f"{where}: {e}") from None
    except safe_unpickle.Refused as e:
        raise CheckpointError(f"{where}: {e}") from None
    return data


def _check_payload(data, where: str) -> None:
    """Raise safe_unpickle.Refused (or CheckpointError) unless `data` is what read() promises."""
    refused = safe_unpickle.Refused
    if type(data) is not dict or not {"step_index", "arrays"} <= set(data):
        raise refused(f"not a checkpoint (expected a dict with 'step_index' and 'arrays', got "
                      f"{brief(data) if type(data) is not dict else 'the keys ' + str(sorted(data))})")
    extra = sorted(set(data) - {"timestamp", "step_index", "arrays", "meta"})
    if extra:
        raise refused(f"unexpected keys {extra} beside 'timestamp', 'step_index', 'arrays' and 'meta'")
    if "timestamp" in data:
        ts = data["timestamp"]
        if type(ts) not in (int, float) or not math.isfinite(ts):
            raise refused(f"timestamp is {brief(ts)}, not a finite number")
        data["timestamp"] = float(ts)
    _check_int(data["step_index"], "step_index", MAX_STEP_INDEX)
    arrays = data["arrays"]
    if type(arrays) is not dict:
        raise refused(f"'arrays' is {brief(arrays)}, not a dict of field names to numpy arrays")
    for k, v in arrays.items():
        if type(v) is not np.ndarray:
            raise refused(f"arrays[{k!r}] is {brief(v)}, not a numpy array")
    if "meta" not in data:
        return
    meta = data["meta"]
    if type(meta) is not dict:
        raise refused(f"meta is {brief(meta)}, not a dict")
    if "format" in meta and meta["format"] != FORMAT_VERSION:
        raise refused(f"unsupported checkpoint format {brief(meta['format'])}, this version reads "
                      f"format {FORMAT_VERSION}")
    if sorted(meta) != sorted(_META_KEYS):
        raise refused(f"meta has the keys {sorted(meta)}, expected {_META_KEYS}")
    _check_int(meta["format"], "meta format", FORMAT_VERSION)
    _check_int(meta["n_envs"], "meta n_envs", MAX_ENVS)
    if type(meta["fingerprint"]) is not str or not _FINGERPRINT.fullmatch(meta["fingerprint"]):
        raise refused(f"meta fingerprint is {brief(meta['fingerprint'])}, not 16 hex digits")
    if type(meta["scene"]) is not dict:
        raise refused(f"meta scene is {brief(meta['scene'])}, not a dict")
    _check_layout(meta["layout"])
    check_arrays(arrays, meta["layout"], meta["n_envs"], what=f"{where}: arrays", against="the file's meta")


def _check_int(x, what: str, high: int) -> None:
    if type(x) is not int or not 0 <= x <= high:
        raise safe_unpickle.Refused(f"{what} is {brief(x)}, not an int in [0, {high}]")


def _check_layout(field_layout) -> None:
    refused = safe_unpickle.Refused
    if type(field_layout) is not list:
        raise refused(f"meta layout is {brief(field_layout)}, not a list of [key, shape, dtype]")
    seen = set()
    for i, entry in enumerate(field_layout):
        if type(entry) is not list or len(entry) != 3:
            raise refused(f"meta layout[{i}] is {brief(entry)}, not [key, shape, dtype]")
        key, shape, dtype = entry
        if type(key) is not str or key in seen:
            raise refused(f"meta layout[{i}] key {brief(key)} is not a string or repeats one")
        seen.add(key)
        if (type(shape) is not list or len(shape) >= MAX_NDIM
                or not all(type(d) is int and 0 <= d <= MAX_DIM for d in shape)):
            raise refused(f"meta layout[{i}] ({key}) shape {brief(shape)} is not a list of sizes in [0, {MAX_DIM}]")
        plain_dtype(dtype)


def layout(specs: dict, float_dtype) -> list[list]:
    """[[key, per-env shape, dtype string], ...] for FieldSpecs keyed "Solver.field"."""
    return [[k, list(s.per_env_shape), s.np_dtype(float_dtype).str] for k, s in specs.items()]


def _optional(key: str) -> bool:
    return key.partition(".")[2].startswith(OPTIONAL_PREFIX)


def fingerprint(description: dict, field_layout: list) -> str:
    """Of the scene and its layout, optional fields left out."""
    required = [entry for entry in field_layout if not _optional(entry[0])]
    blob = json.dumps({"scene": description, "layout": required}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def make_meta(description: dict, field_layout: list, n_envs: int) -> dict:
    return {"format": FORMAT_VERSION, "n_envs": int(n_envs),
            "fingerprint": fingerprint(description, field_layout),
            "layout": field_layout, "scene": description}


def check_arrays(arrays: dict, field_layout: list, n_envs: int, what: str = "state",
                 against: str = "the scene") -> None:
    """Raise CheckpointError unless `arrays` has exactly the layout's keys, shapes and dtypes."""
    expected = {k: (tuple(shape), np.dtype(dt)) for k, shape, dt in field_layout}
    missing, extra = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{what} fields differ from {against}'s: missing {missing}, unexpected {extra}")
    for k, (shape, dtype) in expected.items():
        a = arrays[k]
        want = ((n_envs,) if n_envs else ()) + shape
        if tuple(a.shape) != want:
            if n_envs and a.ndim == len(want) and tuple(a.shape[1:]) == shape:
                raise CheckpointError(f"{what} has n_envs={a.shape[0]} (field {k}), {against} has n_envs={n_envs}")
            raise CheckpointError(f"{what} field {k} has shape {tuple(a.shape)}, {against} expects {want}")
        if a.dtype != dtype:
            raise CheckpointError(f"{what} field {k} has dtype {a.dtype}, {against} expects {dtype} "
                                  f"(was it saved with another precision?)")


def with_optional(arrays: dict, field_layout: list, n_envs: int) -> dict:
    """`arrays` plus zeros for each optional field of the layout it lacks (a cold warm start)."""
    missing = {k: np.zeros(((n_envs,) if n_envs else ()) + tuple(shape), dtype=np.dtype(dt))
               for k, shape, dt in field_layout if _optional(k) and k not in arrays}
    return {**arrays, **missing} if missing else arrays


def check_compatible(data: dict, meta: dict, path="checkpoint") -> None:
    """Raise CheckpointError naming the first differences between a file (as read() returns it)
    and the scene's meta. Optional fields the file lacks are added to data["arrays"] as zeros."""
    file_meta = data.get("meta")
    if file_meta is not None:
        if file_meta["n_envs"] != meta["n_envs"]:
            raise CheckpointError(f"{path}: saved with n_envs={file_meta['n_envs']}, "
                                  f"the scene has n_envs={meta['n_envs']}")
        if file_meta["fingerprint"] != meta["fingerprint"]:
            diffs = describe_differences(file_meta["scene"], meta["scene"], "scene")
            diffs += describe_differences(_by_key(file_meta["layout"]), _by_key(meta["layout"]), "layout")
            raise CheckpointError(f"{path} was saved for another scene: " + "; ".join(diffs[:5] or ["fingerprint differs"]))
    data["arrays"] = with_optional(data["arrays"], meta["layout"], meta["n_envs"])
    check_arrays(data["arrays"], meta["layout"], meta["n_envs"], what=str(path))


def _by_key(field_layout) -> dict:
    """The layout's required fields by key (an optional one never makes a file incompatible)."""
    return {k: {"shape": list(shape), "dtype": dt} for k, shape, dt in field_layout if not _optional(k)}


def describe_differences(saved, current, where: str) -> list[str]:
    """Human-readable paths where two plain-data trees differ ("saved X, scene has Y")."""
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for k in sorted(set(saved) | set(current), key=str):
            if k not in saved:
                out.append(f"{where}.{k} is new in the scene")
            elif k not in current:
                out.append(f"{where}.{k} is in the file but not in the scene")
            else:
                out += describe_differences(saved[k], current[k], f"{where}.{k}")
        return out
    if isinstance(saved, list) and isinstance(current, list):
        if len(saved) != len(current):
            return [f"{where} has {len(saved)} items in the file, {len(current)} in the scene"]
        return [d for i, (a, b) in enumerate(zip(saved, current)) for d in describe_differences(a, b, f"{where}[{i}]")]
    return [] if saved == current else [f"{where}: file has {saved!r}, scene has {current!r}"]
