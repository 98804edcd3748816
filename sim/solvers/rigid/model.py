"""MJCF -> flat numpy arrays, through MuJoCo's own compiler (`mujoco.MjModel`).

Every entity (an MJCF file, or a Box / Sphere / Plane morph written as a tiny MJCF string)
is compiled by MuJoCo, checked for elements we do not simulate, and appended to one
combined `ModelArrays`: one kinematic tree rooted at the world body 0, bodies in
topological order (parents first), as MuJoCo orders them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import mujoco
import numpy as np

FREE, BALL, SLIDE, HINGE = 0, 1, 2, 3          # mjtJoint values
PLANE, SPHERE, CAPSULE, BOX = 0, 2, 3, 6        # mjtGeom values we collide
GEOM_NAMES = {int(v): k.removeprefix("mjGEOM_").lower() for k, v in mujoco.mjtGeom.__members__.items()}
CTRL_FORCE, CTRL_POSITION, CTRL_VELOCITY = 0, 1, 2
DOF_SIZE = {FREE: 6, BALL: 3, SLIDE: 1, HINGE: 1}


def _name(m, objtype, i: int, kind: str) -> str:
    name = mujoco.mj_id2name(m, objtype, i)
    return f"{kind} {name!r}" if name else f"{kind} #{i}"


def check_supported(m: mujoco.MjModel, source: str) -> None:
    """Raise ValueError naming the first MJCF element this solver would not simulate."""
    def refuse(what):
        raise ValueError(f"{source}: {what} is not supported by the rigid solver")

    for count, what in [(m.ntendon, "tendon"), (m.neq, "equality constraint"), (m.nflex, "flex"),
                        (m.npair, "contact pair"), (m.nexclude, "contact exclude"),
                        (m.nmocap, "mocap body"), (m.nplugin, "plugin"), (m.na, "actuator with activation (dyntype)")]:
        if count:
            refuse(f"<{what}> ({count} of them)")
    for i in range(m.nbody):
        if m.body_gravcomp[i] != 0:
            refuse(f"gravcomp on {_name(m, mujoco.mjtObj.mjOBJ_BODY, i, 'body')}")
    for j in range(m.njnt):
        jname = _name(m, mujoco.mjtObj.mjOBJ_JOINT, j, "joint")
        jt = int(m.jnt_type[j])
        if jt in (FREE, BALL) and m.jnt_stiffness[j] != 0:
            refuse(f"stiffness on {'free' if jt == FREE else 'ball'} {jname}")
        if jt == BALL and m.jnt_limited[j]:
            refuse(f"range (limit) on ball {jname}")
        if m.jnt_actfrclimited[j]:
            refuse(f"actuatorfrcrange on {jname}")
    for d in range(m.nv):
        if m.dof_frictionloss[d] != 0:
            refuse(f"frictionloss on dof {d} ({_name(m, mujoco.mjtObj.mjOBJ_JOINT, int(m.dof_jntid[d]), 'joint')})")
    for g in range(m.ngeom):
        gt = int(m.geom_type[g])
        colliding = m.geom_contype[g] != 0 or m.geom_conaffinity[g] != 0
        if colliding and gt not in (PLANE, SPHERE, CAPSULE, BOX):
            refuse(f"colliding {GEOM_NAMES.get(gt, gt)} {_name(m, mujoco.mjtObj.mjOBJ_GEOM, g, 'geom')} "
                   f"(collision supports plane, sphere, capsule, box; set contype=conaffinity=0 for visual geoms)")
    joints = [int(j) for j in m.actuator_trnid[:, 0]]
    for a in range(m.nu):
        aname = _name(m, mujoco.mjtObj.mjOBJ_ACTUATOR, a, "actuator")
        if joints.count(joints[a]) > 1:
            refuse(f"a second actuator ({aname}) on {_name(m, mujoco.mjtObj.mjOBJ_JOINT, joints[a], 'joint')}")
        if m.actuator_trntype[a] != mujoco.mjtTrn.mjTRN_JOINT:
            refuse(f"non-joint transmission of {aname}")
        jt = int(m.jnt_type[m.actuator_trnid[a, 0]])
        if jt not in (HINGE, SLIDE):
            refuse(f"{aname} on a free/ball joint")
        if m.actuator_gaintype[a] != mujoco.mjtGain.mjGAIN_FIXED:
            refuse(f"gaintype of {aname}")
        gain, bias = m.actuator_gainprm[a], m.actuator_biasprm[a]
        if m.actuator_biastype[a] == mujoco.mjtBias.mjBIAS_NONE:
            pass  # motor
        elif m.actuator_biastype[a] == mujoco.mjtBias.mjBIAS_AFFINE and bias[0] == 0 and bias[1] == -gain[0]:
            pass  # position servo: kp * (ctrl - q) - kv * qdot
        elif (m.actuator_biastype[a] == mujoco.mjtBias.mjBIAS_AFFINE and bias[0] == 0 and bias[1] == 0
              and bias[2] == -gain[0]):
            pass  # velocity servo: kv * (ctrl - qdot)
        else:
            refuse(f"gain/bias combination of {aname} (only motor, position and velocity actuators)")
        if m.actuator_gear[a, 0] != 1 or np.any(m.actuator_gear[a, 1:] != 0):
            refuse(f"gear != 1 on {aname}")


_INT_KEYS = {"body_parent", "body_jntadr", "body_jntnum", "body_static", "jnt_type", "jnt_qadr", "jnt_dadr",
             "jnt_limited", "dof_body", "dof_parent", "dof_mode", "geom_type", "geom_body", "geom_contype",
             "geom_conaffinity"}

_WIDTHS = {"jnt_pos": 3, "jnt_axis": 3, "jnt_range": 2, "geom_pos": 3, "geom_quat": 4, "geom_size": 3}


@dataclass
class ModelArrays:
    """The combined model of every rigid entity, as numpy arrays (index 0 = world body)."""

    body_parent: list = field(default_factory=lambda: [-1])
    body_pos: list = field(default_factory=lambda: [np.zeros(3)])
    body_quat: list = field(default_factory=lambda: [np.array([1.0, 0, 0, 0])])
    body_ipos: list = field(default_factory=lambda: [np.zeros(3)])
    body_iquat: list = field(default_factory=lambda: [np.array([1.0, 0, 0, 0])])
    body_mass: list = field(default_factory=lambda: [0.0])
    body_inertia: list = field(default_factory=lambda: [np.zeros(3)])
    body_jntadr: list = field(default_factory=lambda: [0])
    body_jntnum: list = field(default_factory=lambda: [0])
    body_static: list = field(default_factory=lambda: [1])
    body_names: list = field(default_factory=lambda: ["world"])
    jnt_type: list = field(default_factory=list)
    jnt_qadr: list = field(default_factory=list)
    jnt_dadr: list = field(default_factory=list)
    jnt_pos: list = field(default_factory=list)
    jnt_axis: list = field(default_factory=list)
    jnt_limited: list = field(default_factory=list)
    jnt_range: list = field(default_factory=list)
    jnt_stiffness: list = field(default_factory=list)
    jnt_springref: list = field(default_factory=list)
    jnt_qref: list = field(default_factory=list)
    dof_body: list = field(default_factory=list)
    dof_parent: list = field(default_factory=list)
    dof_armature: list = field(default_factory=list)
    dof_damping: list = field(default_factory=list)
    dof_kp: list = field(default_factory=list)
    dof_kv: list = field(default_factory=list)
    dof_mode: list = field(default_factory=list)
    dof_target: list = field(default_factory=list)
    dof_force_lo: list = field(default_factory=list)
    dof_force_hi: list = field(default_factory=list)
    dof_target_lo: list = field(default_factory=list)
    dof_target_hi: list = field(default_factory=list)
    geom_type: list = field(default_factory=list)
    geom_body: list = field(default_factory=list)
    geom_pos: list = field(default_factory=list)
    geom_quat: list = field(default_factory=list)
    geom_size: list = field(default_factory=list)
    geom_friction: list = field(default_factory=list)
    geom_contype: list = field(default_factory=list)
    geom_conaffinity: list = field(default_factory=list)
    qpos0: list = field(default_factory=list)

    @property
    def nbody(self):
        return len(self.body_parent)

    @property
    def njnt(self):
        return len(self.jnt_type)

    @property
    def nq(self):
        return len(self.qpos0)

    @property
    def nv(self):
        return len(self.dof_body)

    @property
    def ngeom(self):
        return len(self.geom_type)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every list as a numpy array (float64 / int32), with empty arrays shaped right."""
        out = {}
        for key, value in self.__dict__.items():
            if not isinstance(value, list) or key == "body_names":
                continue
            arr = np.asarray(value, dtype=np.int32 if key in _INT_KEYS else np.float64)
            out[key] = arr.reshape(0, _WIDTHS[key]) if not value and key in _WIDTHS else arr
        return out


