"""Validation of `envs_idx` arguments: one function shared by Scene, entities and genesis_dist."""

from __future__ import annotations

import numpy as np


def _to_numpy(envs_idx) -> np.ndarray:
    if type(envs_idx).__module__.startswith("torch"):
        return envs_idx.detach().cpu().numpy()
    if isinstance(envs_idx, (list, tuple, range)):
        items = list(envs_idx)
        if items and all(isinstance(x, (bool, np.bool_)) for x in items):
            return np.asarray(items, dtype=bool)
        if any(isinstance(x, (bool, np.bool_)) for x in items):
            raise TypeError("envs_idx mixes booleans and integers")
        if any(not isinstance(x, (int, np.integer)) for x in items):
            bad = next(x for x in items if not isinstance(x, (int, np.integer)))
            raise TypeError(f"envs_idx must hold integers, got {type(bad).__name__} {bad!r}")
        return np.asarray(items, dtype=np.int64)
    if isinstance(envs_idx, np.ndarray):
        return envs_idx
    if isinstance(envs_idx, (int, np.integer)) and not isinstance(envs_idx, bool):
        return np.asarray([envs_idx], dtype=np.int64)
    raise TypeError(
        f"envs_idx must be a list, tuple, numpy or torch integer array, or a boolean mask; "
        f"got {type(envs_idx).__name__}")


def normalize_envs_idx(envs_idx, n_envs: int) -> np.ndarray:
    """Return envs_idx as an int32 array in the order given, or raise naming what is wrong.

    Accepts a list, tuple, numpy or torch integer array (or one int), or a boolean mask of
    length n_envs. Refuses floats, out-of-range or negative indices, duplicates, a mask of
    the wrong length and any use on an unbatched scene (n_envs == 0). An empty selection (or an
    all-False mask) is valid and selects nothing: RL loops reset "whatever finished this step",
    which is often nothing, so callers treat it as a no-op.
    """
    if n_envs == 0:
        raise ValueError("envs_idx was given but the scene is unbatched (built with n_envs=0)")
    arr = _to_numpy(envs_idx)
    if arr.dtype == bool:
        if arr.ndim != 1 or arr.shape[0] != n_envs:
            raise ValueError(f"boolean envs_idx mask has shape {arr.shape}, expected ({n_envs},)")
        arr = np.flatnonzero(arr)
    elif not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"envs_idx must be integers or a boolean mask, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"envs_idx must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int32)
    low, high = int(arr.min()), int(arr.max())
    if low < 0:
        raise ValueError(f"envs_idx holds a negative index ({low}); valid indices are 0..{n_envs - 1}")
    if high >= n_envs:
        raise ValueError(f"envs_idx holds {high}, out of range for n_envs={n_envs}")
    if np.unique(arr).size != arr.size:
        values, counts = np.unique(arr, return_counts=True)
        raise ValueError(f"envs_idx holds duplicates: {values[counts > 1].tolist()}")
    return arr.astype(np.int32)
