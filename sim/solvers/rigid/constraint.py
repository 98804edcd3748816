"""Contacts, joint and tendon limits, equality constraints and frictionloss as velocity-level
constraints, solved by projected Gauss-Seidel
(sequential impulses) in joint space, all envs in one launch, serial within an env.

Why this model and not MuJoCo's soft-constraint optimiser: it is short, needs no per-env
dense Delassus matrix (each row keeps W = H^-1 J^T, O(rows * dofs) memory), it is
deterministic, and it stops bodies exactly at contact: a row asks J v_next >= b with
b = gap / dt for a speculative contact (gap > 0: may close the gap, no more) and
b = baumgarte * (depth - slop) / dt for a penetrating one. Friction is a Coulomb disk
|lambda_t| <= mu lambda_n per contact. Restitution is zero. The sweeps start from the previous
substep's impulses (warmstart.py; scaled per body pair, see _warm_start): cold, resting stacks
needed ~1000 sweeps per substep to stop rocking.
Where no constraint is active this leaves MuJoCo's semi-implicit Euler step untouched.

Approximations of MuJoCo's soft constraints (solref / solimp), stated: limits are hard (a
joint's margin moves the limit inwards by the margin, as MuJoCo's reference does); an
equality is a bilateral row whose error decays by dt / max(solref timeconst, 2 dt) per step
(MuJoCo: a critically damped spring of that time constant; a negative, direct-stiffness
solref counts as 0.02 s); frictionloss is a row whose impulse is bounded by frictionloss * dt
(MuJoCo regularises it, so it slips slightly below that force).
"""

import taichi as ti

from sim.solvers.rigid import warmstart
from sim.solvers.rigid.dynamics import solve_ldl
from sim.solvers.rigid.math3d import quat_mul, quat_rotate, tangent_frame
from sim.solvers.rigid.elements import EQ_JOINT, EQ_WELD
from sim.solvers.rigid.model import HINGE, SLIDE

