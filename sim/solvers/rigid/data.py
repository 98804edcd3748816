"""The Taichi fields of a built rigid scene, every one declared here by name (as MJX's
types.py does): model constants shared by all envs, the state fields the scene owns, and
per-env working arrays. Kernels in the stage modules take a `RigidData` as a template."""

import numpy as np
import taichi as ti

from sim.solvers.rigid.elements import EQ_ROWS
from sim.solvers.rigid.geometry import collision_arrays
from sim.solvers.rigid.model import DOF_SIZE, ModelArrays
from sim.solvers.rigid.params import pair_friction_sources
from sim.solvers.rigid.tree import ancestor_arrays


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


class _Constants:
    """Allocates one constant field per model array as it is declared, then loads them all."""

    def __init__(self, arrays: dict, ti_float):
        self.arrays, self.ti_float, self.declared = arrays, ti_float, {}

    def __call__(self, key: str):
        self.declared[key] = _field(self.arrays[key], self.ti_float)
        return self.declared[key]

    def load(self):
        missing = sorted(set(self.arrays) - set(self.declared))
        if missing:
            raise RuntimeError(f"model arrays without a RigidData field: {missing}")
        keys = list(self.declared)
        for start in range(0, len(keys), 24):  # Taichi warns when unrolling more than 32 fields
            chunk = keys[start:start + 24]
            ConstantLoader([self.declared[k] for k in chunk], [self.arrays[k] for k in chunk]).load()


