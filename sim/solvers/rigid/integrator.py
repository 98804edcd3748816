"""Position update of the semi-implicit Euler step (MuJoCo's mj_integratePos): positions move
with the new velocities; free and ball quaternions rotate by the body-frame angular velocity.
(`x = x + v`, not `x += v`: see dynamics.py, a field's `+=` is an atomic in a parallel loop.)"""

import taichi as ti

from sim.solvers.rigid.math3d import axis_angle_quat, quat_mul, quat_normalize
from sim.solvers.rigid.model import BALL, FREE


@ti.func
def _rotate_quat(d: ti.template(), e, qa, da, dt):
    quat = ti.Vector([d.qpos[e, qa], d.qpos[e, qa + 1], d.qpos[e, qa + 2], d.qpos[e, qa + 3]])
    omega = ti.Vector([d.dofs_vel[e, da], d.dofs_vel[e, da + 1], d.dofs_vel[e, da + 2]])
    speed = omega.norm()
    if speed > 0:
        quat = quat_mul(quat, axis_angle_quat(omega / speed, speed * dt))
    quat = quat_normalize(quat)
    for k in ti.static(range(4)):
        d.qpos[e, qa + k] = quat[k]


@ti.kernel
def integrate_positions(d: ti.template(), dt: float):
    for e in range(d.batch):
        for j in range(d.njnt):
            qa, da, jt = d.jnt_qadr[j], d.jnt_dadr[j], d.jnt_type[j]
            if jt == FREE:
                for k in ti.static(range(3)):
                    d.qpos[e, qa + k] = d.qpos[e, qa + k] + dt * d.dofs_vel[e, da + k]
                _rotate_quat(d, e, qa + 3, da + 3, dt)
            elif jt == BALL:
                _rotate_quat(d, e, qa, da, dt)
            else:
                d.qpos[e, qa] = d.qpos[e, qa] + dt * d.dofs_vel[e, da]
