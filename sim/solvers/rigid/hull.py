"""Fast geometric queries of the narrow phase (the data comes from geometry.collision_arrays):
whether two geoms' oriented bounding boxes are apart, and on mesh hulls the support vertex (hill
climbing over the hull's vertex graph) and a point's largest face-plane distance (skipping the
groups of planes that cannot hold it)."""

import taichi as ti


@ti.func
def _bounding_box(d: ti.template(), e, g):
    """Geom g's bounding box (geometry.collision_arrays) in the world: centre, axes, half sizes."""
    b = d.geom_box[g]
    rot = d.gxmat[e, g]
    return d.gxpos[e, g] + rot @ ti.Vector([b[0], b[1], b[2]]), rot, ti.Vector([b[3], b[4], b[5]])


@ti.func
def boxes_apart(d: ti.template(), e, g1, g2, margin):
    """True when an axis separates the bounding boxes of g1 and g2 grown by `margin`: the
    15-axis separating-axis test (either box's face normals, then the cross products of their
    edges), with a small slack on the rotation so near-parallel edges never separate wrongly."""
    c1, rot1, h1 = _bounding_box(d, e, g1)
    c2, rot2, h2 = _bounding_box(d, e, g2)
    rel = rot1.transpose() @ rot2          # rel[i, j] = axis i of box 1 . axis j of box 2
    t = rot1.transpose() @ (c2 - c1)       # centre offset in box 1's frame
    slack = ti.abs(rel) + 1e-5
    apart = False
    for i in ti.static(range(3)):
        if ti.abs(t[i]) > h1[i] + h2[0] * slack[i, 0] + h2[1] * slack[i, 1] + h2[2] * slack[i, 2] + margin:
            apart = True
    for j in ti.static(range(3)):
        dist = ti.abs(t[0] * rel[0, j] + t[1] * rel[1, j] + t[2] * rel[2, j])
        if dist > h2[j] + h1[0] * slack[0, j] + h1[1] * slack[1, j] + h1[2] * slack[2, j] + margin:
            apart = True
    for i in ti.static(range(3)):
        i1, i2 = ti.static((i + 1) % 3, (i + 2) % 3)
        for j in ti.static(range(3)):
            j1, j2 = ti.static((j + 1) % 3, (j + 2) % 3)
            dist = ti.abs(t[i2] * rel[i1, j] - t[i1] * rel[i2, j])
            reach = (h1[i1] * slack[i2, j] + h1[i2] * slack[i1, j] + h2[j1] * slack[i, j2] + h2[j2] * slack[i, j1]
                     + margin * ti.sqrt(ti.max(1.0 - rel[i, j] * rel[i, j], 0.0)))
            if dist > reach:
                apart = True
    return apart


@ti.func
def support_vertex(d: ti.template(), g, local, start):
    """The hull vertex of mesh geom g farthest along `local` (geom frame) and its index: a
    steepest-ascent climb over the hull's vertex graph from vertex `start` (a climb's own
    earlier answer, or -1 for the geom's usual start), or a scan of every vertex for a hull
    too small to climb (see geometry.collision_arrays)."""
    hull = d.geom_hull[g]
    cur = d.geom_climb[g]
    if cur >= 0 and start >= 0:
        cur = start
    best = -1e30
    if cur < 0:
        for i in range(hull[0], hull[0] + hull[1]):
            s = d.hull_vert[i].dot(local)
            if s > best:
                best, cur = s, i
    else:
        best = d.hull_vert[cur].dot(local)
        for _ in range(hull[1]):  # each move is to a farther vertex: at most one per vertex
            adr = d.hull_nbr_adr[cur]
            nxt = cur
            for j in range(adr[0], adr[0] + adr[1]):
                s = d.hull_vert[d.hull_nbr[j]].dot(local)
                if s > best:
                    best, nxt = s, d.hull_nbr[j]
            if nxt == cur:
                break
            cur = nxt
    return d.hull_vert[cur], cur


@ti.func
def _group_bound(d: ti.template(), k, y, ylen):
    """An upper bound on n.x + offset over the face planes of group k (y: x less the geom's
    bounding-box centre; see geometry.collision_arrays)."""
    u = d.hull_group[k]
    return u[0] * y[0] + u[1] * y[1] + u[2] * y[2] + u[3] * ylen + u[4]


@ti.func
def _planes_max(d: ti.template(), k, x, out):
    span = d.hull_group_span[k]
    for i in range(span[0], span[0] + span[1]):
        plane = d.hull_plane[i]
        out = ti.max(out, plane[0] * x[0] + plane[1] * x[1] + plane[2] * x[2] + plane[3])
    return out


@ti.func
def distance(d: ti.template(), g, x):
    """The largest face-plane distance of local point x to mesh geom g's hull: the group of
    planes with the highest bound first, then only the groups whose bound beats the best."""
    box = d.geom_box[g]
    y = x - ti.Vector([box[0], box[1], box[2]])
    ylen = y.norm()
    groups = d.geom_group[g]
    first, top = groups[0], -1e30
    for k in range(groups[0], groups[0] + groups[1]):
        b = _group_bound(d, k, y, ylen)
        if b > top:
            first, top = k, b
    out = _planes_max(d, first, x, -1e30)
    for k in range(groups[0], groups[0] + groups[1]):
        if k != first and _group_bound(d, k, y, ylen) > out:
            out = _planes_max(d, k, x, out)
    return out
