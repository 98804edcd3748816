"""Contact detection, all envs in one launch (serial over the candidate geom pairs within an env).

Each candidate pair (see `broadphase`) is first pruned by bounding spheres; the narrow phase
then has exact paths for the primitive pairs and `convex` (MPR + contact patch) for the rest
(ellipsoid, cylinder, mesh against anything but a plane; plane-ellipsoid/cylinder/mesh use
the exact plane path there). Contacts per pair:
plane-sphere 1, plane-capsule 2 (its end caps), plane-box up to 8 (corners),
sphere-sphere 1, sphere-capsule 1, capsule-capsule 1 (closest points of the segments),
sphere-box 1, capsule-box up to 3 (spheres on the segment: see `_capsule_box`), box-box up
to 8 (corners of one box against the face of least overlap of the other, chosen by a
separating-axis test over face normals: edge-edge contact between two boxes is an
approximation, found only through corners), any other pair up to 4.
A contact is reported while the gap is below the model's margin - gap (MuJoCo's geom or
<pair> margin and gap), plus the distance the two geoms can close in this step (each geom's
reach, from the velocity the step integrates before constraint impulses: dofs_vel + dt qacc),
plus RigidOptions.contact_margin (0 by default, as MuJoCo reports no contact beyond its
margin). The solver then stops bodies from closing more than the gap (speculative contact: no
tunnelling, no impact penetration); a resting contact (gap about 0 or below) stays reported,
so it does not flicker.
Normals point from the first geom of the pair to the second.
"""

import taichi as ti

from sim.solvers.rigid import convex, hull, params
from sim.solvers.rigid.convex import add_contact
from sim.solvers.rigid.geometry import BOX, CAPSULE, PLANE, SPHERE


@ti.func
def _sphere_sphere(d: ti.template(), e, c1, r1, c2, r2, g1, g2):
    delta = c2 - c1
    dist = delta.norm()
    normal = ti.Vector([0.0, 0.0, 1.0])
    if dist > 1e-12:
        normal = delta / dist
    gap = dist - r1 - r2
    if gap < d.pair_margin[e]:
        add_contact(d, e, c1 + normal * (r1 + 0.5 * gap), normal, -gap, g1, g2)


@ti.func
def _segment(d: ti.template(), e, g):
    axis = ti.Vector([d.gxmat[e, g][0, 2], d.gxmat[e, g][1, 2], d.gxmat[e, g][2, 2]])
    half = d.geom_size[g][1] * axis
    return d.gxpos[e, g] - half, d.gxpos[e, g] + half


@ti.func
def _segment_param(a, b, p):
    """Parameter in [0, 1] of the point of segment a-b closest to p."""
    ab = b - a
    t = 0.0
    denom = ab.dot(ab)
    if denom > 1e-12:
        t = ti.min(ti.max((p - a).dot(ab) / denom, 0.0), 1.0)
    return t


@ti.func
def _closest_on_segment(a, b, p):
    return a + _segment_param(a, b, p) * (b - a)


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
def _plane_point(d: ti.template(), e, gp, p, r, gp_idx, g2):
    normal = ti.Vector([d.gxmat[e, gp][0, 2], d.gxmat[e, gp][1, 2], d.gxmat[e, gp][2, 2]])
    gap = normal.dot(p - d.gxpos[e, gp]) - r
    if gap < d.pair_margin[e]:
        add_contact(d, e, p - normal * (r + 0.5 * gap), normal, -gap, gp_idx, g2)


@ti.func
def _sphere_box(d: ti.template(), e, c, r, gb, g1, g2):
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
    if gap < d.pair_margin[e]:
        add_contact(d, e, point, normal, -gap, g1, g2)


