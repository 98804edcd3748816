"""Weakly compressible SPH (Becker & Teschner 2007) in 3-D, batched over environments.

Per substep, one kernel launch runs every stage for all envs: bin active particles into a
uniform grid of cells one support radius wide (a counting sort per env, each cell's list
sorted by particle index so sums never depend on thread order), density by summation, Tait
pressure, pressure, viscosity (Genesis's `mu`), surface tension (Genesis's `gamma`, sph/tension.py) and
artificial-viscosity forces (each pairwise antisymmetric, so momentum is conserved), then
symplectic Euler with the domain walls and the scene's static planes.

Determinism: no float is ever summed atomically (cell counts are integers, each cell's list
is sorted, density and force are gathers), so on the CPU a trajectory repeats bit for bit with
or without deterministic mode, and envs never affect each other's bits.

The smoothing kernel lives in sph/kernels.py and the surface tension term in sph/tension.py;
the material, its lattice calibrations (mass, viscosity) and the one step kernel stay here.
"""

from dataclasses import dataclass

import numpy as np
import taichi as ti

from sim.solvers.base import FLOAT, FieldSpec, Solver, register_solver
from sim.solvers.particles import ParticleEntity, check_inside, check_sampler, contact_planes, sample_morph
from sim.solvers.sph import tension
from sim.solvers.sph.kernels import cubic_spline, spline_dw, spline_w
from sim.validate import check_number, domain_bounds

SUPPORT = 2.0  # kernel support radius in particle spacings (about 32 neighbours on a lattice)
VISCOUS_DT = 0.125  # explicit viscosity is stable for dt < VISCOUS_DT * h^2 / mu (Monaghan 2005)


@dataclass(frozen=True)
class SPHOptions:
    """lower_bound/upper_bound: the simulation box (m), whose faces are walls (the default's
    floor z = 0 is the ground). particle_size: particle spacing (m); the kernel support radius
    is SUPPORT times it. substeps: SPH substeps per scene step (default: max(SimOptions.substeps,
    enough for a CFL number of 0.4 at the fastest sound speed plus 1 m/s, and for the
    explicit viscosity's limit VISCOUS_DT * h^2 / mu))."""

    lower_bound: tuple[float, float, float] = (-1.0, -1.0, 0.0)
    upper_bound: tuple[float, float, float] = (1.0, 1.0, 1.0)
    particle_size: float = 0.02
    substeps: int | None = None

    def __post_init__(self):
        lower, upper = domain_bounds("SPHOptions", self.lower_bound, self.upper_bound)
        object.__setattr__(self, "lower_bound", lower)
        object.__setattr__(self, "upper_bound", upper)
        if not float(self.particle_size) > 0:
            raise ValueError(f"SPHOptions.particle_size must be positive, got {self.particle_size}")
        object.__setattr__(self, "particle_size", float(self.particle_size))
        if self.substeps is not None and (int(self.substeps) != self.substeps or self.substeps < 1):
            raise ValueError(f"SPHOptions.substeps must be an int >= 1 or None, got {self.substeps}")

    @property
    def support_radius(self) -> float:
        return SUPPORT * self.particle_size

    @property
    def cell_res(self) -> tuple[int, int, int]:
        """Neighbour-search cells per axis (each at least one support radius wide)."""
        return tuple(max(1, int(np.floor((u - lo) / self.support_radius)))
                     for lo, u in zip(self.lower_bound, self.upper_bound))


@dataclass(frozen=True)
class Liquid:
    """Genesis's SPH liquid. rho: rest density (kg/m^3); Tait pressure stiffness *
    ((rho/rho0)^exponent - 1) in Pa; mu: kinematic viscosity (m^2/s), the nu of the
    Navier-Stokes term nu * laplacian(v), in Genesis's (Monaghan's) form
    a_i += 2(d+2) nu_ij m_j / rho_ij (v_ij . x_ij) / (r^2 + 0.01 h^2) grad W_ij, with the pair's
    mean mu and density (so momentum is conserved) and scaled by viscosity_scale() so that on the
    particle lattice it gives nu * laplacian(v) (Genesis leaves it unscaled: its liquids act
    about 0.7 times as viscous as their mu);
    viscosity (ours, not Genesis's): Monaghan's artificial viscosity alpha, on approach only,
    which damps the pressure waves of weak compressibility; gamma: surface tension (m^3/s^2),
    Genesis's cohesion term and default (sim/solvers/sph/tension.py). sampler: how a morph is
    filled (sim.solvers.particles.SAMPLERS)."""

    rho: float = 1000.0
    stiffness: float = 50000.0
    exponent: float = 7.0
    mu: float = 0.005
    gamma: float = 0.01
    sampler: str = "regular"
    viscosity: float = 0.05

    def __post_init__(self):
        for name in ("rho", "stiffness", "exponent"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"SPH.Liquid.{name} must be positive, got {getattr(self, name)}")
        check_number("SPH.Liquid.mu", self.mu, 0.0)
        check_number("SPH.Liquid.viscosity", self.viscosity, 0.0)
        check_number("SPH.Liquid.gamma", self.gamma, 0.0)
        check_sampler("SPH.Liquid", self.sampler)

    def sound_speed(self) -> float:
        return float(np.sqrt(self.stiffness * self.exponent / self.rho))


