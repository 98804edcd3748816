"""Joint-space dynamics, one launch per stage for all envs:

- `mass_matrix`: composite rigid body algorithm (MuJoCo's mj_crb), plus armature;
- `bias_forces`: recursive Newton-Euler with zero joint accelerations (mj_rne): C(q, qd) qd + g,
  less the gravity of bodies with gravcomp (MuJoCo adds that back as a passive force instead);
- `smooth_acceleration`: passive forces (joint and tendon damping and springs), MuJoCo
  actuators driven by `ctrl` and the Genesis PD (towards a position and a velocity
  target, 0 unless set) / velocity / force dof controllers (their sum
  clamped to each joint's actuatorfrcrange), then qacc = H^-1 (forces - bias) with
  H = M + dt * diag(damping + kv): damping and the kv of servos not at their force limit are
  integrated implicitly, as MuJoCo's implicitfast integrator does (its Euler integrator does
  the same for joint damping alone). Tendon damping and tendon actuators' kv enter H on the
  diagonal only.

H is factored as L^T D L along the dof tree, stored sparse (MuJoCo's mj_factorM layout: only
ancestors of a dof are touched or stored, so several robots in one scene cost no more than
each alone).

Fields are updated as `x[i] = x[i] + v`, never `x[i] += v`: inside the parallel loop over envs
Taichi compiles an augmented assignment to a field into an atomic (a compare-and-swap loop on
the CPU), about 3x slower here; each env's rows belong to one thread, so no atomic is needed.
"""

import taichi as ti

from sim.solvers.rigid import params
from sim.solvers.rigid.math3d import cross_force, inertia_apply
from sim.solvers.rigid.elements import TRN_JOINT
from sim.solvers.rigid.model import CTRL_FORCE, CTRL_POSITION, HINGE, SLIDE


@ti.kernel
def mass_matrix(d: ti.template()):
    for e in range(d.batch):
        for i in range(d.nbody):
            d.crb_m[e, i] = params.body_mass(d, e, i)
            d.crb_h[e, i] = d.cinert_h[e, i]
            d.crb_I[e, i] = d.cinert_I[e, i]
        for r in range(d.nbody - 1):
            i = d.nbody - 1 - r
            p = d.body_parent[i]
            if p > 0:
                d.crb_m[e, p] = d.crb_m[e, p] + d.crb_m[e, i]
                d.crb_h[e, p] = d.crb_h[e, p] + d.crb_h[e, i]
                d.crb_I[e, p] = d.crb_I[e, p] + d.crb_I[e, i]
        # entries off the dof tree are never written: they keep the zeros the field was allocated with
        for i in range(d.nv):
            b = d.dof_body[i]
            f_ang, f_lin = inertia_apply(d.crb_m[e, b], d.crb_h[e, b], d.crb_I[e, b],
                                         d.cdof_ang[e, i], d.cdof_lin[e, i])
            d.mass[e, i, i] = d.cdof_ang[e, i].dot(f_ang) + d.cdof_lin[e, i].dot(f_lin) + d.dof_armature[i]
            for p in range(d.dof_ancadr[i], d.dof_ancadr[i] + d.dof_ancnum[i]):
                j = d.dof_anc[p]
                value = d.cdof_ang[e, j].dot(f_ang) + d.cdof_lin[e, j].dot(f_lin)
                d.mass[e, i, j] = value
                d.mass[e, j, i] = value


