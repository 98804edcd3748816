"""Collision geometry from a compiled MuJoCo model: which geoms collide, mesh convex hulls,
and the contact rules MuJoCo applies (`<contact><exclude>`, `<pair>`, contact flags).

A mesh collides as the convex hull of its vertices, as in MuJoCo. The hull is computed with
scipy's Qhull (the same hull MuJoCo builds with Qhull) because its facet equations give the
face planes the narrow phase uses for point-in-hull distances; MuJoCo's `mesh_graph` has
only vertices and triangles. Vertices come from `m.mesh_vert`, already in the geom's frame.

Contact flags (`<option><flag>`) of one MJCF file apply to that entity's geoms and bodies:
`contact="disable"` drops all its contacts, `filterparent="disable"` lets its parent and
child bodies collide. Flags that change contacts and are not honoured (`override`) are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np
from scipy.spatial import ConvexHull

PLANE, SPHERE, CAPSULE, ELLIPSOID, CYLINDER, BOX, MESH = 0, 2, 3, 4, 5, 6, 7   # mjtGeom values we collide
COLLIDING_TYPES = (PLANE, SPHERE, CAPSULE, ELLIPSOID, CYLINDER, BOX, MESH)
CONDIMS = (1, 3)  # frictionless and sliding friction; torsional / rolling friction (4, 6) are refused


@dataclass
class ContactRules:
    """Host-side contact data, used once at build to list candidate pairs (global indices)."""

    geom_condim: list = field(default_factory=list)
    geom_priority: list = field(default_factory=list)
    geom_margin: list = field(default_factory=list)
    geom_gap: list = field(default_factory=list)
    geom_dynamic: list = field(default_factory=list)    # False: only collides through a <pair>
    exclude: set = field(default_factory=set)            # {(body, body)} with the lower id first
    no_parent_filter: set = field(default_factory=set)  # bodies of entities with filterparent disabled
    pairs: list = field(default_factory=list)            # (g1, g2, friction, condim, margin, gap)


def check_contacts(m: mujoco.MjModel, refuse) -> None:
    """Refuse (by name) the contact features and geoms the collision code would not honour."""
    if m.opt.enableflags & mujoco.mjtEnableBit.mjENBL_OVERRIDE:
        refuse('<flag override="enable"> (contact parameter override)')
    if m.opt.disableflags & mujoco.mjtDisableBit.mjDSBL_CONTACT:
        return  # nothing of this model collides
    for g in range(m.ngeom):
        if not (m.geom_contype[g] or m.geom_conaffinity[g]):
            continue
        gname = _geom_name(m, g)
        gt = int(m.geom_type[g])
        if gt not in COLLIDING_TYPES:
            refuse(f"colliding {mujoco.mjtGeom(gt).name.removeprefix('mjGEOM_').lower()} {gname} (collision "
                   f"supports plane, sphere, capsule, ellipsoid, cylinder, box, mesh; set contype=conaffinity=0 "
                   f"for visual geoms)")
        if m.geom_condim[g] not in CONDIMS:
            refuse(f"condim={m.geom_condim[g]} on {gname} (only 1 and 3)")
    for p in range(m.npair):
        if m.pair_dim[p] not in CONDIMS:
            refuse(f"condim={m.pair_dim[p]} on contact pair #{p} (only 1 and 3)")
        for g in (m.pair_geom1[p], m.pair_geom2[p]):
            if int(m.geom_type[g]) not in COLLIDING_TYPES:
                refuse(f"contact pair #{p} with {_geom_name(m, g)} of an unsupported type")


def _geom_name(m, g) -> str:
    name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, g)
    return f"geom {name!r}" if name else f"geom #{g}"


# the 26 directions to the faces, edges and corners of a cube: face planes are grouped by the
# one nearest their normal (see collision_arrays)
_DIRECTIONS = np.array([(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1) if i or j or k], float)
_DIRECTIONS /= np.linalg.norm(_DIRECTIONS, axis=1, keepdims=True)


def _plane_groups(planes: np.ndarray) -> np.ndarray:
    """The direction (index into _DIRECTIONS) each face plane is grouped under."""
    return np.argmax(planes[:, :3] @ _DIRECTIONS.T, axis=1)


def _hull(verts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hull vertices and outward face planes (n, offset: n.x + offset = signed distance), the
    planes of one group (_plane_groups) next to each other."""
    hull = ConvexHull(verts)
    planes = np.unique(np.round(hull.equations, 12), axis=0)
    return verts[hull.vertices], planes[np.argsort(_plane_groups(planes), kind="stable")]