def _lattice_offsets(spacing: float) -> np.ndarray:
    """Offsets (k, 3) of the lattice neighbours within the support radius, self included."""
    n = int(np.ceil(SUPPORT))
    axis = np.arange(-n, n + 1) * spacing
    offsets = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    return offsets[np.linalg.norm(offsets, axis=1) < SUPPORT * spacing]


def viscosity_scale() -> float:
    """1 / (the viscosity sum of a lattice particle for v = (z^2 / 2, 0, 0), whose Laplacian is
    exactly (1, 0, 0)): the factor that makes the discrete operator nu * laplacian(v). It does
    not depend on the spacing (the support is SUPPORT spacings), so it is computed at spacing 1."""
    x = _lattice_offsets(1.0)
    x = x[np.any(x != 0, axis=1)]
    h, r = SUPPORT, np.linalg.norm(x, axis=1)  # x = x_i - x_j with particle i at the origin
    q, sigma = r / h, 8.0 / (np.pi * h ** 3)
    dw = np.where(q <= 0.5, sigma / h * (18 * q ** 2 - 12 * q), -sigma / h * 6 * (1 - q) ** 2)
    v_ij_dot_x = -(x[:, 2] ** 2 / 2) * x[:, 0]  # (v_i - v_j) . x_ij, v_i = 0
    volume = lattice_mass(1.0, 1.0)  # m_j / rho_j on a lattice at rest density
    acc_x = 2 * (3 + 2) * np.sum(volume * v_ij_dot_x / (r * r + 0.01 * h * h) * dw / r * x[:, 0])
    return float(1.0 / acc_x)


def lattice_mass(rho: float, spacing: float) -> float:
    """Particle mass giving density `rho` inside a cubic lattice of `spacing` (self included),
    so that a body sampled at rest starts exactly at its rest density."""
    offsets = _lattice_offsets(spacing)
    return rho / float(cubic_spline(np.linalg.norm(offsets, axis=1), SUPPORT * spacing).sum())