@ti.kernel
def bias_forces(d: ti.template()):
    for e in range(d.batch):
        d.cacc_ang[e, 0] = ti.Vector([0.0, 0.0, 0.0])
        d.cacc_lin[e, 0] = -d.gravity  # gravity as an upward acceleration of the world
        for i in range(1, d.nbody):
            p = d.body_parent[i]
            a_ang, a_lin = d.cacc_ang[e, p], d.cacc_lin[e, p]
            for j in range(d.body_jntnum[i]):
                jnt = d.body_jntadr[i] + j
                for k in range(d.jnt_dadr[jnt], d.jnt_dadr[jnt] + d.jnt_dofnum[jnt]):
                    a_ang += d.cdofd_ang[e, k] * d.dofs_vel[e, k]
                    a_lin += d.cdofd_lin[e, k] * d.dofs_vel[e, k]
            d.cacc_ang[e, i], d.cacc_lin[e, i] = a_ang, a_lin
            m, h, inertia = params.body_mass(d, e, i), d.cinert_h[e, i], d.cinert_I[e, i]
            f_ang, f_lin = inertia_apply(m, h, inertia, a_ang, a_lin)
            gc = d.body_gravcomp[i]
            if gc != 0:  # gravcomp (or the file's gravity flag off): gravity's wrench on the body removed
                f_ang += gc * h.cross(d.gravity)
                f_lin += gc * m * d.gravity
            p_ang, p_lin = inertia_apply(m, h, inertia, d.cvel_ang[e, i], d.cvel_lin[e, i])
            c_ang, c_lin = cross_force(d.cvel_ang[e, i], d.cvel_lin[e, i], p_ang, p_lin)
            d.cfrc_ang[e, i], d.cfrc_lin[e, i] = f_ang + c_ang, f_lin + c_lin
        for r in range(d.nbody - 2):
            i = d.nbody - 1 - r
            p = d.body_parent[i]
            if p > 0:
                d.cfrc_ang[e, p] = d.cfrc_ang[e, p] + d.cfrc_ang[e, i]
                d.cfrc_lin[e, p] = d.cfrc_lin[e, p] + d.cfrc_lin[e, i]
        for k in range(d.nv):
            b = d.dof_body[k]
            d.bias[e, k] = d.cdof_ang[e, k].dot(d.cfrc_ang[e, b]) + d.cdof_lin[e, k].dot(d.cfrc_lin[e, b])


@ti.func
def _tendons(d: ti.template(), e):
    """Fixed tendons: length and velocity, and their spring (dead band between the two spring
    lengths) and damper forces into qfrc_smooth; damping also taken implicitly (diagonal)."""
    for t in range(d.ntendon):
        length, vel = 0.0, 0.0
        for w in range(d.ten_adr[t], d.ten_adr[t] + d.ten_num[t]):
            length += d.wrap_coef[w] * d.qpos[e, d.wrap_qadr[w]]
            vel += d.wrap_coef[w] * d.dofs_vel[e, d.wrap_dof[w]]
        d.ten_length[e, t], d.ten_vel[e, t] = length, vel
        lo, hi = d.ten_springlength[t][0], d.ten_springlength[t][1]
        stretch = 0.0
        if length < lo:
            stretch = length - lo
        elif length > hi:
            stretch = length - hi
        force = -d.ten_stiffness[t] * stretch - d.ten_damping[t] * vel
        for w in range(d.ten_adr[t], d.ten_adr[t] + d.ten_num[t]):
            k, coef = d.wrap_dof[w], d.wrap_coef[w]
            d.qfrc_smooth[e, k] = d.qfrc_smooth[e, k] + coef * force
            d.implicit_gain[e, k] = d.implicit_gain[e, k] + d.ten_damping[t] * coef * coef


@ti.func
def _actuators(d: ti.template(), e):
    """MuJoCo actuators (act_*): force = gain ctrl + b0 + b1 length + b2 velocity, ctrl and
    force clamped, through gear (and tendon coefficients) into act_qfrc; -b2 of an unclamped
    actuator taken implicitly (diagonal), as implicitfast does."""
    for a in range(d.nact):
        gear, t = d.act_gear[a], d.act_trnid[a]
        length, vel = 0.0, 0.0
        if d.act_trntype[a] == TRN_JOINT:
            length, vel = gear * d.qpos[e, d.act_qadr[a]], gear * d.dofs_vel[e, t]
        else:
            length, vel = gear * d.ten_length[e, t], gear * d.ten_vel[e, t]
        ctrl = ti.min(ti.max(d.ctrl[e, a], d.act_ctrlrange[a][0]), d.act_ctrlrange[a][1])
        bias = d.act_bias[a]
        force = d.act_gain[a] * ctrl + bias[0] + bias[1] * length + bias[2] * vel
        clamped = ti.min(ti.max(force, d.act_forcerange[a][0]), d.act_forcerange[a][1])
        implicit = 0.0
        if clamped == force:
            implicit = -bias[2]
        if d.act_trntype[a] == TRN_JOINT:
            d.act_qfrc[e, t] = d.act_qfrc[e, t] + gear * clamped
            d.implicit_gain[e, t] = d.implicit_gain[e, t] + implicit * gear * gear
        else:
            for w in range(d.ten_adr[t], d.ten_adr[t] + d.ten_num[t]):
                k, arm = d.wrap_dof[w], gear * d.wrap_coef[w]
                d.act_qfrc[e, k] = d.act_qfrc[e, k] + arm * clamped
                d.implicit_gain[e, k] = d.implicit_gain[e, k] + implicit * arm * arm


