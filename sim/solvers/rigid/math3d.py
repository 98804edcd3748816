"""Quaternion and spatial-vector helpers for Taichi kernels (quaternions are (w, x, y, z)).

Spatial vectors are pairs of 3-vectors expressed in the world frame about the world origin:
a motion (angular, linear) and a force (torque, force). Keeping every body in one frame
means the mass matrix is a plain dot product S_j . (I_c S_i), with no frame transforms.
"""

import taichi as ti


@ti.func
def quat_mul(a, b):
    return ti.Vector([a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3],
                      a[0] * b[1] + a[1] * b[0] + a[2] * b[3] - a[3] * b[2],
                      a[0] * b[2] - a[1] * b[3] + a[2] * b[0] + a[3] * b[1],
                      a[0] * b[3] + a[1] * b[2] - a[2] * b[1] + a[3] * b[0]])


@ti.func
def quat_rotate(q, v):
    u = ti.Vector([q[1], q[2], q[3]])
    t = 2.0 * u.cross(v)
    return v + q[0] * t + u.cross(t)


@ti.func
def quat_to_mat(q):
    w, x, y, z = q[0], q[1], q[2], q[3]
    return ti.Matrix([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                      [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                      [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


@ti.func
def quat_normalize(q):
    return q / q.norm()


@ti.func
def axis_angle_quat(axis, angle):
    s = ti.sin(0.5 * angle)
    return ti.Vector([ti.cos(0.5 * angle), axis[0] * s, axis[1] * s, axis[2] * s])


@ti.func
def cross_motion(v_ang, v_lin, m_ang, m_lin):
    """v x m for motions: the rate of change of motion m carried along by velocity v."""
    return v_ang.cross(m_ang), v_ang.cross(m_lin) + v_lin.cross(m_ang)


@ti.func
def cross_force(v_ang, v_lin, f_ang, f_lin):
    """v x* f for forces."""
    return v_ang.cross(f_ang) + v_lin.cross(f_lin), v_ang.cross(f_lin)


@ti.func
def inertia_apply(mass, h, inertia_o, ang, lin):
    """Spatial inertia about the origin (mass, h = mass * com, 3x3 rotational inertia about
    the origin) times a motion: returns the force (torque about the origin, force)."""
    return inertia_o @ ang + h.cross(lin), mass * lin - h.cross(ang)


@ti.func
def tangent_frame(n):
    a = ti.Vector([1.0, 0.0, 0.0])
    if ti.abs(n[0]) > 0.6:
        a = ti.Vector([0.0, 1.0, 0.0])
    t1 = n.cross(a).normalized()
    return t1, n.cross(t1)
