"""Contact detection between primitive geoms, all envs in one launch (serial over the static
list of candidate geom pairs within an env).

Supported pairs and how many contacts each gives:
plane-sphere 1, plane-capsule 2 (its end caps), plane-box up to 8 (corners),
sphere-sphere 1, sphere-capsule 1, capsule-capsule 1 (closest points of the segments),
sphere-box 1, capsule-box up to 2 (its end caps as spheres: an approximation that misses a
box edge touching the middle of the capsule), box-box up to 8 (corners of each box inside
the other: an approximation that misses edge-edge contact).
A contact is reported while the gap is below the margin, so the solver can stop bodies
from closing more than the gap in one step (speculative contact: no tunnelling, no jitter).
Normals point from the first geom of the pair to the second.
"""

import taichi as ti

from sim.solvers.rigid.model import BOX, CAPSULE, PLANE, SPHERE


@ti.func
def _add(d: ti.template(), e, pos, normal, depth, mu, g1, g2):
    n = d.con_count[e]
    if n < d.max_contacts:
        d.con_pos[e, n] = pos
        d.con_normal[e, n] = normal
        d.con_depth[e, n] = depth
        d.con_mu[e, n] = mu
        d.con_body[e, n] = ti.Vector([d.geom_body[g1], d.geom_body[g2]])
        d.con_count[e] = n + 1


@ti.func
def _sphere_sphere(d: ti.template(), e, c1, r1, c2, r2, mu, g1, g2):
    delta = c2 - c1
    dist = delta.norm()
    normal = ti.Vector([0.0, 0.0, 1.0])
    if dist > 1e-12:
        normal = delta / dist
    gap = dist - r1 - r2
    if gap < d.margin:
        _add(d, e, c1 + normal * (r1 + 0.5 * gap), normal, -gap, mu, g1, g2)


@ti.func
def _segment(d: ti.template(), e, g):
    axis = ti.Vector([d.gxmat[e, g][0, 2], d.gxmat[e, g][1, 2], d.gxmat[e, g][2, 2]])
    half = d.geom_size[g][1] * axis
    return d.gxpos[e, g] - half, d.gxpos[e, g] + half


@ti.func
def _closest_on_segment(a, b, p):
    ab = b - a
    t = 0.0
    denom = ab.dot(ab)
    if denom > 1e-12:
        t = ti.min(ti.max((p - a).dot(ab) / denom, 0.0), 1.0)
    return a + t * ab


@ti.func
def _segments_closest(a0, a1, b0, b1):
    """Closest points between segments a0-a1 and b0-b1 (clamped parameters)."""
    da, db, r = a1 - a0, b1 - b0, a0 - b0
    aa, bb, ab = da.dot(da), db.dot(db), da.dot(db)
    ar, br = da.dot(r), db.dot(r)
    denom = aa * bb - ab * ab
    s = 0.0
    if denom > 1e-12 * (aa * bb + 1e-30):
        s = ti.min(ti.max((ab * br - ar * bb) / denom, 0.0), 1.0)
    t = 0.0
    if bb > 1e-12:
        t = (ab * s + br) / bb
    if t < 0.0:
        t = 0.0
        if aa > 1e-12:
            s = ti.min(ti.max(-ar / aa, 0.0), 1.0)
    elif t > 1.0:
        t = 1.0
        if aa > 1e-12:
            s = ti.min(ti.max((ab - ar) / aa, 0.0), 1.0)
    return a0 + s * da, b0 + t * db


@ti.func
def _plane_point(d: ti.template(), e, gp, p, r, mu, gp_idx, g2):
    normal = ti.Vector([d.gxmat[e, gp][0, 2], d.gxmat[e, gp][1, 2], d.gxmat[e, gp][2, 2]])
    gap = normal.dot(p - d.gxpos[e, gp]) - r
    if gap < d.margin:
        _add(d, e, p - normal * (r + 0.5 * gap), normal, -gap, mu, gp_idx, g2)


