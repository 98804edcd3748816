"""MLS-MPM (moving least squares MPM with APIC transfers, quadratic B-splines) in 3-D,
batched over environments: grid fields are (env, i, j, k), particle fields (env, particle).

Three kernel launches per substep run the stages for all envs: particle to grid (after clearing
the grid), grid update (gravity, domain walls, static planes), grid to particle. (One kernel with
both transfers does not compile to SPIR-V: Taichi's offloaded tasks then share a constant that
only the first defines, and Vulkan's builder refuses it.) Elastic is Neo-Hookean;
Snow is fixed-corotated with F's singular values clamped and hardening by Jp (Stomakhin et
al. 2013); Liquid keeps only the volume change of F.

Determinism: on the CPU, particle-to-grid runs parallel over envs and in particle order within
one env (no contention, and faster than contended atomics on CPUs), so the float sums at a grid
node have a fixed order: trajectories repeat bit for bit, and envs never change each other's
bits, with any thread count. On a GPU particle-to-grid is parallel over all particles with
atomic adds, so results there agree to rounding only.

The file is over 400 lines because the materials (Elastic, Snow, ElastoPlastic, Liquid) and the
kernels that switch on their kinds are one idea, kept in one place.
"""

from dataclasses import dataclass

import numpy as np
import taichi as ti

from sim import runtime
from sim.solvers.base import FLOAT, FieldSpec, Solver, register_solver
from sim.solvers.mpm.entity import MPMEntity
from sim.solvers.particles import check_inside, check_sampler, contact_planes, sample_morph
from sim.validate import domain_bounds

PAD_CELLS = 3  # grid nodes outside the domain on each side; they hold the walls
ELASTIC, SNOW, LIQUID = 0, 1, 2
MAX_HARDENING = 5.0  # cap of Snow's hardening factor on its Lame parameters


@dataclass(frozen=True)
class MPMOptions:
    """lower_bound/upper_bound: the simulation box (m); its faces are frictional walls (the
    default's floor z = 0 is the ground).
    grid_density: grid cells per metre. particle_size: particle lattice spacing when sampling
    morphs (default half a cell, 8 particles per cell). substeps: MPM substeps per scene step
    (default: max(SimOptions.substeps, enough for a CFL number of 0.3 at the stiffest
    material's sound speed plus 1 m/s)). friction: Coulomb coefficient of walls and planes."""

    lower_bound: tuple[float, float, float] = (-1.0, -1.0, 0.0)
    upper_bound: tuple[float, float, float] = (1.0, 1.0, 1.0)
    grid_density: float = 64.0
    particle_size: float | None = None
    substeps: int | None = None
    friction: float = 0.3

    def __post_init__(self):
        lower, upper = domain_bounds("MPMOptions", self.lower_bound, self.upper_bound)
        object.__setattr__(self, "lower_bound", lower)
        object.__setattr__(self, "upper_bound", upper)
        if not float(self.grid_density) > 0:
            raise ValueError(f"MPMOptions.grid_density must be positive, got {self.grid_density}")
        object.__setattr__(self, "grid_density", float(self.grid_density))
        if self.particle_size is not None:
            if not float(self.particle_size) > 0:
                raise ValueError(f"MPMOptions.particle_size must be positive, got {self.particle_size}")
            object.__setattr__(self, "particle_size", float(self.particle_size))
        if self.substeps is not None and (int(self.substeps) != self.substeps or self.substeps < 1):
            raise ValueError(f"MPMOptions.substeps must be an int >= 1 or None, got {self.substeps}")
        if not float(self.friction) >= 0:
            raise ValueError(f"MPMOptions.friction must be >= 0, got {self.friction}")
        object.__setattr__(self, "friction", float(self.friction))

    @property
    def dx(self) -> float:
        return 1.0 / self.grid_density

    @property
    def grid_origin(self) -> tuple[float, float, float]:
        """The grid extends PAD_CELLS beyond the domain, where nodes act as walls."""
        return tuple(lo - PAD_CELLS * self.dx for lo in self.lower_bound)

    @property
    def grid_res(self) -> tuple[int, int, int]:
        return tuple(int(np.ceil((u - lo) * self.grid_density - 1e-9)) + 2 * PAD_CELLS
                     for lo, u in zip(self.lower_bound, self.upper_bound))