@ti.func
def _box_face_contacts(d: ti.template(), e, ga, gb, k, g1, g2):
    """Corners of box gb against the face of box ga whose normal is ga's axis k (the face
    facing gb). Normals point from g1 to g2."""
    rot_a, rot_b = d.gxmat[e, ga], d.gxmat[e, gb]
    sa, sb = d.geom_size[ga], d.geom_size[gb]
    side = 1.0 if (rot_a.transpose() @ (d.gxpos[e, gb] - d.gxpos[e, ga]))[k] >= 0 else -1.0
    face = ti.Vector([0.0, 0.0, 0.0])
    face[k] = side
    normal = rot_a @ face
    band = ti.max(d.pair_margin[e], 0.0) + 1e-4 * (sa[0] + sa[1] + sa[2])  # flush edges stay inside
    if ga != g1:
        normal = -normal
    for corner in range(8):
        offset = ti.Vector([sb[0] * (1 - 2 * (corner & 1)), sb[1] * (1 - (corner & 2)),
                            sb[2] * (1 - ((corner & 4) >> 1))])
        p = d.gxpos[e, gb] + rot_b @ offset
        local = rot_a.transpose() @ (p - d.gxpos[e, ga])
        depth = sa[k] - side * local[k]
        inside = depth > -d.pair_margin[e]
        for j in ti.static(range(3)):
            if j != k and ti.abs(local[j]) > sa[j] + band:
                inside = False
        if inside:
            add_contact(d, e, p, normal, depth, g1, g2)


@ti.func
def _box_box(d: ti.template(), e, g1, g2):
    """Separating-axis test over the six face normals; the corners of one box are then tested
    against the face of least overlap of the other (edge-edge axes are not tried)."""
    rot_1, rot_2 = d.gxmat[e, g1], d.gxmat[e, g2]
    s1, s2 = d.geom_size[g1], d.geom_size[g2]
    c = rot_1.transpose() @ rot_2
    offset_1 = rot_1.transpose() @ (d.gxpos[e, g2] - d.gxpos[e, g1])
    offset_2 = rot_2.transpose() @ (d.gxpos[e, g1] - d.gxpos[e, g2])
    best, axis = 1e30, 0
    for k in ti.static(range(6)):
        overlap = 0.0
        if ti.static(k < 3):
            overlap = s1[k] + ti.abs(c[k, 0]) * s2[0] + ti.abs(c[k, 1]) * s2[1] + ti.abs(c[k, 2]) * s2[2] \
                - ti.abs(offset_1[k])
        else:
            overlap = s2[k - 3] + ti.abs(c[0, k - 3]) * s1[0] + ti.abs(c[1, k - 3]) * s1[1] \
                + ti.abs(c[2, k - 3]) * s1[2] - ti.abs(offset_2[k - 3])
        if overlap < best:
            best, axis = overlap, k
    if best > -d.pair_margin[e]:
        ga, gb = g1, g2
        if axis >= 3:
            ga, gb, axis = g2, g1, axis - 3
        _box_face_contacts(d, e, ga, gb, axis, g1, g2)


@ti.func
def _box_distance(d: ti.template(), e, gb, p):
    rot, size = d.gxmat[e, gb], d.geom_size[gb]
    local = rot.transpose() @ (p - d.gxpos[e, gb])
    clamped = ti.Vector([ti.min(ti.max(local[k], -size[k]), size[k]) for k in ti.static(range(3))])
    return (local - clamped).norm()


@ti.func
def _capsule_box(d: ti.template(), e, g1, g2):
    """Capsule g1 on box g2: three spheres on the segment, at its point closest to the box
    (alternating projections between the two convex sets) and at both ends of the stretch
    of segment that lies as close to the box (bisection: distance is convex along it), so a
    capsule lying on a face is held at two points."""
    a, b = _segment(d, e, g1)
    r = d.geom_size[g1][0]
    rot, size, centre = d.gxmat[e, g2], d.geom_size[g2], d.gxpos[e, g2]
    t = _segment_param(a, b, centre)
    for _ in range(8):
        local = rot.transpose() @ (a + t * (b - a) - centre)
        clamped = ti.Vector([ti.min(ti.max(local[k], -size[k]), size[k]) for k in ti.static(range(3))])
        t = _segment_param(a, b, centre + rot @ clamped)
    threshold = ti.max(_box_distance(d, e, g2, a + t * (b - a)), r) + 0.25 * ti.max(d.pair_margin[e], 0.0) + 1e-4 * r
    for k in range(3):  # k = 0, 1: the two ends of the stretch; k = 2: the closest point
        param = t
        if k < 2:
            outer, inner = float(k), t
            if _box_distance(d, e, g2, a + outer * (b - a)) > threshold:
                for _ in range(12):
                    mid = 0.5 * (outer + inner)
                    if _box_distance(d, e, g2, a + mid * (b - a)) <= threshold:
                        inner = mid
                    else:
                        outer = mid
                param = inner
            else:
                param = outer
        _sphere_box(d, e, a + param * (b - a), r, g2, g1, g2)


