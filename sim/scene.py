"""Scene: entities, build(n_envs), step, and the state / reset / checkpoint API for every solver."""

from __future__ import annotations

import numpy as np

from sim import checkpoint, runtime
from sim.envs_idx import normalize_envs_idx
from sim.options import SimOptions
from sim.solvers import base
from sim.state import SimState
from sim.state_store import StateStore


class Scene:
    """A batched scene. Solver options are passed as `<solver>_options=` keywords
    (`rigid_options=gs.options.RigidOptions(...)`, ...); unknown keywords raise."""

    def __init__(self, sim_options: SimOptions | None = None, **solver_options):
        self._config = runtime.config()
        sim_options = SimOptions() if sim_options is None else sim_options
        if not isinstance(sim_options, SimOptions):
            raise TypeError(f"sim_options must be gs.options.SimOptions, got {type(sim_options).__name__}")
        solvers = base.registered_solvers()
        by_kwarg = {cls.options_kwarg: cls for cls in solvers.values()}
        unknown = sorted(set(solver_options) - set(by_kwarg))
        if unknown:
            raise TypeError(f"Scene got unknown keyword(s) {unknown}; solver options are {sorted(by_kwarg)}")
        for kwarg, options in solver_options.items():
            if options is not None and not isinstance(options, by_kwarg[kwarg].options_cls):
                raise TypeError(f"{kwarg} must be gs.options.{by_kwarg[kwarg].options_cls.__name__}, "
                                f"got {type(options).__name__}")
        self.sim_options = sim_options
        self.solvers: dict[str, base.Solver] = {}
        for name in sorted(solvers):
            cls = solvers[name]
            options = solver_options.get(cls.options_kwarg) or cls.options_cls()
            self.solvers[name] = cls(self, options, sim_options)
        self.entities: list = []
        self.n_envs: int | None = None
        self.t = 0
        self._store: StateStore | None = None
        self._init_state: SimState | None = None

    # ------------------------------------------------------------------ construction
    @property
    def is_built(self) -> bool:
        return self._store is not None

    @property
    def active_solvers(self) -> list[base.Solver]:
        return [s for s in self.solvers.values() if s.is_active]

    def add_entity(self, morph, material=None, **kwargs):
        """Add an entity; the material (default gs.materials.Rigid) chooses the solver."""
        if self.is_built:
            raise RuntimeError("add_entity must be called before scene.build()")
        material = base.default_material() if material is None else material
        solver_name = getattr(material, "solver_name", None)
        if solver_name not in self.solvers:
            raise TypeError(f"{type(material).__name__} is not a material of any solver")
        entity = self.solvers[solver_name].add_entity(morph, material, **kwargs)
        self.entities.append(entity)
        return entity

    def build(self, n_envs: int = 0) -> None:
        """Compile the scene for n_envs environments: 0 unbatched (no env axis), N >= 1 batched."""
        if self.is_built:
            raise RuntimeError("scene is already built")
        if isinstance(n_envs, bool) or not isinstance(n_envs, (int, np.integer)) or n_envs < 0:
            raise ValueError(f"n_envs must be an int >= 0, got {n_envs!r}")
        n_envs = int(n_envs)
        specs = {f"{s.name}.{spec.name}": spec for s in self.active_solvers for spec in s.state_specs()}
        store = StateStore(specs, self._config.np_float, max(n_envs, 1))
        for solver in self.active_solvers:
            prefix = solver.name + "."
            solver.build(n_envs, max(n_envs, 1),
                         {k[len(prefix):]: f for k, f in store.fields.items() if k.startswith(prefix)})
        self.n_envs = n_envs
        self._store = store
        description = {"precision": self._config.precision,
                       "sim_options": base.to_plain(self.sim_options),
                       "solvers": {s.name: s.describe() for s in self.active_solvers}}
        self._meta = checkpoint.make_meta(description, checkpoint.layout(specs, self._config.np_float), n_envs)
        self._init_state = self.get_state()

    def _require_built(self):
        if not self.is_built:
            raise RuntimeError("scene.build() must be called first")

    # ------------------------------------------------------------------ stepping
    def step(self) -> None:
        self._require_built()
        for solver in self.active_solvers:
            solver.step()
        self.t += 1

    # ------------------------------------------------------------------ state
    @property
    def fingerprint(self) -> str:
        self._require_built()
        return self._meta["fingerprint"]

    def checkpoint_meta(self) -> dict:
        """The "meta" entry this scene writes into checkpoints (layout, fingerprint, n_envs)."""
        self._require_built()
        return self._meta

    def get_state(self) -> SimState:
        """A copy of the current state; later steps do not change it."""
        self._require_built()
        arrays = self._store.read_all()
        if self.n_envs == 0:
            arrays = {k: v[0] for k, v in arrays.items()}
        return SimState(arrays, self.t, self.n_envs, self._meta["fingerprint"])

    def reset(self, state: SimState | None = None, envs_idx=None) -> None:
        """Restore `state` (default: the state at the end of build) in all envs, or only in
        `envs_idx`, in which case those envs take their own rows of `state` and `t` is kept.
        Everything is validated before anything changes."""
        self._require_built()
        state = self._init_state if state is None else state
        if not isinstance(state, SimState):
            raise TypeError(f"state must be a SimState (scene.get_state()), got {type(state).__name__}")
        arrays = state.arrays()
        checkpoint.check_arrays(arrays, self._meta["layout"], self.n_envs)
        if envs_idx is None:
            if self.n_envs == 0:
                arrays = {k: v[None] for k, v in arrays.items()}
            self._store.write_all(arrays)
            self.t = state.t
            return
        idx = normalize_envs_idx(envs_idx, self.n_envs)
        if len(idx) == self.n_envs:  # every env takes its own row: a plain full write, t kept
            self._store.write_all(arrays)
        else:
            self._store.write_rows({k: v[idx] for k, v in arrays.items()}, idx)

    def reset_rows(self, arrays: dict[str, np.ndarray], envs_idx) -> None:
        """Give env envs_idx[i] row i of every array (each (len(envs_idx), *per_env_shape)); `t` is
        kept. The partial reset for a caller holding only the selected rows (a genesis_dist shard)."""
        self._require_built()
        idx = normalize_envs_idx(envs_idx, self.n_envs)
        checkpoint.check_arrays(arrays, self._meta["layout"], len(idx))
        self._store.write_rows(arrays, idx)

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path) -> None:
        """Write the state to one file, atomically (see sim.checkpoint)."""
        self._require_built()
        checkpoint.write(path, self.get_state().arrays(), self.t, self._meta)

    def load_checkpoint(self, path) -> None:
        """Restore every env and `t` from a file; an incompatible file raises CheckpointError
        naming what differs, and leaves the scene unchanged."""
        self._require_built()
        data = checkpoint.read(path)
        checkpoint.check_compatible(data, self._meta, path)
        self.reset(SimState(data["arrays"], data["step_index"], self.n_envs))
