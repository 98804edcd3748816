"""RigidEntity: the Genesis-style per-entity API (dof positions and velocities, PD control,
link poses). Every method takes an optional `envs_idx` validated by the shared
`normalize_envs_idx`; all input is checked before anything is written.

Values come back as torch tensors, env axis first on a batched scene ((len(envs), k)) and
without it on an unbatched one ((k,)). Dof positions of hinge and slide joints are their
qpos; for free joints they are (x, y, z, rotation vector), for ball joints the rotation vector.
"""

import numpy as np
import taichi as ti
import torch

from sim.envs_idx import normalize_envs_idx
from sim.solvers.rigid.model import CTRL_FORCE, CTRL_POSITION, CTRL_VELOCITY, DOF_SIZE, FREE, HINGE, SLIDE


@ti.kernel
def write_entries(f: ti.template(), values: ti.types.ndarray(dtype=ti.f64, ndim=2),
                  envs: ti.types.ndarray(dtype=ti.i32, ndim=1), cols: ti.types.ndarray(dtype=ti.i32, ndim=1)):
    for i, c in ti.ndrange(envs.shape[0], cols.shape[0]):
        f[envs[i], cols[c]] = ti.cast(values[i, c], f.dtype)


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    q = np.where(q[..., :1] < 0, -q, q)
    vec = q[..., 1:]
    s = np.linalg.norm(vec, axis=-1, keepdims=True)
    angle = 2 * np.arctan2(s, q[..., :1])
    scale = np.where(s > 1e-12, angle / np.maximum(s, 1e-300), 2.0)
    return vec * scale


def rotvec_to_quat(r: np.ndarray) -> np.ndarray:
    r = np.asarray(r, dtype=np.float64)
    angle = np.linalg.norm(r, axis=-1, keepdims=True)
    axis = np.where(angle > 1e-12, r / np.maximum(angle, 1e-300), 0.0)
    return np.concatenate([np.cos(angle / 2), np.sin(angle / 2) * axis], axis=-1)


class RigidLink:
    """One body of an entity (`entity.get_link(name)`)."""

    def __init__(self, entity, name: str, idx_local: int):
        self.entity, self.name, self.idx_local = entity, name, idx_local
        self.idx = entity.link_start + idx_local

    def get_pos(self, envs_idx=None):
        return self.entity.get_links_pos([self.idx_local], envs_idx)[..., 0, :]

    def get_quat(self, envs_idx=None):
        return self.entity.get_links_quat([self.idx_local], envs_idx)[..., 0, :]

    def __repr__(self):
        return f"RigidLink({self.name!r}, idx={self.idx})"


