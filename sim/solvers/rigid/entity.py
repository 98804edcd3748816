"""RigidEntity: the Genesis-style per-entity API (dof positions and velocities, PD control,
joints, links, base pose and velocity, inverse kinematics). Every method takes an optional
`envs_idx` validated by the shared `normalize_envs_idx`; all input is checked before anything
is written, and an empty `envs_idx` changes nothing.

Reads gather only the asked rows and columns (`sim.field_access.gather`, one kernel launch)
and come back as torch tensors on the backend's device, env axis first on a batched scene
((len(envs), k)) and without it on an unbatched one ((k,)). Dof positions of hinge and slide
joints are their qpos; for free joints they are (x, y, z, rotation vector), for ball joints
the rotation vector.
"""

import numpy as np
import torch

from sim.envs_idx import normalize_envs_idx
from sim.field_access import gather, scatter
from sim.solvers.rigid import ik
from sim.solvers.rigid.entity_dynamics import EntityDynamics
from sim.solvers.rigid.parts import RigidJoint, RigidLink
from sim.solvers.rigid.model import CTRL_FORCE, CTRL_POSITION, CTRL_VELOCITY, DOF_SIZE, FREE, HINGE, SLIDE
from sim.utils import geom
from sim.validate import require_built

class RigidEntity(EntityDynamics):
    """Force ranges, control-force reads and domain randomisation come from EntityDynamics."""

    def __init__(self, solver, morph, material, idx: int, ranges: dict):
        self.solver, self.morph, self.material, self.idx = solver, morph, material, idx
        self.link_start, link_end = ranges["links"]
        self.dof_start, dof_end = ranges["dofs"]
        self.q_start, q_end = ranges["qs"]
        self.n_links, self.n_dofs, self.n_qs = link_end - self.link_start, dof_end - self.dof_start, q_end - self.q_start
        self.link_start -= 1  # state rows of links skip the world body
        self.links = [RigidLink(self, name, i) for i, name in enumerate(ranges["link_names"])]
        model = solver.model
        self._jnt_ids = [j for j in range(model.njnt) if self.dof_start <= model.jnt_dadr[j] < dof_end]
        # per local dof: (joint type, global qpos address of the joint, component within the joint)
        self._dof_joint = []
        for j in self._jnt_ids:
            for c in range(DOF_SIZE[model.jnt_type[j]]):
                self._dof_joint.append((model.jnt_type[j], model.jnt_qadr[j], c))
        self._joints = None

    def __repr__(self):
        return f"RigidEntity({type(self.morph).__name__}, n_dofs={self.n_dofs}, n_links={self.n_links})"

    # ------------------------------------------------------------------ validation helpers
    def _scene_envs(self, envs_idx) -> tuple[np.ndarray, bool]:
        require_built(self.solver.scene, "the entity's state")
        n_envs = self.solver.n_envs
        if envs_idx is None:
            return np.arange(max(n_envs, 1), dtype=np.int32), n_envs == 0
        return normalize_envs_idx(envs_idx, n_envs), False

    def _local(self, idx, n: int, what: str) -> np.ndarray:
        if idx is None:
            return np.arange(n, dtype=np.int32)
        if isinstance(idx, slice):
            return np.arange(n, dtype=np.int32)[idx]
        arr = np.asarray(idx.detach().cpu().numpy() if isinstance(idx, torch.Tensor) else idx)
        if arr.ndim == 0:
            arr = arr[None]
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise TypeError(f"{what} must be a 1-D sequence of integers or a slice, got {idx!r}")
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

    def _read(self, name: str, cols, envs: np.ndarray, unbatched: bool) -> torch.Tensor:
        out = gather(self.solver.state[name], envs, cols)
        return out[0] if unbatched else out

    def _write(self, name: str, values: np.ndarray, envs: np.ndarray, cols: np.ndarray) -> None:
        scatter(self.solver.state[name], values, envs, cols)

    def _dofs(self, dofs_idx_local) -> np.ndarray:
        return self._local(dofs_idx_local, self.n_dofs, "dofs_idx_local")

    def _dof_write(self, name, values, dofs_idx_local, envs_idx, what, check=None):
        envs, unbatched = self._scene_envs(envs_idx)
        dofs = self._dofs(dofs_idx_local)
        values = self._values(values, len(envs), len(dofs), unbatched, what)
        if check is not None:
            check(values, dofs)
        self._write(name, values, envs, dofs + self.dof_start)
        return envs, dofs

    def _dof_read(self, name, dofs_idx_local, envs_idx) -> torch.Tensor:
        envs, unbatched = self._scene_envs(envs_idx)
        return self._read(name, self._dofs(dofs_idx_local) + self.dof_start, envs, unbatched)

    def _require_1d_joints(self, dofs, what):
        bad = [int(d) for d in dofs if self._dof_joint[d][0] not in (HINGE, SLIDE)]
        if bad:
            raise ValueError(f"{what} needs hinge or slide dofs; local dofs {bad} belong to free/ball joints")

    # ------------------------------------------------------------------ joints and links
    @property
    def joints(self) -> list:
        if self._joints is None:
            from sim.solvers.rigid.compiled import entity_model
            import mujoco

            m = entity_model(self)
            model = self.solver.model
            self._joints = [RigidJoint(self, mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, i) or f"joint{i}", i,
                                       model.jnt_type[j], model.jnt_dadr[j], model.jnt_qadr[j])
                            for i, j in enumerate(self._jnt_ids)]
        return self._joints

    def get_joint(self, name: str | None = None, uid=None) -> RigidJoint:
        if uid is not None:
            raise TypeError("get_joint(uid=...) is not supported; pass the joint's name")
        for joint in self.joints:
            if joint.name == name:
                return joint
        raise ValueError(f"no joint named {name!r}; joints are {[j.name for j in self.joints]}")

    def get_link(self, name: str | None = None, uid=None) -> RigidLink:
        if uid is not None:
            raise TypeError("get_link(uid=...) is not supported; pass the link's name")
        for link in self.links:
            if link.name == name:
                return link
        raise ValueError(f"no link named {name!r}; links are {[link.name for link in self.links]}")

    @property
    def base_link(self) -> RigidLink:
        return self.links[0]

    @property
    def base_link_idx(self) -> int:
        return self.link_start

    @property
    def n_joints(self) -> int:
        return len(self._jnt_ids)

    # ------------------------------------------------------------------ dofs
    def _q_columns(self, dofs):
        """For each dof: its qpos column (hinge, slide, free translation) or -1 (a rotation)."""
        cols = []
        for d in dofs:
            jt, qa, c = self._dof_joint[d]
            cols.append(qa + c if jt in (HINGE, SLIDE) or (jt == FREE and c < 3) else -1)
        return np.asarray(cols, dtype=np.int32)

    def get_dofs_position(self, dofs_idx_local=None, envs_idx=None) -> torch.Tensor:
        envs, unbatched = self._scene_envs(envs_idx)
        out = self._dofs_position(self._dofs(dofs_idx_local), envs)
        return out[0] if unbatched else out

    def _dofs_position(self, dofs, envs) -> torch.Tensor:
        """(len(envs), len(dofs)): one gather of the qpos columns these dofs need."""
        cols = self._q_columns(dofs)
        if np.all(cols >= 0):
            return gather(self.solver.state["qpos"], envs, cols)
        quats = sorted({self._quat_adr(d) for d, c in zip(dofs, cols) if c < 0})
        needed = np.concatenate([cols[cols >= 0]] + [np.arange(a, a + 4) for a in quats]).astype(np.int32)
        values = gather(self.solver.state["qpos"], envs, needed)
        where = {int(c): i for i, c in enumerate(needed)}
        out = torch.empty((len(envs), len(dofs)), dtype=values.dtype, device=values.device)
        rotvecs = {a: geom.quat_to_rotvec(values[:, where[a]:where[a] + 4]) for a in quats}
        for col, (d, c) in enumerate(zip(dofs, cols)):
            out[:, col] = values[:, where[int(c)]] if c >= 0 else rotvecs[self._quat_adr(d)][:, self._dof_joint[d][2] % 3]
        return out

    def _quat_adr(self, d) -> int:
        jt, qa, _ = self._dof_joint[d]
        return qa + 3 if jt == FREE else qa

    def set_dofs_position(self, position, dofs_idx_local=None, envs_idx=None, *, zero_velocity=True,
                          skip_forward=False) -> None:
        envs, unbatched = self._scene_envs(envs_idx)
        dofs = self._dofs(dofs_idx_local)
        values = self._values(position, len(envs), len(dofs), unbatched, "position")
        cols = self._q_columns(dofs)
        rotations: dict[int, dict[int, np.ndarray]] = {}
        for col, d in enumerate(dofs):
            if cols[col] < 0:
                rotations.setdefault(self._quat_adr(d), {})[self._dof_joint[d][2] % 3] = values[:, col]
        if any(len(comps) != 3 for comps in rotations.values()):
            raise ValueError("set_dofs_position needs all three rotational dofs of a free or ball joint together")
        write_cols, write_vals = [cols[cols >= 0]], [values[:, cols >= 0]]
        for quat_adr, comps in rotations.items():
            write_cols.append(np.arange(quat_adr, quat_adr + 4))
            write_vals.append(geom.rotvec_to_quat(np.stack([comps[0], comps[1], comps[2]], axis=-1)))
        self._write("qpos", np.concatenate(write_vals, axis=1), envs, np.concatenate(write_cols).astype(np.int32))
        if zero_velocity:
            self._zero_velocity(envs)
        if not skip_forward:
            self.solver.update_links()

    def get_qpos(self, qs_idx_local=None, envs_idx=None) -> torch.Tensor:
        """The entity's raw MuJoCo-layout qpos (free joints: x y z qw qx qy qz)."""
        envs, unbatched = self._scene_envs(envs_idx)
        qs = self._local(qs_idx_local, self.n_qs, "qs_idx_local")
        return self._read("qpos", qs + self.q_start, envs, unbatched)

    def set_qpos(self, qpos, qs_idx_local=None, envs_idx=None, *, zero_velocity=True, skip_forward=False) -> None:
        """skip_forward=True leaves link poses as they were until the next step or set call."""
        envs, unbatched = self._scene_envs(envs_idx)
        qs = self._local(qs_idx_local, self.n_qs, "qs_idx_local")
        values = self._values(qpos, len(envs), len(qs), unbatched, "qpos")
        self._write("qpos", values, envs, qs + self.q_start)
        if zero_velocity:
            self._zero_velocity(envs)
        if not skip_forward:
            self.solver.update_links()

    def get_dofs_velocity(self, dofs_idx_local=None, envs_idx=None) -> torch.Tensor:
        return self._dof_read("dofs_vel", dofs_idx_local, envs_idx)

    def set_dofs_velocity(self, velocity, dofs_idx_local=None, envs_idx=None) -> None:
        self._dof_write("dofs_vel", velocity, dofs_idx_local, envs_idx, "velocity")

    def zero_all_dofs_velocity(self, envs_idx=None) -> None:
        self._zero_velocity(self._scene_envs(envs_idx)[0])

    def _zero_velocity(self, envs) -> None:
        self._write("dofs_vel", np.zeros((len(envs), self.n_dofs)), envs,
                    np.arange(self.dof_start, self.dof_start + self.n_dofs, dtype=np.int32))

    # ------------------------------------------------------------------ base link
    def get_pos(self, envs_idx=None) -> torch.Tensor:
        """World position of the base link."""
        return self.base_link.get_pos(envs_idx)

    def get_quat(self, envs_idx=None) -> torch.Tensor:
        """World orientation (w, x, y, z) of the base link."""
        return self.base_link.get_quat(envs_idx)

    def _base_velocity(self, envs_idx):
        envs, unbatched = self._scene_envs(envs_idx)
        joint = self._base_joint()
        if joint is None:
            zeros = torch.zeros((len(envs), 3), dtype=gather(self.solver.state["qpos"], envs[:0], [0]).dtype)
            return zeros, zeros, unbatched
        vel = gather(self.solver.state["dofs_vel"], envs, np.arange(joint.dof_start, joint.dof_start + 6))
        quat = gather(self.solver.state["links_quat"], envs, [self.link_start])[:, 0]
        return vel[:, :3], geom.transform_by_quat(vel[:, 3:], quat), unbatched

    def _base_joint(self):
        model = self.solver.model
        body = self.link_start + 1
        jnts = [j for j in self._jnt_ids if model.body_jntadr[body] <= j < model.body_jntadr[body] + model.body_jntnum[body]]
        if not jnts and model.body_jntnum[body] == 0 and model.body_parent[body] == 0:
            return None  # fixed to the world
        if len(jnts) == 1 and model.jnt_type[jnts[0]] == FREE:
            return self.joints[self._jnt_ids.index(jnts[0])]
        raise ValueError("get_vel / get_ang need a free or fixed base link")

    def get_vel(self, envs_idx=None) -> torch.Tensor:
        """World linear velocity of the base link's origin."""
        lin, _, unbatched = self._base_velocity(envs_idx)
        return lin[0] if unbatched else lin

    def get_ang(self, envs_idx=None) -> torch.Tensor:
        """World angular velocity of the base link."""
        _, ang, unbatched = self._base_velocity(envs_idx)
        return ang[0] if unbatched else ang

    # ------------------------------------------------------------------ control
    def _set_mode(self, envs, dofs, mode):
        self._write("ctrl_mode", np.full((len(envs), len(dofs)), mode), envs, dofs + self.dof_start)

    def control_dofs_position(self, position, dofs_idx_local=None, envs_idx=None) -> None:
        """PD towards `position`: force = kp (target - q) - kv qdot, clipped to the force range."""
        envs, dofs = self._dof_write("ctrl_pos", position, dofs_idx_local, envs_idx, "position",
                                     check=lambda v, d: self._require_1d_joints(d, "control_dofs_position"))
        self._write("ctrl_vel", np.zeros((len(envs), len(dofs))), envs, dofs + self.dof_start)
        self._set_mode(envs, dofs, CTRL_POSITION)

    def control_dofs_position_velocity(self, position, velocity, dofs_idx_local=None, envs_idx=None) -> None:
        """PD towards a position and a velocity: force = kp (q* - q) + kv (qdot* - qdot), clipped."""
        envs, unbatched = self._scene_envs(envs_idx)
        dofs = self._dofs(dofs_idx_local)
        self._require_1d_joints(dofs, "control_dofs_position_velocity")
        pos = self._values(position, len(envs), len(dofs), unbatched, "position")
        vel = self._values(velocity, len(envs), len(dofs), unbatched, "velocity")
        self._write("ctrl_pos", pos, envs, dofs + self.dof_start)
        self._write("ctrl_vel", vel, envs, dofs + self.dof_start)
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
        return self._dof_read("dofs_kp", dofs_idx_local, envs_idx)

    def get_dofs_kv(self, dofs_idx_local=None, envs_idx=None) -> torch.Tensor:
        return self._dof_read("dofs_kv", dofs_idx_local, envs_idx)

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

    # ------------------------------------------------------------------ inverse kinematics
    inverse_kinematics = ik.inverse_kinematics
    inverse_kinematics_multilink = ik.inverse_kinematics_multilink
