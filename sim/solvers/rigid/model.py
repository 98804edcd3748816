"""MJCF / URDF -> flat numpy arrays, through MuJoCo's own compiler (`mujoco.MjModel`, see
loader.py; tendons, actuators, equalities and flags in elements.py).

Every entity (an MJCF or URDF file, or a Box / Sphere / Plane morph written as a tiny MJCF string)
is compiled by MuJoCo, checked for elements we do not simulate, and appended to one
combined `ModelArrays`: one kinematic tree rooted at the world body 0, bodies in
topological order (parents first), as MuJoCo orders them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from sim.solvers.rigid.geometry import ContactRules, append_geoms, check_contacts
from sim.utils.geom import transform_by_quat, transform_quat_by_quat  # numpy in, numpy out

FREE, BALL, SLIDE, HINGE = 0, 1, 2, 3          # mjtJoint values
CTRL_FORCE, CTRL_POSITION, CTRL_VELOCITY = 0, 1, 2
DOF_SIZE = {FREE: 6, BALL: 3, SLIDE: 1, HINGE: 1}


def _name(m, objtype, i: int, kind: str) -> str:
    name = mujoco.mj_id2name(m, objtype, i)
    return f"{kind} {name!r}" if name else f"{kind} #{i}"


def check_supported(m: mujoco.MjModel, source: str) -> None:
    """Raise ValueError naming the first MJCF element this solver would not simulate."""
    def refuse(what):
        raise ValueError(f"{source}: {what} is not supported by the rigid solver")

    for count, what in [(m.nflex, "flex"), (m.nmocap, "mocap body"), (m.nplugin, "plugin")]:
        if count:
            refuse(f"<{what}> ({count} of them)")
    from sim.solvers.rigid.elements import check_elements

    check_elements(m, source)
    for j in range(m.njnt):
        jname = _name(m, mujoco.mjtObj.mjOBJ_JOINT, j, "joint")
        jt = int(m.jnt_type[j])
        if jt in (FREE, BALL) and m.jnt_stiffness[j] != 0:
            refuse(f"stiffness on {'free' if jt == FREE else 'ball'} {jname}")
        if jt == BALL and m.jnt_limited[j]:
            refuse(f"range (limit) on ball {jname}")
    for d in range(m.nv):
        if m.dof_frictionloss[d] != 0 and int(m.jnt_type[m.dof_jntid[d]]) not in (HINGE, SLIDE):
            refuse(f"frictionloss on free/ball {_name(m, mujoco.mjtObj.mjOBJ_JOINT, int(m.dof_jntid[d]), 'joint')}")
    check_contacts(m, refuse)


_INT_KEYS = {"body_parent", "body_jntadr", "body_jntnum", "body_static", "jnt_type", "jnt_qadr", "jnt_dadr",
             "jnt_limited", "dof_body", "dof_parent", "dof_mode", "geom_type", "geom_body", "geom_contype",
             "geom_conaffinity", "geom_hull", "ten_adr", "ten_num", "ten_limited", "wrap_dof", "wrap_qadr",
             "act_trntype", "act_trnid", "act_qadr", "eq_type", "eq_obj"}

_WIDTHS = {"jnt_pos": 3, "jnt_axis": 3, "jnt_range": 2, "geom_pos": 3, "geom_quat": 4, "geom_size": 3,
           "geom_hull": 4, "hull_vert": 3, "hull_plane": 4, "ten_range": 2, "ten_springlength": 2, "act_bias": 3,
           "act_ctrlrange": 2, "act_forcerange": 2, "eq_obj": 2, "eq_data": 10, "eq_ref": 2}


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
    body_gravcomp: list = field(default_factory=lambda: [0.0])   # 1: gravity compensated (or disabled)
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
    jnt_margin: list = field(default_factory=list)
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
    dof_frictionloss: list = field(default_factory=list)
    dof_actfrc_lo: list = field(default_factory=list)   # joint actuatorfrcrange (total actuator force)
    dof_actfrc_hi: list = field(default_factory=list)
    geom_type: list = field(default_factory=list)
    geom_body: list = field(default_factory=list)
    geom_pos: list = field(default_factory=list)
    geom_quat: list = field(default_factory=list)
    geom_size: list = field(default_factory=list)
    geom_friction: list = field(default_factory=list)
    geom_contype: list = field(default_factory=list)
    geom_conaffinity: list = field(default_factory=list)
    geom_rbound: list = field(default_factory=list)     # bounding sphere radius about the geom frame
    geom_hull: list = field(default_factory=list)       # mesh hull: first vertex, count, first plane, count
    hull_vert: list = field(default_factory=list)       # mesh hull vertices, geom frame
    hull_plane: list = field(default_factory=list)      # mesh hull face planes (normal, offset)
    contact: ContactRules = field(default_factory=ContactRules)
    qpos0: list = field(default_factory=list)
    # fixed tendons: wraps ten_adr .. ten_adr + ten_num of (dof, qpos address, coefficient)
    ten_adr: list = field(default_factory=list)
    ten_num: list = field(default_factory=list)
    ten_limited: list = field(default_factory=list)
    ten_range: list = field(default_factory=list)
    ten_margin: list = field(default_factory=list)
    ten_stiffness: list = field(default_factory=list)
    ten_springlength: list = field(default_factory=list)
    ten_damping: list = field(default_factory=list)
    ten_frictionloss: list = field(default_factory=list)
    wrap_dof: list = field(default_factory=list)
    wrap_qadr: list = field(default_factory=list)
    wrap_coef: list = field(default_factory=list)
    # MuJoCo actuators driven by the `ctrl` state field (see elements.py)
    act_trntype: list = field(default_factory=list)
    act_trnid: list = field(default_factory=list)       # global dof, or global tendon
    act_qadr: list = field(default_factory=list)        # qpos address of a joint transmission
    act_gear: list = field(default_factory=list)
    act_gain: list = field(default_factory=list)
    act_bias: list = field(default_factory=list)
    act_ctrlrange: list = field(default_factory=list)
    act_forcerange: list = field(default_factory=list)
    act_ctrl0: list = field(default_factory=list)      # initial ctrl (keyframe "home")
    # equality constraints: joint (obj = joints, data = polynomial) or connect / weld (obj = bodies,
    # data = anchor on body1, anchor on body2, weld quaternion; see elements._append_equality)
    eq_type: list = field(default_factory=list)
    eq_obj: list = field(default_factory=list)
    eq_data: list = field(default_factory=list)
    eq_ref: list = field(default_factory=list)
    eq_timeconst: list = field(default_factory=list)

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

    @property
    def ntendon(self):
        return len(self.ten_adr)

    @property
    def nact(self):
        return len(self.act_trnid)

    @property
    def neq(self):
        return len(self.eq_type)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every list as a numpy array (float64 / int32), with empty arrays shaped right."""
        out = {}
        for key, value in self.__dict__.items():
            if not isinstance(value, list) or key == "body_names":
                continue
            arr = np.asarray(value, dtype=np.int32 if key in _INT_KEYS else np.float64)
            out[key] = arr.reshape(0, _WIDTHS[key]) if not value and key in _WIDTHS else arr
        return out


