"""External forces and torques on links (Genesis's `apply_links_external_force/torque`).

A wrench applied before `scene.step()` acts during that whole step (every substep) and is then
cleared, as in Genesis. It enters the dynamics as a generalised force, qfrc = J^T (torque, force)
through each dof's motion axis, and the smooth acceleration gains H^-1 qfrc, solved with the
factor of H that the step has just made (so damping and servo gains stay implicit).
Pending wrenches are not part of the state: a reset or checkpoint between apply and step
drops nothing that a later step depends on, since they are cleared after one step anyway.
"""

import taichi as ti

from sim.solvers.rigid import params
from sim.solvers.rigid.dynamics import solve_ldl
from sim.solvers.rigid.math3d import quat_rotate

REFS = {"link_origin": 0, "link_com": 1}


@ti.kernel
def _accumulate(d: ti.template(), w: ti.template(), values: ti.types.ndarray(dtype=ti.f64, ndim=3),
                envs: ti.types.ndarray(dtype=ti.i32, ndim=1), bodies: ti.types.ndarray(dtype=ti.i32, ndim=1),
                is_torque: ti.template(), ref: ti.i32, local: ti.i32):
    for i, k in ti.ndrange(envs.shape[0], bodies.shape[0]):
        e, b = envs[i], bodies[k]
        v = ti.Vector([values[i, k, 0], values[i, k, 1], values[i, k, 2]])
        offset = ti.Vector([0.0, 0.0, 0.0])
        if ref == 1:  # the link's centre of mass, in world axes
            offset = quat_rotate(d.links_quat[e, b - 1], params.body_ipos(d, e, b))
        if local:  # given in the link's axes (or the com's, which share them up to iquat)
            q = d.links_quat[e, b - 1]
            if ref == 1:
                v = quat_rotate(q, quat_rotate(d.body_iquat[b], v))
            else:
                v = quat_rotate(q, v)
        if ti.static(is_torque):
            w.torque[e, b] += v
        else:
            # a force at origin + offset: add it, and its moment about the link origin
            w.force[e, b] += v
            w.torque[e, b] += offset.cross(v)


@ti.kernel
def _apply(d: ti.template(), w: ti.template()):
    for e in range(d.batch):
        for k in range(d.nv):
            d.qfrc_applied[e, k] = 0.0
        for b in range(1, d.nbody):
            f, tau = w.force[e, b], w.torque[e, b]
            if f.norm_sqr() + tau.norm_sqr() > 0:
                tau_o = tau + d.xpos[e, b].cross(f)  # the wrench about the world origin
                k = d.body_lastdof[b]
                while k >= 0:
                    d.qfrc_applied[e, k] = d.qfrc_applied[e, k] + (d.cdof_ang[e, k].dot(tau_o) + d.cdof_lin[e, k].dot(f))
                    k = d.dof_parent[k]
        solve_ldl(d, e, d.qfrc_applied)
        for k in range(d.nv):
            d.qacc[e, k] = d.qacc[e, k] + d.qfrc_applied[e, k]


@ti.data_oriented
class ExternalWrenches:
    """Per env and body: a world-frame force through the body's origin and a torque."""

    def __init__(self, data, ti_float):
        self.data = data
        self.force = ti.Vector.field(3, ti_float, shape=(data.batch, data.nbody))
        self.torque = ti.Vector.field(3, ti_float, shape=(data.batch, data.nbody))
        self.pending = False

    def add(self, values, envs, bodies, torque: bool, ref: str, local: bool) -> None:
        """values (len(envs), len(bodies), 3) float64; bodies are global body indices (>= 1)."""
        _accumulate(self.data, self, values, envs, bodies, torque, REFS[ref], int(local))
        self.pending = True

    def apply(self) -> None:
        """Add H^-1 J^T wrench to the smooth acceleration (after smooth_acceleration)."""
        if self.pending:
            _apply(self.data, self)

    def clear(self) -> None:
        if self.pending:
            self.force.fill(0)
            self.torque.fill(0)
            self.pending = False