@ti.func
def _sphere_box(d: ti.template(), e, c, r, gb, mu, g1, g2):
    """Sphere (centre c, radius r, of geom g1) against box gb; normal from the sphere to the box."""
    rot = d.gxmat[e, gb]
    size = d.geom_size[gb]
    local = rot.transpose() @ (c - d.gxpos[e, gb])
    clamped = ti.Vector([ti.min(ti.max(local[k], -size[k]), size[k]) for k in ti.static(range(3))])
    normal = ti.Vector([0.0, 0.0, 1.0])
    gap = 0.0
    point = c
    delta = clamped - local
    dist = delta.norm()
    if dist > 1e-12:
        normal = rot @ (delta / dist)
        gap = dist - r
        point = c + normal * (r + 0.5 * gap)
    else:  # centre inside the box: leave through the nearest face
        best, axis = size[0] - ti.abs(local[0]), 0
        for k in ti.static(range(1, 3)):
            if size[k] - ti.abs(local[k]) < best:
                best, axis = size[k] - ti.abs(local[k]), k
        out = ti.Vector([0.0, 0.0, 0.0])
        out[axis] = 1.0 if local[axis] >= 0 else -1.0
        normal = -(rot @ out)
        gap = -best - r
    if gap < d.margin:
        _add(d, e, point, normal, -gap, mu, g1, g2)


@ti.func
def _box_corners_in_box(d: ti.template(), e, ga, gb, mu, g1, g2, sign):
    """Corners of box gb inside box ga; the normal is ga's face normal times `sign`."""
    rot_a, rot_b = d.gxmat[e, ga], d.gxmat[e, gb]
    sa, sb = d.geom_size[ga], d.geom_size[gb]
    for corner in range(8):
        offset = ti.Vector([sb[0] * (1 - 2 * (corner & 1)), sb[1] * (1 - (corner & 2)),
                            sb[2] * (1 - ((corner & 4) >> 1))])
        p = d.gxpos[e, gb] + rot_b @ offset
        local = rot_a.transpose() @ (p - d.gxpos[e, ga])
        best, axis = sa[0] + d.margin - ti.abs(local[0]), 0
        for k in ti.static(range(1, 3)):
            if sa[k] + d.margin - ti.abs(local[k]) < best:
                best, axis = sa[k] + d.margin - ti.abs(local[k]), k
        if best > 0:
            out = ti.Vector([0.0, 0.0, 0.0])
            out[axis] = 1.0 if local[axis] >= 0 else -1.0
            _add(d, e, p, sign * (rot_a @ out), best - d.margin, mu, g1, g2)


@ti.kernel
def detect_contacts(d: ti.template()):
    for e in range(d.batch):
        d.con_count[e] = 0
        for pr in range(d.npair):
            g1, g2 = d.pair_geoms[pr][0], d.pair_geoms[pr][1]
            t1, t2 = d.geom_type[g1], d.geom_type[g2]
            mu = ti.max(d.geom_friction[g1], d.geom_friction[g2])
            c1, c2 = d.gxpos[e, g1], d.gxpos[e, g2]
            r1, r2 = d.geom_size[g1][0], d.geom_size[g2][0]
            if t1 == PLANE:
                if t2 == SPHERE:
                    _plane_point(d, e, g1, c2, r2, mu, g1, g2)
                elif t2 == CAPSULE:
                    a, b = _segment(d, e, g2)
                    _plane_point(d, e, g1, a, r2, mu, g1, g2)
                    _plane_point(d, e, g1, b, r2, mu, g1, g2)
                elif t2 == BOX:
                    for corner in range(8):
                        s = d.geom_size[g2]
                        offset = ti.Vector([s[0] * (1 - 2 * (corner & 1)), s[1] * (1 - (corner & 2)),
                                            s[2] * (1 - ((corner & 4) >> 1))])
                        _plane_point(d, e, g1, c2 + d.gxmat[e, g2] @ offset, 0.0, mu, g1, g2)
            elif t1 == SPHERE:
                if t2 == SPHERE:
                    _sphere_sphere(d, e, c1, r1, c2, r2, mu, g1, g2)
                elif t2 == CAPSULE:
                    a, b = _segment(d, e, g2)
                    _sphere_sphere(d, e, c1, r1, _closest_on_segment(a, b, c1), r2, mu, g1, g2)
                elif t2 == BOX:
                    _sphere_box(d, e, c1, r1, g2, mu, g1, g2)
            elif t1 == CAPSULE:
                a, b = _segment(d, e, g1)
                if t2 == CAPSULE:
                    a2, b2 = _segment(d, e, g2)
                    p1, p2 = _segments_closest(a, b, a2, b2)
                    _sphere_sphere(d, e, p1, r1, p2, r2, mu, g1, g2)
                elif t2 == BOX:
                    _sphere_box(d, e, a, r1, g2, mu, g1, g2)
                    _sphere_box(d, e, b, r1, g2, mu, g1, g2)
            elif t1 == BOX and t2 == BOX:
                _box_corners_in_box(d, e, g1, g2, mu, g1, g2, 1.0)
                _box_corners_in_box(d, e, g2, g1, mu, g1, g2, -1.0)
