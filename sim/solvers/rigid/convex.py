"""Convex-convex contacts: Minkowski Portal Refinement (MPR, as MuJoCo and Genesis use) for the
normal and deepest point, then a contact patch from the geoms' feature points.

Shapes are described by a support function (the farthest point in a direction), a signed
distance (exact for sphere, capsule, box, cylinder, plane; for a mesh hull the largest face
plane distance, exact inside and a lower bound outside; Inigo Quilez's first-order estimate
for an ellipsoid) and feature points (box corners, hull vertices, 4 rim points on each
cylinder cap, capsule end centres with the capsule radius).

MPR runs on geom 1 inflated by the pair's reporting margin, so a pair closer than the margin
is found too (speculative contacts) and its gap is the margin minus MPR's depth.
Multi-contact: a face resting on a face touches along a patch, and one point would let it
rock. The feature points of each geom near its extreme along the MPR normal are tested
against the other geom's signed distance; of those within the margin, at most four spanning
the patch are kept (see `patch`).
"""

import taichi as ti

from sim.solvers.rigid import hull
from sim.solvers.rigid.geometry import BOX, CAPSULE, CYLINDER, ELLIPSOID, MESH, PLANE, SPHERE

_MPR_ITERATIONS = 40
_DEPTH_WEIGHT = 4.0


@ti.func
def _axis(d: ti.template(), e, g, k):
    return ti.Vector([d.gxmat[e, g][0, k], d.gxmat[e, g][1, k], d.gxmat[e, g][2, k]])


@ti.func
def support_from(d: ti.template(), e, g, direction, start):
    """The point of geom g farthest along `direction` (world frame), and for a mesh the hull
    vertex it is (-1 otherwise), found from vertex `start` (see hull.support_vertex)."""
    rot, size = d.gxmat[e, g], d.geom_size[g]
    local = rot.transpose() @ direction
    ln = local.norm() + 1e-30
    out = ti.Vector([0.0, 0.0, 0.0])
    vertex = -1
    t = d.geom_type[g]
    if t == SPHERE:
        out = size[0] * local / ln
    elif t == CAPSULE:
        out = size[0] * local / ln + ti.Vector([0.0, 0.0, size[1] if local[2] >= 0 else -size[1]])
    elif t == ELLIPSOID:
        scaled = ti.Vector([size[0] * local[0], size[1] * local[1], size[2] * local[2]])
        out = ti.Vector([size[0] * scaled[0], size[1] * scaled[1], size[2] * scaled[2]]) / (scaled.norm() + 1e-30)
    elif t == CYLINDER:
        radial = ti.sqrt(local[0] * local[0] + local[1] * local[1])
        scale = size[0] / radial if radial > 1e-12 * ln else 0.0
        out = ti.Vector([scale * local[0], scale * local[1], size[1] if local[2] >= 0 else -size[1]])
    elif t == BOX:
        out = ti.Vector([size[k] if local[k] >= 0 else -size[k] for k in ti.static(range(3))])
    elif t == MESH:
        out, vertex = hull.support_vertex(d, g, local, start)
    return d.gxpos[e, g] + rot @ out, vertex


@ti.func
def support(d: ti.template(), e, g, direction):
    """The point of geom g farthest along `direction` (world frame)."""
    p, _ = support_from(d, e, g, direction, -1)
    return p


@ti.func
def signed_distance(d: ti.template(), e, g, p):
    """Signed distance from world point p to geom g (negative inside); see the module doc."""
    rot, size = d.gxmat[e, g], d.geom_size[g]
    x = rot.transpose() @ (p - d.gxpos[e, g])
    t = d.geom_type[g]
    out = 0.0
    if t == PLANE:
        out = x[2]
    elif t == SPHERE:
        out = x.norm() - size[0]
    elif t == CAPSULE:
        z = ti.min(ti.max(x[2], -size[1]), size[1])
        out = ti.Vector([x[0], x[1], x[2] - z]).norm() - size[0]
    elif t == ELLIPSOID:
        k0 = ti.Vector([x[0] / size[0], x[1] / size[1], x[2] / size[2]]).norm()
        k1 = ti.Vector([x[0] / size[0] ** 2, x[1] / size[1] ** 2, x[2] / size[2] ** 2]).norm()
        out = k0 * (k0 - 1.0) / (k1 + 1e-30)
    elif t == CYLINDER:
        dr = ti.sqrt(x[0] * x[0] + x[1] * x[1]) - size[0]
        dz = ti.abs(x[2]) - size[1]
        out = ti.min(ti.max(dr, dz), 0.0) + ti.Vector([ti.max(dr, 0.0), ti.max(dz, 0.0)]).norm()
    elif t == BOX:
        q = ti.abs(x) - size
        out = ti.min(ti.max(q[0], ti.max(q[1], q[2])), 0.0) + ti.max(q, 0.0).norm()
    elif t == MESH:
        out = hull.distance(d, g, x)
    return out


