"""FEM solver: hyperelastic linear tetrahedra, explicit integration, batched over environments.

Why explicit: the bodies this simulator serves are soft objects in batched RL scenes, where
thousands of environments step together. An explicit substep is two parallel passes with no
linear solve (element stresses, then a per-vertex gather of forces and a symplectic Euler
update), costs the same in every env, and needs no atomics, so it is bit-reproducible on any
thread count. Its price is the CFL limit: a substep must be shorter than the time a pressure
wave takes to cross the smallest element, so stiff materials need `FEMOptions.substeps`
raised; `FEMSolver.stable_substep()` gives the estimate and build warns when it is exceeded.

Material: stable Neo-Hookean (Smith, de Goes and Kim 2018, without the log term),
psi = mu/2 (I_C - 3) + lam'/2 (J - alpha)^2 with alpha = 1 + mu/lam' and lam' = lam + mu, which
is rest-stable, matches linear elasticity (E, nu) at small strain, and stays well-defined
when an element inverts.

`active` (per env, per vertex): an inactive vertex does not move, and every element touching
it exerts no force. `fixed` (per env, per vertex): the vertex is held where it is (a Dirichlet
boundary, as in a clamped beam) while its elements still act on their other vertices.
"""

import logging
import math
from dataclasses import dataclass

import numpy as np
import taichi as ti

from sim import morphs, runtime
from sim.solvers.base import FLOAT, FieldSpec, Solver, register_solver
from sim.solvers.fem import tet_mesh
from sim.solvers.particles import contact_planes
from sim.solvers.vertex_entity import VertexEntity
from sim.utils.geom import transform_by_trans_quat
from sim.validate import check_count, check_number

logger = logging.getLogger("sim")


@dataclass(frozen=True)
class FEMOptions:
    """substeps: explicit steps per scene substep; element_size: target tetrahedral cell width
    (m); floor_height: z of a horizontal floor, None for none (every gs.morphs.Plane entity of
    the scene is a floor too); friction: Coulomb coefficient of floors; damping:
    mass-proportional velocity damping rate (1/s), which slows rigid motion as well, so keep it
    0 for ballistic bodies."""

    substeps: int = 20
    element_size: float = 0.05
    floor_height: float | None = None
    friction: float = 0.5
    damping: float = 0.0

    def __post_init__(self):
        check_count("FEMOptions.substeps", self.substeps)
        check_number("FEMOptions.element_size", self.element_size, 0.0, low_inclusive=False)
        if self.floor_height is not None:
            check_number("FEMOptions.floor_height", self.floor_height, -math.inf)
        check_number("FEMOptions.friction", self.friction, 0.0)
        check_number("FEMOptions.damping", self.damping, 0.0)


@dataclass(frozen=True)
class Elastic:
    """Stable Neo-Hookean solid: Young's modulus E (Pa), Poisson ratio nu, density rho (kg/m^3)."""

    E: float = 1e5
    nu: float = 0.3
    rho: float = 1000.0

    def __post_init__(self):
        check_number("FEM.Elastic.E", self.E, 0.0, low_inclusive=False)
        check_number("FEM.Elastic.rho", self.rho, 0.0, low_inclusive=False)
        if not (math.isfinite(self.nu) and 0.0 <= self.nu < 0.5):
            raise ValueError(f"FEM.Elastic.nu must be in [0, 0.5), got {self.nu!r}")

    @property
    def lame(self) -> tuple[float, float]:
        mu = self.E / (2 * (1 + self.nu))
        lam = self.E * self.nu / ((1 + self.nu) * (1 - 2 * self.nu))
        return mu, lam

    @property
    def wave_speed(self) -> float:
        mu, lam = self.lame
        return math.sqrt((lam + 2 * mu) / self.rho)


class FEMEntity(VertexEntity):
    """A tetrahedral body; `tets` (n_elements, 4) index its own vertices."""

    def __init__(self, solver, morph, material, start, rest_pos, tets):
        super().__init__(solver, morph, material, start, rest_pos)
        self.tets = tets

    @property
    def n_elements(self) -> int:
        return len(self.tets)

    def set_fixed(self, vertices=None, fixed: bool = True, envs_idx=None) -> None:
        """Hold vertices where they are (fixed=True) or let them go, in the selected envs."""
        self._set_flag("fixed", vertices, fixed, envs_idx)

    def set_active(self, vertices=None, active: bool = True, envs_idx=None) -> None:
        """Deactivate vertices (they stop moving; elements touching them exert no force) or
        reactivate them, in the selected envs."""
        self._set_flag("active", vertices, active, envs_idx)


