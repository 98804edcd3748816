"""PBD solver: XPBD cloth and loose particles, batched over environments (env axis first).

Each scene substep is split into `PBDOptions.substeps` small steps ("small steps" XPBD,
Macklin et al. 2019): predict positions under gravity, project every distance constraint
`iterations` times by graph-coloured Gauss-Seidel (and push loose particles apart), push
particles out of static planes with position-based friction, and add the displacement this made,
over dt, to the velocities. No sum depends on thread timing, so every run is bit-reproducible
whatever the thread count.

Particles with `free == 0` are pinned: they have infinite mass, do not move, and hold
whatever they are attached to. `free` is per env and part of the state, so reset restores it.
Loose particles (PBD.Particle) are spheres of diameter `particle_size` that push each other
apart (see particle_contacts.py); cloth does not collide with particles nor with itself.
"""

import math
from dataclasses import dataclass

import numpy as np
import taichi as ti

from sim import morphs, runtime
from sim.solvers.base import FLOAT, FieldSpec, Solver, register_solver
from sim.solvers.pbd.constraints import colour, grid_triangles, stretch_and_bending_pairs
from sim.solvers.pbd.particle_contacts import ParticleContacts
from sim.solvers.particles import contact_planes, sample_morph
from sim.solvers.vertex_entity import VertexEntity
from sim.validate import check_count, check_number

MAX_COLOURS = 32  # colour loops are unrolled in the projection kernel: a grid cloth needs about 12, Genesis's cloth.obj 26


@dataclass(frozen=True)
class PBDOptions:
    """substeps: XPBD steps per scene substep; iterations: constraint passes per step;
    particle_size: spacing and diameter of loose particles sampled in a Box (m); floor_height:
    z of a horizontal floor, None for none (every gs.morphs.Plane entity of the scene is a floor
    too); friction: Coulomb coefficient of floors; damping: velocity damping rate (1/s)."""

    substeps: int = 10
    iterations: int = 1
    particle_size: float = 0.02
    floor_height: float | None = None
    friction: float = 0.5
    damping: float = 0.0

    def __post_init__(self):
        check_count("PBDOptions.substeps", self.substeps)
        check_count("PBDOptions.iterations", self.iterations)
        check_number("PBDOptions.particle_size", self.particle_size, 0.0, low_inclusive=False)
        if self.floor_height is not None:
            check_number("PBDOptions.floor_height", self.floor_height, -math.inf)
        check_number("PBDOptions.friction", self.friction, 0.0)
        check_number("PBDOptions.damping", self.damping, 0.0)


@dataclass(frozen=True)
class Cloth:
    """Cloth on a gs.morphs.Cloth sheet or a gs.morphs.Mesh (.obj) surface. rho: areal density
    (kg/m^2); compliances are XPBD's inverse stiffness (m/N): 0 makes edges inextensible."""

    rho: float = 0.2
    stretch_compliance: float = 0.0
    bending_compliance: float = 1e-3

    def __post_init__(self):
        check_number("PBD.Cloth.rho", self.rho, 0.0, low_inclusive=False)
        check_number("PBD.Cloth.stretch_compliance", self.stretch_compliance, 0.0)
        check_number("PBD.Cloth.bending_compliance", self.bending_compliance, 0.0)


@dataclass(frozen=True)
class Particle:
    """Loose particles filling a gs.morphs.Box, spaced PBDOptions.particle_size apart; rho in kg/m^3."""

    rho: float = 1000.0

    def __post_init__(self):
        check_number("PBD.Particle.rho", self.rho, 0.0, low_inclusive=False)


class PBDEntity(VertexEntity):
    """A cloth sheet or a block of loose particles. Cloth vertex (i, j) (i along x) is
    particle j * res[0] + i."""

    def __init__(self, solver, morph, material, start, rest_pos, mass, pairs, compliance):
        super().__init__(solver, morph, material, start, rest_pos)
        self.mass = mass
        self.pairs = pairs            # (c, 2) entity-local constraint vertices
        self.compliance = compliance  # (c,)

    def set_free(self, particles=None, free: bool = True, envs_idx=None) -> None:
        """Pin (free=False) or release particles in the selected envs. A pinned particle stays
        where it is and its velocity is zero from the next step on."""
        self._set_flag("free", particles, free, envs_idx)


def _cloth(morph: morphs.Cloth, material: Cloth):
    nx, ny = morph.res
    xs = np.linspace(-morph.size[0] / 2, morph.size[0] / 2, nx)
    ys = np.linspace(-morph.size[1] / 2, morph.size[1] / 2, ny)
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    rest = np.stack([gx.ravel(), gy.ravel(), np.zeros(nx * ny)], 1) + np.asarray(morph.pos)
    edges, bending = stretch_and_bending_pairs(grid_triangles(nx, ny))
    compliance = np.concatenate([np.full(len(edges), material.stretch_compliance),
                                 np.full(len(bending), material.bending_compliance)])
    mass = material.rho * morph.size[0] * morph.size[1] / (nx * ny)
    return rest, mass, np.concatenate([edges, bending]), compliance