def _lame(E: float, nu: float) -> tuple[float, float]:
    return E / (2 * (1 + nu)), E * nu / ((1 + nu) * (1 - 2 * nu))


@dataclass(frozen=True)
class _MPMMaterial:
    E: float
    nu: float
    rho: float
    sampler: str
    kind = ELASTIC  # class constant, not a field: selects the constitutive model in the kernel

    def __post_init__(self):
        name = type(self).__name__
        if not float(self.E) > 0:
            raise ValueError(f"MPM.{name}.E must be positive, got {self.E}")
        if not 0 <= float(self.nu) < 0.5:
            raise ValueError(f"MPM.{name}.nu must be in [0, 0.5), got {self.nu}")
        if not float(self.rho) > 0:
            raise ValueError(f"MPM.{name}.rho must be positive, got {self.rho}")
        check_sampler(f"MPM.{name}", self.sampler)

    def lame(self) -> tuple[float, float]:
        return _lame(self.E, self.nu)

    def sound_speed(self) -> float:
        mu, lam = _lame(self.E, self.nu)
        return float(np.sqrt((lam + 2 * mu) / self.rho))


@dataclass(frozen=True)
class Elastic(_MPMMaterial):
    """Neo-Hookean elastic solid. E: Young's modulus (Pa), nu: Poisson ratio, rho: kg/m^3.
    sampler: how a morph is filled (sim.solvers.particles.SAMPLERS), on every MPM material."""

    E: float = 3e5
    nu: float = 0.2
    rho: float = 1000.0
    sampler: str = "regular"


@dataclass(frozen=True)
class Snow(_MPMMaterial):
    """Elasto-plastic snow: singular values of F clamped to [1 - theta_c, 1 + theta_s], the
    plastic volume ratio Jp hardens the Lame parameters by exp(hardening * (1 - Jp)), capped
    at MAX_HARDENING (so the sound speed, and the substeps it needs, stay bounded)."""

    E: float = 1.4e5
    nu: float = 0.2
    rho: float = 400.0
    sampler: str = "regular"
    theta_c: float = 2.5e-2
    theta_s: float = 4.5e-3
    hardening: float = 10.0
    kind = SNOW

    def __post_init__(self):
        super().__post_init__()
        if not (0 < float(self.theta_c) < 1 and float(self.theta_s) > 0 and float(self.hardening) >= 0):
            raise ValueError(f"MPM.Snow needs 0 < theta_c < 1, theta_s > 0, hardening >= 0; got "
                             f"{self.theta_c}, {self.theta_s}, {self.hardening}")

    def sound_speed(self) -> float:
        return super().sound_speed() * float(np.sqrt(MAX_HARDENING))


@dataclass(frozen=True)
class ElastoPlastic(_MPMMaterial):
    """Genesis's ElastoPlastic without von Mises: Snow's singular-value clamp to
    [1 - yield_lower, 1 + yield_higher] with no hardening. use_von_mises=True (Genesis's
    default) is refused: that yield model is not implemented here."""

    E: float = 3e5
    nu: float = 0.2
    rho: float = 1000.0
    yield_lower: float = 2.5e-2
    yield_higher: float = 4.5e-3
    use_von_mises: bool = True
    von_mises_yield_stress: float = 10000.0
    sampler: str = "regular"
    kind = SNOW
    hardening = 0.0

    def __post_init__(self):
        super().__post_init__()
        if self.use_von_mises:
            raise ValueError("MPM.ElastoPlastic(use_von_mises=True) is not supported: pass use_von_mises=False "
                             "for the clamp of F's singular values to [1 - yield_lower, 1 + yield_higher]")
        if not (0 < float(self.yield_lower) < 1 and float(self.yield_higher) > 0):
            raise ValueError(f"MPM.ElastoPlastic needs 0 < yield_lower < 1 and yield_higher > 0; got "
                             f"{self.yield_lower}, {self.yield_higher}")

    @property
    def theta_c(self):
        return self.yield_lower

    @property
    def theta_s(self):
        return self.yield_higher