@ti.func
def _geom_reach(d: ti.template(), e):
    """geom_reach[e, g]: how far any point of geom g can move in this step. The velocity is the
    one the step integrates before constraint impulses, dofs_vel + dt * qacc (semi-implicit
    Euler), so a body at rest that starts to fall reaches g dt^2; per body it is summed down
    the tree over the dofs' motion axes (as kinematics sums cvel), per geom it bounds the speed
    of its centre plus |omega| times its bounding radius."""
    d.pvel_ang[e, 0] = ti.Vector([0.0, 0.0, 0.0])
    d.pvel_lin[e, 0] = ti.Vector([0.0, 0.0, 0.0])
    for b in range(1, d.nbody):
        w, v = d.pvel_ang[e, d.body_parent[b]], d.pvel_lin[e, d.body_parent[b]]
        for j in range(d.body_jntadr[b], d.body_jntadr[b] + d.body_jntnum[b]):
            for k in range(d.jnt_dadr[j], d.jnt_dadr[j] + d.jnt_dofnum[j]):
                qvel = d.dofs_vel[e, k] + d.dt * d.qacc[e, k]
                w += d.cdof_ang[e, k] * qvel
                v += d.cdof_lin[e, k] * qvel
        d.pvel_ang[e, b], d.pvel_lin[e, b] = w, v
    for g in range(d.ngeom):
        b = d.geom_body[g]
        w = d.pvel_ang[e, b]
        d.geom_reach[e, g] = d.dt * ((d.pvel_lin[e, b] + w.cross(d.gxpos[e, g])).norm() + w.norm() * d.geom_rbound[g])


@ti.func
def _pair_band(d: ti.template(), e, pr):
    """Pair pr is reported below this gap: the option's fixed band (RigidOptions.contact_margin),
    the model's margin - gap, and the distance the two geoms can close in this step."""
    return (d.margin + d.pair_offset[pr] + d.geom_reach[e, d.pair_geoms[pr][0]]
            + d.geom_reach[e, d.pair_geoms[pr][1]])


@ti.func
def _may_touch(d: ti.template(), e, g1, g2, band):
    """Bounding-sphere test (g1 may be a plane): the broad phase's per-step pruning."""
    reach = band + d.geom_rbound[g2]
    out = True
    if d.geom_type[g1] == PLANE:
        normal = ti.Vector([d.gxmat[e, g1][0, 2], d.gxmat[e, g1][1, 2], d.gxmat[e, g1][2, 2]])
        out = normal.dot(d.gxpos[e, g2] - d.gxpos[e, g1]) < reach
    else:
        out = (d.gxpos[e, g2] - d.gxpos[e, g1]).norm() < reach + d.geom_rbound[g1]
    return out


@ti.func
def _begin_pair(d: ti.template(), e, pr, band):
    """Loads pair pr's parameters (reported below gap `band`) into the env's scratch."""
    d.pair_offset_e[e] = d.pair_offset[pr]
    d.pair_mu_e[e] = params.pair_friction(d, e, pr)  # with the env's friction ratios
    d.pair_margin[e] = band