def _mesh_cloth(morph: morphs.Mesh, material: Cloth):
    """A cloth whose sheet is a triangle mesh: each vertex carries a third of the area of its
    triangles (times rho); the mesh must be manifold (an edge in at most two triangles)."""
    rest, triangles = morph.vertices, morph.triangles
    corners = rest[triangles]
    area = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    mass = np.bincount(triangles.ravel(), np.repeat(area / 3.0, 3), minlength=len(rest)) * material.rho
    if not np.all(mass > 0):
        raise ValueError(f"Mesh {morph.file}: {int(np.sum(mass <= 0))} vertices lie in no triangle of non-zero "
                         f"area; a PBD.Cloth mesh needs every vertex in one")
    edges = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]), axis=1)
    if np.unique(edges, axis=0, return_counts=True)[1].max() > 2:
        raise ValueError(f"Mesh {morph.file} is not manifold (an edge is shared by more than two triangles), "
                         f"which PBD.Cloth needs")
    edges, bending = stretch_and_bending_pairs(triangles)
    compliance = np.concatenate([np.full(len(edges), material.stretch_compliance),
                                 np.full(len(bending), material.bending_compliance)])
    return np.array(rest), mass, np.concatenate([edges, bending]), compliance


def _particles(morph: morphs.Box, material: Particle, spacing: float):
    points, volume = sample_morph(morph, spacing)
    return points, material.rho * volume, np.zeros((0, 2), np.int64), np.zeros(0)