@ti.func
def feature_count(d: ti.template(), g):
    t = d.geom_type[g]
    n = 0
    if t == BOX:
        n = 8
    elif t == MESH:
        n = d.geom_hull[g][1]
    elif t == CYLINDER:
        n = 8
    elif t == CAPSULE:
        n = 2
    return n


@ti.func
def feature_point(d: ti.template(), e, g, i, towards):
    """Feature point i of geom g (world frame) and the radius around it (capsules). A
    cylinder's are four rim points on each cap, the first at the cap's extreme along `towards`
    (the rim point that touches when the cylinder lies on its side), then every 90 degrees."""
    size = d.geom_size[g]
    t = d.geom_type[g]
    local = ti.Vector([0.0, 0.0, 0.0])
    radius = 0.0
    if t == BOX:
        local = ti.Vector([size[0] * (1 - 2 * (i & 1)), size[1] * (1 - (i & 2)), size[2] * (1 - ((i & 4) >> 1))])
    elif t == MESH:
        local = d.hull_vert[d.geom_hull[g][0] + i]
    elif t == CYLINDER:
        lt = d.gxmat[e, g].transpose() @ towards
        base = ti.atan2(lt[1], lt[0]) if lt[0] * lt[0] + lt[1] * lt[1] > 1e-12 else 0.0
        angle = base + 1.5707963267948966 * (i % 4)
        local = ti.Vector([size[0] * ti.cos(angle), size[0] * ti.sin(angle), size[1] if i < 4 else -size[1]])
    elif t == CAPSULE:
        local = ti.Vector([0.0, 0.0, size[1] if i == 0 else -size[1]])
        radius = size[0]
    return d.gxpos[e, g] + d.gxmat[e, g] @ local, radius


@ti.func
def _minkowski(d: ti.template(), e, g1, g2, direction, inflate, s1, s2):
    """Support of (geom 2) - (geom 1 inflated by `inflate`) along `direction`, both points,
    and the hull vertices they are (mesh supports climb on from s1 / s2, the last ones)."""
    n = direction / (direction.norm() + 1e-30)
    p2, v2 = support_from(d, e, g2, n, s2)
    p1, v1 = support_from(d, e, g1, -n, s1)
    p1 -= inflate * n
    return p2 - p1, p1, p2, v1, v2


