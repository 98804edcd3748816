"""Reads and writes of selected (env, column) entries of a state field, one kernel launch each.

`gather` is the twin of the partial-reset scatter in `state_store`: it copies only the rows
`envs` and columns `cols` of a (batch, n) field (scalar or vector elements) into a torch tensor
on the torch device of the backend, so an entity read costs O(len(envs) * len(cols)) and, on
`gs.gpu`, never leaves the device. `scatter` writes such entries back.
"""

import numpy as np
import taichi as ti
import torch

from sim import runtime

_TORCH_DTYPES = {ti.f32: torch.float32, ti.f64: torch.float64, ti.i32: torch.int32}


@ti.kernel
def _gather_scalar(f: ti.template(), out: ti.types.ndarray(ndim=2), envs: ti.types.ndarray(dtype=ti.i32, ndim=1),
                   cols: ti.types.ndarray(dtype=ti.i32, ndim=1)):
    for i, c in ti.ndrange(envs.shape[0], cols.shape[0]):
        out[i, c] = f[envs[i], cols[c]]


@ti.kernel
def _gather_vector(f: ti.template(), out: ti.types.ndarray(ndim=3), envs: ti.types.ndarray(dtype=ti.i32, ndim=1),
                   cols: ti.types.ndarray(dtype=ti.i32, ndim=1)):
    for i, c in ti.ndrange(envs.shape[0], cols.shape[0]):
        for k in ti.static(range(f.n)):
            out[i, c, k] = f[envs[i], cols[c]][k]


@ti.kernel
def _scatter_scalar(f: ti.template(), values: ti.types.ndarray(dtype=ti.f64, ndim=2),
                    envs: ti.types.ndarray(dtype=ti.i32, ndim=1), cols: ti.types.ndarray(dtype=ti.i32, ndim=1)):
    for i, c in ti.ndrange(envs.shape[0], cols.shape[0]):
        f[envs[i], cols[c]] = ti.cast(values[i, c], f.dtype)


@ti.kernel
def _scatter_vector(f: ti.template(), values: ti.types.ndarray(dtype=ti.f64, ndim=3),
                    envs: ti.types.ndarray(dtype=ti.i32, ndim=1), cols: ti.types.ndarray(dtype=ti.i32, ndim=1)):
    for i, c in ti.ndrange(envs.shape[0], cols.shape[0]):
        for k in ti.static(range(f.n)):
            f[envs[i], cols[c]][k] = ti.cast(values[i, c, k], f.dtype)


def _index(arr) -> np.ndarray:
    return np.ascontiguousarray(arr, dtype=np.int32)


def gather(field, envs, cols) -> torch.Tensor:
    """field[envs][:, cols] as a new torch tensor: (len(envs), len(cols)) for a scalar field,
    (len(envs), len(cols), n) for a field of n-vectors."""
    envs, cols = _index(envs), _index(cols)
    vector = hasattr(field, "n")
    shape = (len(envs), len(cols), field.n) if vector else (len(envs), len(cols))
    out = torch.empty(shape, dtype=_TORCH_DTYPES[field.dtype], device=runtime.config().device)
    if out.numel():
        (_gather_vector if vector else _gather_scalar)(field, out, envs, cols)
    return out


def scatter(field, values: np.ndarray, envs, cols) -> None:
    """field[envs[i], cols[c]] = values[i, c]: values (len(envs), len(cols)) for a scalar field,
    (len(envs), len(cols), n) for a field of n-vectors."""
    envs, cols = _index(envs), _index(cols)
    if len(envs) and len(cols):
        kernel = _scatter_vector if hasattr(field, "n") else _scatter_scalar
        kernel(field, np.ascontiguousarray(values, dtype=np.float64), envs, cols)