@ti.kernel
def smooth_acceleration(d: ti.template(), dt: float):
    for e in range(d.batch):
        for k in range(d.nv):
            d.qfrc_smooth[e, k] = 0.0
            d.act_qfrc[e, k] = 0.0
            d.implicit_gain[e, k] = d.dof_damping[k]  # velocity gains taken into H
        _tendons(d, e)
        _actuators(d, e)
        for k in range(d.nv):
            j = d.dof_jnt[k]
            vel = d.dofs_vel[e, k]
            force = d.qfrc_smooth[e, k] - d.dof_damping[k] * vel
            jt = d.jnt_type[j]
            q = d.qpos[e, d.jnt_qadr[j]]
            if jt == HINGE or jt == SLIDE:
                force -= d.jnt_stiffness[j] * (q - d.jnt_springref[j])
            mode = d.ctrl_mode[e, k]
            ctrl = d.ctrl_force[e, k]
            if mode == CTRL_POSITION:
                target = ti.min(ti.max(d.ctrl_pos[e, k], d.dof_target_lo[k]), d.dof_target_hi[k])
                ctrl = d.dofs_kp[e, k] * (target - q) + d.dofs_kv[e, k] * (d.ctrl_vel[e, k] - vel)
            elif mode != CTRL_FORCE:
                target = ti.min(ti.max(d.ctrl_vel[e, k], d.dof_target_lo[k]), d.dof_target_hi[k])
                ctrl = d.dofs_kv[e, k] * (target - vel)
            clamped = ti.min(ti.max(ctrl, d.dof_force_lo[k]), d.dof_force_hi[k])
            actuation = d.act_qfrc[e, k] + clamped
            limited = ti.min(ti.max(actuation, d.dof_actfrc_lo[k]), d.dof_actfrc_hi[k])
            d.qfrc_smooth[e, k] = force + limited - d.bias[e, k]
            if mode != CTRL_FORCE and clamped == ctrl and limited == actuation:
                d.implicit_gain[e, k] = d.implicit_gain[e, k] + d.dofs_kv[e, k]
        for a in range(d.nv):
            d.ld_diag[e, a] = d.mass[e, a, a] + dt * d.implicit_gain[e, a]
            for p in range(d.dof_ancadr[a], d.dof_ancadr[a] + d.dof_ancnum[a]):
                d.ld[e, p] = d.mass[e, a, d.dof_anc[p]]
        factor_ldl(d, e)
        for k in range(d.nv):
            d.qacc[e, k] = d.qfrc_smooth[e, k]
        solve_ldl(d, e, d.qacc)


@ti.func
def factor_ldl(d: ti.template(), e):
    """In place: H = L^T D L along the dof tree, stored sparse as MuJoCo does: D in `ld_diag`,
    and row k of L (its entries at k's ancestors) in `ld` at k's ancestor list (tree.py). The
    ancestors of k's p-th ancestor i are the entries after it, and i's own row lists them in
    the same order, so the update of row i is a walk along two contiguous runs."""
    for r in range(d.nv):
        k = d.nv - 1 - r
        start, count = d.dof_ancadr[k], d.dof_ancnum[k]
        diag = d.ld_diag[e, k]
        for p in range(count):
            i = d.dof_anc[start + p]
            ratio = d.ld[e, start + p] / diag
            d.ld_diag[e, i] = d.ld_diag[e, i] - ratio * d.ld[e, start + p]
            row_i = d.dof_ancadr[i] - p - 1  # entry q of k's list is entry q - p - 1 of i's
            for q in range(p + 1, count):
                d.ld[e, row_i + q] = d.ld[e, row_i + q] - ratio * d.ld[e, start + q]
            d.ld[e, start + p] = ratio


@ti.func
def solve_ldl(d: ti.template(), e, x: ti.template()):
    """x[e, :] <- H^-1 x[e, :] with the factor from `factor_ldl`; x is (batch, nv)."""
    for r in range(d.nv):
        i = d.nv - 1 - r
        xi = x[e, i]
        for p in range(d.dof_ancadr[i], d.dof_ancadr[i] + d.dof_ancnum[i]):
            x[e, d.dof_anc[p]] = x[e, d.dof_anc[p]] - d.ld[e, p] * xi
    for i in range(d.nv):
        x[e, i] = x[e, i] / d.ld_diag[e, i]
    for i in range(d.nv):
        acc = x[e, i]
        for p in range(d.dof_ancadr[i], d.dof_ancadr[i] + d.dof_ancnum[i]):
            acc -= d.ld[e, p] * x[e, d.dof_anc[p]]
        x[e, i] = acc
