"""The fast paths of mesh hulls against the scans they replace, on the real hulls of Genesis's
Franka (13 meshes, 41-152 hull vertices, 78-300 face planes): the hill-climbing support
(hull.support_vertex over the vertex graph of geometry.collision_arrays) finds the farthest
hull vertex from the geom's own start vertex and from random ones; the grouped point distance
(hull.distance, which skips groups of face planes by a bound) equals the largest
distance over every face plane; and every geom's bounding box holds its hull."""

import mujoco
import numpy as np
import pytest
import taichi as ti

from sim.model_wheels import genesis_assets
from sim.solvers.rigid import hull
from sim.solvers.rigid.geometry import CLIMB_MIN_VERTS, MESH, collision_arrays
from sim.solvers.rigid.model import ModelArrays, append_model

N_DIRECTIONS = 256


@ti.data_oriented
class _Hulls:
    """The fields hull.support_vertex reads, filled from a model (as RigidData fills them)."""

    def __init__(self, arrays: dict):
        for key in ("geom_hull", "geom_climb", "hull_vert", "hull_nbr_adr", "hull_nbr", "geom_box", "geom_group",
                    "hull_group", "hull_group_span", "hull_plane"):
            a = arrays[key]
            dtype = ti.i32 if a.dtype == np.int32 else ti.f32
            f = ti.field(dtype, shape=len(a)) if a.ndim == 1 else ti.Vector.field(a.shape[1], dtype, shape=len(a))
            f.from_numpy(a if a.dtype == np.int32 else a.astype(np.float32))
            setattr(self, key, f)

    @ti.kernel
    def climb(self, geoms: ti.types.ndarray(), dirs: ti.types.ndarray(), starts: ti.types.ndarray(),
              out: ti.types.ndarray()):
        for k in range(geoms.shape[0]):
            local = ti.Vector([dirs[k, 0], dirs[k, 1], dirs[k, 2]])
            _, out[k] = hull.support_vertex(self, geoms[k], local, starts[k])

    @ti.kernel
    def distance(self, geoms: ti.types.ndarray(), points: ti.types.ndarray(), out: ti.types.ndarray()):
        for k in range(geoms.shape[0]):
            out[k] = hull.distance(self, geoms[k], ti.Vector([points[k, 0], points[k, 1], points[k, 2]]))


@pytest.fixture(scope="module")
def panda():
    path = genesis_assets(fetch=True) / "xml/franka_emika_panda/panda_no_tendon.xml"
    model = ModelArrays()
    append_model(model, mujoco.MjModel.from_xml_path(str(path)), (0, 0, 0), (1, 0, 0, 0))
    arrays = dict(model.arrays(), **collision_arrays(model))
    return model, arrays


def test_climb_finds_the_farthest_vertex(panda):
    model, arrays = panda
    hulls = _Hulls(arrays)
    verts = arrays["hull_vert"].astype(np.float32).astype(np.float64)
    meshes = [g for g in range(len(model.geom_type)) if model.geom_type[g] == MESH]
    assert len(meshes) == 13
    rng = np.random.default_rng(0)
    for g in meshes:
        first, count = arrays["geom_hull"][g][:2]
        assert arrays["geom_climb"][g] >= 0 if count >= CLIMB_MIN_VERTS else arrays["geom_climb"][g] == -1
        dirs = rng.normal(size=(N_DIRECTIONS, 3))
        # half from the geom's start vertex (-1), half from a random vertex of the hull
        starts = np.where(np.arange(N_DIRECTIONS) % 2 == 0, -1, first + rng.integers(0, count, N_DIRECTIONS))
        got = np.zeros(N_DIRECTIONS, dtype=np.int32)
        hulls.climb(np.full(N_DIRECTIONS, g, dtype=np.int32), dirs.astype(np.float32), starts.astype(np.int32), got)
        assert ((got >= first) & (got < first + count)).all()
        best = (verts[first:first + count] @ dirs.T).max(axis=0)
        reached = np.einsum("ij,ij->i", verts[got], dirs)
        np.testing.assert_allclose(reached, best, rtol=0, atol=1e-6 * np.abs(verts[first:first + count]).max()
                                   * np.linalg.norm(dirs, axis=1).max())


def test_bounding_boxes_hold_the_hulls(panda):
    model, arrays = panda
    for g in range(len(model.geom_type)):
        if model.geom_type[g] != MESH:
            continue
        first, count = arrays["geom_hull"][g][:2]
        box = arrays["geom_box"][g]
        offset = np.abs(arrays["hull_vert"][first:first + count] - box[:3])
        assert (offset <= box[3:] + 1e-12).all()


def test_grouped_distance_is_the_largest_plane_distance(panda):
    model, arrays = panda
    hulls = _Hulls(arrays)
    rng = np.random.default_rng(1)
    for g in [g for g in range(len(model.geom_type)) if model.geom_type[g] == MESH]:
        first, count, fadr, fnum = arrays["geom_hull"][g]
        verts = arrays["hull_vert"][first:first + count]
        # points near the surface (where contacts are judged), inside and out to the box's size
        scale = arrays["geom_box"][g][3:].max()
        points = verts[rng.integers(0, count, 512)] + rng.normal(scale=0.05 * scale, size=(512, 3))
        points[::4] = arrays["geom_box"][g][:3] + rng.normal(scale=scale, size=(128, 3))
        got = np.zeros(512, dtype=np.float32)
        hulls.distance(np.full(512, g, dtype=np.int32), points.astype(np.float32), got)
        planes = arrays["hull_plane"][fadr:fadr + fnum]
        want = (points.astype(np.float32).astype(np.float64) @ planes[:, :3].T + planes[:, 3]).max(axis=1)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * (1 + scale))