def quat_mul(a, b) -> np.ndarray:
    out = np.zeros(4)
    mujoco.mju_mulQuat(out, np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    return out


def quat_rotate(q, v) -> np.ndarray:
    out = np.zeros(3)
    mujoco.mju_rotVecQuat(out, np.asarray(v, dtype=np.float64), np.asarray(q, dtype=np.float64))
    return out


def append_model(model: ModelArrays, m: mujoco.MjModel, pos, quat, qpos_init=None) -> dict:
    """Append a compiled MuJoCo model, its root bodies placed at (pos, quat). Returns the
    entity's index ranges into the combined model."""
    b0, j0, d0, q0, g0 = model.nbody - 1, model.njnt, model.nv, model.nq, model.ngeom
    pos, quat = np.asarray(pos, dtype=np.float64), np.asarray(quat, dtype=np.float64)
    qpos = np.array(m.qpos0 if qpos_init is None else qpos_init, dtype=np.float64)

    def gbody(b):  # global body index of local body b
        return 0 if b == 0 else b + b0

    for b in range(1, m.nbody):
        parent = int(m.body_parentid[b])
        bpos, bquat = m.body_pos[b].copy(), m.body_quat[b].copy()
        if parent == 0:
            bpos, bquat = pos + quat_rotate(quat, bpos), quat_mul(quat, bquat)
        model.body_parent.append(gbody(parent))
        model.body_pos.append(bpos)
        model.body_quat.append(bquat)
        model.body_ipos.append(m.body_ipos[b].copy())
        model.body_iquat.append(m.body_iquat[b].copy())
        model.body_mass.append(float(m.body_mass[b]))
        model.body_inertia.append(m.body_inertia[b].copy())
        model.body_jntadr.append(int(m.body_jntadr[b]) + j0 if m.body_jntnum[b] else 0)
        model.body_jntnum.append(int(m.body_jntnum[b]))
        model.body_static.append(int(m.body_jntnum[b] == 0 and model.body_static[gbody(parent)]))
        model.body_names.append(mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, b) or f"body{b}")
    for j in range(m.njnt):
        jt, qa = int(m.jnt_type[j]), int(m.jnt_qposadr[j])
        if jt == FREE and m.body_parentid[m.jnt_bodyid[j]] == 0:  # free roots move with the morph pose
            qpos[qa:qa + 3] = pos + quat_rotate(quat, qpos[qa:qa + 3])
            qpos[qa + 3:qa + 7] = quat_mul(quat, qpos[qa + 3:qa + 7])
        model.jnt_type.append(jt)
        model.jnt_qadr.append(qa + q0)
        model.jnt_dadr.append(int(m.jnt_dofadr[j]) + d0)
        model.jnt_pos.append(m.jnt_pos[j].copy())
        model.jnt_axis.append(m.jnt_axis[j].copy())
        model.jnt_limited.append(int(m.jnt_limited[j]))
        model.jnt_range.append(m.jnt_range[j].copy())
        model.jnt_stiffness.append(float(m.jnt_stiffness[j]))
        model.jnt_springref.append(float(m.qpos_spring[qa]))
        model.jnt_qref.append(float(m.qpos0[qa]) if jt in (HINGE, SLIDE) else 0.0)
    target = np.zeros(m.nv)
    for j in range(m.njnt):
        if int(m.jnt_type[j]) in (HINGE, SLIDE):
            target[m.jnt_dofadr[j]] = qpos[m.jnt_qposadr[j]]
    kp, kv, mode = np.zeros(m.nv), np.zeros(m.nv), np.zeros(m.nv, dtype=np.int32)
    lo, hi = np.full(m.nv, -np.inf), np.full(m.nv, np.inf)
    target_lo, target_hi = np.full(m.nv, -np.inf), np.full(m.nv, np.inf)
    for a in range(m.nu):
        d = int(m.jnt_dofadr[m.actuator_trnid[a, 0]])
        gain, bias = m.actuator_gainprm[a], m.actuator_biasprm[a]
        if m.actuator_biastype[a] == mujoco.mjtBias.mjBIAS_NONE:
            mode[d] = CTRL_FORCE
            if m.actuator_ctrllimited[a]:
                lo[d], hi[d] = np.sort(m.actuator_ctrlrange[a] * gain[0])
        elif bias[1] != 0:
            mode[d], kp[d], kv[d] = CTRL_POSITION, gain[0], -bias[2]
        else:
            mode[d], kv[d] = CTRL_VELOCITY, gain[0]
            target[d] = 0.0
        if mode[d] != CTRL_FORCE and m.actuator_ctrllimited[a]:  # MuJoCo clamps the servo's target
            target_lo[d], target_hi[d] = m.actuator_ctrlrange[a]
        if m.actuator_forcelimited[a]:
            lo[d], hi[d] = max(lo[d], m.actuator_forcerange[a, 0]), min(hi[d], m.actuator_forcerange[a, 1])
    for d in range(m.nv):
        parent = int(m.dof_parentid[d])
        model.dof_body.append(gbody(int(m.dof_bodyid[d])))
        model.dof_parent.append(parent + d0 if parent >= 0 else -1)
        model.dof_armature.append(float(m.dof_armature[d]))
        model.dof_damping.append(float(m.dof_damping[d]))
    model.dof_kp += kp.tolist()
    model.dof_kv += kv.tolist()
    model.dof_mode += mode.tolist()
    model.dof_target += target.tolist()
    model.dof_force_lo += lo.tolist()
    model.dof_force_hi += hi.tolist()
    model.dof_target_lo += target_lo.tolist()
    model.dof_target_hi += target_hi.tolist()
    for g in range(m.ngeom):
        gt = int(m.geom_type[g])
        if m.geom_contype[g] == 0 and m.geom_conaffinity[g] == 0:
            continue  # visual only: its mass is already in the body inertia compiled by MuJoCo
        body = int(m.geom_bodyid[g])
        gpos, gquat = m.geom_pos[g].copy(), m.geom_quat[g].copy()
        if body == 0:
            gpos, gquat = pos + quat_rotate(quat, gpos), quat_mul(quat, gquat)
        model.geom_type.append(gt)
        model.geom_body.append(gbody(body))
        model.geom_pos.append(gpos)
        model.geom_quat.append(gquat)
        model.geom_size.append(m.geom_size[g].copy())
        model.geom_friction.append(float(m.geom_friction[g, 0]))
        model.geom_contype.append(int(m.geom_contype[g]))
        model.geom_conaffinity.append(int(m.geom_conaffinity[g]))
    model.qpos0 += qpos.tolist()
    return {"links": (b0 + 1, b0 + m.nbody), "dofs": (d0, d0 + m.nv), "qs": (q0, q0 + m.nq),
            "geoms": (g0, model.ngeom), "link_names": [model.body_names[b] for b in range(b0 + 1, b0 + m.nbody)]}