@ti.func
def mpr(d: ti.template(), e, g1, g2, inflate):
    """(hit, normal from g1 to g2, depth of the inflated pair (the true depth + inflate),
    contact point midway between the true surfaces). Minkowski difference M = g2 - g1 with its
    interior point v0 = c2 - c1; one support query per iteration (phase 0-2 find a portal
    v1 v2 v3 that the ray from v0 through the origin crosses, phase 3 refines it)."""
    hit = 0
    normal = ti.Vector([0.0, 0.0, 1.0])
    depth, point = 0.0, d.gxpos[e, g1]
    v0 = d.gxpos[e, g2] - d.gxpos[e, g1]
    if v0.norm() < 1e-9:
        v0 = ti.Vector([1e-6, 0.0, 0.0])
    zero = ti.Vector([0.0, 0.0, 0.0])
    v1, a1, b1, v2, a2, b2, v3, a3, b3 = zero, zero, zero, zero, zero, zero, zero, zero, zero
    direction = -v0
    phase = 0
    s1, s2 = -1, -1
    for it in range(_MPR_ITERATIONS):
        v, a, b, s1, s2 = _minkowski(d, e, g1, g2, direction, inflate, s1, s2)
        if phase < 3 and v.dot(direction) <= 0:
            break  # a separating direction: no contact
        if phase == 0:
            v1, a1, b1 = v, a, b
            direction = v0.cross(v1)
            if direction.norm() < 1e-12 * (v0.norm() * v1.norm() + 1e-30):  # origin on the segment v0-v1
                hit, depth = 1, v1.norm()
                normal = -v1 / (depth + 1e-30)
                point = 0.5 * (a1 + b1) - 0.5 * inflate * normal
                break
            phase = 1
        elif phase == 1:
            v2, a2, b2 = v, a, b
            direction = (v1 - v0).cross(v2 - v0)
            if direction.dot(v0) > 0:
                v2, a2, b2 = v1, a1, b1
                v1, a1, b1 = v, a, b
                direction = -direction
            phase = 2
        elif phase == 2:
            if v1.cross(v).dot(v0) < 0:
                v2, a2, b2 = v, a, b
                direction = (v1 - v0).cross(v2 - v0)
            elif v.cross(v2).dot(v0) < 0:
                v1, a1, b1 = v, a, b
                direction = (v1 - v0).cross(v2 - v0)
            else:
                v3, a3, b3 = v, a, b
                n = (v2 - v1).cross(v3 - v1)
                direction = n / (n.norm() + 1e-30)
                phase = 3
        else:
            n = direction  # the portal's unit normal; v is the support along it
            if hit == 0 and n.dot(v1) >= 0:
                hit = 1
            if hit == 0 and v.dot(n) < 0:
                break
            reach = ti.min(v.dot(n) - v1.dot(n), ti.min(v.dot(n) - v2.dot(n), v.dot(n) - v3.dot(n)))
            if reach <= 1e-6 + 1e-5 * ti.abs(v.dot(n)) or it == _MPR_ITERATIONS - 1:
                if hit == 1:
                    depth = n.dot(v1)
                    normal = -n
                    # barycentric weights of the origin's projection on the portal
                    w1, w2, w3 = v2.cross(v3).dot(n), v3.cross(v1).dot(n), v1.cross(v2).dot(n)
                    total = w1 + w2 + w3
                    mid = 0.5 * (a1 + b1)
                    if ti.abs(total) > 1e-30:
                        mid = 0.5 * ((w1 * a1 + w2 * a2 + w3 * a3) + (w1 * b1 + w2 * b2 + w3 * b3)) / total
                    point = mid - 0.5 * inflate * normal
                break
            # expand the portal: v replaces the vertex that keeps the origin's ray inside it
            c = v.cross(v0)
            if v1.dot(c) > 0:
                if v2.dot(c) > 0:
                    v1, a1, b1 = v, a, b
                else:
                    v3, a3, b3 = v, a, b
            else:
                if v3.dot(c) > 0:
                    v2, a2, b2 = v, a, b
                else:
                    v1, a1, b1 = v, a, b
            n = (v2 - v1).cross(v3 - v1)
            direction = n / (n.norm() + 1e-30)
    return hit, normal, depth, point


@ti.func
def add_contact(d: ti.template(), e, pos, normal, depth, g1, g2):
    """Record a contact of the pair being tested (normal from g1 to g2; depth < 0: a gap).
    The pair's margin - gap offset shifts where it rests, as MuJoCo's margin does. When the
    env's list is full (RigidOptions.max_contacts), the deepest contacts are the ones kept:
    a full list used to drop every later contact, touching ones too (a Franka's finger pads
    against a box, after its mesh self-collision pairs filled 64 slots with speculative ones)."""
    n = d.con_count[e]
    slot = n
    if n < d.max_contacts:
        d.con_count[e] = n + 1
    else:  # list full: a deeper contact replaces the one with the widest gap (a speculative one)
        slot = 0
        for c in range(1, n):
            if d.con_depth[e, c] < d.con_depth[e, slot]:
                slot = c
        if d.con_depth[e, slot] >= depth + d.pair_offset_e[e]:
            slot = -1
    if slot >= 0:
        d.con_pos[e, slot] = pos
        d.con_normal[e, slot] = normal
        d.con_depth[e, slot] = depth + d.pair_offset_e[e]
        d.con_mu[e, slot] = d.pair_mu_e[e]
        d.con_body[e, slot] = ti.Vector([d.geom_body[g1], d.geom_body[g2]])


