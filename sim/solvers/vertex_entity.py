"""What the PBD and FEM solvers share: entities owning a contiguous block of vertices in their
solver's (batch, n_vertices) state fields (sim.solvers.particles.ParticleBody, which gives
Genesis's particle reads), with validated per-env edits of those fields.

Edits go through one small kernel each, touching only the selected (env, vertex) entries,
so they cost O(len(envs_idx) * len(vertices)) and leave every other env bit-identical.
Genesis's whole-entity FEM writes (`set_position`, `set_velocity`) go through the particle
writes of ParticleBody.
"""

import numpy as np
import taichi as ti
import torch

from sim.solvers.particles import ParticleBody


@ti.kernel
def _fill_int(field: ti.template(), envs: ti.types.ndarray(dtype=ti.i32, ndim=1),
              ids: ti.types.ndarray(dtype=ti.i32, ndim=1), value: ti.i32):
    for e, k in ti.ndrange(envs.shape[0], ids.shape[0]):
        field[envs[e], ids[k]] = value


class VertexEntity(ParticleBody):
    """An entity owning vertices start .. start + n_vertices - 1 of its solver.

    `rest_pos` (n_vertices, 3) are the vertex positions at build time, in world frame; use
    them to choose vertices (e.g. the ones with the smallest x, to clamp a beam).
    """

    def __init__(self, solver, morph, material, start: int, rest_pos: np.ndarray):
        super().__init__(solver, morph, material, start, len(rest_pos))
        self.rest_pos = np.ascontiguousarray(rest_pos, dtype=np.float64)
        self.rest_pos.setflags(write=False)

    @property
    def n_vertices(self) -> int:
        return self.n_particles

    # ------------------------------------------------------------------ validation
    def _vertex_ids(self, vertices) -> np.ndarray:
        """Solver-wide indices of `vertices` (None: all; entity-local ints or a boolean mask)."""
        n = self.n_vertices
        if vertices is None:
            return np.arange(self.start, self.start + n, dtype=np.int32)
        arr = np.asarray(vertices.cpu() if isinstance(vertices, torch.Tensor) else vertices)
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise ValueError(f"boolean vertex mask has shape {arr.shape}, expected ({n},)")
            arr = np.flatnonzero(arr)
        elif arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"vertex indices must be integers or a boolean mask, got dtype {arr.dtype}")
        arr = arr.reshape(-1).astype(np.int64)
        if arr.size == 0:
            raise ValueError("no vertices selected")
        if arr.min() < 0 or arr.max() >= n:
            raise ValueError(f"vertex index out of range 0..{n - 1}: got {int(arr.min())}..{int(arr.max())}")
        if np.unique(arr).size != arr.size:
            raise ValueError("vertex indices hold duplicates")
        return (arr + self.start).astype(np.int32)

    # ------------------------------------------------------------------ edits and reads
    def _set_flag(self, field_name: str, vertices, value, envs_idx) -> None:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{field_name} must be True or False, got {value!r}")
        ids = self._vertex_ids(vertices)
        envs = self._envs(envs_idx, field_name)
        _fill_int(self.solver.state[field_name], envs, ids, int(bool(value)))

    def set_velocity(self, vel, envs_idx=None) -> None:
        """Genesis's FEM set_velocity: one velocity (3,) for every vertex, one per vertex
        (n_vertices, 3), one per env (envs, 3) or (envs, n_vertices, 3), in the envs asked for."""
        self.set_particles_vel(vel, None, envs_idx)

    def set_position(self, pos, envs_idx=None) -> None:
        """Genesis's FEM set_position: (3,) or one per env (envs, 3) places the entity's vertex
        centroid there in its build-time shape; (n_vertices, 3) or (envs, n_vertices, 3) gives
        every vertex. Velocities are kept (as in Genesis; set_particles_pos zeroes them)."""
        arr = np.asarray(pos.detach().cpu() if isinstance(pos, torch.Tensor) else pos)
        n_envs = len(self._envs(envs_idx, "set_position"))
        if arr.shape == (3,) or (arr.shape == (n_envs, 3) and arr.shape != (self.n_vertices, 3)):
            if arr.dtype.kind not in "iuf":
                raise TypeError(f"set_position: pos must be numbers, got dtype {arr.dtype}")
            arr = (self.rest_pos - self.rest_pos.mean(0)) + arr.astype(np.float64)[..., None, :]
        self._write_pos(arr, None, envs_idx, restart=False)

    # ------------------------------------------------------------------ Genesis's pinning calls
    def fix_particles(self, particles_idx_local, envs_idx=None) -> None:
        """Pin these vertices where they are (PBD: not free; FEM: fixed)."""
        if "free" in self.solver.state:
            self._set_flag("free", particles_idx_local, False, envs_idx)
        else:
            self._set_flag("fixed", particles_idx_local, True, envs_idx)

    def release_particle(self, particles_idx_local, envs_idx=None) -> None:
        if "free" in self.solver.state:
            self._set_flag("free", particles_idx_local, True, envs_idx)
        else:
            self._set_flag("fixed", particles_idx_local, False, envs_idx)