UNILATERAL, FRICTION, BILATERAL, BOXED = 0, 1, 2, 3


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
        d.row_J[e, row, k] = d.row_J[e, row, k] + (sign * direction.dot(d.cdof_lin[e, k] + d.cdof_ang[e, k].cross(point)))
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
                depth = sign * (d.jnt_range[j][side] - q) + d.jnt_margin[j]
                if depth > -d.margin - dt * ti.abs(d.dofs_vel[e, k] + dt * d.qacc[e, k]) and n < d.max_rows:
                    _clear_row(d, e, n)
                    d.row_J[e, n, k] = sign
                    d.row_kind[e, n], d.row_key[e, n] = UNILATERAL, 2 * j + side
                    d.row_b[e, n] = _target(d, depth, dt)
                    n += 1
    for t in range(d.ntendon):
        speed = 0.0
        length = 0.0
        for w in range(d.ten_adr[t], d.ten_adr[t] + d.ten_num[t]):
            length += d.wrap_coef[w] * d.qpos[e, d.wrap_qadr[w]]
            speed += ti.abs(d.wrap_coef[w] * (d.dofs_vel[e, d.wrap_dof[w]] + dt * d.qacc[e, d.wrap_dof[w]]))
        for side in ti.static(range(2)):
            sign = 1.0 if side == 0 else -1.0
            depth = sign * (d.ten_range[t][side] - length) + d.ten_margin[t]
            if d.ten_limited[t] and depth > -d.margin - dt * speed and n < d.max_rows:
                _tendon_row(d, e, n, t, sign)
                d.row_kind[e, n], d.row_key[e, n] = UNILATERAL, 2 * d.njnt + 2 * t + side
                d.row_b[e, n] = _target(d, depth, dt)
                n += 1
        if d.ten_frictionloss[t] > 0 and n < d.max_rows:
            _tendon_row(d, e, n, t, 1.0)
            d.row_kind[e, n], d.row_b[e, n], d.row_mu[e, n] = BOXED, 0.0, d.ten_frictionloss[t] * dt
            d.row_key[e, n] = 2 * d.njnt + 2 * d.ntendon + t
            n += 1
    for k in range(d.nv):
        if d.dof_frictionloss[k] > 0 and n < d.max_rows:
            _clear_row(d, e, n)
            d.row_J[e, n, k] = 1.0
            d.row_kind[e, n], d.row_b[e, n], d.row_mu[e, n] = BOXED, 0.0, d.dof_frictionloss[k] * dt
            d.row_key[e, n] = 2 * d.njnt + 3 * d.ntendon + k
            n += 1
    for q in range(d.neq):
        key = 2 * d.njnt + 3 * d.ntendon + d.nv + 6 * q  # 6 keys per equality (warmstart.row_key_count)
        tc = d.eq_timeconst[q]
        if tc <= 0:
            tc = 0.02
        rate = 1.0 / ti.max(tc, 2.0 * dt)
        if d.eq_type[q] == EQ_JOINT:
            if n < d.max_rows:
                err = _joint_equality_row(d, e, n, q)
                d.row_kind[e, n], d.row_b[e, n], d.row_key[e, n] = BILATERAL, -rate * err, key
                n += 1
        elif n + (6 if d.eq_type[q] == EQ_WELD else 3) <= d.max_rows:
            b1, b2 = d.eq_obj[q][0], d.eq_obj[q][1]
            data = d.eq_data[q]
            p1 = d.xpos[e, b1] + quat_rotate(d.xquat[e, b1], ti.Vector([data[0], data[1], data[2]]))
            p2 = d.xpos[e, b2] + quat_rotate(d.xquat[e, b2], ti.Vector([data[3], data[4], data[5]]))
            for r in ti.static(range(3)):
                _clear_row(d, e, n + r)
                axis = ti.Vector([float(r == 0), float(r == 1), float(r == 2)])
                _point_jacobian(d, e, n + r, b1, p1, axis, 1.0)
                _point_jacobian(d, e, n + r, b2, p2, axis, -1.0)
                d.row_kind[e, n + r], d.row_b[e, n + r] = BILATERAL, -rate * (p1[r] - p2[r])
                d.row_key[e, n + r] = key + r
            n += 3
            if d.eq_type[q] == EQ_WELD:
                _weld_rotation_rows(d, e, n, q, rate)
                for r in ti.static(range(3)):
                    d.row_key[e, n + r] = key + 3 + r
                n += 3
    d.row_count[e] = n


@ti.func
def _weld_rotation_rows(d: ti.template(), e, row, q, rate):
    """Three rows (world axes) asking body1's frame times the weld quaternion to turn with
    body2's frame: J v = (omega1 - omega2) . axis, target -rate * (rotation vector from body2's
    frame to body1's, in world coordinates)."""
    b1, b2 = d.eq_obj[q][0], d.eq_obj[q][1]
    data = d.eq_data[q]
    qa = quat_mul(d.xquat[e, b1], ti.Vector([data[6], data[7], data[8], data[9]]))
    qb = d.xquat[e, b2]
    dq = quat_mul(qa, ti.Vector([qb[0], -qb[1], -qb[2], -qb[3]]))
    err = 2.0 * ti.Vector([dq[1], dq[2], dq[3]])
    if dq[0] < 0:  # the shorter way round
        err = -err
    for r in ti.static(range(3)):
        _clear_row(d, e, row + r)
        axis = ti.Vector([float(r == 0), float(r == 1), float(r == 2)])
        _angular_jacobian(d, e, row + r, b1, axis, 1.0)
        _angular_jacobian(d, e, row + r, b2, axis, -1.0)
        d.row_kind[e, row + r], d.row_b[e, row + r] = BILATERAL, -rate * err[r]


@ti.func
def _angular_jacobian(d: ti.template(), e, row, body, direction, sign):
    """Adds sign * direction . (angular velocity of `body`) to the row."""
    k = d.body_lastdof[body]
    while k >= 0:
        d.row_J[e, row, k] = d.row_J[e, row, k] + (sign * direction.dot(d.cdof_ang[e, k]))
        k = d.dof_parent[k]


