"""`genesis-dist inspect`: what a checkpoint file holds, and how two of them differ, without writing Python.

Files are read with `sim.checkpoint.read`, the validating reader `load_checkpoint` uses, so a
damaged or crafted file is refused here exactly as it would be there (CheckpointError).
"""

from __future__ import annotations

import datetime
import os

import numpy as np

from sim import checkpoint
from genesis_dist.task import BUFFER_PREFIX


def _stats(a: np.ndarray) -> tuple[str, str, str]:
    """min, max (ignoring NaN) and the NaN count of an array, as text."""
    if a.size == 0:
        return "-", "-", "0"
    nans = int(np.count_nonzero(np.isnan(a))) if np.issubdtype(a.dtype, np.floating) else 0
    if nans == a.size:
        return "nan", "nan", str(nans)
    values = a.astype(np.int8) if a.dtype == bool else a
    lo, hi = (np.nanmin(values), np.nanmax(values)) if nans else (values.min(), values.max())
    return f"{lo:.6g}", f"{hi:.6g}", str(nans)


def _table(arrays: dict[str, np.ndarray]) -> list[str]:
    rows = [("name", "shape", "dtype", "min", "max", "NaN")]
    rows += [(k, str(tuple(a.shape)), str(a.dtype), *_stats(a)) for k, a in arrays.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["    " + "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
            for r in rows]


def _when(timestamp) -> str:
    if not isinstance(timestamp, (int, float)):
        return "(none)"
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def describe(path) -> list[str]:
    """Lines describing the checkpoint at `path` (raises CheckpointError / OSError if unreadable)."""
    data = checkpoint.read(path)
    meta = data.get("meta")
    arrays = data["arrays"]
    scene = {k: a for k, a in arrays.items() if not k.startswith(BUFFER_PREFIX)}
    task = {k: a for k, a in arrays.items() if k.startswith(BUFFER_PREFIX)}
    first = next(iter(arrays.values()), None)
    if meta is not None:
        n_envs = f"{meta.get('n_envs')}{' (unbatched: no env axis)' if meta.get('n_envs') == 0 else ''}"
        fingerprint, fmt = str(meta.get("fingerprint")), str(meta.get("format"))
    else:
        n_envs = f"{first.shape[0] if first is not None and first.ndim else '?'} (no meta: from the first array)"
        fingerprint, fmt = "(no meta: a file in the specification's format)", "-"
    lines = [f"{os.fspath(path)}  ({os.path.getsize(path) / 1024:.1f} KiB)",
             f"  n_envs       {n_envs}",
             f"  step_index   {data['step_index']}",
             f"  timestamp    {_when(data.get('timestamp'))}",
             f"  format       {fmt}",
             f"  fingerprint  {fingerprint}",
             f"  arrays ({len(scene)}):"]
    lines += _table(scene)
    if task:
        lines += [f"  Task buffers ({len(task)}):"] + _table(task)
    return lines


# sim.checkpoint.describe_differences speaks of a file and a scene; here both sides are files
_SIDES = (("is new in the scene", "is only in the second"), ("is in the file but not in the scene", "is only in the first"),
          ("in the file,", "in the first,"), ("in the scene", "in the second"), ("file has", "first has"),
          ("scene has", "second has"))


def _as_files(line: str) -> str:
    where, _, rest = line.partition(" ")  # a difference's path has no spaces
    for old, new in _SIDES:
        rest = rest.replace(old, new)
    return f"{where} {rest}"


def _first_differing_env(a: np.ndarray, b: np.ndarray) -> tuple[int, int] | None:
    """(first env index whose rows differ, number of differing envs), NaN equal to NaN; None if equal."""
    same = (a == b) | ((a != a) & (b != b)) if np.issubdtype(a.dtype, np.floating) else (a == b)
    if a.ndim == 0:
        return None if bool(same) else (0, 1)
    rows_differ = ~same.reshape(len(a), -1).all(axis=1)
    envs = np.flatnonzero(rows_differ)
    return None if len(envs) == 0 else (int(envs[0]), len(envs))


def diff(path_a, path_b) -> list[str]:
    """Lines naming every difference between two checkpoints (empty: same content; timestamps are
    not compared). Raises CheckpointError / OSError if either cannot be read."""
    a, b = checkpoint.read(path_a), checkpoint.read(path_b)
    out = []
    meta_a, meta_b = a.get("meta") or {}, b.get("meta") or {}
    if a["step_index"] != b["step_index"]:
        out.append(f"step_index: {a['step_index']} vs {b['step_index']}")
    for key in ("n_envs", "fingerprint", "format"):
        if meta_a.get(key) != meta_b.get(key):
            out.append(f"{key}: {meta_a.get(key, '(no meta)')} vs {meta_b.get(key, '(no meta)')}")
    out += [_as_files(d) for d in checkpoint.describe_differences(meta_a.get("scene"), meta_b.get("scene"), "scene")]
    only_a = sorted(set(a["arrays"]) - set(b["arrays"]))
    only_b = sorted(set(b["arrays"]) - set(a["arrays"]))
    if only_a:
        out.append(f"only in the first: {', '.join(only_a)}")
    if only_b:
        out.append(f"only in the second: {', '.join(only_b)}")
    batched = meta_a.get("n_envs") != 0  # n_envs=0: an unbatched scene, arrays have no env axis
    for key in (k for k in a["arrays"] if k in b["arrays"]):
        x, y = a["arrays"][key], b["arrays"][key]
        if x.shape != y.shape:
            out.append(f"{key}: shape {tuple(x.shape)} vs {tuple(y.shape)}")
        elif x.dtype != y.dtype:
            out.append(f"{key}: dtype {x.dtype} vs {y.dtype}")
        else:
            found = _first_differing_env(x, y) if batched else _first_differing_env(x[None], y[None])
            if found is not None and batched:
                out.append(f"{key}: values differ in {found[1]} env(s), first env {found[0]}")
            elif found is not None:
                out.append(f"{key}: values differ (an unbatched scene)")
    return out
