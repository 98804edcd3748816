"""MuJoCo model elements beyond the kinematic tree, read from a compiled `mujoco.MjModel`:
`<option><flag>` values, actuators, fixed tendons and equality constraints.

Flags are per model file (an entity), as MuJoCo has them per model. Honoured here:
gravity, limit, frictionloss, actuation, equality, spring, damper, clampctrl. Accepted with no
effect (nothing they change exists here): sensor, refsafe (a time constant below two
steps is always raised to two steps), autoreset, island, the collision algorithm choices midphase,
nativeccd and multiccd (our narrow phase is its own), and the energy / fwdinv / invdiscrete enable
flags. The contact flags contact and filterparent (honoured) and override (refused) are the
collision module's (geometry.py). Anything else set is refused by name: constraint="disable", and
warmstart="disable" (the constraint solver warm-starts every scene's impulses: constraint.py).

Actuators: a joint actuator that is a shorthand of MuJoCo's general actuator (motor: gain only;
position: bias = (0, -kp, -kv); velocity: bias = (0, 0, -kv)), alone on its hinge or slide joint,
becomes that dof's Genesis-style controller (control_dofs_position / _velocity / _force), its
gear folded in (kp gear^2, target ctrl / gear, force ranges times gear). Every other affine
actuator (general gain/bias, tendon transmission, several on one joint) is a MuJoCo actuator
driven by the `ctrl` state field: force = gain ctrl + b0 + b1 length + b2 velocity, clamped to
forcerange, applied through gear (times the tendon's coefficients).
"""

from __future__ import annotations

import mujoco
import numpy as np

from sim.solvers.rigid.model import HINGE, SLIDE
from sim.utils.geom import inv_quat, transform_by_quat, transform_quat_by_quat  # numpy in, numpy out

DSBL = mujoco.mjtDisableBit
HONOURED = {"gravity": DSBL.mjDSBL_GRAVITY, "limit": DSBL.mjDSBL_LIMIT, "frictionloss": DSBL.mjDSBL_FRICTIONLOSS,
            "actuation": DSBL.mjDSBL_ACTUATION, "equality": DSBL.mjDSBL_EQUALITY, "spring": DSBL.mjDSBL_SPRING,
            "damper": DSBL.mjDSBL_DAMPER, "clampctrl": DSBL.mjDSBL_CLAMPCTRL}
NO_EFFECT = {DSBL.mjDSBL_SENSOR, DSBL.mjDSBL_REFSAFE, DSBL.mjDSBL_AUTORESET,
             DSBL.mjDSBL_ISLAND, DSBL.mjDSBL_MIDPHASE, DSBL.mjDSBL_NATIVECCD, DSBL.mjDSBL_MULTICCD}
COLLISION_FLAGS = {DSBL.mjDSBL_CONTACT, DSBL.mjDSBL_FILTERPARENT}
ENBL = mujoco.mjtEnableBit
ENABLE_NO_EFFECT = {ENBL.mjENBL_ENERGY, ENBL.mjENBL_FWDINV, ENBL.mjENBL_INVDISCRETE}
COLLISION_ENABLE = {ENBL.mjENBL_OVERRIDE}

TRN_JOINT, TRN_TENDON = 0, 1
EQ_JOINT, EQ_CONNECT, EQ_WELD = 0, 1, 2
EQ_ROWS = {EQ_JOINT: 1, EQ_CONNECT: 3, EQ_WELD: 6}
SHORTHAND_MOTOR, SHORTHAND_POSITION, SHORTHAND_VELOCITY = "motor", "position", "velocity"


def _name(m, objtype, i: int, kind: str) -> str:
    name = mujoco.mj_id2name(m, objtype, i)
    return f"{kind} {name!r}" if name else f"{kind} #{i}"


def _flag_name(bit) -> str:
    return bit.name.split("_", 1)[1].lower()


def disabled_flags(m: mujoco.MjModel, source: str) -> set[str]:
    """The honoured flags this file disables; refuses a flag set that nothing here honours."""
    def refuse(what):
        raise ValueError(f"{source}: <option><flag {what}/> is not supported by the rigid solver")

    out = set()
    for bit in DSBL.__members__.values():
        if bit == DSBL.mjNDISABLE or not m.opt.disableflags & int(bit):
            continue
        name = _flag_name(bit)
        if name in HONOURED:
            out.add(name)
        elif bit not in NO_EFFECT and bit not in COLLISION_FLAGS:
            refuse(f'{name}="disable"')
    for bit in ENBL.__members__.values():
        if bit != ENBL.mjNENABLE and m.opt.enableflags & int(bit) and bit not in ENABLE_NO_EFFECT | COLLISION_ENABLE:
            refuse(f'{_flag_name(bit)}="enable"')
    return out