@ti.data_oriented
class RigidData:
    def __init__(self, model: ModelArrays, pairs, batch: int, state: dict, ti_float,
                 max_contacts: int, options, dt: float, gravity):
        arrays = model.arrays()
        arrays.update(derived_arrays(model), **pairs.arrays, **collision_arrays(model))
        arrays["pair_mu_src"] = pair_friction_sources(model, pairs.arrays["pair_geoms"], arrays.pop("pair_mu"))
        c = _Constants(arrays, ti_float)
        # ---- model constants (index 0 of bodies = the world)
        self.body_parent, self.body_pos, self.body_quat = c("body_parent"), c("body_pos"), c("body_quat")
        self.body_ipos, self.body_iquat = c("body_ipos"), c("body_iquat")
        self.body_mass, self.body_inertia = c("body_mass"), c("body_inertia")
        self.body_jntadr, self.body_jntnum, self.body_static = c("body_jntadr"), c("body_jntnum"), c("body_static")
        self.body_lastdof = c("body_lastdof")       # nearest dof up the body's chain (-1: none)
        self.body_gravcomp = c("body_gravcomp")     # fraction of gravity compensated (1: gravity off)
        self.jnt_type, self.jnt_qadr, self.jnt_dadr = c("jnt_type"), c("jnt_qadr"), c("jnt_dadr")
        self.jnt_dofnum = c("jnt_dofnum")           # dofs of the joint (DOF_SIZE of its type)
        self.jnt_pos, self.jnt_axis = c("jnt_pos"), c("jnt_axis")
        self.jnt_limited, self.jnt_range = c("jnt_limited"), c("jnt_range")
        self.jnt_stiffness, self.jnt_springref, self.jnt_qref = c("jnt_stiffness"), c("jnt_springref"), c("jnt_qref")
        self.jnt_margin = c("jnt_margin")
        self.dof_body, self.dof_parent, self.dof_jnt = c("dof_body"), c("dof_parent"), c("dof_jnt")
        self.dof_armature, self.dof_damping = c("dof_armature"), c("dof_damping")
        self.dof_kp, self.dof_kv, self.dof_mode, self.dof_target = c("dof_kp"), c("dof_kv"), c("dof_mode"), c("dof_target")
        self.dof_force_lo, self.dof_force_hi = c("dof_force_lo"), c("dof_force_hi")
        self.dof_target_lo, self.dof_target_hi = c("dof_target_lo"), c("dof_target_hi")
        self.dof_frictionloss = c("dof_frictionloss")
        self.dof_actfrc_lo, self.dof_actfrc_hi = c("dof_actfrc_lo"), c("dof_actfrc_hi")
        # fixed tendons and their wraps (dof, qpos address, coefficient)
        self.ten_adr, self.ten_num, self.ten_limited = c("ten_adr"), c("ten_num"), c("ten_limited")
        self.ten_range, self.ten_margin = c("ten_range"), c("ten_margin")
        self.ten_stiffness, self.ten_springlength = c("ten_stiffness"), c("ten_springlength")
        self.ten_damping, self.ten_frictionloss = c("ten_damping"), c("ten_frictionloss")
        self.wrap_dof, self.wrap_qadr, self.wrap_coef = c("wrap_dof"), c("wrap_qadr"), c("wrap_coef")
        # MuJoCo actuators driven by `ctrl`
        self.act_trntype, self.act_trnid, self.act_qadr = c("act_trntype"), c("act_trnid"), c("act_qadr")
        self.act_gear, self.act_gain, self.act_bias = c("act_gear"), c("act_gain"), c("act_bias")
        self.act_ctrlrange, self.act_forcerange = c("act_ctrlrange"), c("act_forcerange")
        self.act_ctrl0 = c("act_ctrl0")
        # equality constraints
        self.eq_type, self.eq_obj, self.eq_data = c("eq_type"), c("eq_obj"), c("eq_data")
        self.eq_ref, self.eq_timeconst = c("eq_ref"), c("eq_timeconst")
        self.geom_type, self.geom_body = c("geom_type"), c("geom_body")
        self.geom_pos, self.geom_quat, self.geom_size = c("geom_pos"), c("geom_quat"), c("geom_size")
        self.geom_friction, self.geom_contype, self.geom_conaffinity = (c("geom_friction"), c("geom_contype"),
                                                                        c("geom_conaffinity"))
        self.geom_rbound = c("geom_rbound")         # bounding radius about the geom's frame (MuJoCo's)
        # convex mesh hulls: per geom (first vertex, count, first plane, count) into hull_vert / hull_plane
        self.geom_hull, self.hull_vert, self.hull_plane = c("geom_hull"), c("hull_vert"), c("hull_plane")
        # collision helpers (geometry.collision_arrays): bounding box in the geom frame, hull vertex graph
        self.geom_box, self.geom_climb = c("geom_box"), c("geom_climb")
        self.hull_nbr_adr, self.hull_nbr = c("hull_nbr_adr"), c("hull_nbr")
        self.geom_group, self.hull_group, self.hull_group_span = c("geom_group"), c("hull_group"), c("hull_group_span")
        # candidate geom pairs (see broadphase.PairList): geoms, friction, margin - gap, contact cap;
        # pair_mu_src: each geom's share of the friction, which its per-env ratio scales (params.py)
        self.pair_geoms, self.pair_mu_src = c("pair_geoms"), c("pair_mu_src")
        self.pair_offset, self.pair_cap = c("pair_offset"), c("pair_cap")
        self.qpos0 = c("qpos0")
        # ---- helper "dyn" (smooth stages): each dof's ancestors as a flat list (see tree.py)
        arrays.update(ancestor_arrays(model.dof_parent))
        self.dof_ancadr, self.dof_ancnum, self.dof_anc = c("dof_ancadr"), c("dof_ancnum"), c("dof_anc")
        c.load()
        # L^T D L of H = M + dt * diag(implicit_gain), sparse along the tree (dynamics.factor_ldl)
        self.ld = ti.field(ti_float, shape=(batch, max(len(arrays["dof_anc"]), 1)))
        self.ld_diag = ti.field(ti_float, shape=(batch, max(model.nv, 1)))
        self.batch, self.nbody, self.njnt, self.nv = batch, model.nbody, model.njnt, model.nv
        self.ngeom, self.npair, self.npair_primitive = model.ngeom, len(pairs), pairs.n_primitive
        self.ntendon, self.nact, self.neq = model.ntendon, model.nact, model.neq
        self.max_contacts = max_contacts
        self.max_rows = max(1, constraint_rows(model, max_contacts))
        self.dt = dt
        self.gravity = ti.Vector(list(gravity))
        self.iterations, self.baumgarte, self.slop = options.iterations, options.baumgarte, options.contact_slop
        self.margin = options.contact_margin

        # ---- state fields (owned by the scene, saved in checkpoints; see RigidSolver.state_specs)
        self.qpos, self.dofs_vel = state["qpos"], state["dofs_vel"]
        self.links_pos, self.links_quat = state["links_pos"], state["links_quat"]
        self.ctrl_mode, self.ctrl_pos, self.ctrl_vel, self.ctrl_force = (state["ctrl_mode"], state["ctrl_pos"],
                                                                         state["ctrl_vel"], state["ctrl_force"])
        self.dofs_kp, self.dofs_kv = state["dofs_kp"], state["dofs_kv"]
        self.ctrl = state["ctrl"]        # inputs of the MuJoCo actuators (act_*)
        # per-env model parameters (domain randomisation, see params.py)
        self.links_mass_shift, self.links_COM_shift = state["links_mass_shift"], state["links_COM_shift"]
        self.geoms_friction_ratio = state["geoms_friction_ratio"]

        # ---- per-env working arrays, rebuilt every substep
        nb, nv, ng, nc, nr = self.nbody, max(self.nv, 1), max(self.ngeom, 1), max(max_contacts, 1), self.max_rows
        vec3 = lambda n: ti.Vector.field(3, ti_float, shape=(batch, n))  # noqa: E731
        per_dof = lambda: ti.field(ti_float, shape=(batch, nv))  # noqa: E731
        # kinematics: body frames, spatial inertia about the origin, velocities, dof motion axes
        self.xpos, self.xquat = vec3(nb), ti.Vector.field(4, ti_float, shape=(batch, nb))
        self.cinert_h, self.cinert_I = vec3(nb), ti.Matrix.field(3, 3, ti_float, shape=(batch, nb))
        self.cvel_ang, self.cvel_lin = vec3(nb), vec3(nb)
        self.cdof_ang, self.cdof_lin, self.cdofd_ang, self.cdofd_lin = vec3(nv), vec3(nv), vec3(nv), vec3(nv)
        self.gxpos, self.gxmat = vec3(ng), ti.Matrix.field(3, 3, ti_float, shape=(batch, ng))
        # dynamics: composite inertia, RNE accelerations and forces, joint-space quantities
        self.crb_m, self.crb_h = ti.field(ti_float, shape=(batch, nb)), vec3(nb)
        self.crb_I = ti.Matrix.field(3, 3, ti_float, shape=(batch, nb))
        self.cacc_ang, self.cacc_lin, self.cfrc_ang, self.cfrc_lin = vec3(nb), vec3(nb), vec3(nb), vec3(nb)
        self.mass = ti.field(ti_float, shape=(batch, nv, nv))     # M (with armature)
        self.bias = per_dof()            # C(q, qd) qd + g (MuJoCo's qfrc_bias)
        self.qfrc_smooth = per_dof()     # passive + control - bias (MuJoCo's qfrc_smooth)
        self.implicit_gain = per_dof()   # damping + servo kv taken implicitly into H
        self.qacc = per_dof()
        self.act_qfrc = per_dof()        # actuator forces before the joints' actuatorfrcrange
        self.qfrc_applied = per_dof()    # link wrenches as dof forces, then H^-1 of them (external.py)
        self.ten_length = ti.field(ti_float, shape=(batch, max(self.ntendon, 1)))
        self.ten_vel = ti.field(ti_float, shape=(batch, max(self.ntendon, 1)))
        # contacts
        self.con_count = ti.field(ti.i32, shape=batch)
        self.con_pos, self.con_normal = vec3(nc), vec3(nc)
        self.con_depth, self.con_mu = ti.field(ti_float, shape=(batch, nc)), ti.field(ti_float, shape=(batch, nc))
        self.con_body = ti.Vector.field(2, ti.i32, shape=(batch, nc))
        # constraint rows: Jacobian, W = H^-1 J^T, diagonal J W, target, impulse, friction bound, kind
        self.row_count = ti.field(ti.i32, shape=batch)
        self.row_J = ti.field(ti_float, shape=(batch, nr, nv))
        self.row_W = ti.field(ti_float, shape=(batch, nr, nv))
        self.row_A, self.row_b = ti.field(ti_float, shape=(batch, nr)), ti.field(ti_float, shape=(batch, nr))
        self.row_lam, self.row_mu = ti.field(ti_float, shape=(batch, nr)), ti.field(ti_float, shape=(batch, nr))
        self.row_kind = ti.field(ti.i32, shape=(batch, nr))
        self.row_solve = per_dof()       # H^-1 J^T of the row being prepared
        # collision: per-env scratch of the pair being tested (see collision.detect_contacts)
        self.pair_margin = ti.field(ti_float, shape=batch)   # report gaps below this
        self.pair_offset_e = ti.field(ti_float, shape=batch)  # the pair's margin - gap
        self.pair_mu_e = ti.field(ti_float, shape=batch)
        self.slot_key = ti.field(ti_float, shape=(batch, 4))   # a convex pair's contact patch (convex.patch)
        self.slot_depth = ti.field(ti_float, shape=(batch, 4))
        self.slot_pos = ti.Vector.field(3, ti_float, shape=(batch, 4))
        self.slot_used = ti.field(ti.i32, shape=(batch, 4))
        # a convex pair's candidate contact points (x, y, z, gap): every feature point of both geoms at most
        n_features = max([8] + [h[1] for h in model.geom_hull])
        self.patch_point = ti.Vector.field(4, ti_float, shape=(batch, 2 * n_features))
        self.pair_live = ti.field(ti.i32, shape=(batch, max(len(pairs) - pairs.n_primitive, 1)))  # see prune_convex
        # collision: how far each geom can move in this step (collision._geom_reach), from each body's
        # velocity before constraint impulses (dofs_vel + dt * qacc)
        self.pvel_ang, self.pvel_lin = vec3(nb), vec3(nb)
        self.geom_reach = ti.field(ti_float, shape=(batch, ng))

        # ---- warm start (warmstart.py): the previous substep's impulses (state fields), a
        # non-contact row's key into warmstart_row, matching of old and new contacts
        self.warmstart_count, self.warmstart_row = state["warmstart_count"], state["warmstart_row"]
        self.warmstart_con_body, self.warmstart_con_pos = state["warmstart_con_body"], state["warmstart_con_pos"]
        self.warmstart_con_impulse = state["warmstart_con_impulse"]
        self.row_key = ti.field(ti.i32, shape=(batch, nr))
        self.warm_free = ti.field(ti.i32, shape=self.warmstart_con_pos.shape)
        self.warm_match = ti.field(ti.i32, shape=(batch, nc))  # each new contact's old one (-1: none)