def load_mjcf(path: str) -> tuple[mujoco.MjModel, np.ndarray]:
    """Compile an MJCF file; returns the model and its initial qpos (keyframe "home" if any)."""
    try:
        m = mujoco.MjModel.from_xml_path(path)
    except ValueError as e:
        raise ValueError(f"MuJoCo could not compile {path}: {e}") from None
    check_supported(m, os.path.basename(path))
    qpos = m.qpos0.copy()
    key = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_KEY, "home")
    if key >= 0:
        qpos = m.key_qpos[key].copy()
    return m, qpos


def primitive_xml(morph, rho: float, friction: float) -> str:
    """A Box / Sphere morph as a free body, a Plane as a static world geom, in MJCF."""
    name = type(morph).__name__
    if name == "Plane":
        n = np.asarray(morph.normal)
        axis = np.cross([0.0, 0.0, 1.0], n)
        angle = np.arctan2(np.linalg.norm(axis), n[2])
        axis = axis / np.linalg.norm(axis) if np.linalg.norm(axis) > 1e-12 else np.array([1.0, 0, 0])
        quat = np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])
        return (f'<mujoco><worldbody><geom name="plane" type="plane" size="0 0 1" pos="{_v(morph.pos)}" '
                f'quat="{_v(quat)}" friction="{friction} 0.005 0.0001"/></worldbody></mujoco>')
    if name == "Box":
        geom = f'type="box" size="{_v(np.asarray(morph.size) / 2)}"'
        quat = morph.quat
    else:
        geom = f'type="sphere" size="{morph.radius}"'
        quat = (1.0, 0.0, 0.0, 0.0)
    return (f'<mujoco><worldbody><body name="{name.lower()}" pos="{_v(morph.pos)}" quat="{_v(quat)}">'
            f'{"" if getattr(morph, "fixed", False) else "<freejoint/>"}'
            f'<geom {geom} density="{rho}" friction="{friction} 0.005 0.0001"/>'
            f'</body></worldbody></mujoco>')


def _v(values) -> str:
    return " ".join(repr(float(v)) for v in values)


def file_fingerprint(path: str) -> dict:
    """The basename and content hash of a model file: the same model anywhere on any machine."""
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {"file": os.path.basename(path), "sha256": digest}