def _mesh(morph, element_size):
    if isinstance(morph, morphs.Box):
        local, tets = tet_mesh.box(morph.size, element_size)
        return transform_by_trans_quat(local, morph.pos, morph.quat), tets
    if isinstance(morph, morphs.Sphere):
        local, tets = tet_mesh.ball(morph.radius, element_size)
        return local + np.asarray(morph.pos), tets
    raise TypeError(f"FEM takes gs.morphs.Box or gs.morphs.Sphere, got {type(morph).__name__}")


@ti.data_oriented
class FEMSolver(Solver):
    name = "FEMSolver"
    options_cls = FEMOptions
    options_kwarg = "fem_options"
    materials = {"FEM.Elastic": Elastic}

    def add_entity(self, morph, material):
        if not isinstance(material, Elastic):
            raise TypeError(f"FEM solver takes FEM.Elastic, got {type(material).__name__}")
        rest, tets = _mesh(morph, self.options.element_size)
        entity = FEMEntity(self, morph, material, self.n_vertices, rest, tets)
        self.entities.append(entity)
        return entity

    @property
    def n_vertices(self) -> int:
        return sum(e.n_vertices for e in self.entities)

    @property
    def substep_dt(self) -> float:
        return self.sim_options.dt / self.substeps

    @property
    def substeps(self) -> int:
        """Explicit steps per scene.step()."""
        return self.sim_options.substeps * self.options.substeps

    def state_specs(self):
        n = self.n_vertices
        return [FieldSpec("pos", (n,), FLOAT, (3,)), FieldSpec("vel", (n,), FLOAT, (3,)),
                FieldSpec("active", (n,), "int32"), FieldSpec("fixed", (n,), "int32")]

    def stable_substep(self) -> float:
        """CFL estimate of the largest stable explicit substep: the smallest element height
        over the pressure wave speed, over every entity."""
        limits = []
        for e in self.entities:
            x = e.rest_pos[e.tets]                                         # (t, 4, 3)
            faces = [(1, 2, 3), (0, 2, 3), (0, 1, 3), (0, 1, 2)]
            areas = np.stack([0.5 * np.linalg.norm(np.cross(x[:, b] - x[:, a], x[:, c] - x[:, a]), axis=1)
                              for a, b, c in faces], 1)
            heights = 3.0 * tet_mesh.signed_volumes(e.rest_pos, e.tets) / areas.max(axis=1)
            limits.append(heights.min() / e.material.wave_speed)
        return min(limits)

    # ------------------------------------------------------------------ build
    def build(self, n_envs, batch, state):
        self.state = state
        self.pos, self.vel, self.active, self.fixed = state["pos"], state["vel"], state["active"], state["fixed"]
        np_float = runtime.config().np_float
        rest = np.concatenate([e.rest_pos for e in self.entities])
        tets = np.concatenate([e.tets + e.start for e in self.entities]).astype(np.int32)
        x = rest[tets]
        dm = np.stack([x[:, k] - x[:, 0] for k in (1, 2, 3)], axis=-1)
        dm_inv = np.linalg.inv(dm)
        volume = np.linalg.det(dm) / 6.0
        lame = np.concatenate([np.tile(e.material.lame, (e.n_elements, 1)) for e in self.entities])
        mu = lame[:, 0]
        lam = lame[:, 1] + mu                        # the stable Neo-Hookean remapping
        rho = np.concatenate([np.full(e.n_elements, e.material.rho) for e in self.entities])
        mass = np.zeros(len(rest))
        np.add.at(mass, tets.ravel(), np.repeat(rho * volume / 4.0, 4))
        # incidence list: for vertex v, slots offsets[v]..offsets[v+1] hold 4 * tet + corner
        corner_of = np.arange(4 * len(tets), dtype=np.int32)
        order = np.argsort(tets.ravel(), kind="stable")
        offsets = np.concatenate([[0], np.cumsum(np.bincount(tets.ravel(), minlength=len(rest)))])

        n_t = len(tets)
        self.tets = ti.Vector.field(4, ti.i32, shape=n_t)
        self.dm_inv = ti.Matrix.field(3, 3, float, shape=n_t)
        self.volume = ti.field(float, shape=n_t)
        self.mu = ti.field(float, shape=n_t)
        self.lam = ti.field(float, shape=n_t)
        self.inv_mass = ti.field(float, shape=len(rest))
        self.incidence = ti.field(ti.i32, shape=4 * n_t)
        self.offsets = ti.field(ti.i32, shape=len(rest) + 1)
        self.corner_forces = ti.Matrix.field(3, 3, float, shape=(batch, n_t))  # forces on corners 1..3
        self.gravity = ti.Vector.field(3, float, shape=())

        self.tets.from_numpy(tets)
        self.dm_inv.from_numpy(dm_inv.astype(np_float))
        self.volume.from_numpy(volume.astype(np_float))
        self.mu.from_numpy(mu.astype(np_float))
        self.lam.from_numpy(lam.astype(np_float))
        self.inv_mass.from_numpy((1.0 / mass).astype(np_float))
        self.incidence.from_numpy(corner_of[order])
        self.offsets.from_numpy(offsets.astype(np.int32))
        self.gravity[None] = self.sim_options.gravity
        self.pos.from_numpy(np.broadcast_to(rest, (batch, len(rest), 3)).astype(np_float))
        self.active.fill(1)
        self.plane_p, self.plane_n, self.n_planes = contact_planes(self.scene, self.options.floor_height)
        if self.substep_dt > self.stable_substep():
            logger.warning("FEM substep %.3g s exceeds the CFL estimate %.3g s: raise FEMOptions.substeps "
                           "or the element size, or lower E", self.substep_dt, self.stable_substep())

    # ------------------------------------------------------------------ kernels
    @ti.func
    def _first_piola(self, F, mu, lam):
        c0 = ti.Vector([F[0, 0], F[1, 0], F[2, 0]])
        c1 = ti.Vector([F[0, 1], F[1, 1], F[2, 1]])
        c2 = ti.Vector([F[0, 2], F[1, 2], F[2, 2]])
        cofactor = ti.Matrix.cols([c1.cross(c2), c2.cross(c0), c0.cross(c1)])  # dJ/dF, defined when inverted
        alpha = 1.0 + mu / lam
        return mu * F + lam * (F.determinant() - alpha) * cofactor

    @ti.kernel
    def _element_forces(self):
        for b, t in self.corner_forces:
            tet = self.tets[t]
            forces = ti.Matrix.zero(float, 3, 3)
            if self.active[b, tet[0]] and self.active[b, tet[1]] and self.active[b, tet[2]] and self.active[b, tet[3]]:
                x0 = self.pos[b, tet[0]]
                ds = ti.Matrix.cols([self.pos[b, tet[1]] - x0, self.pos[b, tet[2]] - x0, self.pos[b, tet[3]] - x0])
                F = ds @ self.dm_inv[t]
                P = self._first_piola(F, self.mu[t], self.lam[t])
                forces = -self.volume[t] * P @ self.dm_inv[t].transpose()
            self.corner_forces[b, t] = forces

    @ti.kernel
    def _integrate(self, dt: float, friction: float, keep: float):
        for b, v in self.pos:
            if self.fixed[b, v]:
                self.vel[b, v] = ti.Vector([0.0, 0.0, 0.0])
            elif self.active[b, v]:
                f = ti.Vector([0.0, 0.0, 0.0])
                for s in range(self.offsets[v], self.offsets[v + 1]):
                    t, corner = self.incidence[s] // 4, self.incidence[s] % 4
                    H = self.corner_forces[b, t]
                    if corner == 0:  # the corners' forces sum to zero
                        f -= H @ ti.Vector([1.0, 1.0, 1.0])
                    else:
                        f += ti.Vector([H[0, corner - 1], H[1, corner - 1], H[2, corner - 1]])
                vel = keep * (self.vel[b, v] + dt * (f * self.inv_mass[v] + self.gravity[None]))
                pos = self.pos[b, v] + dt * vel
                for k in range(self.n_planes):
                    n = self.plane_n[k]
                    depth = (self.plane_p[k] - pos).dot(n)
                    if depth > 0:
                        pos += depth * n
                        approach = -vel.dot(n)
                        if approach > 0:
                            tangential = vel + approach * n
                            speed = tangential.norm()
                            kept = 0.0  # static friction
                            if speed > friction * approach:
                                kept = 1.0 - friction * approach / speed
                            vel = kept * tangential
                self.vel[b, v] = vel
                self.pos[b, v] = pos

    def step(self):
        o = self.options
        dt = self.substep_dt
        keep = math.exp(-o.damping * dt)
        for _ in range(self.substeps):
            self._element_forces()
            self._integrate(dt, o.friction, keep)


register_solver(FEMSolver)


def benchmark_scene(n_particles_target: int):
    """An elastic cube of about n_particles_target vertices, for benchmarks/bench_particles.py."""
    options = FEMOptions()
    cells = max(1, int(round(n_particles_target ** (1 / 3))) - 1)
    side = cells * options.element_size
    return (morphs.Box(pos=(0.0, 0.0, side / 2 + 0.1), size=(side, side, side)), Elastic(),
            {"fem_options": options})
