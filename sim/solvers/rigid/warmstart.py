"""Warm start of the constraint solver: each substep's Gauss-Seidel sweeps begin from the
previous substep's impulses instead of zero, so a resting contact keeps converging from one
substep to the next. Cold, 30 sweeps per substep left a box on an upright cylinder rocking at
~0.02 rad/s and a three-box stack spinning at ~5e-3 rad/s; under-converged PGS needs hundreds
of sweeps per substep to do what a warm start does in a few.

The previous impulses are simulation state (FieldSpecs named `warmstart_*`: a state or
checkpoint without them loads them as zeros, which is exactly a cold start; see sim.checkpoint):
- contacts have no identity across substeps (the collision stage lists them afresh), so a new
  contact takes the impulse of the previous substep's contact between the same two bodies that
  lies nearest to it, within MATCH_RADIUS, each old contact at most once; the pair's unmatched
  new contacts share what its unmatched old ones carried. An impulse is kept as a world vector
  (normal and friction together), projected onto the new contact's frame and cut to its cone.
- every other row (limits, frictionloss, equalities) has a fixed key (`row_key_count`).
"""

import taichi as ti

from sim.solvers.base import FieldSpec
from sim.solvers.rigid.math3d import tangent_frame

MATCH_RADIUS = 0.01  # m: farther than this from every old contact, a contact starts cold


def row_key_count(njnt: int, ntendon: int, nv: int, neq: int) -> int:
    """Keys of the non-contact rows, in the order constraint._build_rows makes them: 2 per joint
    (limit sides), 2 per tendon (limit sides) and 1 (frictionloss), 1 per dof (frictionloss),
    6 per equality (its rows)."""
    return 2 * njnt + 3 * ntendon + nv + 6 * neq


def state_specs(model, max_contacts: int) -> list[FieldSpec]:
    """The warm-start state of a model with at most `max_contacts` contacts per env."""
    nc = max(max_contacts, 1)
    keys = max(row_key_count(model.njnt, model.ntendon, model.nv, len(model.eq_type)), 1)
    return [FieldSpec("warmstart_count", (1,), "int32"),
            FieldSpec("warmstart_con_body", (nc,), "int32", (2,)),
            FieldSpec("warmstart_con_pos", (nc,), element=(3,)),
            FieldSpec("warmstart_con_impulse", (nc,), element=(3,)),
            FieldSpec("warmstart_row", (keys,))]


@ti.func
def _contact_frame(d: ti.template(), e, c):
    normal = d.con_normal[e, c]
    t1, t2 = tangent_frame(normal)
    return normal, t1, t2


@ti.func
def _same_bodies(d: ti.template(), e, old, new):
    a, b = d.warmstart_con_body[e, old], d.con_body[e, new]
    return a[0] == b[0] and a[1] == b[1]


@ti.func
def _nearest_old_contact(d: ti.template(), e, c):
    best, best_dist = -1, MATCH_RADIUS
    for i in range(d.warmstart_count[e, 0]):
        if d.warm_free[e, i] and _same_bodies(d, e, i, c):
            dist = (d.warmstart_con_pos[e, i] - d.con_pos[e, c]).norm()
            if dist < best_dist:
                best, best_dist = i, dist
    return best


@ti.func
def _leftover_share(d: ti.template(), e, c):
    """The old impulse of contact c's body pair that no new contact matched, shared evenly among
    the pair's unmatched new contacts (c among them)."""
    left = ti.Vector([0.0, 0.0, 0.0])
    for i in range(d.warmstart_count[e, 0]):
        if d.warm_free[e, i] and _same_bodies(d, e, i, c):
            left += d.warmstart_con_impulse[e, i]
    share = 0
    for j in range(d.con_count[e]):
        b, bc = d.con_body[e, j], d.con_body[e, c]
        if d.warm_match[e, j] < 0 and b[0] == bc[0] and b[1] == bc[1]:
            share += 1
    return left / share


@ti.func
def initial_impulses(d: ti.template(), e):
    """Each row's starting impulse in row_lam; the caller projects the non-contact rows onto
    their bounds and applies them all. Each old contact's impulse goes to the nearest new one;
    what a body pair's old contacts leave unmatched (a patch that moved, as a cylinder's
    face-down contact points do along its rim) is shared by the pair's unmatched new contacts."""
    for i in range(d.warmstart_count[e, 0]):
        d.warm_free[e, i] = 1
    for c in range(d.con_count[e]):
        old = _nearest_old_contact(d, e, c)
        d.warm_match[e, c] = old
        if old >= 0:
            d.warm_free[e, old] = 0
    for c in range(d.con_count[e]):
        f = ti.Vector([0.0, 0.0, 0.0])
        if d.warm_match[e, c] >= 0:
            f = d.warmstart_con_impulse[e, d.warm_match[e, c]]
        else:
            f = _leftover_share(d, e, c)
        normal, t1, t2 = _contact_frame(d, e, c)
        ln = ti.max(f.dot(normal), 0.0)
        l1, l2 = f.dot(t1), f.dot(t2)
        bound = d.row_mu[e, 3 * c + 1] * ln
        norm = ti.sqrt(l1 * l1 + l2 * l2)
        if norm > bound:
            l1 *= bound / norm
            l2 *= bound / norm
        d.row_lam[e, 3 * c], d.row_lam[e, 3 * c + 1], d.row_lam[e, 3 * c + 2] = ln, l1, l2
    for r in range(3 * d.con_count[e], d.row_count[e]):
        d.row_lam[e, r] = d.warmstart_row[e, d.row_key[e, r]]


@ti.func
def keep_impulses(d: ti.template(), e):
    """Stores the env's final impulses for the next substep."""
    count = ti.min(d.con_count[e], d.warmstart_con_pos.shape[1])
    for c in range(count):
        n = 3 * c
        normal, t1, t2 = _contact_frame(d, e, c)
        d.warmstart_con_body[e, c] = d.con_body[e, c]
        d.warmstart_con_pos[e, c] = d.con_pos[e, c]
        d.warmstart_con_impulse[e, c] = d.row_lam[e, n] * normal + d.row_lam[e, n + 1] * t1 + d.row_lam[e, n + 2] * t2
    d.warmstart_count[e, 0] = count
    for k in range(d.warmstart_row.shape[1]):
        d.warmstart_row[e, k] = 0.0
    for r in range(3 * d.con_count[e], d.row_count[e]):
        d.warmstart_row[e, d.row_key[e, r]] = d.row_lam[e, r]
