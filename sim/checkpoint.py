"""The checkpoint file: the specification's pickled dict plus "meta".

    {"timestamp": float, "step_index": int, "arrays": {"Solver.field": ndarray, ...},
     "meta": {"format": 1, "n_envs": int, "fingerprint": str, "layout": [[key, shape, dtype], ...],
              "scene": {...}}}

Writes are atomic (temp file in the same folder, fsync, rename). Reads go through an
unpickler that admits only numpy arrays and dtypes and plain containers and scalars, so a
crafted file cannot run code. Compatibility failures raise `CheckpointError` naming what differs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tempfile
import time

import numpy as np

FORMAT_VERSION = 1

_SAFE_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"),
}


class CheckpointError(ValueError):
    """A checkpoint or state that does not fit the scene, or a file that cannot be read."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle that would import something other than numpy arrays and plain data."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _SAFE_GLOBALS or (module.startswith("numpy") and name.endswith("DType")
                                                and module.endswith("dtypes")):
            return super().find_class(module, name)
        raise UnsafeCheckpointError(
            f"refusing to load: the pickle asks for {module}.{name}, and a checkpoint may hold only "
            f"numpy arrays and plain Python data")


def loads(data: bytes):
    """Unpickle bytes with the restricted unpickler."""
    return _RestrictedUnpickler(io.BytesIO(data)).load()


def write(path, arrays: dict[str, np.ndarray], step_index: int, meta: dict | None) -> None:
    """Atomically write a checkpoint: a crash mid-write leaves any previous file at `path` intact."""
    path = os.fspath(path)
    payload = {"timestamp": time.time(), "step_index": int(step_index), "arrays": arrays}
    if meta is not None:
        payload["meta"] = meta
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(payload, f, protocol=5)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read(path) -> dict:
    """Read and structurally validate a checkpoint file; nothing in it runs."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = _RestrictedUnpickler(f).load()
    except UnsafeCheckpointError:
        raise
    except FileNotFoundError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            MemoryError, OverflowError) as e:
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict) or not {"step_index", "arrays"} <= set(data):
        raise CheckpointError(f"{path}: not a checkpoint (expected a dict with 'step_index' and 'arrays')")
    if not isinstance(data["arrays"], dict) or not all(
            isinstance(k, str) and isinstance(v, np.ndarray) for k, v in data["arrays"].items()):
        raise CheckpointError(f"{path}: 'arrays' must map field names to numpy arrays")
    return data


def layout(specs: dict, float_dtype) -> list[list]:
    """[[key, per-env shape, dtype string], ...] for FieldSpecs keyed "Solver.field"."""
    return [[k, list(s.per_env_shape), s.np_dtype(float_dtype).str] for k, s in specs.items()]


def fingerprint(description: dict, field_layout: list) -> str:
    blob = json.dumps({"scene": description, "layout": field_layout}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def make_meta(description: dict, field_layout: list, n_envs: int) -> dict:
    return {"format": FORMAT_VERSION, "n_envs": int(n_envs),
            "fingerprint": fingerprint(description, field_layout),
            "layout": field_layout, "scene": description}


def check_arrays(arrays: dict, field_layout: list, n_envs: int, what: str = "state") -> None:
    """Raise CheckpointError unless `arrays` has exactly the layout's keys, shapes and dtypes."""
    expected = {k: (tuple(shape), np.dtype(dt)) for k, shape, dt in field_layout}
    missing, extra = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{what} fields differ from the scene's: missing {missing}, unexpected {extra}")
    for k, (shape, dtype) in expected.items():
        a = arrays[k]
        want = ((n_envs,) if n_envs else ()) + shape
        if tuple(a.shape) != want:
            if n_envs and a.ndim == len(want) and tuple(a.shape[1:]) == shape:
                raise CheckpointError(f"{what} has n_envs={a.shape[0]} (field {k}), the scene has n_envs={n_envs}")
            raise CheckpointError(f"{what} field {k} has shape {tuple(a.shape)}, the scene expects {want}")
        if a.dtype != dtype:
            raise CheckpointError(f"{what} field {k} has dtype {a.dtype}, the scene expects {dtype} "
                                  f"(was it saved with another precision?)")


def check_compatible(data: dict, meta: dict, path="checkpoint") -> None:
    """Raise CheckpointError naming the first differences between a file and the scene's meta."""
    file_meta = data.get("meta")
    if file_meta is not None:
        if not isinstance(file_meta, dict) or file_meta.get("format") != FORMAT_VERSION:
            raise CheckpointError(f"{path}: unsupported checkpoint format {file_meta.get('format')!r}, "
                                  f"this version reads format {FORMAT_VERSION}")
        if file_meta.get("n_envs") != meta["n_envs"]:
            raise CheckpointError(f"{path}: saved with n_envs={file_meta.get('n_envs')}, "
                                  f"the scene has n_envs={meta['n_envs']}")
        if file_meta.get("fingerprint") != meta["fingerprint"]:
            diffs = describe_differences(file_meta.get("scene"), meta["scene"], "scene")
            diffs += describe_differences(_by_key(file_meta.get("layout")), _by_key(meta["layout"]), "layout")
            raise CheckpointError(f"{path} was saved for another scene: " + "; ".join(diffs[:5] or ["fingerprint differs"]))
    check_arrays(data["arrays"], meta["layout"], meta["n_envs"], what=str(path))


def _by_key(field_layout) -> dict:
    return {k: {"shape": list(shape), "dtype": dt} for k, shape, dt in field_layout or []}


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
