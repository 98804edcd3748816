"""What data-parallel workers exchange besides gradients, over the process group Ray Train set up
(without a group, as in a one-worker run, each function returns this process's own data).

Everything travels as raw bytes whose layout every rank already knows (the checkpoint meta's
arrays, the Layout's row counts), never as pickles: a rank never unpickles what a peer sent.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.distributed as dist

from genesis_dist.layout import Layout


def _wire_device() -> torch.device:
    """Where collective buffers live: NCCL moves CUDA tensors only, gloo CPU ones."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def _gather_bytes(row_bytes: np.ndarray, padded_rows: int) -> list[torch.Tensor] | None:
    """Gather every rank's (rows, width) uint8 array (rows <= padded_rows) to rank 0: equal-sized
    buffers, as gather needs. Rank 0 gets the padded buffers in rank order, the others None."""
    out = torch.zeros((padded_rows, row_bytes.shape[1]), dtype=torch.uint8)
    out[:len(row_bytes)] = torch.from_numpy(row_bytes)
    if not dist.is_initialized():
        return [out]
    out = out.to(_wire_device())
    parts = [torch.empty_like(out) for _ in range(dist.get_world_size())] if dist.get_rank() == 0 else None
    dist.gather(out, parts, dst=0)
    return None if parts is None else [p.cpu() for p in parts]


def gather_state(local: dict[str, np.ndarray], field_layout: list, layout: Layout) -> dict[str, np.ndarray] | None:
    """Every rank's rows of the scene's arrays, merged in global env order on rank 0 (None elsewhere).
    field_layout: the checkpoint meta's [[key, per-env shape, dtype], ...]; one gather in all."""
    dtypes = [(key, tuple(shape), np.dtype(dt)) for key, shape, dt in field_layout]
    n = len(next(iter(local.values())))
    columns = [np.ascontiguousarray(local[key], dtype).reshape(n, -1).view(np.uint8) for key, _, dtype in dtypes]
    parts = _gather_bytes(np.concatenate(columns, axis=1), max(layout.sizes))
    if parts is None:
        return None
    rows = layout.merge([p[:size].numpy() for p, size in zip(parts, layout.sizes)])
    merged, col = {}, 0
    for key, shape, dtype in dtypes:
        width = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
        merged[key] = np.ascontiguousarray(rows[:, col:col + width]).view(dtype).reshape(layout.n_envs, *shape)
        col += width
    return merged


def gather_rng_states() -> torch.Tensor | None:
    """Every rank's torch CPU random state, stacked (world_size, n) on rank 0; None elsewhere."""
    state = torch.get_rng_state().numpy()[None]
    parts = _gather_bytes(state, 1)
    return None if parts is None else torch.cat(parts)


def params_digest(module: torch.nn.Module) -> str:
    """sha256 of every parameter's bytes, in the module's order."""
    h = hashlib.sha256()
    for p in module.parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def all_digests(digest: str) -> list[str]:
    """Every rank's digest (hex sha256), in rank order, on every rank."""
    if not dist.is_initialized():
        return [digest]
    device = _wire_device()
    mine = torch.frombuffer(bytearray(bytes.fromhex(digest)), dtype=torch.uint8).to(device)
    parts = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, mine)
    return [bytes(p.cpu().numpy()).hex() for p in parts]


def global_mean_sem(values) -> tuple[float, float] | None:
    """Mean and standard error of the mean of every rank's `values` together (e.g. their finished
    episodes' returns); None when no rank has any."""
    x = torch.as_tensor(list(values), dtype=torch.float64)
    sums = torch.stack([x.sum(), (x * x).sum(), torch.tensor(float(len(x)), dtype=torch.float64)])
    if dist.is_initialized():
        sums = sums.to(_wire_device())
        dist.all_reduce(sums)
    total, squares, n = sums.tolist()
    if n == 0:
        return None
    mean = total / n
    variance = max(squares / n - mean * mean, 0.0) * n / max(n - 1, 1)
    return mean, (variance / n) ** 0.5
