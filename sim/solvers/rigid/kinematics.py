"""Forward kinematics (MuJoCo's mj_kinematics + mj_comPos + mj_comVel), all envs in one launch.

Per body, in tree order: frame from the parent and the body's joints; then (full=True) the
spatial inertia about the world origin, each dof's motion axis `cdof`, body velocities and
`cdof_dot`, and the world pose of every collision geom.
"""

import taichi as ti

from sim.solvers.rigid import params
from sim.solvers.rigid.math3d import (axis_angle_quat, cross_motion, quat_mul, quat_normalize, quat_rotate,
                                      quat_to_mat)
from sim.solvers.rigid.model import BALL, FREE, HINGE, SLIDE


@ti.kernel
def forward_kinematics(d: ti.template(), full: ti.template()):
    for e in range(d.batch):
        d.xpos[e, 0] = ti.Vector([0.0, 0.0, 0.0])
        d.xquat[e, 0] = ti.Vector([1.0, 0.0, 0.0, 0.0])
        d.cvel_ang[e, 0] = ti.Vector([0.0, 0.0, 0.0])
        d.cvel_lin[e, 0] = ti.Vector([0.0, 0.0, 0.0])
        for i in range(1, d.nbody):
            p = d.body_parent[i]
            xpos = d.xpos[e, p] + quat_rotate(d.xquat[e, p], d.body_pos[i])
            xquat = quat_mul(d.xquat[e, p], d.body_quat[i])
            v_ang, v_lin = d.cvel_ang[e, p], d.cvel_lin[e, p]
            for jj in range(d.body_jntnum[i]):
                j = d.body_jntadr[i] + jj
                jt, qa, da = d.jnt_type[j], d.jnt_qadr[j], d.jnt_dadr[j]
                if jt == FREE:
                    xpos = ti.Vector([d.qpos[e, qa], d.qpos[e, qa + 1], d.qpos[e, qa + 2]])
                    xquat = quat_normalize(ti.Vector([d.qpos[e, qa + 3], d.qpos[e, qa + 4],
                                                      d.qpos[e, qa + 5], d.qpos[e, qa + 6]]))
                    if ti.static(full):
                        for k in ti.static(range(3)):
                            d.cdof_ang[e, da + k] = ti.Vector([0.0, 0.0, 0.0])
                            d.cdof_lin[e, da + k] = ti.Vector([float(k == 0), float(k == 1), float(k == 2)])
                            d.cdofd_ang[e, da + k], d.cdofd_lin[e, da + k] = cross_motion(
                                v_ang, v_lin, d.cdof_ang[e, da + k], d.cdof_lin[e, da + k])
                        for k in ti.static(range(3)):
                            v_lin += d.cdof_lin[e, da + k] * d.dofs_vel[e, da + k]
                        _rotational_dofs(d, e, da + 3, xquat, xpos, v_ang, v_lin)
                        for k in ti.static(range(3, 6)):
                            v_ang += d.cdof_ang[e, da + k] * d.dofs_vel[e, da + k]
                            v_lin += d.cdof_lin[e, da + k] * d.dofs_vel[e, da + k]
                else:
                    anchor = xpos + quat_rotate(xquat, d.jnt_pos[j])
                    axis = quat_rotate(xquat, d.jnt_axis[j])
                    if jt == BALL:
                        xquat = quat_mul(xquat, quat_normalize(ti.Vector([d.qpos[e, qa], d.qpos[e, qa + 1],
                                                                          d.qpos[e, qa + 2], d.qpos[e, qa + 3]])))
                        xpos = anchor - quat_rotate(xquat, d.jnt_pos[j])
                        if ti.static(full):
                            _rotational_dofs(d, e, da, xquat, anchor, v_ang, v_lin)
                            for k in ti.static(range(3)):
                                v_ang += d.cdof_ang[e, da + k] * d.dofs_vel[e, da + k]
                                v_lin += d.cdof_lin[e, da + k] * d.dofs_vel[e, da + k]
                    else:
                        if jt == HINGE:
                            xquat = quat_mul(xquat, axis_angle_quat(d.jnt_axis[j], d.qpos[e, qa] - d.jnt_qref[j]))
                            xpos = anchor - quat_rotate(xquat, d.jnt_pos[j])
                        elif jt == SLIDE:
                            xpos += axis * (d.qpos[e, qa] - d.jnt_qref[j])
                        if ti.static(full):
                            s_ang, s_lin = axis, ti.Vector([0.0, 0.0, 0.0])
                            if jt == HINGE:
                                s_ang, s_lin = axis, anchor.cross(axis)
                            else:
                                s_ang, s_lin = ti.Vector([0.0, 0.0, 0.0]), axis
                            d.cdof_ang[e, da], d.cdof_lin[e, da] = s_ang, s_lin
                            d.cdofd_ang[e, da], d.cdofd_lin[e, da] = cross_motion(v_ang, v_lin, s_ang, s_lin)
                            v_ang += s_ang * d.dofs_vel[e, da]
                            v_lin += s_lin * d.dofs_vel[e, da]
            xquat = quat_normalize(xquat)
            d.xpos[e, i], d.xquat[e, i] = xpos, xquat
            d.links_pos[e, i - 1], d.links_quat[e, i - 1] = xpos, xquat
            if ti.static(full):
                d.cvel_ang[e, i], d.cvel_lin[e, i] = v_ang, v_lin
                _body_inertia(d, e, i, xpos, xquat)
        if ti.static(full):
            for g in range(d.ngeom):
                b = d.geom_body[g]
                d.gxpos[e, g] = d.xpos[e, b] + quat_rotate(d.xquat[e, b], d.geom_pos[g])
                d.gxmat[e, g] = quat_to_mat(quat_mul(d.xquat[e, b], d.geom_quat[g]))


@ti.func
def _rotational_dofs(d: ti.template(), e, da, xquat, anchor, v_ang, v_lin):
    """Three rotational dofs about the body's own axes through `anchor` (free and ball joints).
    All three get cdof_dot from the same velocity: the true derivative, as the sum of their
    self-terms w x w vanishes."""
    rot = quat_to_mat(xquat)
    for k in ti.static(range(3)):
        axis = ti.Vector([rot[0, k], rot[1, k], rot[2, k]])
        d.cdof_ang[e, da + k], d.cdof_lin[e, da + k] = axis, anchor.cross(axis)
        d.cdofd_ang[e, da + k], d.cdofd_lin[e, da + k] = cross_motion(v_ang, v_lin, axis, anchor.cross(axis))


@ti.func
def _body_inertia(d: ti.template(), e, i, xpos, xquat):
    """Spatial inertia of body i about the world origin: h = m c, I_o = I_c + m (|c|^2 1 - c c^T),
    with the env's mass and centre of mass (params.py)."""
    m = params.body_mass(d, e, i)
    c = xpos + quat_rotate(xquat, params.body_ipos(d, e, i))
    rot = quat_to_mat(quat_mul(xquat, d.body_iquat[i]))
    diag = d.body_inertia[i]
    inertia_c = rot @ ti.Matrix([[diag[0], 0.0, 0.0], [0.0, diag[1], 0.0], [0.0, 0.0, diag[2]]]) @ rot.transpose()
    d.cinert_h[e, i] = m * c
    d.cinert_I[e, i] = inertia_c + m * (c.dot(c) * ti.Matrix.identity(float, 3) - c.outer_product(c))
