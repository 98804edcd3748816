"""What every particle-based solver (MPM, SPH, PBD, FEM) shares: filling a morph with particles,
the static planes of a scene, and the entity base whose particles are rows
[start, start + n_particles) of its solver's (batch, n) state fields, with Genesis's particle
reads and writes (`get/set_particles_pos`, `get/set_particles_vel`, `find_closest_particle`;
MPM and SPH also `get/set_particles_active`).

Reads go through one gather kernel (sim.field_access) of only this entity's rows and the envs
asked for, and return torch tensors on gs.device; writes are validated whole (shapes, indices,
finite values, envs_idx) before one scatter kernel writes only the asked (env, particle) entries.
"""

import numpy as np
import taichi as ti
import torch

from sim import morphs, runtime
from sim.envs_idx import normalize_envs_idx
from sim.field_access import gather, scatter
from sim.utils.geom import transform_by_trans_quat
from sim.validate import require_built


SAMPLERS = ("regular", "random")  # Genesis's sampler names honoured here; "pbs" is refused


def check_sampler(owner: str, sampler) -> None:
    """Raise naming the problem unless `sampler` is one this module honours."""
    if isinstance(sampler, str) and (sampler == "pbs" or sampler.startswith("pbs-")):
        raise ValueError(f"{owner}(sampler={sampler!r}) is not supported: Genesis's physics-based sampler is not "
                         f"available here; use 'regular' (a lattice) or 'random'")
    if sampler not in SAMPLERS:
        raise ValueError(f"{owner}.sampler must be one of {list(SAMPLERS)}, got {sampler!r}")