@ti.kernel
def detect_primitive(d: ti.template()):
    """Pairs [0, npair_primitive): the exact primitive paths. Starts each env's contact list,
    after each geom's reach in this step (used by every pair, here and in the convex kernels)."""
    for e in range(d.batch):
        d.con_count[e] = 0
        _geom_reach(d, e)
        for pr in range(d.npair_primitive):
            g1, g2 = d.pair_geoms[pr][0], d.pair_geoms[pr][1]
            band = _pair_band(d, e, pr)
            if not _may_touch(d, e, g1, g2, band):
                continue
            _begin_pair(d, e, pr, band)
            t1, t2 = d.geom_type[g1], d.geom_type[g2]
            c1, c2 = d.gxpos[e, g1], d.gxpos[e, g2]
            r1, r2 = d.geom_size[g1][0], d.geom_size[g2][0]
            if t1 == PLANE:
                if t2 == SPHERE:
                    _plane_point(d, e, g1, c2, r2, g1, g2)
                elif t2 == CAPSULE:
                    a, b = _segment(d, e, g2)
                    for k in range(2):
                        _plane_point(d, e, g1, a + float(k) * (b - a), r2, g1, g2)
                elif t2 == BOX:
                    for corner in range(8):
                        s = d.geom_size[g2]
                        offset = ti.Vector([s[0] * (1 - 2 * (corner & 1)), s[1] * (1 - (corner & 2)),
                                            s[2] * (1 - ((corner & 4) >> 1))])
                        _plane_point(d, e, g1, c2 + d.gxmat[e, g2] @ offset, 0.0, g1, g2)
            elif t1 == SPHERE:
                if t2 == SPHERE:
                    _sphere_sphere(d, e, c1, r1, c2, r2, g1, g2)
                elif t2 == CAPSULE:
                    a, b = _segment(d, e, g2)
                    _sphere_sphere(d, e, c1, r1, _closest_on_segment(a, b, c1), r2, g1, g2)
                elif t2 == BOX:
                    _sphere_box(d, e, c1, r1, g2, g1, g2)
            elif t1 == CAPSULE:
                if t2 == CAPSULE:
                    a, b = _segment(d, e, g1)
                    a2, b2 = _segment(d, e, g2)
                    p1, p2 = _segments_closest(a, b, a2, b2)
                    _sphere_sphere(d, e, p1, r1, p2, r2, g1, g2)
                elif t2 == BOX:
                    _capsule_box(d, e, g1, g2)
            elif t1 == BOX and t2 == BOX:
                _box_box(d, e, g1, g2)


@ti.kernel
def prune_convex(d: ti.template()):
    """Pairs [npair_primitive, npair): marks in `pair_live` the ones that may touch this step:
    bounding spheres overlap and (unless the first geom is a plane, whose exact path is one
    support query) so do bounding boxes. A kernel of its own: inside detect_convex's, this
    test made Taichi's compiler crash."""
    for e in range(d.batch):
        for pr in range(d.npair_primitive, d.npair):
            g1, g2 = d.pair_geoms[pr][0], d.pair_geoms[pr][1]
            band = _pair_band(d, e, pr)
            live = 0
            if _may_touch(d, e, g1, g2, band):
                if d.geom_type[g1] == PLANE or not hull.boxes_apart(d, e, g1, g2, band):
                    live = 1
            d.pair_live[e, pr - d.npair_primitive] = live


@ti.kernel
def detect_convex(d: ti.template()):
    """The pairs prune_convex left: ellipsoid, cylinder, mesh (see `convex`)."""
    for e in range(d.batch):
        for pr in range(d.npair_primitive, d.npair):
            if d.pair_live[e, pr - d.npair_primitive]:
                _begin_pair(d, e, pr, _pair_band(d, e, pr))
                convex.detect(d, e, d.pair_geoms[pr][0], d.pair_geoms[pr][1])


def detect_contacts(d):
    """Every env's contact list; the convex kernel (long to compile) runs only where needed."""
    detect_primitive(d)
    if d.npair > d.npair_primitive:
        prune_convex(d)
        detect_convex(d)