def actuator_shorthand(m: mujoco.MjModel, a: int) -> str | None:
    """motor / position / velocity when actuator a is that shorthand on a hinge or slide joint."""
    if m.actuator_trntype[a] != int(mujoco.mjtTrn.mjTRN_JOINT) or int(m.jnt_type[m.actuator_trnid[a, 0]]) not in (HINGE, SLIDE):
        return None
    gain, bias, bt = m.actuator_gainprm[a], m.actuator_biasprm[a], m.actuator_biastype[a]
    if m.actuator_gaintype[a] != int(mujoco.mjtGain.mjGAIN_FIXED) or m.actuator_gear[a, 0] == 0:
        return None
    if bt == int(mujoco.mjtBias.mjBIAS_NONE) or (bt == int(mujoco.mjtBias.mjBIAS_AFFINE) and not np.any(bias[:3])):
        return SHORTHAND_MOTOR
    if bt == int(mujoco.mjtBias.mjBIAS_AFFINE) and bias[0] == 0 and bias[1] == -gain[0] and gain[0] != 0:
        return SHORTHAND_POSITION
    if bt == int(mujoco.mjtBias.mjBIAS_AFFINE) and bias[0] == 0 and bias[1] == 0 and bias[2] == -gain[0] and gain[0] != 0:
        return SHORTHAND_VELOCITY
    return None


def dof_controlled(m: mujoco.MjModel) -> list[bool]:
    """Per actuator: does it become its dof's Genesis-style controller (see module docstring)?"""
    joints = [int(j) if t == int(mujoco.mjtTrn.mjTRN_JOINT) else -1 for j, t in zip(m.actuator_trnid[:, 0],
                                                                           m.actuator_trntype)]
    return [actuator_shorthand(m, a) is not None and joints.count(joints[a]) == 1 for a in range(m.nu)]


def check_elements(m: mujoco.MjModel, source: str) -> None:
    """Raise ValueError naming the first actuator, tendon, equality or joint attribute this
    solver would not simulate."""
    def refuse(what):
        raise ValueError(f"{source}: {what} is not supported by the rigid solver")

    disabled_flags(m, source)
    if m.na:
        refuse(f"actuator activation dynamics (dyntype; {m.na} activation states)")
    for a in range(m.nu):
        aname = _name(m, mujoco.mjtObj.mjOBJ_ACTUATOR, a, "actuator")
        trn = m.actuator_trntype[a]
        if trn not in (int(mujoco.mjtTrn.mjTRN_JOINT), int(mujoco.mjtTrn.mjTRN_TENDON)):
            refuse(f"{mujoco.mjtTrn(trn).name.removeprefix('mjTRN_').lower()} transmission of {aname}")
        if trn == int(mujoco.mjtTrn.mjTRN_JOINT) and int(m.jnt_type[m.actuator_trnid[a, 0]]) not in (HINGE, SLIDE):
            refuse(f"{aname} on a free/ball joint")
        if m.actuator_dyntype[a] != int(mujoco.mjtDyn.mjDYN_NONE):
            refuse(f"dyntype={mujoco.mjtDyn(m.actuator_dyntype[a]).name.removeprefix('mjDYN_').lower()} of {aname}")
        if m.actuator_gaintype[a] != int(mujoco.mjtGain.mjGAIN_FIXED):
            refuse(f"gaintype={mujoco.mjtGain(m.actuator_gaintype[a]).name.removeprefix('mjGAIN_').lower()} of {aname}")
        if m.actuator_biastype[a] not in (int(mujoco.mjtBias.mjBIAS_NONE), int(mujoco.mjtBias.mjBIAS_AFFINE)):
            refuse(f"biastype={mujoco.mjtBias(m.actuator_biastype[a]).name.removeprefix('mjBIAS_').lower()} of {aname}")
        if np.any(m.actuator_gear[a, 1:] != 0):
            refuse(f"gear beyond its first component on {aname}")
        if m.actuator_actlimited[a] or m.actuator_actearly[a]:
            refuse(f"actlimited/actearly on {aname}")
    for t in range(m.ntendon):
        tname = _name(m, mujoco.mjtObj.mjOBJ_TENDON, t, "tendon")
        for w in range(m.tendon_adr[t], m.tendon_adr[t] + m.tendon_num[t]):
            if m.wrap_type[w] != int(mujoco.mjtWrap.mjWRAP_JOINT):
                refuse(f"spatial {tname} (only fixed tendons)")
            if int(m.jnt_type[m.wrap_objid[w]]) not in (HINGE, SLIDE):
                refuse(f"{tname} over a free/ball joint")
        if m.tendon_armature[t] != 0:
            refuse(f"armature on {tname}")
    for e in range(m.neq):
        ename = _name(m, mujoco.mjtObj.mjOBJ_EQUALITY, e, "equality")
        kind = m.eq_type[e]
        if kind not in (int(mujoco.mjtEq.mjEQ_JOINT), int(mujoco.mjtEq.mjEQ_CONNECT), int(mujoco.mjtEq.mjEQ_WELD)):
            refuse(f"<{mujoco.mjtEq(kind).name.removeprefix('mjEQ_').lower()}> {ename} (joint, connect and weld only)")
        if kind == int(mujoco.mjtEq.mjEQ_JOINT):
            for obj in (m.eq_obj1id[e], m.eq_obj2id[e]):
                if obj >= 0 and int(m.jnt_type[obj]) not in (HINGE, SLIDE):
                    refuse(f"joint {ename} on a free/ball joint")
        if kind in (int(mujoco.mjtEq.mjEQ_CONNECT), int(mujoco.mjtEq.mjEQ_WELD)):
            what = "connect" if kind == int(mujoco.mjtEq.mjEQ_CONNECT) else "weld"
            if m.eq_objtype[e] != int(mujoco.mjtObj.mjOBJ_BODY):
                refuse(f"site-based {what} {ename}")
            if m.eq_obj1id[e] == m.eq_obj2id[e]:
                refuse(f"{what} {ename} of a body to itself")
        if kind == int(mujoco.mjtEq.mjEQ_WELD) and m.eq_data[e, 10] not in (0.0, 1.0):
            # MuJoCo weighs the rotation rows of its soft constraint by torquescale, which makes
            # them more compliant (0.1: 8e-2 rad apart from 1 after 1 s): a hard weld cannot follow
            refuse(f"torquescale={m.eq_data[e, 10]:g} of weld {ename} (1, or 0 for position only)")
    for j in range(m.njnt):
        if m.jnt_actgravcomp[j]:
            refuse(f"actuatorgravcomp on {_name(m, mujoco.mjtObj.mjOBJ_JOINT, j, 'joint')}")