@ti.func
def _candidates(d: ti.template(), e, g1, g2, normal, band):
    """Feature points of both geoms within `band` of their extreme along the contact normal
    whose gap to the other geom is below the pair's margin: their contact point and gap go
    into the env's patch list (in feature order, geom 2 first). Returns how many."""
    n = 0
    for side in range(2):
        g, other, towards = g2, g1, -normal  # towards: from g to the other geom
        if side == 1:
            g, other, towards = g1, g2, normal
        extreme = support(d, e, g, towards).dot(towards)
        if d.geom_type[g] == CAPSULE:
            extreme -= d.geom_size[g][0]
        for i in range(feature_count(d, g)):
            p, radius = feature_point(d, e, g, i, towards)
            if p.dot(towards) >= extreme - band:
                surface = p + radius * towards
                gap = signed_distance(d, e, other, surface)
                if gap < d.pair_margin[e]:
                    d.patch_point[e, n] = ti.Vector([surface[0] + 0.5 * gap * towards[0],
                                                     surface[1] + 0.5 * gap * towards[1],
                                                     surface[2] + 0.5 * gap * towards[2], gap])
                    n += 1
    return n


@ti.func
def patch(d: ti.template(), e, g1, g2, normal, depth, point):
    """Reports the contacts of a touching pair (normal from g1 to g2; the MPR point `point` at
    `depth`): see the module doc. The candidate points (`_candidates`, each one's gap found
    once) are then passed over four times to pick, as MuJoCo's plane-convex collider does,
    the deepest point P0, the point farthest from P0 (P1), and the farthest points on either
    side of the line P0-P1 (P2, P3); a deeper point counts as farther (by _DEPTH_WEIGHT), so
    on a curved face the points that are about to touch are kept and the speculative contacts
    stop them, not only the patch's outline."""
    tolerance = 1e-4 + 1e-3 * d.geom_rbound[g2]
    n = _candidates(d, e, g1, g2, normal, depth + d.pair_margin[e] + 1e-6)
    for k in range(4):
        d.slot_key[e, k] = depth if k == 0 else tolerance
        d.slot_depth[e, k] = depth
        d.slot_pos[e, k] = point
        d.slot_used[e, k] = 1 if k == 0 else 0
        p0, p1 = d.slot_pos[e, 0], d.slot_pos[e, 1]
        for i in range(n):
            q = d.patch_point[e, i]
            c, gap = ti.Vector([q[0], q[1], q[2]]), q[3]
            key = -gap
            if k == 1:
                key = (c - p0).norm() - _DEPTH_WEIGHT * gap
            elif k >= 2:
                key = (c - p0).cross(p1 - p0).dot(normal) * (1.0 if k == 2 else -1.0)
                key = key / ((p1 - p0).norm() + 1e-30) - _DEPTH_WEIGHT * gap
            if key > d.slot_key[e, k] + 1e-9:
                d.slot_key[e, k] = key
                d.slot_depth[e, k] = -gap
                d.slot_pos[e, k] = c
                d.slot_used[e, k] = 1
        if d.slot_used[e, k]:
            add_contact(d, e, d.slot_pos[e, k], normal, d.slot_depth[e, k], g1, g2)
        elif k == 1:
            break  # one point: no patch around it


@ti.func
def detect(d: ti.template(), e, g1, g2):
    """A plane (exact: the deepest point of g2 below it) or a convex g1 (MPR) against g2."""
    hit, normal, depth, point = 0, ti.Vector([0.0, 0.0, 1.0]), 0.0, d.gxpos[e, g2]
    if d.geom_type[g1] == PLANE:
        normal = _axis(d, e, g1, 2)
        p = support(d, e, g2, -normal)
        gap = normal.dot(p - d.gxpos[e, g1])
        if gap < d.pair_margin[e]:
            hit, depth, point = 1, -gap, p - 0.5 * gap * normal
    else:
        inflate = d.pair_margin[e]
        hit, normal, depth, point = mpr(d, e, g1, g2, inflate)
        depth -= inflate
    if hit:
        patch(d, e, g1, g2, normal, depth, point)