def sample_morph(morph, spacing: float, sampler: str = "regular") -> tuple[np.ndarray, float]:
    """Particle centres filling `morph` about `spacing` apart, and the volume each stands for.

    "regular": a lattice. A Box is cut into whole cells (its edges are kept exactly); a Sphere
    keeps the cells of a cubic lattice centred on it whose centre lies inside.
    "random": volume / spacing^3 points drawn uniformly inside (a fixed seed, so a build always
    draws the same particles and checkpoints stay loadable)."""
    check_sampler("sample_morph", sampler)
    if not isinstance(morph, (morphs.Box, morphs.Sphere)):
        raise TypeError(f"particle solvers take gs.morphs.Box or gs.morphs.Sphere, got {type(morph).__name__}")
    if sampler == "random":
        rng = np.random.default_rng(0)
        if isinstance(morph, morphs.Box):
            volume = float(np.prod(morph.size))
            n = max(1, int(round(volume / spacing ** 3)))
            local = (rng.random((n, 3)) - 0.5) * np.asarray(morph.size)
            return transform_by_trans_quat(local, morph.pos, morph.quat), volume / n
        volume = 4.0 / 3.0 * np.pi * morph.radius ** 3
        n = max(1, int(round(volume / spacing ** 3)))
        direction = rng.normal(size=(n, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        local = direction * (morph.radius * rng.random((n, 1)) ** (1.0 / 3.0))
        return local + np.asarray(morph.pos), volume / n
    if isinstance(morph, morphs.Box):
        counts = [max(1, int(round(s / spacing))) for s in morph.size]
        axes = [((np.arange(n) + 0.5) / n - 0.5) * s for n, s in zip(counts, morph.size)]
        local = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        volume = float(np.prod([s / n for n, s in zip(counts, morph.size)]))
        return transform_by_trans_quat(local, morph.pos, morph.quat), volume
    n = int(np.ceil(morph.radius / spacing))
    axis = np.arange(-n, n + 1) * spacing
    local = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    local = local[np.linalg.norm(local, axis=1) <= morph.radius]
    return local + np.asarray(morph.pos), spacing ** 3


def check_inside(points: np.ndarray, lower, upper, what: str) -> None:
    """Raise ValueError unless every point lies in the box [lower, upper]."""
    if not (np.all(points >= np.asarray(lower)) and np.all(points <= np.asarray(upper))):
        raise ValueError(f"{what} reaches {points.min(0).round(4).tolist()}..{points.max(0).round(4).tolist()}, "
                         f"outside the solver domain {list(lower)}..{list(upper)}; "
                         f"move it or enlarge lower_bound/upper_bound")


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


class ParticleBody:
    """An entity owning particles start .. start + n_particles - 1 of its solver, whose state
    holds "pos" and "vel" fields of shape (batch, n)."""

    def __init__(self, solver, morph, material, start: int, n_particles: int):
        self.solver = solver
        self.morph = morph
        self.material = material
        self.start = int(start)
        self.n_particles = int(n_particles)

    @property
    def particles(self) -> slice:
        """This entity's rows of its solver's state arrays: state["MPMSolver.pos"][:, e.particles]."""
        return slice(self.start, self.start + self.n_particles)

    def _envs(self, envs_idx, what: str) -> np.ndarray:
        """Validated env rows (all when None) of a built scene."""
        scene = self.solver.scene
        require_built(scene, what)
        if envs_idx is None:
            return np.arange(max(scene.n_envs, 1), dtype=np.int32)
        return normalize_envs_idx(envs_idx, scene.n_envs)

    def _read(self, name: str, envs_idx) -> torch.Tensor:
        envs = self._envs(envs_idx, f"get_particles_{name}")
        out = gather(self.solver.state[name], envs, np.arange(self.start, self.start + self.n_particles))
        return out[0] if self.solver.scene.n_envs == 0 else out

    def get_particles_pos(self, envs_idx=None) -> torch.Tensor:
        """Particle positions: (len(envs), n_particles, 3), or (n_particles, 3) unbatched."""
        return self._read("pos", envs_idx)

    def get_particles_vel(self, envs_idx=None) -> torch.Tensor:
        """Particle velocities: (len(envs), n_particles, 3), or (n_particles, 3) unbatched."""
        return self._read("vel", envs_idx)

    def find_closest_particle(self, pos, envs_idx=None) -> torch.Tensor:
        """Entity-local index of the particle nearest to `pos` ((3,) or one per env (M, 3)) in
        each env asked for: an int tensor (M,), or a 0-d one when the scene is unbatched."""
        points = self.get_particles_pos(envs_idx)
        points = points[None] if points.ndim == 2 else points
        target = torch.as_tensor(np.asarray(pos.cpu() if isinstance(pos, torch.Tensor) else pos, dtype=np.float64),
                                 dtype=points.dtype, device=points.device)
        if target.shape not in ((3,), (points.shape[0], 3)) or not torch.isfinite(target).all():
            raise ValueError(f"pos must be 3 finite numbers or one row per env ({points.shape[0]}, 3), "
                             f"got shape {tuple(target.shape)}")
        closest = torch.linalg.vector_norm(points - target.reshape(-1, 1, 3), dim=-1).argmin(-1).to(torch.int32)
        return closest[0] if self.solver.scene.n_envs == 0 else closest

    # ------------------------------------------------------------------ writes (Genesis's setters)
    def _columns(self, particles_idx_local, n_envs: int) -> np.ndarray:
        """Solver columns of entity-local particle indices: (k,) for every env, or (n_envs, k)
        one row per env, as Genesis takes them (None: all particles)."""
        n = self.n_particles
        if particles_idx_local is None:
            return np.arange(self.start, self.start + n, dtype=np.int32)
        arr = np.asarray(particles_idx_local.detach().cpu() if isinstance(particles_idx_local, torch.Tensor)
                         else particles_idx_local)
        if arr.size == 0:
            return np.zeros((0,), np.int32)
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"particles_idx_local must hold integers, got dtype {arr.dtype}")
        if arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape[0] != n_envs):
            raise ValueError(f"particles_idx_local must be (k,) or one row per env ({n_envs}, k), "
                             f"got shape {arr.shape}")
        if arr.min() < 0 or arr.max() >= n:
            raise ValueError(f"particles_idx_local holds {int(arr.min())}..{int(arr.max())}, out of range 0..{n - 1}")
        rows = np.sort(arr.reshape(-1, arr.shape[-1]), axis=1)
        if (rows[:, 1:] == rows[:, :-1]).any():
            raise ValueError("particles_idx_local holds duplicates (an env's particle can take one value)")
        return (arr + self.start).astype(np.int32)

    @staticmethod
    def _values(name: str, values, shape: tuple, dtype=np.float64) -> np.ndarray:
        """`values` broadcast to `shape` (envs, particles[, 3]) as Genesis broadcasts them: trailing
        axes first, then one value per env ((envs, 3) -> (envs, 1, 3)). Finite numbers only."""
        arr = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values)
        kind = "b" if dtype == bool else "iuf"
        if arr.dtype.kind not in kind:
            raise TypeError(f"{name} must be {'booleans' if dtype == bool else 'numbers'}, got dtype {arr.dtype}")
        arr = arr.astype(dtype)
        if dtype != bool and not np.isfinite(arr).all():
            raise ValueError(f"{name} holds NaN or infinite values")
        try:
            return np.broadcast_to(arr, shape)
        except ValueError:
            pass
        per_env = arr.shape[:1] + (1,) + arr.shape[1:]
        if 0 < arr.ndim < len(shape) and arr.shape[0] == shape[0]:
            try:
                return np.broadcast_to(arr.reshape(per_env), shape)
            except ValueError:
                pass
        axes = "(envs, particles, 3)" if len(shape) == 3 else "(envs, particles)"
        raise ValueError(f"{name} has shape {arr.shape}, expected {shape} {axes} or a shape that broadcasts to it")

    def _prepare(self, name: str, values, particles_idx_local, envs_idx, dtype=np.float64):
        """Validated (values, envs, columns) of a write, or None when it selects nothing."""
        envs = self._envs(envs_idx, f"set_particles_{name}")
        cols = self._columns(particles_idx_local, len(envs))
        shape = (len(envs), cols.shape[-1]) + ((3,) if dtype != bool else ())
        values = self._values(f"set_particles_{name}: {name}", values, shape, dtype)
        return (values, envs, cols) if len(envs) and cols.size else None

    def set_particles_pos(self, poss, particles_idx_local=None, envs_idx=None) -> None:
        """Move particles (entity-local `particles_idx_local`, all when None) in the envs asked for
        to `poss` ((envs, k, 3) or anything that broadcasts to it). As in Genesis, a moved particle
        starts again from rest: its velocity is zeroed (and for MPM its deformation: F = I, C = 0,
        Jp = 1). Positions must lie inside the solver's domain, if it has one."""
        self._write_pos(poss, particles_idx_local, envs_idx, restart=True)

    def _write_pos(self, poss, particles_idx_local, envs_idx, restart: bool) -> None:
        write = self._prepare("pos", poss, particles_idx_local, envs_idx)
        options = self.solver.options
        if write is not None and hasattr(options, "lower_bound"):
            check_inside(write[0].reshape(-1, 3), options.lower_bound, options.upper_bound, "set_particles_pos: poss")
        if write is not None:
            scatter(self.solver.state["pos"], *write)
            if restart:
                self._restart(write[1], write[2])

    def _restart(self, envs: np.ndarray, cols: np.ndarray) -> None:
        """What a position write resets besides the position: the velocity."""
        zeros = np.zeros((len(envs), cols.shape[-1], 3))
        scatter(self.solver.state["vel"], zeros, envs, cols)

    def set_particles_vel(self, vels, particles_idx_local=None, envs_idx=None) -> None:
        """Set the velocity of particles (entity-local `particles_idx_local`, all when None) in
        the envs asked for to `vels` ((envs, k, 3) or anything that broadcasts to it)."""
        write = self._prepare("vel", vels, particles_idx_local, envs_idx)
        if write is not None:
            scatter(self.solver.state["vel"], *write)


class ParticleEntity(ParticleBody):
    """A body of MPM or SPH particles, which can be switched on and off per env."""

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
        self.set_particles_active(mask, None, envs_idx)

    def set_particles_active(self, actives, particles_idx_local=None, envs_idx=None) -> None:
        """Genesis's per-particle form of set_active: booleans (envs, k) or anything that
        broadcasts to it, for entity-local `particles_idx_local` (all when None)."""
        write = self._prepare("active", actives, particles_idx_local, envs_idx, dtype=bool)
        if write is not None:
            scatter(self.solver.active, write[0].astype(np.float64), write[1], write[2])

    def get_particles_active(self, envs_idx=None) -> torch.Tensor:
        """Particle activity: a bool tensor (len(envs), n_particles), or (n_particles,) unbatched."""
        return self._read("active", envs_idx).bool()