def constraint_rows(model: ModelArrays, max_contacts: int) -> int:
    """Most constraint rows one env can have: 3 per contact, 2 per limited joint or tendon,
    1 per dof or tendon with frictionloss, 1 per joint equality, 3 per connect, 6 per weld."""
    eq_rows = sum(EQ_ROWS[t] for t in model.eq_type)
    return (3 * max_contacts + 2 * (int(np.sum(model.jnt_limited)) + int(np.sum(model.ten_limited)))
            + int(np.count_nonzero(model.dof_frictionloss)) + int(np.count_nonzero(model.ten_frictionloss)) + eq_rows)


def derived_arrays(model: ModelArrays) -> dict[str, np.ndarray]:
    """Indices the kernels walk: each body's nearest dof up its chain, each dof's joint, each
    joint's dof count."""
    last = np.full(model.nbody, -1, dtype=np.int32)
    for d, b in enumerate(model.dof_body):
        last[b] = d
    for b in range(1, model.nbody):
        if last[b] < 0:
            last[b] = last[model.body_parent[b]]
    dofnum = np.array([DOF_SIZE[t] for t in model.jnt_type], dtype=np.int32)
    dof_jnt = np.zeros(model.nv, dtype=np.int32)
    for j in range(model.njnt):
        dof_jnt[model.jnt_dadr[j]:model.jnt_dadr[j] + dofnum[j]] = j
    return {"body_lastdof": last, "dof_jnt": dof_jnt, "jnt_dofnum": dofnum}