def append_model(model: ModelArrays, m: mujoco.MjModel, pos, quat, qpos_init=None, ctrl_init=None,
                 source: str = "model") -> dict:
    """Append a compiled MuJoCo model, its root bodies placed at (pos, quat). Returns the
    entity's index ranges into the combined model and its actuator map."""
    from sim.solvers.rigid.elements import SHORTHAND_MOTOR, SHORTHAND_POSITION, append_elements, disabled_flags

    disabled = disabled_flags(m, source)
    no_passive = {"spring", "damper"} <= disabled  # MuJoCo then skips all passive forces, gravcomp too
    b0, j0, d0, q0, g0 = model.nbody - 1, model.njnt, model.nv, model.nq, model.ngeom
    pos, quat = np.asarray(pos, dtype=np.float64), np.asarray(quat, dtype=np.float64)
    qpos = np.array(m.qpos0 if qpos_init is None else qpos_init, dtype=np.float64)

    def gbody(b):  # global body index of local body b
        return 0 if b == 0 else b + b0

    for b in range(1, m.nbody):
        parent = int(m.body_parentid[b])
        bpos, bquat = m.body_pos[b].copy(), m.body_quat[b].copy()
        if parent == 0:
            bpos, bquat = pos + transform_by_quat(bpos, quat), transform_quat_by_quat(bquat, quat)
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
        model.body_gravcomp.append(1.0 if "gravity" in disabled else 0.0 if no_passive else float(m.body_gravcomp[b]))
    for j in range(m.njnt):
        jt, qa = int(m.jnt_type[j]), int(m.jnt_qposadr[j])
        if jt == FREE and m.body_parentid[m.jnt_bodyid[j]] == 0:  # free roots move with the morph pose
            qpos[qa:qa + 3] = pos + transform_by_quat(qpos[qa:qa + 3], quat)
            qpos[qa + 3:qa + 7] = transform_quat_by_quat(qpos[qa + 3:qa + 7], quat)
        model.jnt_type.append(jt)
        model.jnt_qadr.append(qa + q0)
        model.jnt_dadr.append(int(m.jnt_dofadr[j]) + d0)
        model.jnt_pos.append(m.jnt_pos[j].copy())
        model.jnt_axis.append(m.jnt_axis[j].copy())
        model.jnt_limited.append(int(m.jnt_limited[j] and "limit" not in disabled))
        model.jnt_margin.append(float(m.jnt_margin[j]))
        model.jnt_range.append(m.jnt_range[j].copy())
        model.jnt_stiffness.append(0.0 if "spring" in disabled else float(m.jnt_stiffness[j]))
        model.jnt_springref.append(float(m.qpos_spring[qa]))
        model.jnt_qref.append(float(m.qpos0[qa]) if jt in (HINGE, SLIDE) else 0.0)
    target = np.zeros(m.nv)
    for j in range(m.njnt):
        if int(m.jnt_type[j]) in (HINGE, SLIDE):
            target[m.jnt_dofadr[j]] = qpos[m.jnt_qposadr[j]]
    kp, kv, mode = np.zeros(m.nv), np.zeros(m.nv), np.zeros(m.nv, dtype=np.int32)
    lo, hi = np.full(m.nv, -np.inf), np.full(m.nv, np.inf)
    target_lo, target_hi = np.full(m.nv, -np.inf), np.full(m.nv, np.inf)
    elements = append_elements(model, m, d0, q0, b0, j0, disabled,
                               np.zeros(m.nu) if ctrl_init is None else np.asarray(ctrl_init, dtype=np.float64), (pos, quat))
    for a, entry in enumerate(elements["actuators"]):
        if entry[0] != "dof":
            continue
        _, d, kind, gear, gain = entry  # the dof's force is gear * (actuator force), see elements.py
        bias = m.actuator_biasprm[a]
        if kind == SHORTHAND_MOTOR:
            mode[d] = CTRL_FORCE
            if m.actuator_ctrllimited[a] and "clampctrl" not in disabled:
                lo[d], hi[d] = np.sort(m.actuator_ctrlrange[a] * gain * gear)
        elif kind == SHORTHAND_POSITION:
            mode[d], kp[d], kv[d] = CTRL_POSITION, gain * gear ** 2, -bias[2] * gear ** 2
        else:
            mode[d], kv[d] = CTRL_VELOCITY, gain * gear ** 2
            target[d] = 0.0
        if kind != SHORTHAND_MOTOR and m.actuator_ctrllimited[a] and "clampctrl" not in disabled:
            target_lo[d], target_hi[d] = np.sort(m.actuator_ctrlrange[a] / gear)  # MuJoCo clamps the target
        if m.actuator_forcelimited[a]:
            flo, fhi = np.sort(m.actuator_forcerange[a] * gear)
            lo[d], hi[d] = max(lo[d], flo), min(hi[d], fhi)
        if "actuation" in disabled:
            lo[d] = hi[d] = 0.0
    for d in range(m.nv):
        parent = int(m.dof_parentid[d])
        model.dof_body.append(gbody(int(m.dof_bodyid[d])))
        model.dof_parent.append(parent + d0 if parent >= 0 else -1)
        model.dof_armature.append(float(m.dof_armature[d]))
        model.dof_damping.append(0.0 if "damper" in disabled else float(m.dof_damping[d]))
        model.dof_frictionloss.append(0.0 if "frictionloss" in disabled else float(m.dof_frictionloss[d]))
        j = int(m.dof_jntid[d])
        frc = m.jnt_actfrcrange[j] if m.jnt_actfrclimited[j] else (-np.inf, np.inf)
        model.dof_actfrc_lo.append(0.0 if "actuation" in disabled else float(frc[0]))
        model.dof_actfrc_hi.append(0.0 if "actuation" in disabled else float(frc[1]))
    model.dof_kp += kp.tolist()
    model.dof_kv += kv.tolist()
    model.dof_mode += mode.tolist()
    model.dof_target += target.tolist()
    model.dof_force_lo += lo.tolist()
    model.dof_force_hi += hi.tolist()
    model.dof_target_lo += target_lo.tolist()
    model.dof_target_hi += target_hi.tolist()
    append_geoms(model, m, gbody, pos, quat, lambda a, b: transform_quat_by_quat(b, a),
                 lambda q, v: transform_by_quat(v, q))
    model.qpos0 += qpos.tolist()
    return {"links": (b0 + 1, b0 + m.nbody), "dofs": (d0, d0 + m.nv), "qs": (q0, q0 + m.nq),
            "geoms": (g0, model.ngeom), "link_names": [model.body_names[b] for b in range(b0 + 1, b0 + m.nbody)],
            "actuators": elements["actuators"], "ctrl": elements["ctrl"]}


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
