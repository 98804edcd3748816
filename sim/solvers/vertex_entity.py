"""What the PBD and FEM solvers share: entities owning a contiguous block of vertices in their
solver's (batch, n_vertices) state fields with validated per-env edits of those fields, the
placement of body-frame points, option checks, and the static planes bodies collide with.

Edits go through one small kernel each, touching only the selected (env, vertex) entries,
so they cost O(len(envs_idx) * len(vertices)) and leave every other env bit-identical.
"""

import math

import numpy as np
import taichi as ti

from sim.envs_idx import normalize_envs_idx


def check_number(name: str, value, low: float, low_inclusive: bool = True) -> None:
    ok = math.isfinite(value) and (value >= low if low_inclusive else value > low)
    if not ok:
        raise ValueError(f"{name} must be a finite number {'>=' if low_inclusive else '>'} {low}, got {value!r}")


def check_count(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


@ti.kernel
def _fill_int(field: ti.template(), envs: ti.types.ndarray(dtype=ti.i32, ndim=1),
              ids: ti.types.ndarray(dtype=ti.i32, ndim=1), value: ti.i32):
    for e, k in ti.ndrange(envs.shape[0], ids.shape[0]):
        field[envs[e], ids[k]] = value


@ti.kernel
def _fill_vec3(field: ti.template(), envs: ti.types.ndarray(dtype=ti.i32, ndim=1),
               ids: ti.types.ndarray(dtype=ti.i32, ndim=1), value: ti.types.vector(3, float)):
    for e, k in ti.ndrange(envs.shape[0], ids.shape[0]):
        field[envs[e], ids[k]] = value


class VertexEntity:
    """An entity owning vertices start .. start + n_vertices - 1 of its solver.

    `rest_pos` (n_vertices, 3) are the vertex positions at build time, in world frame; use
    them to choose vertices (e.g. the ones with the smallest x, to clamp a beam).
    """

    def __init__(self, solver, morph, material, start: int, rest_pos: np.ndarray):
        self.solver = solver
        self.morph = morph
        self.material = material
        self.start = int(start)
        self.rest_pos = np.ascontiguousarray(rest_pos, dtype=np.float64)
        self.rest_pos.setflags(write=False)

    @property
    def n_vertices(self) -> int:
        return self.rest_pos.shape[0]

    @property
    def particles(self) -> slice:
        """This entity's rows in its solver's state arrays: state["FEMSolver.pos"][:, e.particles]."""
        return slice(self.start, self.start + self.n_vertices)

    # ------------------------------------------------------------------ validation
    def _envs(self, envs_idx) -> np.ndarray:
        scene = self.solver.scene
        if not scene.is_built:
            raise RuntimeError("per-env entity state can be changed only after scene.build()")
        if envs_idx is None:
            return np.arange(max(scene.n_envs, 1), dtype=np.int32)
        return normalize_envs_idx(envs_idx, scene.n_envs)

    def _vertex_ids(self, vertices) -> np.ndarray:
        """Solver-wide indices of `vertices` (None: all; entity-local ints or a boolean mask)."""
        n = self.n_vertices
        if vertices is None:
            return np.arange(self.start, self.start + n, dtype=np.int32)
        arr = np.asarray(vertices)
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
        envs = self._envs(envs_idx)
        _fill_int(self.solver.state[field_name], envs, ids, int(bool(value)))

    def set_velocity(self, vel, envs_idx=None) -> None:
        """Give every vertex of this entity velocity `vel` (3,) in the selected envs."""
        vel = np.asarray(vel, dtype=np.float64)
        if vel.shape != (3,) or not np.all(np.isfinite(vel)):
            raise ValueError(f"vel must be 3 finite numbers, got {vel!r}")
        ids = self._vertex_ids(None)
        envs = self._envs(envs_idx)
        _fill_vec3(self.solver.state["vel"], envs, ids, ti.Vector(vel.tolist()))

    # ------------------------------------------------------------------ Genesis's particle calls
    def get_particles_pos(self, envs_idx=None):
        """Vertex positions as a torch tensor: (len(envs), n_vertices, 3), or (n_vertices, 3)
        unbatched; one gather of only these vertices' rows."""
        from sim.field_access import gather

        envs = self._envs(envs_idx)
        out = gather(self.solver.state["pos"], envs, np.arange(self.start, self.start + self.n_vertices))
        return out[0] if self.solver.scene.n_envs == 0 else out

    def find_closest_particle(self, pos, b: int = 0) -> int:
        """The entity-local index of the vertex nearest to `pos` in env b."""
        pos = np.asarray(pos, dtype=np.float64)
        if pos.shape != (3,) or not np.all(np.isfinite(pos)):
            raise ValueError(f"pos must be 3 finite numbers, got {pos!r}")
        n_envs = self.solver.scene.n_envs
        points = self.get_particles_pos(None if n_envs == 0 else [b]).cpu().numpy().reshape(-1, 3)
        return int(np.argmin(np.linalg.norm(points - pos, axis=1)))

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

    def get_pos(self) -> np.ndarray:
        """Vertex positions, (n_envs, n_vertices, 3), or (n_vertices, 3) when unbatched (a copy)."""
        self._envs(None)
        pos = self.solver.state["pos"].to_numpy()[:, self.particles]
        return pos[0] if self.solver.scene.n_envs == 0 else pos


def place(local_points: np.ndarray, pos, quat=(1.0, 0.0, 0.0, 0.0)) -> np.ndarray:
    """Body-frame points (n, 3) rotated by the unit quaternion (w, x, y, z) and moved to pos."""
    w, x, y, z = quat
    rot = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                    [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                    [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
    return np.asarray(local_points, dtype=np.float64) @ rot.T + np.asarray(pos, dtype=np.float64)