def append_geoms(model, m: mujoco.MjModel, gbody, pos, quat, quat_mul, quat_rotate) -> None:
    """Append the geoms of `m` that can touch something, with their hulls and contact rules.
    `gbody(b)` maps a local body id to the combined model's; world geoms move with (pos, quat)."""
    rules = model.contact
    if m.opt.disableflags & mujoco.mjtDisableBit.mjDSBL_CONTACT:
        return
    in_pair = set(m.pair_geom1.tolist()) | set(m.pair_geom2.tolist())
    local_to_global = {}
    for g in range(m.ngeom):
        dynamic = bool(m.geom_contype[g] or m.geom_conaffinity[g])
        if not dynamic and g not in in_pair:
            continue  # visual only: its mass is already in the body inertia compiled by MuJoCo
        gt, body = int(m.geom_type[g]), int(m.geom_bodyid[g])
        gpos, gquat = m.geom_pos[g].copy(), m.geom_quat[g].copy()
        if body == 0:
            gpos, gquat = pos + quat_rotate(quat, gpos), quat_mul(quat, gquat)
        local_to_global[g] = model.ngeom
        model.geom_type.append(gt)
        model.geom_body.append(gbody(body))
        model.geom_pos.append(gpos)
        model.geom_quat.append(gquat)
        model.geom_size.append(m.geom_size[g].copy())
        model.geom_friction.append(float(m.geom_friction[g, 0]))
        model.geom_contype.append(int(m.geom_contype[g]))
        model.geom_conaffinity.append(int(m.geom_conaffinity[g]))
        model.geom_rbound.append(float(m.geom_rbound[g]))
        vadr, vnum, fadr, fnum = len(model.hull_vert), 0, len(model.hull_plane), 0
        if gt == MESH:
            mesh = int(m.geom_dataid[g])
            start = int(m.mesh_vertadr[mesh])
            verts, planes = _hull(np.asarray(m.mesh_vert[start:start + int(m.mesh_vertnum[mesh])], dtype=np.float64))
            model.hull_vert += list(verts)
            model.hull_plane += list(planes)
            vnum, fnum = len(verts), len(planes)
        model.geom_hull.append([vadr, vnum, fadr, fnum])
        rules.geom_condim.append(int(m.geom_condim[g]))
        rules.geom_priority.append(int(m.geom_priority[g]))
        rules.geom_margin.append(float(m.geom_margin[g]))
        rules.geom_gap.append(float(m.geom_gap[g]))
        rules.geom_dynamic.append(dynamic)
    for sig in m.exclude_signature:
        b1, b2 = gbody(int(sig) >> 16), gbody(int(sig) & 0xFFFF)
        rules.exclude.add((min(b1, b2), max(b1, b2)))
    for p in range(m.npair):
        rules.pairs.append((local_to_global[int(m.pair_geom1[p])], local_to_global[int(m.pair_geom2[p])],
                            float(m.pair_friction[p, 0]), int(m.pair_dim[p]), float(m.pair_margin[p]),
                            float(m.pair_gap[p])))
    if m.opt.disableflags & mujoco.mjtDisableBit.mjDSBL_FILTERPARENT:
        rules.no_parent_filter.update(gbody(b) for b in range(1, m.nbody))


CLIMB_MIN_VERTS = 16  # smaller hulls find their support point by scanning every vertex