@dataclass(frozen=True)
class Liquid(_MPMMaterial):
    """Weakly compressible liquid: no shear stress, pressure lambda * J * (J - 1) from the
    volume ratio J. E and nu set lambda (the default gives a sound speed of ~17 m/s)."""

    E: float = 1e6
    nu: float = 0.2
    rho: float = 1000.0
    sampler: str = "regular"
    kind = LIQUID

    def lame(self) -> tuple[float, float]:
        return 0.0, _lame(self.E, self.nu)[1]

    def sound_speed(self) -> float:
        return float(np.sqrt(self.lame()[1] / self.rho))


@ti.data_oriented
class MPMSolver(Solver):
    name = "MPMSolver"
    options_cls = MPMOptions
    options_kwarg = "mpm_options"
    materials = {"MPM.Elastic": Elastic, "MPM.Snow": Snow, "MPM.Liquid": Liquid, "MPM.ElastoPlastic": ElastoPlastic}

    def __init__(self, scene, options, sim_options):
        super().__init__(scene, options, sim_options)
        self._samples: list[tuple[np.ndarray, float]] = []
        self.active = None

    @property
    def particle_size(self) -> float:
        return self.options.particle_size or 0.5 * self.options.dx

    @property
    def n_particles(self) -> int:
        return sum(e.n_particles for e in self.entities)

    @property
    def substeps(self) -> int:
        """MPM substeps per scene step (see MPMOptions.substeps)."""
        if self.options.substeps is not None:
            return int(self.options.substeps)
        speed = max(m.sound_speed() for m in (e.material for e in self.entities)) + 1.0
        needed = int(np.ceil(self.sim_options.dt * speed / (0.3 * self.options.dx)))
        return max(self.sim_options.substeps, needed)

    def add_entity(self, morph, material):
        if not isinstance(material, _MPMMaterial):
            raise TypeError(f"MPMSolver takes gs.materials.MPM.*, got {type(material).__name__}")
        points, volume = sample_morph(morph, self.particle_size, material.sampler)
        opts = self.options
        check_inside(points, opts.lower_bound, opts.upper_bound,
                     f"MPM entity {len(self.entities)} ({type(morph).__name__})")
        entity = MPMEntity(self, morph, material, self.n_particles, len(points))
        self.entities.append(entity)
        self._samples.append((points, volume))
        return entity

    def state_specs(self):
        n = self.n_particles
        return [FieldSpec("pos", (n,), FLOAT, (3,)), FieldSpec("vel", (n,), FLOAT, (3,)),
                FieldSpec("C", (n,), FLOAT, (3, 3)), FieldSpec("F", (n,), FLOAT, (3, 3)),
                FieldSpec("Jp", (n,)), FieldSpec("active", (n,), np.int32)]

    # ------------------------------------------------------------------ build
    def build(self, n_envs, batch, state):
        self.ordered_scatter = runtime.config().backend == runtime.cpu
        self.state = state
        for name in ("pos", "vel", "C", "F", "Jp", "active"):
            setattr(self, name, state[name])
        n, fdtype = self.n_particles, self.pos.dtype
        self.grid_v = ti.Vector.field(3, fdtype, shape=(batch, *self.options.grid_res))
        self.grid_m = ti.field(fdtype, shape=(batch, *self.options.grid_res))
        self.p_mass, self.p_vol, self.mu0, self.la0 = (ti.field(fdtype, shape=n) for _ in range(4))
        self.theta_c, self.theta_s, self.hardening = (ti.field(fdtype, shape=n) for _ in range(3))
        self.kind = ti.field(ti.i32, shape=n)
        per_particle = {name: [] for name in ("p_mass", "p_vol", "mu0", "la0", "theta_c", "theta_s",
                                              "hardening", "kind")}
        for e, (points, volume) in zip(self.entities, self._samples):
            m = e.material
            mu, lam = m.lame()
            values = dict(p_mass=m.rho * volume, p_vol=volume, mu0=mu, la0=lam, kind=m.kind,
                          theta_c=getattr(m, "theta_c", 0.0), theta_s=getattr(m, "theta_s", 0.0),
                          hardening=getattr(m, "hardening", 0.0))
            for name, value in values.items():
                per_particle[name].append(np.full(len(points), value))
        np_float = self.pos.to_numpy().dtype
        for name, values in per_particle.items():
            field = getattr(self, name)
            field.from_numpy(np.concatenate(values).astype(np.int32 if name == "kind" else np_float))
        points = np.concatenate([p for p, _ in self._samples]).astype(np_float)
        eye = np.broadcast_to(np.eye(3, dtype=np_float), (batch, n, 3, 3))
        self.pos.from_numpy(np.ascontiguousarray(np.broadcast_to(points, (batch, n, 3))))
        self.vel.from_numpy(np.zeros((batch, n, 3), np_float))
        self.C.from_numpy(np.zeros((batch, n, 3, 3), np_float))
        self.F.from_numpy(np.ascontiguousarray(eye))
        self.Jp.from_numpy(np.ones((batch, n), np_float))
        self.active.from_numpy(np.ones((batch, n), np.int32))
        self.plane_p, self.plane_n, self.n_planes = contact_planes(self.scene, None)

    # ------------------------------------------------------------------ step
    def step(self):
        n_sub = self.substeps
        dt = self.sim_options.dt / n_sub
        o = self.options
        g, origin = ti.Vector(self.sim_options.gravity), ti.Vector(o.grid_origin)
        lower, upper = ti.Vector(o.lower_bound), ti.Vector(o.upper_bound)
        for _ in range(n_sub):  # three kernels, not one: see _particles_to_grid
            self._particles_to_grid(dt, origin, o.dx)
            self._grid_update(dt, g, origin, lower, upper, o.dx, o.friction, self.n_planes)
            self._grid_to_particles(dt, origin, lower, upper, o.dx)

    @ti.func
    def _stress(self, p, F, Jp_in):
        """Kirchhoff stress of particle p, and its F and Jp after plasticity. Only Snow pays
        for an SVD: Elastic is Neo-Hookean, Liquid needs only det(F)."""
        kind = self.kind[p]
        eye = ti.Matrix.identity(float, 3)
        stress = ti.Matrix.zero(float, 3, 3)
        new_F, Jp = F, Jp_in
        if kind == ELASTIC:
            J = F.determinant()
            stress = self.mu0[p] * (F @ F.transpose() - eye) + self.la0[p] * ti.log(J) * eye
        elif kind == LIQUID:
            J = F.determinant()
            new_F = eye * ti.pow(J, 1.0 / 3.0)
            stress = self.la0[p] * J * (J - 1.0) * eye
        else:
            h = ti.min(ti.exp(self.hardening[p] * (1.0 - Jp_in)), MAX_HARDENING)
            U, sig, V = ti.svd(F)
            for d in ti.static(range(3)):
                clamped = ti.min(ti.max(sig[d, d], 1.0 - self.theta_c[p]), 1.0 + self.theta_s[p])
                if clamped != sig[d, d]:  # Jp changes only by plastic flow, never by rounding
                    Jp *= sig[d, d] / clamped
                    sig[d, d] = clamped
            J = sig[0, 0] * sig[1, 1] * sig[2, 2]
            new_F = U @ sig @ V.transpose()
            stress = 2.0 * self.mu0[p] * h * (new_F - U @ V.transpose()) @ new_F.transpose() \
                + self.la0[p] * h * J * (J - 1.0) * eye
        return stress, new_F, Jp

    @ti.func
    def _collide(self, v, n, friction):
        """Velocity v at a wall with inward normal n: no inflow, Coulomb friction."""
        vn = v.dot(n)
        out = v
        if vn < 0:
            vt = v - vn * n
            vt_norm = vt.norm()
            scale = 0.0
            if vt_norm > 0:
                scale = ti.max(0.0, 1.0 + friction * vn / vt_norm)
            out = vt * scale
        return out

    @ti.func
    def _stencil(self, x, origin, inv_dx):
        """The 3x3x3 grid nodes around x: lowest node, x in cell units from it, and quadratic
        B-spline weights w[node offset, axis]."""
        Xp = (x - origin) * inv_dx
        base = ti.cast(Xp - 0.5, ti.i32)
        fx = Xp - base
        w = ti.Matrix.rows([0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1.0) ** 2, 0.5 * (fx - 0.5) ** 2])
        return base, fx, w

    @ti.func
    def _p2g(self, b, p, dt, origin, dx):
        """Particle p of env b: update F and Jp, scatter mass and APIC momentum to the grid."""
        if self.active[b, p]:
            inv_dx = 1.0 / dx
            base, fx, w = self._stencil(self.pos[b, p], origin, inv_dx)
            F = (ti.Matrix.identity(float, 3) + dt * self.C[b, p]) @ self.F[b, p]
            stress, F, Jp = self._stress(p, F, self.Jp[b, p])
            self.F[b, p], self.Jp[b, p] = F, Jp
            m = self.p_mass[p]
            affine = (-dt * self.p_vol[p] * 4.0 * inv_dx * inv_dx) * stress + m * self.C[b, p]
            mv = m * self.vel[b, p]
            for i, j, k in ti.ndrange(3, 3, 3):
                dpos = (ti.Vector([i, j, k]) - fx) * dx
                weight = w[i, 0] * w[j, 1] * w[k, 2]
                node = ti.Vector([b, base[0] + i, base[1] + j, base[2] + k])
                self.grid_v[node] += weight * (mv + affine @ dpos)
                self.grid_m[node] += weight * m

    @ti.kernel
    def _particles_to_grid(self, dt: float, origin: ti.types.vector(3, float), dx: float):
        """Clear the grid, then scatter every active particle to it.

        Each stage of a substep is its own kernel because Taichi 1.7's SPIR-V code generator
        (Vulkan) fails ('Value "tmpN" does not yet exist') on one kernel whose two parallel
        loops both index a local matrix with a loop variable (w[i, 0] here and in
        _grid_to_particles): the second loop's task refers to a constant that only the first
        task defines. Separate kernels compile separately; the arithmetic is unchanged."""
        for I in ti.grouped(self.grid_m):
            self.grid_v[I] = ti.Vector.zero(float, 3)
            self.grid_m[I] = 0.0
        if ti.static(self.ordered_scatter):
            for b in range(self.pos.shape[0]):  # parallel over envs, particle order within one
                for p in range(self.pos.shape[1]):
                    self._p2g(b, p, dt, origin, dx)
        else:
            for b, p in self.pos:
                self._p2g(b, p, dt, origin, dx)

    @ti.kernel
    def _grid_update(self, dt: float, g: ti.types.vector(3, float), origin: ti.types.vector(3, float),
                     lower: ti.types.vector(3, float), upper: ti.types.vector(3, float), dx: float,
                     friction: float, n_planes: int):
        for I in ti.grouped(self.grid_m):
            if self.grid_m[I] > 0:
                v = self.grid_v[I] / self.grid_m[I] + dt * g
                x = origin + ti.Vector([I[1], I[2], I[3]]) * dx
                for d in ti.static(range(3)):
                    n = ti.Vector.zero(float, 3)
                    n[d] = 1.0
                    if x[d] < lower[d]:
                        v = self._collide(v, n, friction)
                    if x[d] > upper[d]:
                        v = self._collide(v, -n, friction)
                for k in range(n_planes):
                    if (x - self.plane_p[k]).dot(self.plane_n[k]) < 0:
                        v = self._collide(v, self.plane_n[k], friction)
                self.grid_v[I] = v

    @ti.kernel
    def _grid_to_particles(self, dt: float, origin: ti.types.vector(3, float), lower: ti.types.vector(3, float),
                           upper: ti.types.vector(3, float), dx: float):
        inv_dx = 1.0 / dx
        for b, p in self.pos:
            if self.active[b, p]:
                base, fx, w = self._stencil(self.pos[b, p], origin, inv_dx)
                new_v = ti.Vector.zero(float, 3)
                new_C = ti.Matrix.zero(float, 3, 3)
                for i, j, k in ti.ndrange(3, 3, 3):
                    dpos = ti.Vector([i, j, k]) - fx
                    weight = w[i, 0] * w[j, 1] * w[k, 2]
                    gv = self.grid_v[b, base[0] + i, base[1] + j, base[2] + k]
                    new_v += weight * gv
                    new_C += (4.0 * inv_dx * weight) * gv.outer_product(dpos)
                self.vel[b, p], self.C[b, p] = new_v, new_C
                self.pos[b, p] = ti.min(ti.max(self.pos[b, p] + dt * new_v, lower), upper)


register_solver(MPMSolver)