@ti.data_oriented
class PBDSolver(Solver):
    name = "PBDSolver"
    options_cls = PBDOptions
    options_kwarg = "pbd_options"
    materials = {"PBD.Cloth": Cloth, "PBD.Particle": Particle}

    def add_entity(self, morph, material):
        if isinstance(material, Cloth):
            if isinstance(morph, morphs.Mesh):
                rest, mass, pairs, compliance = _mesh_cloth(morph, material)
            elif isinstance(morph, morphs.Cloth):
                rest, mass, pairs, compliance = _cloth(morph, material)
            else:
                raise TypeError(f"PBD.Cloth needs a gs.morphs.Cloth or gs.morphs.Mesh, got {type(morph).__name__}")
        elif isinstance(material, Particle):
            if not isinstance(morph, morphs.Box):
                raise TypeError(f"PBD.Particle needs a gs.morphs.Box, got {type(morph).__name__}")
            rest, mass, pairs, compliance = _particles(morph, material, self.options.particle_size)
        else:
            raise TypeError(f"PBD solver takes PBD.Cloth or PBD.Particle, got {type(material).__name__}")
        entity = PBDEntity(self, morph, material, self.n_particles, rest, mass, pairs, compliance)
        self.entities.append(entity)
        return entity

    @property
    def n_particles(self) -> int:
        return sum(e.n_vertices for e in self.entities)

    @property
    def substeps(self) -> int:
        """XPBD steps per scene.step()."""
        return self.sim_options.substeps * self.options.substeps

    def state_specs(self):
        n = self.n_particles
        return [FieldSpec("pos", (n,), FLOAT, (3,)), FieldSpec("vel", (n,), FLOAT, (3,)),
                FieldSpec("free", (n,), "int32")]

    # ------------------------------------------------------------------ build
    def build(self, n_envs, batch, state):
        self.state = state
        self.pos, self.vel, self.free = state["pos"], state["vel"], state["free"]
        n = self.n_particles
        pairs = np.concatenate([e.pairs + e.start for e in self.entities]).astype(np.int32)
        compliance = np.concatenate([e.compliance for e in self.entities])
        colours = colour(pairs, n)
        if len(pairs) and colours.max() >= MAX_COLOURS:
            raise ValueError(f"the cloth constraints need {colours.max() + 1} colours, more than {MAX_COLOURS}")
        order = np.argsort(colours, kind="stable")
        pairs, compliance = pairs[order], compliance[order]
        bounds = np.searchsorted(colours[order], np.arange(colours.max(initial=-1) + 2)).tolist()
        self._colour_ranges = tuple(zip(bounds[:-1], bounds[1:]))  # baked into this instance's kernel
        m = max(len(pairs), 1)  # Taichi fields cannot be empty
        rest = np.concatenate([e.rest_pos for e in self.entities])

        self.pairs = ti.Vector.field(2, ti.i32, shape=m)
        self.rest_length = ti.field(float, shape=m)
        self.compliance = ti.field(float, shape=m)
        self.lam = ti.field(float, shape=(batch, m))
        self.gravity = ti.Vector.field(3, float, shape=())
        self.inv_mass = ti.field(float, shape=n)
        self.contact_radius = ti.field(float, shape=n)  # loose particles are spheres, cloth is thin
        self.predicted = ti.Vector.field(3, float, shape=(batch, n))

        np_float = runtime.config().np_float
        padded = np.zeros((m, 2), np.int32)
        padded[:len(pairs)] = pairs
        lengths = np.linalg.norm(rest[padded[:, 0]] - rest[padded[:, 1]], axis=1)
        self.pairs.from_numpy(padded)
        self.rest_length.from_numpy(lengths.astype(np_float))
        self.compliance.from_numpy(np.pad(compliance, (0, m - len(compliance))).astype(np_float))
        self.gravity[None] = self.sim_options.gravity
        self.inv_mass.from_numpy(np.concatenate(
            [np.full(e.n_vertices, 1.0 / e.mass) for e in self.entities]).astype(np_float))
        self.pos.from_numpy(np.broadcast_to(rest, (batch, n, 3)).astype(np_float))
        self.free.fill(1)
        self.plane_p, self.plane_n, self.n_planes = contact_planes(self.scene, self.options.floor_height)
        loose = np.concatenate([np.arange(e.start, e.start + e.n_vertices) for e in self.entities
                                if isinstance(e.material, Particle)] + [np.zeros(0, np.int64)])
        radius = np.zeros(n, np_float)
        radius[loose] = self.options.particle_size / 2
        self.contact_radius.from_numpy(radius)
        self.contacts = (ParticleContacts(self.pos, self.free, loose, self.options.particle_size / 2, batch)
                         if len(loose) else None)

    # ------------------------------------------------------------------ kernels
    @ti.kernel
    def _predict(self, dt: float):
        for b, i in self.pos:
            if self.free[b, i]:
                self.vel[b, i] += dt * self.gravity[None]
                self.pos[b, i] += dt * self.vel[b, i]
            self.predicted[b, i] = self.pos[b, i]
        for b, k in self.lam:
            self.lam[b, k] = 0.0

    @ti.kernel
    def _project(self, dt: float):
        for start, end in ti.static(self._colour_ranges):
            for b, k in ti.ndrange(self.pos.shape[0], (start, end)):
                i, j = self.pairs[k][0], self.pairs[k][1]
                wi = self.inv_mass[i] * self.free[b, i]
                wj = self.inv_mass[j] * self.free[b, j]
                d = self.pos[b, i] - self.pos[b, j]
                length = d.norm()
                if wi + wj > 0 and length > 1e-9:
                    alpha = self.compliance[k] / (dt * dt)
                    dlam = (self.rest_length[k] - length - alpha * self.lam[b, k]) / (wi + wj + alpha)
                    self.lam[b, k] += dlam
                    n = d / length
                    self.pos[b, i] += wi * dlam * n
                    self.pos[b, j] -= wj * dlam * n

    @ti.kernel
    def _finish(self, dt: float, friction: float, keep: float):
        """Plane contact, then v += (constraint and contact displacement) / dt: free flight
        adds nothing to v, so ballistic motion is exact up to the integrator's own error."""
        for b, i in self.pos:
            if self.free[b, i]:
                p = self.pos[b, i]
                for k in range(self.n_planes):
                    n = self.plane_n[k]
                    depth = (self.plane_p[k] - p).dot(n) + self.contact_radius[i]
                    if depth > 0:
                        p += depth * n
                        moved = p - (self.predicted[b, i] - dt * self.vel[b, i])  # since the step began
                        slide = moved - moved.dot(n) * n
                        slide_len = slide.norm()
                        held = 1.0  # static friction cancels the whole slide
                        if slide_len > friction * depth:
                            held = friction * depth / slide_len
                        p -= held * slide
                self.pos[b, i] = p
                self.vel[b, i] = keep * (self.vel[b, i] + (p - self.predicted[b, i]) / dt)
            else:
                self.vel[b, i] = ti.Vector([0.0, 0.0, 0.0])

    def step(self):
        o = self.options
        dt = self.sim_options.dt / self.substeps
        keep = math.exp(-o.damping * dt)
        for _ in range(self.substeps):
            self._predict(dt)
            for _ in range(o.iterations):
                self._project(dt)
                if self.contacts is not None:
                    self.contacts.solve()
            self._finish(dt, o.friction, keep)


register_solver(PBDSolver)


def benchmark_scene(n_particles_target: int):
    """A square cloth of about n_particles_target vertices, for benchmarks/bench_particles.py."""
    side = max(2, int(round(math.sqrt(n_particles_target))))
    return morphs.Cloth(pos=(0.0, 0.0, 1.0), size=(1.0, 1.0), res=(side, side)), Cloth(), {"pbd_options": PBDOptions()}