class RigidEntity:
    def __init__(self, solver, morph, material, idx: int, ranges: dict):
        self.solver, self.morph, self.material, self.idx = solver, morph, material, idx
        self.link_start, link_end = ranges["links"]
        self.dof_start, dof_end = ranges["dofs"]
        self.q_start, q_end = ranges["qs"]
        self.n_links, self.n_dofs, self.n_qs = link_end - self.link_start, dof_end - self.dof_start, q_end - self.q_start
        self.link_start -= 1  # state rows of links skip the world body
        self.links = [RigidLink(self, name, i) for i, name in enumerate(ranges["link_names"])]
        model = solver.model
        # per local dof: (joint type, global qpos address of the joint, component within the joint)
        self._dof_joint = []
        for j in range(model.njnt):
            if self.dof_start <= model.jnt_dadr[j] < dof_end:
                for c in range(DOF_SIZE[model.jnt_type[j]]):
                    self._dof_joint.append((model.jnt_type[j], model.jnt_qadr[j], c))

    def __repr__(self):
        return f"RigidEntity({type(self.morph).__name__}, n_dofs={self.n_dofs}, n_links={self.n_links})"

    # ------------------------------------------------------------------ validation helpers
    def _scene_envs(self, envs_idx) -> tuple[np.ndarray, bool]:
        if self.solver.data is None:
            raise RuntimeError("the scene must be built before using the entity's state")
        n_envs = self.solver.n_envs
        if envs_idx is None:
            return np.arange(max(n_envs, 1), dtype=np.int32), n_envs == 0
        return normalize_envs_idx(envs_idx, n_envs), False

    def _local(self, idx, n: int, what: str) -> np.ndarray:
        if idx is None:
            return np.arange(n, dtype=np.int32)
        arr = np.asarray(idx.detach().cpu().numpy() if isinstance(idx, torch.Tensor) else idx)
        if arr.ndim == 0:
            arr = arr[None]
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{what} must be a 1-D sequence of integers, got {idx!r}")
        if arr.size and (arr.min() < 0 or arr.max() >= n):
            raise ValueError(f"{what} {arr.tolist()} out of range for {n}")
        if np.unique(arr).size != arr.size:
            raise ValueError(f"{what} holds duplicates: {arr.tolist()}")
        return arr.astype(np.int32)

    def _values(self, values, n_rows: int, n_cols: int, unbatched: bool, what: str) -> np.ndarray:
        arr = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
        if not (np.issubdtype(arr.dtype, np.number) and not np.issubdtype(arr.dtype, np.complexfloating)):
            raise TypeError(f"{what} must be numeric, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
        if arr.shape == (n_cols,):
            arr = np.broadcast_to(arr, (n_rows, n_cols))
        elif unbatched or arr.shape != (n_rows, n_cols):
            expected = f"({n_cols},)" if unbatched else f"({n_cols},) or ({n_rows}, {n_cols})"
            raise ValueError(f"{what} has shape {arr.shape}, expected {expected}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{what} holds non-finite values")
        return np.ascontiguousarray(arr)

    def _read(self, name: str, cols: np.ndarray, envs: np.ndarray, unbatched: bool) -> torch.Tensor:
        out = self.solver.state[name].to_numpy()[envs][:, cols]
        return torch.from_numpy(out[0] if unbatched else out)

    def _write(self, name: str, values: np.ndarray, envs: np.ndarray, cols: np.ndarray) -> None:
        write_entries(self.solver.state[name], np.ascontiguousarray(values, dtype=np.float64), envs,
                      np.ascontiguousarray(cols, dtype=np.int32))

    def _dof_write(self, name, values, dofs_idx_local, envs_idx, what, check=None):
        envs, unbatched = self._scene_envs(envs_idx)
        dofs = self._local(dofs_idx_local, self.n_dofs, "dofs_idx_local")
        values = self._values(values, len(envs), len(dofs), unbatched, what)
        if check is not None:
            check(values, dofs)
        self._write(name, values, envs, dofs + self.dof_start)
        return envs, dofs

    def _require_1d_joints(self, dofs, what):
        bad = [int(d) for d in dofs if self._dof_joint[d][0] not in (HINGE, SLIDE)]
        if bad:
            raise ValueError(f"{what} needs hinge or slide dofs; local dofs {bad} belong to free/ball joints")

    # ------------------------------------------------------------------ dofs
    def get_dofs_position(self, dofs_idx_local=None, envs_idx=None) -> torch.Tensor:
        envs, unbatched = self._scene_envs(envs_idx)
        dofs = self._local(dofs_idx_local, self.n_dofs, "dofs_idx_local")
        qpos = self.solver.state["qpos"].to_numpy()[envs]
        out = np.empty((len(envs), len(dofs)), dtype=qpos.dtype)
        for col, d in enumerate(dofs):
            jt, qa, c = self._dof_joint[d]
            if jt in (HINGE, SLIDE) or (jt == FREE and c < 3):
                out[:, col] = qpos[:, qa + c]
            else:
                quat_adr = qa + 3 if jt == FREE else qa
                out[:, col] = quat_to_rotvec(qpos[:, quat_adr:quat_adr + 4])[:, c % 3]
        return torch.from_numpy(out[0] if unbatched else out)

    def set_dofs_position(self, position, dofs_idx_local=None, zero_velocity=True, envs_idx=None) -> None:
        envs, unbatched = self._scene_envs(envs_idx)
        dofs = self._local(dofs_idx_local, self.n_dofs, "dofs_idx_local")
        values = self._values(position, len(envs), len(dofs), unbatched, "position")
        qpos = self.solver.state["qpos"].to_numpy()[envs].astype(np.float64)
        rotations: dict[int, dict[int, np.ndarray]] = {}
        for col, d in enumerate(dofs):
            jt, qa, c = self._dof_joint[d]
            if jt in (HINGE, SLIDE) or (jt == FREE and c < 3):
                qpos[:, qa + c] = values[:, col]
            else:
                rotations.setdefault(qa + 3 if jt == FREE else qa, {})[c % 3] = values[:, col]
        for quat_adr, comps in rotations.items():
            if len(comps) != 3:
                raise ValueError("set_dofs_position needs all three rotational dofs of a free or ball joint together")
            qpos[:, quat_adr:quat_adr + 4] = rotvec_to_quat(np.stack([comps[0], comps[1], comps[2]], axis=-1))
        cols = np.arange(self.q_start, self.q_start + self.n_qs, dtype=np.int32)
        self._write("qpos", qpos[:, cols], envs, cols)
        if zero_velocity:
            self._write("dofs_vel", np.zeros((len(envs), self.n_dofs)), envs,
                        np.arange(self.dof_start, self.dof_start + self.n_dofs, dtype=np.int32))
        self.solver.update_links()

    def get_qpos(self, envs_idx=None) -> torch.Tensor:
        """The entity's raw MuJoCo-layout qpos (free joints: x y z qw qx qy qz)."""
        envs, unbatched = self._scene_envs(envs_idx)
        return self._read("qpos", np.arange(self.q_start, self.q_start + self.n_qs), envs, unbatched)

    def set_qpos(self, qpos, envs_idx=None, zero_velocity=True) -> None:
        envs, unbatched = self._scene_envs(envs_idx)
        values = self._values(qpos, len(envs), self.n_qs, unbatched, "qpos")
        self._write("qpos", values, envs, np.arange(self.q_start, self.q_start + self.n_qs, dtype=np.int32))
        if zero_velocity:
            self._write("dofs_vel", np.zeros((len(envs), self.n_dofs)), envs,
                        np.arange(self.dof_start, self.dof_start + self.n_dofs, dtype=np.int32))
        self.solver.update_links()

    def get_dofs_velocity(self, dofs_idx_local=None, envs_idx=None) -> torch.Tensor:
        envs, unbatched = self._scene_envs(envs_idx)
        dofs = self._local(dofs_idx_local, self.n_dofs, "dofs_idx_local")
        return self._read("dofs_vel", dofs + self.dof_start, envs, unbatched)

    def set_dofs_velocity(self, velocity, dofs_idx_local=None, envs_idx=None) -> None:
        self._dof_write("dofs_vel", velocity, dofs_idx_local, envs_idx, "velocity")

    # ------------------------------------------------------------------ control
    def _set_mode(self, envs, dofs, mode):
        self._write("ctrl_mode", np.full((len(envs), len(dofs)), mode), envs, dofs + self.dof_start)

    def control_dofs_position(self, position, dofs_idx_local=None, envs_idx=None) -> None:
        """PD towards `position`: force = kp (target - q) - kv qdot, clipped to the force range."""
        envs, dofs = self._dof_write("ctrl_pos", position, dofs_idx_local, envs_idx, "position",
                                     check=lambda v, d: self._require_1d_joints(d, "control_dofs_position"))
        self._set_mode(envs, dofs, CTRL_POSITION)

    def control_dofs_velocity(self, velocity, dofs_idx_local=None, envs_idx=None) -> None:
        """force = kv (target - qdot), clipped to the force range."""
        envs, dofs = self._dof_write("ctrl_vel", velocity, dofs_idx_local, envs_idx, "velocity")
        self._set_mode(envs, dofs, CTRL_VELOCITY)

    def control_dofs_force(self, force, dofs_idx_local=None, envs_idx=None) -> None:
        envs, dofs = self._dof_write("ctrl_force", force, dofs_idx_local, envs_idx, "force")
        self._set_mode(envs, dofs, CTRL_FORCE)

    def _gain_check(self, values, dofs):
        if np.any(values < 0):
            raise ValueError("gains must be >= 0")

    def set_dofs_kp(self, kp, dofs_idx_local=None, envs_idx=None) -> None:
        self._dof_write("dofs_kp", kp, dofs_idx_local, envs_idx, "kp", check=self._gain_check)

    def set_dofs_kv(self, kv, dofs_idx_local=None, envs_idx=None) -> None:
        self._dof_write("dofs_kv", kv, dofs_idx_local, envs_idx, "kv", check=self._gain_check)

    def get_dofs_kp(self, dofs_idx_local=None, envs_idx=None) -> torch.Tensor:
        envs, unbatched = self._scene_envs(envs_idx)
        return self._read("dofs_kp", self._local(dofs_idx_local, self.n_dofs, "dofs_idx_local") + self.dof_start,
                          envs, unbatched)

    def get_dofs_kv(self, dofs_idx_local=None, envs_idx=None) -> torch.Tensor:
        envs, unbatched = self._scene_envs(envs_idx)
        return self._read("dofs_kv", self._local(dofs_idx_local, self.n_dofs, "dofs_idx_local") + self.dof_start,
                          envs, unbatched)

    # ------------------------------------------------------------------ links
    def _links_read(self, name, links_idx_local, envs_idx):
        envs, unbatched = self._scene_envs(envs_idx)
        links = self._local(links_idx_local, self.n_links, "links_idx_local")
        return self._read(name, links + self.link_start, envs, unbatched)

    def get_links_pos(self, links_idx_local=None, envs_idx=None) -> torch.Tensor:
        """World positions of the link frames: (len(envs), n_links, 3)."""
        return self._links_read("links_pos", links_idx_local, envs_idx)

    def get_links_quat(self, links_idx_local=None, envs_idx=None) -> torch.Tensor:
        """World orientations (w, x, y, z) of the link frames: (len(envs), n_links, 4)."""
        return self._links_read("links_quat", links_idx_local, envs_idx)

    def get_link(self, name: str) -> RigidLink:
        for link in self.links:
            if link.name == name:
                return link
        raise ValueError(f"no link named {name!r}; links are {[link.name for link in self.links]}")
