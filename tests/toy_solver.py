"""A tiny solver that lives only in the test suite, to exercise the core's state machinery:
point masses under gravity (semi-implicit Euler), with a vector, a matrix, a scalar float and
an int32 state field, so every element kind and dtype goes through get_state / reset / checkpoint."""


from dataclasses import dataclass

import taichi as ti

import sim as gs
from sim.solvers.base import FLOAT, FieldSpec, Solver, register_solver


@dataclass(frozen=True)
class ToyOptions:
    damping: float = 0.0


@dataclass(frozen=True)
class ToyMaterial:
    n_points: int = 4


@dataclass
class ToyEntity:
    morph: object
    material: ToyMaterial
    start: int


@ti.data_oriented
class ToySolver(Solver):
    name = "ToySolver"
    options_cls = ToyOptions
    options_kwarg = "toy_options"
    materials = {"Toy.Points": ToyMaterial}

    def add_entity(self, morph, material):
        if not isinstance(morph, gs.morphs.Box):
            raise TypeError("ToySolver takes gs.morphs.Box")
        entity = ToyEntity(morph, material, sum(e.material.n_points for e in self.entities))
        self.entities.append(entity)
        return entity

    @property
    def n_points(self):
        return sum(e.material.n_points for e in self.entities)

    def state_specs(self):
        n = self.n_points
        return [FieldSpec("pos", (n,), FLOAT, (3,)), FieldSpec("vel", (n,), FLOAT, (3,)),
                FieldSpec("frame", (), FLOAT, (2, 2)), FieldSpec("energy", (n,)),
                FieldSpec("hits", (n,), "int32")]

    def build(self, n_envs, batch, state):
        self.pos, self.vel, self.frame = state["pos"], state["vel"], state["frame"]
        self.energy, self.hits = state["energy"], state["hits"]
        starts = []
        for e in self.entities:
            starts += [(e.morph.pos[0] + 0.1 * i, e.morph.pos[1], e.morph.pos[2]) for i in range(e.material.n_points)]
        self._init(ti.Vector(self.sim_options.gravity), ti.Matrix([[1.0, 0.0], [0.0, 1.0]]))
        for i, p in enumerate(starts):
            self._place(i, ti.Vector(p))

    @ti.kernel
    def _init(self, g: ti.types.vector(3, float), eye: ti.types.matrix(2, 2, float)):
        for b in range(self.frame.shape[0]):
            self.frame[b] = eye + 0.01 * b * eye

    @ti.kernel
    def _place(self, i: int, p: ti.types.vector(3, float)):
        for b in range(self.pos.shape[0]):
            self.pos[b, i] = p + ti.Vector([0.0, 0.0, 0.001 * b])

    @ti.kernel
    def _step(self, dt: float, g: ti.types.vector(3, float), damping: float):
        for b, i in self.pos:
            self.vel[b, i] = (self.vel[b, i] + dt * g) * (1.0 - damping)
            self.pos[b, i] += dt * self.vel[b, i]
            if self.pos[b, i][2] < 0:
                self.pos[b, i][2] = -self.pos[b, i][2]
                self.vel[b, i][2] = -self.vel[b, i][2]
                self.hits[b, i] += 1
            self.energy[b, i] = 0.5 * self.vel[b, i].norm_sqr() - g.dot(self.pos[b, i])
        for b in range(self.frame.shape[0]):
            self.frame[b] = self.frame[b] @ ti.Matrix([[1.0, dt], [0.0, 1.0]])

    def step(self):
        dt = self.sim_options.dt / self.sim_options.substeps
        for _ in range(self.sim_options.substeps):
            self._step(dt, ti.Vector(self.sim_options.gravity), self.options.damping)


register_solver(ToySolver)


def build_toy(n_envs):
    """The toy scene the genesis_dist tests shard: three points per env. Shards unpickle it by
    reference, importing this module, which registers ToySolver there too."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.02))
    scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 0.3)), material=gs.materials.Toy.Points(n_points=3))
    scene.build(n_envs=n_envs)
    return scene
