"""The sensors' Taichi kernels: each reads the rigid solver's working arrays (sim.solvers.rigid.data)
for every env and sensor in one launch and writes the raw readings into the scene's state fields.

IMU, as MuJoCo's accelerometer / gyro / magnetometer after `mj_step`: the state the (last sub)step
started from (`snapshot` keeps its velocities and the sensors' frames, right after the solver's
forward pass) and the acceleration the step applied, qacc = (v_end - v_start) / dt, which is what
the semi-implicit Euler step did (constraints and external forces included). The point's
classical acceleration is built from the spatial accelerations about the world origin that the
solver's RNE pass left (cacc, with gravity as an upward acceleration of the world, so the
accelerometer reads a - g) plus cdof * qacc along the body's chain.

Contacts: the solver's last substep, contact c having constraint rows 3c (normal), 3c+1, 3c+2
(friction along tangent_frame(normal)); row impulses / dt is the force on body con_body[c][1]
(the normal points from body 0 to body 1); body 0 gets its opposite.
"""

import taichi as ti

from sim.solvers.rigid.math3d import quat_mul, quat_rotate, tangent_frame


@ti.func
def _inv_rotate(q, v):
    return quat_rotate(ti.Vector([q[0], -q[1], -q[2], -q[3]]), v)


@ti.kernel
def snapshot(d: ti.template(), vel: ti.template(), body: ti.template(), offset_pos: ti.template(),
             offset_quat: ti.template(), point: ti.template(), frame: ti.template()):
    """Start-of-substep velocities, and each IMU's world point and frame quaternion."""
    for e in range(d.batch):
        for k in range(d.nv):
            vel[e, k] = d.dofs_vel[e, k]
        for s in range(body.shape[0]):
            b = body[s]
            point[e, s] = d.xpos[e, b] + quat_rotate(d.xquat[e, b], offset_pos[s])
            frame[e, s] = quat_mul(d.xquat[e, b], offset_quat[s])


@ti.kernel
def imu(d: ti.template(), vel: ti.template(), body: ti.template(), magnetic: ti.template(), point: ti.template(),
        frame: ti.template(), out: ti.template()):
    for e, s in ti.ndrange(d.batch, body.shape[0]):
        b, p = body[s], point[e, s]
        omega = d.cvel_ang[e, b]
        v_p = d.cvel_lin[e, b] + omega.cross(p)
        acc = d.cacc_lin[e, b] + d.cacc_ang[e, b].cross(p) + omega.cross(v_p)
        k = d.body_lastdof[b]
        while k >= 0:
            qacc = (d.dofs_vel[e, k] - vel[e, k]) / d.dt
            acc += qacc * (d.cdof_lin[e, k] + d.cdof_ang[e, k].cross(p))
            k = d.dof_parent[k]
        q = frame[e, s]
        a, w, m = _inv_rotate(q, acc), _inv_rotate(q, omega), _inv_rotate(q, magnetic[s])
        for c in ti.static(range(3)):
            out[e, s][c], out[e, s][3 + c], out[e, s][6 + c] = a[c], w[c], m[c]


@ti.func
def _counts(d: ti.template(), e, c, b, body: ti.template(), filters: ti.template(), s):
    """+1 if contact c's body side b (0 or 1) is the sensor's body and the other side is not filtered."""
    pair = d.con_body[e, c]
    sign = 0
    if pair[b] == body[s]:
        sign = 1
        for f in range(filters.shape[1]):
            if filters[s, f] >= 0 and filters[s, f] == pair[1 - b]:
                sign = 0
    return sign


@ti.kernel
def contacts(d: ti.template(), body: ti.template(), filters: ti.template(), out: ti.template()):
    """Contact: how many touching contacts (penetrating, or pushing) each sensor's body has."""
    for e, s in ti.ndrange(d.batch, body.shape[0]):
        n = 0
        for c in range(d.con_count[e]):
            if d.con_depth[e, c] > 0 or d.row_lam[e, 3 * c] > 0:
                n += _counts(d, e, c, 0, body, filters, s) + _counts(d, e, c, 1, body, filters, s)
        out[e, s] = n


@ti.kernel
def contact_forces(d: ti.template(), body: ti.template(), filters: ti.template(), out: ti.template()):
    """ContactForce: the net contact force on each sensor's body, in its frame at the step's end."""
    for e, s in ti.ndrange(d.batch, body.shape[0]):
        total = ti.Vector([0.0, 0.0, 0.0])
        for c in range(d.con_count[e]):
            sign = _counts(d, e, c, 1, body, filters, s) - _counts(d, e, c, 0, body, filters, s)
            if sign != 0:
                n = d.con_normal[e, c]
                t1, t2 = tangent_frame(n)
                r = 3 * c
                total += sign * (d.row_lam[e, r] * n + d.row_lam[e, r + 1] * t1 + d.row_lam[e, r + 2] * t2) / d.dt
        out[e, s] = _inv_rotate(d.xquat[e, body[s]], total)


@ti.kernel
def push(cur: ti.template(), ring: ti.template(), depth: ti.i32):
    """Each sensor's kept readings move one step older; the new one goes first."""
    for e, s in cur:
        for j in range(depth - 1):
            k = s * depth + depth - 1 - j
            ring[e, k] = ring[e, k - 1]
        ring[e, s * depth] = cur[e, s]