@ti.func
def _tendon_row(d: ti.template(), e, row, t, sign):
    _clear_row(d, e, row)
    for w in range(d.ten_adr[t], d.ten_adr[t] + d.ten_num[t]):
        d.row_J[e, row, d.wrap_dof[w]] = d.row_J[e, row, d.wrap_dof[w]] + (sign * d.wrap_coef[w])


@ti.func
def _joint_equality_row(d: ti.template(), e, row, q):
    """q1 - ref1 = c0 + c1 x + c2 x^2 + c3 x^3 + c4 x^4, x = q2 - ref2 (x = 0 without joint 2):
    fills the row's Jacobian and returns the error."""
    _clear_row(d, e, row)
    j1, j2 = d.eq_obj[q][0], d.eq_obj[q][1]
    c = d.eq_data[q]
    x = 0.0
    if j2 >= 0:
        x = d.qpos[e, d.jnt_qadr[j2]] - d.eq_ref[q][1]
    poly = c[0] + x * (c[1] + x * (c[2] + x * (c[3] + x * c[4])))
    slope = c[1] + x * (2.0 * c[2] + x * (3.0 * c[3] + x * 4.0 * c[4]))
    d.row_J[e, row, d.jnt_dadr[j1]] = 1.0
    if j2 >= 0:
        d.row_J[e, row, d.jnt_dadr[j2]] = d.row_J[e, row, d.jnt_dadr[j2]] - slope
    return d.qpos[e, d.jnt_qadr[j1]] - d.eq_ref[q][0] - poly


@ti.func
def _apply(d: ti.template(), e, row, delta):
    d.row_lam[e, row] = d.row_lam[e, row] + delta
    for k in range(d.nv):
        d.dofs_vel[e, k] = d.dofs_vel[e, k] + (d.row_W[e, row, k] * delta)


@ti.func
def _row_velocity(d: ti.template(), e, row):
    v = 0.0
    for k in range(d.nv):
        v += d.row_J[e, row, k] * d.dofs_vel[e, k]
    return v


@ti.func
def _project(d: ti.template(), e, r, lam):
    """A non-friction row's impulse cut to its bounds."""
    kind = d.row_kind[e, r]
    if kind == UNILATERAL:
        lam = ti.max(lam, 0.0)
    elif kind == BOXED:
        lam = ti.min(ti.max(lam, -d.row_mu[e, r]), d.row_mu[e, r])
    return lam


@ti.func
def _sweeps(d: ti.template(), e):
    """Gauss-Seidel sweeps over the env's rows until the impulses settle."""
    for _ in range(d.iterations):
        change, size = 0.0, 0.0
        r = 0
        while r < d.row_count[e]:
            kind = d.row_kind[e, r]
            if kind != FRICTION:
                lam = d.row_lam[e, r]
                new = _project(d, e, r, lam + (d.row_b[e, r] - _row_velocity(d, e, r)) / d.row_A[e, r])
                if new != lam:  # an inactive row stays at 0: nothing to apply
                    _apply(d, e, r, new - lam)
                change, size = ti.max(change, ti.abs(new - lam)), ti.max(size, ti.abs(new))
                r += 1
            else:
                bound = d.row_mu[e, r] * d.row_lam[e, r - 1]
                l1, l2 = 0.0, 0.0  # no normal impulse (a speculative contact): no friction, no need to look
                if bound > 0:
                    l1 = d.row_lam[e, r] - _row_velocity(d, e, r) / d.row_A[e, r]
                    l2 = d.row_lam[e, r + 1] - _row_velocity(d, e, r + 1) / d.row_A[e, r + 1]
                    norm = ti.sqrt(l1 * l1 + l2 * l2)
                    if norm > bound:
                        scale = bound / norm
                        l1 *= scale
                        l2 *= scale
                change = ti.max(change, ti.max(ti.abs(l1 - d.row_lam[e, r]), ti.abs(l2 - d.row_lam[e, r + 1])))
                if l1 != d.row_lam[e, r] or l2 != d.row_lam[e, r + 1]:
                    _apply(d, e, r, l1 - d.row_lam[e, r])
                    _apply(d, e, r + 1, l2 - d.row_lam[e, r + 1])
                r += 2
        if change <= 1e-6 * size:  # converged: later sweeps would change nothing that matters
            break