def collision_arrays(model) -> dict[str, np.ndarray]:
    """Per-step collision helpers derived from the model's geoms and hulls.

    geom_box (ngeom, 6): a box in the geom's frame (centre, half sizes) holding the geom: the
    oriented box that `collision` tests before a convex pair runs MPR (MuJoCo tests bounding
    boxes in its broad phase too). hull_nbr_adr (nvert, 2) / hull_nbr: each hull vertex's
    neighbours on the hull (global vertex indices), for the hill-climbing support of
    `hull.support_vertex`; geom_climb: the vertex a geom's climb starts from, -1 to scan every
    vertex (not a mesh, or a hull under CLIMB_MIN_VERTS vertices).
    The neighbours are the edges of Qhull's triangulated hull of the hull vertices: on a
    convex polytope a vertex with no neighbour farther along a direction is the farthest of
    all, so the climb ends at the support point. A vertex Qhull drops as coplanar (within
    its precision of a face) has no neighbours and is never the climb's answer; its support
    value is within that precision of the face's.
    hull_group (n, 5) / hull_group_span (n, 2) / geom_group (ngeom, 2): a mesh's face planes by
    group (_plane_groups): the group's direction u, a bound r on |n - u| over its planes, the
    largest n.b + offset over them (b: the bounding box's centre), and the group's planes. For
    y = x - b, every plane of the group has n.x + offset <= u.y + r |y| + that largest value,
    so `hull.distance` skips the groups that cannot beat the best plane found so far."""
    ngeom = len(model.geom_type)
    box = np.zeros((max(ngeom, 1), 6))
    climb = np.full(max(ngeom, 1), -1, dtype=np.int32)
    verts = np.asarray(model.hull_vert, dtype=np.float64).reshape(-1, 3)
    nbr_adr = np.zeros((max(len(verts), 1), 2), dtype=np.int32)
    nbr: list[int] = []
    planes = np.asarray(model.hull_plane, dtype=np.float64).reshape(-1, 4)
    group_of = np.zeros((max(ngeom, 1), 2), dtype=np.int32)
    groups, spans = [], []
    for g in range(ngeom):
        gt, size = model.geom_type[g], np.asarray(model.geom_size[g], dtype=np.float64)
        if gt == MESH:
            first, count = int(model.geom_hull[g][0]), int(model.geom_hull[g][1])
            v = verts[first:first + count]
            lo, hi = v.min(axis=0), v.max(axis=0)
            box[g] = np.concatenate([(lo + hi) / 2, (hi - lo) / 2])
            if count >= CLIMB_MIN_VERTS:
                links = [set() for _ in range(count)]
                for tri in ConvexHull(v).simplices:
                    for a in tri:
                        links[a].update(int(b) for b in tri if b != a)
                for i, adj in enumerate(links):
                    nbr_adr[first + i] = (len(nbr), len(adj))
                    nbr += sorted(first + b for b in adj)
                climb[g] = first + next(i for i, adj in enumerate(links) if adj)
            fadr, fnum = int(model.geom_hull[g][2]), int(model.geom_hull[g][3])
            face = planes[fadr:fadr + fnum]
            which = _plane_groups(face)
            group_of[g] = (len(groups), len(np.unique(which)))
            for u in np.unique(which):  # planes of a group are contiguous (see _hull)
                idx = np.nonzero(which == u)[0]
                members = face[idx]
                radius = np.linalg.norm(members[:, :3] - _DIRECTIONS[u], axis=1).max()
                reach = (members[:, :3] @ box[g, :3] + members[:, 3]).max()
                # padded so float32 rounding never skips a group holding the farthest plane
                groups.append([*_DIRECTIONS[u], radius * (1 + 1e-4) + 1e-6, reach + 1e-6])
                spans.append((fadr + idx[0], len(idx)))
        elif gt == SPHERE:
            box[g, 3:] = size[0]
        elif gt == CAPSULE:
            box[g, 3:] = (size[0], size[0], size[0] + size[1])
        elif gt == CYLINDER:
            box[g, 3:] = (size[0], size[0], size[1])
        elif gt in (BOX, ELLIPSOID):
            box[g, 3:] = size
    return {"geom_box": box, "geom_climb": climb, "hull_nbr_adr": nbr_adr,
            "hull_nbr": np.asarray(nbr or [0], dtype=np.int32), "geom_group": group_of,
            "hull_group": np.asarray(groups or [[0.0] * 5]), "hull_group_span": np.asarray(spans or [(0, 0)], np.int32)}
