"""Contacts and joint limits as velocity-level constraints, solved by projected Gauss-Seidel
(sequential impulses) in joint space, all envs in one launch, serial within an env.

Why this model and not MuJoCo's soft-constraint optimiser: it is short, needs no per-env
dense Delassus matrix (each row keeps W = H^-1 J^T, O(rows * dofs) memory), it is
deterministic, and it stops bodies exactly at contact: a row asks J v_next >= b with
b = gap / dt for a speculative contact (gap > 0: may close the gap, no more) and
b = baumgarte * (depth - slop) / dt for a penetrating one. Friction is a Coulomb disk
|lambda_t| <= mu lambda_n per contact. Restitution is zero.
Where no constraint is active this leaves MuJoCo's semi-implicit Euler step untouched.
"""

import taichi as ti

from sim.solvers.rigid.dynamics import solve_ldl
from sim.solvers.rigid.math3d import tangent_frame
from sim.solvers.rigid.model import HINGE, SLIDE

UNILATERAL, FRICTION = 0, 1


@ti.func
def _target(d: ti.template(), depth, dt):
    b = depth / dt
    if depth > 0:
        b = d.baumgarte * ti.max(depth - d.slop, 0.0) / dt
    return b


@ti.func
def _clear_row(d: ti.template(), e, row):
    for k in range(d.nv):
        d.row_J[e, row, k] = 0.0


@ti.func
def _point_jacobian(d: ti.template(), e, row, body, point, direction, sign):
    """Adds sign * direction . (velocity of `point` moving with `body`) to the row."""
    k = d.body_lastdof[body]
    while k >= 0:
        d.row_J[e, row, k] += sign * direction.dot(d.cdof_lin[e, k] + d.cdof_ang[e, k].cross(point))
        k = d.dof_parent[k]


@ti.func
def _build_rows(d: ti.template(), e, dt):
    n = 0
    for c in range(d.con_count[e]):
        normal = d.con_normal[e, c]
        t1, t2 = tangent_frame(normal)
        dirs = ti.Matrix.cols([normal, t1, t2])
        for r in ti.static(range(3)):
            _clear_row(d, e, n + r)
            direction = ti.Vector([dirs[0, r], dirs[1, r], dirs[2, r]])
            _point_jacobian(d, e, n + r, d.con_body[e, c][1], d.con_pos[e, c], direction, 1.0)
            _point_jacobian(d, e, n + r, d.con_body[e, c][0], d.con_pos[e, c], direction, -1.0)
            d.row_kind[e, n + r] = UNILATERAL if r == 0 else FRICTION
            d.row_mu[e, n + r] = d.con_mu[e, c]
        d.row_b[e, n] = _target(d, d.con_depth[e, c], dt)
        d.row_b[e, n + 1], d.row_b[e, n + 2] = 0.0, 0.0
        n += 3
    for j in range(d.njnt):
        if d.jnt_limited[j] and (d.jnt_type[j] == HINGE or d.jnt_type[j] == SLIDE):
            q, k = d.qpos[e, d.jnt_qadr[j]], d.jnt_dadr[j]
            for side in ti.static(range(2)):
                sign = 1.0 if side == 0 else -1.0
                depth = sign * (d.jnt_range[j][side] - q)
                if depth > -d.margin - dt * ti.abs(d.dofs_vel[e, k]) and n < d.max_rows:
                    _clear_row(d, e, n)
                    d.row_J[e, n, k] = sign
                    d.row_kind[e, n] = UNILATERAL
                    d.row_b[e, n] = _target(d, depth, dt)
                    n += 1
    d.row_count[e] = n


@ti.func
def _apply(d: ti.template(), e, row, delta):
    d.row_lam[e, row] += delta
    for k in range(d.nv):
        d.dofs_vel[e, k] += d.row_W[e, row, k] * delta


@ti.func
def _row_velocity(d: ti.template(), e, row):
    v = 0.0
    for k in range(d.nv):
        v += d.row_J[e, row, k] * d.dofs_vel[e, k]
    return v


@ti.kernel
def solve_constraints(d: ti.template(), dt: float):
    """qvel <- qvel + dt * qacc, then the constraint impulses that make it admissible."""
    for e in range(d.batch):
        for k in range(d.nv):
            d.dofs_vel[e, k] += dt * d.qacc[e, k]
        _build_rows(d, e, dt)
        for r in range(d.row_count[e]):
            for k in range(d.nv):
                d.row_solve[e, k] = d.row_J[e, r, k]
            solve_ldl(d, e, d.row_solve)
            a = 0.0
            for k in range(d.nv):
                d.row_W[e, r, k] = d.row_solve[e, k]
                a += d.row_J[e, r, k] * d.row_solve[e, k]
            d.row_A[e, r] = ti.max(a, 1e-12)
            d.row_lam[e, r] = 0.0
        for _ in range(d.iterations):
            change, size = 0.0, 0.0
            r = 0
            while r < d.row_count[e]:
                if d.row_kind[e, r] == UNILATERAL:
                    lam = d.row_lam[e, r]
                    new = ti.max(lam + (d.row_b[e, r] - _row_velocity(d, e, r)) / d.row_A[e, r], 0.0)
                    _apply(d, e, r, new - lam)
                    change, size = ti.max(change, ti.abs(new - lam)), ti.max(size, new)
                    r += 1
                else:
                    l1 = d.row_lam[e, r] - _row_velocity(d, e, r) / d.row_A[e, r]
                    l2 = d.row_lam[e, r + 1] - _row_velocity(d, e, r + 1) / d.row_A[e, r + 1]
                    bound = d.row_mu[e, r] * d.row_lam[e, r - 1]
                    norm = ti.sqrt(l1 * l1 + l2 * l2)
                    if norm > bound:
                        scale = bound / norm
                        l1 *= scale
                        l2 *= scale
                    change = ti.max(change, ti.max(ti.abs(l1 - d.row_lam[e, r]), ti.abs(l2 - d.row_lam[e, r + 1])))
                    _apply(d, e, r, l1 - d.row_lam[e, r])
                    _apply(d, e, r + 1, l2 - d.row_lam[e, r + 1])
                    r += 2
            if change <= 1e-6 * size:  # converged: later sweeps would change nothing that matters
                break