@ti.kernel
def solve_constraints(d: ti.template(), dt: float):
    """qvel <- qvel + dt * qacc, then the constraint impulses that make it admissible, starting
    from the previous substep's (see warmstart)."""
    for e in range(d.batch):
        for k in range(d.nv):
            d.dofs_vel[e, k] = d.dofs_vel[e, k] + (dt * d.qacc[e, k])
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
        _warm_start(d, e)
        _sweeps(d, e)


@ti.func
def _group_end(d: ti.template(), e, start):
    """Rows [start, end) form a group: the contacts between one pair of bodies, or all the
    non-contact rows."""
    end = d.row_count[e]
    if start < 3 * d.con_count[e]:
        c, bodies = start // 3 + 1, d.con_body[e, start // 3]
        while c < d.con_count[e] and d.con_body[e, c][0] == bodies[0] and d.con_body[e, c][1] == bodies[1]:
            c += 1
        end = 3 * c
    return end


@ti.func
def _warm_start(d: ti.template(), e):
    """Applies the previous substep's impulses (warmstart.initial_impulses), then scales each
    group's (see _group_end) by the alpha in [0, 1] that minimises the solver's objective
    1/2 lam.A.lam + lam.(J v - b) along them, the other groups' applied: about 1 for resting
    contacts, about 0 the substep after an impact, whose stopping impulse would otherwise come
    back as a bounce (MuJoCo likewise keeps a warm start only where it beats a cold one)."""
    warmstart.initial_impulses(d, e)
    for r in range(d.row_count[e]):
        lam = d.row_lam[e, r]
        if r >= 3 * d.con_count[e]:
            lam = _project(d, e, r, lam)
        d.row_lam[e, r] = 0.0
        _apply(d, e, r, lam)
    start = 0
    while start < d.row_count[e]:
        end = _group_end(d, e, start)
        for k in range(d.nv):
            d.row_solve[e, k] = 0.0
        for r in range(start, end):
            for k in range(d.nv):
                d.row_solve[e, k] = d.row_solve[e, k] + (d.row_W[e, r, k] * d.row_lam[e, r])  # the group's own velocity change
        slope, curvature = 0.0, 0.0
        for r in range(start, end):
            own = 0.0
            for k in range(d.nv):
                own += d.row_J[e, r, k] * d.row_solve[e, k]
            curvature += d.row_lam[e, r] * own
            slope += d.row_lam[e, r] * (_row_velocity(d, e, r) - own - d.row_b[e, r])
        if curvature > 0:
            alpha = ti.min(ti.max(-slope / curvature, 0.0), 1.0)
            if alpha < 1.0:
                for r in range(start, end):
                    _apply(d, e, r, (alpha - 1.0) * d.row_lam[e, r])
        start = end


@ti.kernel
def relax_constraints(d: ti.template()):
    """After the position update: joint and tendon limit rows that pushed a joint back inside
    its range are solved again with a zero target, so the push moved the joint but leaves no
    velocity behind (Box2D's "soft step" relax). Without it the push is kinetic energy: a
    joint that starts 0.5 rad past its limit leaves it at 10 rad/s and flies to the other end
    of its range (gymnasium's ant, whose ankles start outside their range). Contact rows keep
    their Baumgarte push (a penetration beyond the slop is rare and small; relaxing them left
    a resting box rocking at 3e-3 rad/s).
    Then keeps every env's impulses for the next substep's warm start."""
    for e in range(d.batch):
        pushed = False
        for r in range(3 * d.con_count[e], d.row_count[e]):  # limit rows (contacts: 3 rows each, first)
            if d.row_kind[e, r] == UNILATERAL and d.row_b[e, r] > 0:
                d.row_b[e, r] = 0.0
                pushed = True
        if pushed:
            _sweeps(d, e)
        warmstart.keep_impulses(d, e)