@ti.data_oriented
class SPHSolver(Solver):
    name = "SPHSolver"
    options_cls = SPHOptions
    options_kwarg = "sph_options"
    materials = {"SPH.Liquid": Liquid}

    def __init__(self, scene, options, sim_options):
        super().__init__(scene, options, sim_options)
        self._points: list[np.ndarray] = []
        self._volumes: list[float] = []
        self.active = None

    @property
    def n_particles(self) -> int:
        return sum(e.n_particles for e in self.entities)

    @property
    def substeps(self) -> int:
        """SPH substeps per scene step (see SPHOptions.substeps)."""
        if self.options.substeps is not None:
            return int(self.options.substeps)
        h = self.options.support_radius
        speed = max(e.material.sound_speed() for e in self.entities) + 1.0
        needed = int(np.ceil(self.sim_options.dt * speed / (0.4 * h)))
        mu = max(e.material.mu for e in self.entities) * viscosity_scale()
        viscous = int(np.ceil(self.sim_options.dt * mu / (VISCOUS_DT * h * h)))
        cohesive = tension.substeps_needed(max(e.material.gamma for e in self.entities), h,
                                           len(_lattice_offsets(1.0)) - 1, self.sim_options.dt)
        return max(self.sim_options.substeps, needed, viscous, cohesive)

    def add_entity(self, morph, material):
        if not isinstance(material, Liquid):
            raise TypeError(f"SPHSolver takes gs.materials.SPH.Liquid, got {type(material).__name__}")
        points, volume = sample_morph(morph, self.options.particle_size, material.sampler)
        check_inside(points, self.options.lower_bound, self.options.upper_bound,
                     f"SPH entity {len(self.entities)} ({type(morph).__name__})")
        entity = ParticleEntity(self, morph, material, self.n_particles, len(points))
        self.entities.append(entity)
        self._points.append(points)
        self._volumes.append(volume)
        return entity

    def state_specs(self):
        n = self.n_particles
        return [FieldSpec("pos", (n,), FLOAT, (3,)), FieldSpec("vel", (n,), FLOAT, (3,)),
                FieldSpec("active", (n,), np.int32)]

    # ------------------------------------------------------------------ build
    def build(self, n_envs, batch, state):
        self.state = state
        self.pos, self.vel, self.active = state["pos"], state["vel"], state["active"]
        n, fdtype = self.n_particles, self.pos.dtype
        np_float = self.pos.to_numpy().dtype
        n_cells = int(np.prod(self.options.cell_res))
        self.density, self.pressure = ti.field(fdtype, shape=(batch, n)), ti.field(fdtype, shape=(batch, n))
        self.acc = ti.Vector.field(3, fdtype, shape=(batch, n))
        self.cell_of = ti.field(ti.i32, shape=(batch, n))
        self.cell_count, self.cell_start = ti.field(ti.i32, shape=(batch, n_cells)), ti.field(ti.i32, shape=(batch, n_cells))
        self.cell_fill = ti.field(ti.i32, shape=(batch, n_cells))
        self.sorted_ids = ti.field(ti.i32, shape=(batch, max(n, 1)))
        self.p_mass, self.rho0, self.stiffness, self.exponent, self.alpha, self.sound, self.mu, self.gamma = (
            ti.field(fdtype, shape=n) for _ in range(8))
        d = self.options.particle_size
        columns = {name: [] for name in ("p_mass", "rho0", "stiffness", "exponent", "alpha", "sound", "mu", "gamma")}
        for e, points, volume in zip(self.entities, self._points, self._volumes):
            m = e.material
            # a lattice particle's mass, scaled by the volume a particle stands for (d^3 on the lattice)
            values = dict(p_mass=lattice_mass(m.rho, d) * volume / d ** 3, rho0=m.rho, stiffness=m.stiffness,
                          exponent=m.exponent, alpha=m.viscosity, sound=m.sound_speed(), mu=m.mu * viscosity_scale(),
                          gamma=m.gamma)
            for name, value in values.items():
                columns[name].append(np.full(len(points), value))
        for name, values in columns.items():
            getattr(self, name).from_numpy(np.concatenate(values).astype(np_float))
        points = np.concatenate(self._points).astype(np_float)
        self.pos.from_numpy(np.ascontiguousarray(np.broadcast_to(points, (batch, n, 3))))
        self.vel.from_numpy(np.zeros((batch, n, 3), np_float))
        self.active.from_numpy(np.ones((batch, n), np.int32))
        self.plane_p, self.plane_n, self.n_planes = contact_planes(self.scene, None)

    # ------------------------------------------------------------------ step
    def step(self):
        n_sub = self.substeps
        o = self.options
        for _ in range(n_sub):
            self._substep(self.sim_options.dt / n_sub, ti.Vector(self.sim_options.gravity),
                          ti.Vector(o.lower_bound), ti.Vector(o.upper_bound), ti.Vector(o.cell_res),
                          o.support_radius, o.particle_size, self.n_planes)

    @ti.func
    def _cell(self, x, lower, res: ti.template(), h):
        c = ti.cast(ti.floor((x - lower) / h), ti.i32)
        c = ti.min(ti.max(c, 0), res - 1)
        return c

    @ti.func
    def _linear(self, c, res):
        return (c[0] * res[1] + c[1]) * res[2] + c[2]

    @ti.kernel
    def _substep(self, dt: float, g: ti.types.vector(3, float), lower: ti.types.vector(3, float),
                 upper: ti.types.vector(3, float), res: ti.types.vector(3, ti.i32), h: float, spacing: float,
                 n_planes: int):
        # --- neighbour grid: counting sort of active particles into cells, per env
        for b, c in self.cell_count:
            self.cell_count[b, c] = 0
        for b, p in self.pos:
            if self.active[b, p]:
                c = self._linear(self._cell(self.pos[b, p], lower, res, h), res)
                self.cell_of[b, p] = c
                ti.atomic_add(self.cell_count[b, c], 1)
        for b in range(self.cell_count.shape[0]):
            total = 0
            for c in range(self.cell_count.shape[1]):
                self.cell_start[b, c] = total
                self.cell_fill[b, c] = total
                total += self.cell_count[b, c]
        for b, p in self.pos:
            if self.active[b, p]:
                slot = ti.atomic_add(self.cell_fill[b, self.cell_of[b, p]], 1)
                self.sorted_ids[b, slot] = p
        for b, c in self.cell_count:  # insertion sort: a fixed order whatever the thread schedule
            start, count = self.cell_start[b, c], self.cell_count[b, c]
            for i in range(1, count):
                key = self.sorted_ids[b, start + i]
                j = i - 1
                while j >= 0 and self.sorted_ids[b, start + j] > key:
                    self.sorted_ids[b, start + j + 1] = self.sorted_ids[b, start + j]
                    j -= 1
                self.sorted_ids[b, start + j + 1] = key
        # --- density and Tait pressure
        for b, i in self.pos:
            if self.active[b, i]:
                xi = self.pos[b, i]
                rho = 0.0
                ci = self._cell(xi, lower, res, h)
                for off in ti.grouped(ti.ndrange((-1, 2), (-1, 2), (-1, 2))):
                    cj = ci + off
                    if all(cj >= 0) and all(cj < res):
                        c = self._linear(cj, res)
                        for s in range(self.cell_start[b, c], self.cell_start[b, c] + self.cell_count[b, c]):
                            j = self.sorted_ids[b, s]
                            r2 = (xi - self.pos[b, j]).norm_sqr()
                            if r2 < h * h:
                                rho += self.p_mass[j] * spline_w(ti.sqrt(r2), h)
                self.density[b, i] = rho
                ratio = rho / self.rho0[i]
                self.pressure[b, i] = ti.max(0.0, self.stiffness[i] * (ti.pow(ratio, self.exponent[i]) - 1.0))
        # --- forces
        for b, i in self.pos:
            if self.active[b, i]:
                xi, vi = self.pos[b, i], self.vel[b, i]
                rho_i = self.density[b, i]
                pi_term = self.pressure[b, i] / (rho_i * rho_i)
                acc = g
                ci = self._cell(xi, lower, res, h)
                for off in ti.grouped(ti.ndrange((-1, 2), (-1, 2), (-1, 2))):
                    cj = ci + off
                    if all(cj >= 0) and all(cj < res):
                        c = self._linear(cj, res)
                        for s in range(self.cell_start[b, c], self.cell_start[b, c] + self.cell_count[b, c]):
                            j = self.sorted_ids[b, s]
                            xij = xi - self.pos[b, j]
                            r2 = xij.norm_sqr()
                            if j != i and r2 > 0 and r2 < h * h:
                                r = ti.sqrt(r2)
                                rho_j = self.density[b, j]
                                grad = spline_dw(r, h) / r * xij
                                vx = (vi - self.vel[b, j]).dot(xij)
                                visc = 0.0
                                if vx < 0:
                                    nu = (self.alpha[i] + self.alpha[j]) * h * (self.sound[i] + self.sound[j]) \
                                        / (2.0 * (rho_i + rho_j))
                                    visc = -nu * vx / (r * r + 0.01 * h * h)
                                acc -= self.p_mass[j] * (pi_term + self.pressure[b, j] / (rho_j * rho_j) + visc) * grad
                                rho_ij = 0.5 * (rho_i + rho_j)  # Genesis's viscosity (see Liquid)
                                acc += 5.0 * (self.mu[i] + self.mu[j]) * self.p_mass[j] / rho_ij * vx \
                                    / (r2 + 0.01 * h * h) * grad
                                acc += tension.cohesion(xij, r, h, spacing, self.gamma[i], self.gamma[j],
                                                        self.p_mass[i], self.p_mass[j])
                self.acc[b, i] = acc
        # --- integrate, then walls and planes
        for b, i in self.pos:
            if self.active[b, i]:
                v = self.vel[b, i] + dt * self.acc[b, i]
                x = self.pos[b, i] + dt * v
                for d in ti.static(range(3)):
                    if x[d] < lower[d]:
                        x[d] = lower[d]
                        v[d] = ti.max(v[d], 0.0)
                    if x[d] > upper[d]:
                        x[d] = upper[d]
                        v[d] = ti.min(v[d], 0.0)
                for k in range(n_planes):
                    depth = (x - self.plane_p[k]).dot(self.plane_n[k])
                    if depth < 0:
                        x -= depth * self.plane_n[k]
                        v -= ti.min(v.dot(self.plane_n[k]), 0.0) * self.plane_n[k]
                self.pos[b, i], self.vel[b, i] = x, v


register_solver(SPHSolver)
