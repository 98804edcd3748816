"""The Taichi fields of a built rigid scene: model constants (shared by all envs) and
per-env working arrays. Kernels in the stage modules take a `RigidData` as a template."""

import numpy as np
import taichi as ti

from sim.solvers.rigid.model import DOF_SIZE, ModelArrays


def _field(arr: np.ndarray, ti_float):
    """An empty field shaped for `arr` (at least one row, so empty models stay allocatable)."""
    dtype = ti.i32 if arr.dtype == np.int32 else ti_float
    n = max(arr.shape[0], 1)
    if arr.ndim == 1:
        return ti.field(dtype, shape=n)
    return ti.Vector.field(arr.shape[1], dtype, shape=n)


@ti.data_oriented
class ConstantLoader:
    """Writes many model arrays into their fields with one kernel launch (one compile), instead
    of a `from_numpy` kernel per field, which would be most of the build time."""

    def __init__(self, fields: list, arrays: list):
        self.fields = fields
        self.widths = [a.shape[1] if a.ndim == 2 else 0 for a in arrays]
        self.offsets = [int(x) for x in np.cumsum([0] + [a.size for a in arrays[:-1]])]
        self.counts = [a.shape[0] for a in arrays]
        self.packed = np.concatenate([a.astype(np.float64).ravel() for a in arrays] + [np.zeros(1)])

    def load(self):
        self._scatter(self.packed)

    @ti.kernel
    def _scatter(self, src: ti.types.ndarray(dtype=ti.f64, ndim=1)):
        for fi in ti.static(range(len(self.fields))):
            f = ti.static(self.fields[fi])
            off, width = ti.static(self.offsets[fi], self.widths[fi])
            for i in range(self.counts[fi]):
                if ti.static(width == 0):
                    f[i] = ti.cast(src[off + i], f.dtype)
                else:
                    for c in ti.static(range(width)):
                        f[i][c] = ti.cast(src[off + i * width + c], f.dtype)


@ti.data_oriented
class RigidData:
    def __init__(self, model: ModelArrays, pairs, batch: int, state: dict, ti_float,
                 max_contacts: int, options, dt: float, gravity):
        arrays = model.arrays()
        arrays.update(derived_arrays(model), **pairs.arrays)
        for key, arr in arrays.items():
            setattr(self, key, _field(arr, ti_float))
        keys = list(arrays)
        for start in range(0, len(keys), 24):  # Taichi warns when unrolling more than 32 fields
            chunk = keys[start:start + 24]
            ConstantLoader([getattr(self, k) for k in chunk], [arrays[k] for k in chunk]).load()
        self.batch, self.nbody, self.njnt, self.nv = batch, model.nbody, model.njnt, model.nv
        self.ngeom, self.npair, self.npair_primitive = model.ngeom, len(pairs.arrays["pair_geoms"]), pairs.n_primitive
        self.max_contacts = max_contacts
        self.max_rows = 3 * max_contacts + 2 * int(np.sum(arrays["jnt_limited"]))  # contacts, then limits
        self.dt = dt
        self.gravity = ti.Vector(list(gravity))
        self.iterations, self.baumgarte, self.slop = options.iterations, options.baumgarte, options.contact_slop
        self.margin = options.contact_margin
        for name, f in state.items():
            setattr(self, name, f)

        nb, nv, ng, nc, nr = self.nbody, max(self.nv, 1), max(self.ngeom, 1), max(max_contacts, 1), self.max_rows
        vec3 = lambda n: ti.Vector.field(3, ti_float, shape=(batch, n))  # noqa: E731
        self.xpos, self.cinert_h, self.crb_h = vec3(nb), vec3(nb), vec3(nb)
        self.xquat = ti.Vector.field(4, ti_float, shape=(batch, nb))
        self.cinert_I = ti.Matrix.field(3, 3, ti_float, shape=(batch, nb))
        self.crb_I = ti.Matrix.field(3, 3, ti_float, shape=(batch, nb))
        self.crb_m = ti.field(ti_float, shape=(batch, nb))
        self.cvel_ang, self.cvel_lin, self.cacc_ang, self.cacc_lin = vec3(nb), vec3(nb), vec3(nb), vec3(nb)
        self.cfrc_ang, self.cfrc_lin = vec3(nb), vec3(nb)
        self.cdof_ang, self.cdof_lin, self.cdofd_ang, self.cdofd_lin = vec3(nv), vec3(nv), vec3(nv), vec3(nv)
        self.gxpos = vec3(ng)
        self.gxmat = ti.Matrix.field(3, 3, ti_float, shape=(batch, ng))
        self.mass = ti.field(ti_float, shape=(batch, nv, nv))
        self.factor = ti.field(ti_float, shape=(batch, nv, nv))
        self.bias = ti.field(ti_float, shape=(batch, nv))
        self.qfrc = ti.field(ti_float, shape=(batch, nv))
        self.qacc = ti.field(ti_float, shape=(batch, nv))
        self.scratch = ti.field(ti_float, shape=(batch, nv))
        self.con_count = ti.field(ti.i32, shape=batch)
        self.con_pos, self.con_normal = vec3(nc), vec3(nc)
        self.con_depth = ti.field(ti_float, shape=(batch, nc))
        self.con_mu = ti.field(ti_float, shape=(batch, nc))
        self.con_body = ti.Vector.field(2, ti.i32, shape=(batch, nc))
        self.row_count = ti.field(ti.i32, shape=batch)
        self.row_J = ti.field(ti_float, shape=(batch, nr, nv))
        self.row_W = ti.field(ti_float, shape=(batch, nr, nv))
        for name in ("row_A", "row_b", "row_lam", "row_mu"):
            setattr(self, name, ti.field(ti_float, shape=(batch, nr)))
        self.row_kind = ti.field(ti.i32, shape=(batch, nr))

        # collision: per-env scratch of the pair being tested (see collision.detect_contacts)
        self.pair_margin = ti.field(ti_float, shape=batch)   # report gaps below this
        self.pair_offset_e = ti.field(ti_float, shape=batch)  # the pair's margin - gap
        self.pair_mu_e = ti.field(ti_float, shape=batch)
        self.slot_key = ti.field(ti_float, shape=(batch, 4))   # a convex pair's contact patch (convex.patch)
        self.slot_depth = ti.field(ti_float, shape=(batch, 4))
        self.slot_pos = ti.Vector.field(3, ti_float, shape=(batch, 4))
        self.slot_used = ti.field(ti.i32, shape=(batch, 4))


def derived_arrays(model: ModelArrays) -> dict[str, np.ndarray]:
    """Indices the kernels walk: each body's nearest dof up its chain, each dof's joint."""
    last = np.full(model.nbody, -1, dtype=np.int32)
    for d, b in enumerate(model.dof_body):
        last[b] = d
    for b in range(1, model.nbody):
        if last[b] < 0:
            last[b] = last[model.body_parent[b]]
    dof_jnt = np.zeros(model.nv, dtype=np.int32)
    for j in range(model.njnt):
        dof_jnt[model.jnt_dadr[j]:model.jnt_dadr[j] + DOF_SIZE[model.jnt_type[j]]] = j
    return {"body_lastdof": last, "dof_jnt": dof_jnt}
