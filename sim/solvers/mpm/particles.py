"""What the particle solvers (MPM, SPH) share: filling a morph with particles, the static
planes of a scene, and entities whose particles can be switched on and off per env."""

from dataclasses import dataclass

import numpy as np
import taichi as ti

from sim import runtime
from sim.envs_idx import normalize_envs_idx
from sim.options import _vec
import sim.morphs as morphs  # the module, not its names: sim.morphs may still be importing us


def quat_to_matrix(quat) -> np.ndarray:
    w, x, y, z = quat
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def sample_morph(morph, spacing: float) -> tuple[np.ndarray, float]:
    """Particle centres filling `morph` on a lattice of about `spacing`, and the volume each
    particle stands for. A Box is cut into whole cells (its edges are kept exactly); a Sphere
    keeps the cells of a cubic lattice centred on it whose centre lies inside."""
    if isinstance(morph, morphs.Box):
        counts = [max(1, int(round(s / spacing))) for s in morph.size]
        axes = [((np.arange(n) + 0.5) / n - 0.5) * s for n, s in zip(counts, morph.size)]
        local = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        points = local @ quat_to_matrix(morph.quat).T + np.asarray(morph.pos)
        return points, float(np.prod([s / n for n, s in zip(counts, morph.size)]))
    if isinstance(morph, morphs.Sphere):
        n = int(np.ceil(morph.radius / spacing))
        axis = np.arange(-n, n + 1) * spacing
        local = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
        local = local[np.linalg.norm(local, axis=1) <= morph.radius]
        return local + np.asarray(morph.pos), spacing ** 3
    raise TypeError(f"particle solvers take gs.morphs.Box or gs.morphs.Sphere, got {type(morph).__name__}")


def check_inside(points: np.ndarray, lower, upper, what: str) -> None:
    """Raise ValueError unless every point lies in the box [lower, upper]."""
    if not (np.all(points >= np.asarray(lower)) and np.all(points <= np.asarray(upper))):
        raise ValueError(f"{what} reaches {points.min(0).round(4).tolist()}..{points.max(0).round(4).tolist()}, "
                         f"outside the solver domain {list(lower)}..{list(upper)}; "
                         f"move it or enlarge lower_bound/upper_bound")


def domain_bounds(owner: str, lower, upper) -> tuple[tuple, tuple]:
    """Validated (lower_bound, upper_bound) of a particle solver's box-shaped domain."""
    lower = _vec(f"{owner}.lower_bound", lower, 3)
    upper = _vec(f"{owner}.upper_bound", upper, 3)
    if any(not u > lo for lo, u in zip(lower, upper)):
        raise ValueError(f"{owner}.upper_bound {upper} must exceed lower_bound {lower} on every axis")
    return lower, upper


def scene_planes(scene) -> tuple[np.ndarray, np.ndarray]:
    """Points and unit normals (k, 3) of the scene's gs.morphs.Plane entities, whatever solver
    holds them: particles treat them as static frictional walls."""
    planes = [e.morph for e in scene.entities if isinstance(getattr(e, "morph", None), morphs.Plane)]
    return (np.array([p.pos for p in planes], dtype=np.float64).reshape(-1, 3),
            np.array([p.normal for p in planes], dtype=np.float64).reshape(-1, 3))


def contact_planes(scene, floor_height):
    """Taichi fields (points, normals) of the scene's gs.morphs.Plane entities plus, unless
    floor_height is None, the horizontal plane z = floor_height; and how many there are."""
    points, normals = scene_planes(scene)
    if floor_height is not None:
        points = np.concatenate([points, [[0.0, 0.0, floor_height]]])
        normals = np.concatenate([normals, [[0.0, 0.0, 1.0]]])
    count = len(points)
    fields = tuple(ti.Vector.field(3, float, shape=max(count, 1)) for _ in range(2))
    if count:
        for field, values in zip(fields, (points, normals)):
            field.from_numpy(values.astype(runtime.config().np_float))
    return fields[0], fields[1], count


@ti.kernel
def _write_active(active: ti.template(), start: int, mask: ti.types.ndarray(dtype=ti.i32, ndim=1),
                  envs: ti.types.ndarray(dtype=ti.i32, ndim=1)):
    for e, i in ti.ndrange(envs.shape[0], mask.shape[0]):
        active[envs[e], start + i] = mask[i]


@dataclass(eq=False)
class ParticleEntity:
    """A body of particles [start, start + n_particles) of its solver's arrays."""

    solver: object
    morph: object
    material: object
    start: int
    n_particles: int

    @property
    def particles(self) -> slice:
        """The entity's slice of the particle axis of its solver's state arrays."""
        return slice(self.start, self.start + self.n_particles)

    def set_active(self, active, envs_idx=None) -> None:
        """Switch particles on or off in every env, or only in `envs_idx`. `active` is a bool
        for the whole body or a bool mask of length n_particles. Inactive particles keep their
        position and velocity and exert no force; the change is state, so reset undoes it."""
        mask = np.asarray(active)
        if mask.dtype != bool:
            raise TypeError(f"active must be a bool or a boolean mask, got dtype {mask.dtype}")
        if mask.ndim == 0:
            mask = np.full(self.n_particles, bool(mask))
        elif mask.shape != (self.n_particles,):
            raise ValueError(f"active mask has shape {mask.shape}, expected ({self.n_particles},)")
        if self.solver.active is None:
            raise RuntimeError("set_active needs a built scene (scene.build())")
        n_envs = self.solver.scene.n_envs
        if envs_idx is None:
            envs = np.arange(max(n_envs, 1), dtype=np.int32)
        else:
            envs = normalize_envs_idx(envs_idx, n_envs)
        _write_active(self.solver.active, self.start, mask.astype(np.int32), envs)