def append_elements(model, m: mujoco.MjModel, d0: int, q0: int, b0: int, j0: int, disabled: set[str],
                    ctrl0: np.ndarray, place: tuple = (np.zeros(3), np.array([1.0, 0, 0, 0]))) -> dict:
    """Append tendons, general actuators and equality constraints of one compiled model to
    the combined `model` (offsets d0 / q0 / b0 / j0 of its dofs, qpos, bodies, joints; `place`
    the entity's (pos, quat), which moves the file's world frame for equalities that hold a
    body to the world). Returns the entity's actuator map (see RigidSolver.control_actuators)."""
    t0, u0 = len(model.ten_adr), len(model.act_trnid)
    for t in range(m.ntendon):
        model.ten_adr.append(len(model.wrap_dof))
        model.ten_num.append(int(m.tendon_num[t]))
        for w in range(m.tendon_adr[t], m.tendon_adr[t] + m.tendon_num[t]):
            j = int(m.wrap_objid[w])
            model.wrap_dof.append(int(m.jnt_dofadr[j]) + d0)
            model.wrap_qadr.append(int(m.jnt_qposadr[j]) + q0)
            model.wrap_coef.append(float(m.wrap_prm[w]))
        model.ten_limited.append(int(m.tendon_limited[t] and "limit" not in disabled))
        model.ten_range.append(m.tendon_range[t].copy())
        model.ten_margin.append(float(m.tendon_margin[t]))
        model.ten_stiffness.append(0.0 if "spring" in disabled else float(m.tendon_stiffness[t]))
        model.ten_springlength.append(m.tendon_lengthspring[t].copy())
        model.ten_damping.append(0.0 if "damper" in disabled else float(m.tendon_damping[t]))
        model.ten_frictionloss.append(0.0 if "frictionloss" in disabled else float(m.tendon_frictionloss[t]))
    actuators = []
    for a, as_dof in enumerate(dof_controlled(m)):
        gear = float(m.actuator_gear[a, 0])
        if as_dof:
            dof = int(m.jnt_dofadr[m.actuator_trnid[a, 0]])
            actuators.append(("dof", dof, actuator_shorthand(m, a), gear, float(m.actuator_gainprm[a, 0])))
            continue
        actuators.append(("ctrl", len(model.act_trnid)))
        tendon = m.actuator_trntype[a] == int(mujoco.mjtTrn.mjTRN_TENDON)
        model.act_trntype.append(TRN_TENDON if tendon else TRN_JOINT)
        target = int(m.actuator_trnid[a, 0])
        model.act_trnid.append(target + t0 if tendon else int(m.jnt_dofadr[target]) + d0)
        model.act_qadr.append(0 if tendon else int(m.jnt_qposadr[target]) + q0)
        off = "actuation" in disabled
        model.act_gear.append(gear)
        model.act_ctrl0.append(float(ctrl0[a]))
        model.act_gain.append(0.0 if off else float(m.actuator_gainprm[a, 0]))
        model.act_bias.append(np.zeros(3) if off or m.actuator_biastype[a] == int(mujoco.mjtBias.mjBIAS_NONE)
                              else m.actuator_biasprm[a, :3].copy())
        clamp = m.actuator_ctrllimited[a] and "clampctrl" not in disabled
        model.act_ctrlrange.append(m.actuator_ctrlrange[a].copy() if clamp else np.array([-np.inf, np.inf]))
        model.act_forcerange.append(m.actuator_forcerange[a].copy() if m.actuator_forcelimited[a]
                                    else np.array([-np.inf, np.inf]))
    if "equality" not in disabled:
        for e in range(m.neq):
            if m.eq_active0[e]:
                _append_equality(model, m, e, b0, j0, place)
    return {"actuators": actuators, "ctrl": (u0, len(model.act_trnid))}


def _append_equality(model, m: mujoco.MjModel, e: int, b0: int, j0: int, place: tuple) -> None:
    """One equality in our layout: obj = (joint1, joint2) with data = polynomial, or
    obj = (body1, body2) with data = (anchor on body1, anchor on body2, relative quaternion).
    A weld asks body1's frame times that quaternion to be body2's frame (MuJoCo's eq_data
    holds body2's anchor, body1's anchor (relpose pos), relpose quat, torquescale; the compiler
    fills relpose from the reference pose when the file leaves it out). A world side is body 0
    with its anchor in world coordinates, moved by the entity's placement; a weld to the world
    is turned so the world is body1 and the placement folds into its quaternion.

    A weld's position rows hold body1's centre of mass (the world side's: body2's) where it
    sits relative to body2 when the anchors meet and the frames agree: on the weld that is the
    same constraint (rigid bodies), and it keeps Gauss-Seidel well conditioned where an anchor
    is far away (a weld to the world anchors at the world origin by default: 1.8 m away, 30
    sweeps left 1.9 mm of error; at the centre of mass, 1e-15)."""
    kind, data = int(m.eq_type[e]), m.eq_data[e]
    o1, o2 = int(m.eq_obj1id[e]), int(m.eq_obj2id[e])
    if kind == int(mujoco.mjtEq.mjEQ_JOINT):
        model.eq_type.append(EQ_JOINT)
        model.eq_obj.append([o1 + j0, o2 + j0 if o2 >= 0 else -1])
        model.eq_data.append(np.r_[data[:5], np.zeros(5)])
        model.eq_ref.append([m.qpos0[m.jnt_qposadr[o1]], m.qpos0[m.jnt_qposadr[o2]] if o2 >= 0 else 0.0])
    else:
        pos, quat = place
        weld = kind == int(mujoco.mjtEq.mjEQ_WELD) and data[10] != 0  # torquescale 0: position only
        a1, a2 = (data[3:6], data[0:3]) if kind == int(mujoco.mjtEq.mjEQ_WELD) else (data[0:3], data[3:6])
        rel = data[6:10] if weld else np.array([1.0, 0, 0, 0])
        if o2 == 0:  # world as body1: q_world rel' = q_body with rel' = place conj(rel)
            o1, o2, a1, a2, rel = 0, o1, a2, a1, inv_quat(rel)
        if o1 == 0:
            a1, rel = pos + transform_by_quat(a1, quat), transform_quat_by_quat(rel, quat)
        if weld:  # hold the point at a body's centre of mass instead, see below
            if o1:
                c1 = m.body_ipos[o1]
                a1, a2 = c1, a2 + transform_by_quat(c1 - a1, inv_quat(rel))
            else:
                c2 = m.body_ipos[o2]
                a1, a2 = a1 + transform_by_quat(c2 - a2, rel), c2
        model.eq_type.append(EQ_WELD if weld else EQ_CONNECT)
        model.eq_obj.append([o1 + b0 if o1 else 0, o2 + b0])
        model.eq_data.append(np.r_[a1, a2, rel])
        model.eq_ref.append([0.0, 0.0])
    model.eq_timeconst.append(float(m.eq_solref[e, 0]))
