"""Scene: entities, build(n_envs), step, and the state / reset / checkpoint API for every solver."""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

from sim import checkpoint, runtime
from sim.envs_idx import normalize_envs_idx
from sim.options import SimOptions, ViewerOptions, VisOptions
from sim.renderers import Rasterizer
from sim.sensors import SensorManager
from sim.solvers import base
from sim.state import SimState
from sim.state_store import StateStore
from sim.surfaces import Surface
from sim.validate import require_built, vec

logger = logging.getLogger("sim")


class Scene:
    """A batched scene. Solver options are passed as `<solver>_options=` keywords
    (`rigid_options=gs.options.RigidOptions(...)`, ...); unknown keywords raise.

    Genesis's viewer and visualisation arguments are accepted: viewer_options, vis_options
    (cameras honour its segmentation_level and particle_size_scale), renderer (Rasterizer),
    show_FPS. There is no interactive viewer: show_viewer=True raises.
    A solver's options may carry their own `dt` / `gravity` (Genesis's override of SimOptions
    for that solver); the solver then steps with them.
    """

    def __init__(self, sim_options: SimOptions | None = None, *, viewer_options: ViewerOptions | None = None,
                 vis_options: VisOptions | None = None, renderer=None, show_viewer: bool = False,
                 show_FPS: bool = False, **solver_options):
        self._config = runtime.config()
        sim_options = SimOptions() if sim_options is None else sim_options
        if not isinstance(sim_options, SimOptions):
            raise TypeError(f"sim_options must be gs.options.SimOptions, got {type(sim_options).__name__}")
        for name, value, cls in (("viewer_options", viewer_options, ViewerOptions),
                                 ("vis_options", vis_options, VisOptions), ("renderer", renderer, Rasterizer)):
            if value is not None and not isinstance(value, cls):
                raise TypeError(f"{name} must be gs.{'renderers' if cls is Rasterizer else 'options'}.{cls.__name__}, "
                                f"got {type(value).__name__}")
        if show_viewer:
            raise ValueError("show_viewer=True is not supported: there is no interactive viewer; pass "
                             "show_viewer=False and use scene.add_camera(...) to render images or videos")
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
        self.viewer_options = viewer_options or ViewerOptions()
        self.vis_options = vis_options or VisOptions()
        self.renderer = renderer or Rasterizer()
        self.show_viewer, self.show_FPS = False, bool(show_FPS)
        self.solvers: dict[str, base.Solver] = {}
        for name in sorted(solvers):
            cls = solvers[name]
            options = solver_options.get(cls.options_kwarg) or cls.options_cls()
            self.solvers[name] = cls(self, options, _solver_sim_options(sim_options, options))
        self.sim = SimulatorView(self.solvers)
        self.entities: list = []
        self.cameras: list = []
        self._sensors = SensorManager(self)
        self.n_envs: int | None = None
        self.env_spacing = (0.0, 0.0)
        self.t = 0
        self._store: StateStore | None = None
        self._init_state: SimState | None = None

    @property
    def dt(self) -> float:
        """Seconds per scene.step()."""
        return self.sim_options.dt

    def __getattr__(self, name: str):
        """scene.rigid_solver, scene.mpm_solver, ...: Genesis's shortcuts to scene.sim.<name>."""
        if name.endswith("_solver") and "solvers" in self.__dict__:
            return getattr(self.sim, name)
        raise AttributeError(f"'Scene' object has no attribute {name!r}")

    # ------------------------------------------------------------------ construction
    @property
    def is_built(self) -> bool:
        return self._store is not None

    @property
    def active_solvers(self) -> list[base.Solver]:
        return [s for s in self.solvers.values() if s.is_active]

    def add_entity(self, morph, material=None, surface=None, visualize_contact: bool = False, vis_mode=None):
        """Add an entity; the material (default gs.materials.Rigid) chooses the solver.
        surface (gs.surfaces.*): cameras draw the entity in its color; visualize_contact and
        vis_mode are Genesis viewer settings, accepted with no effect."""
        if self.is_built:
            raise RuntimeError("add_entity must be called before scene.build()")
        material = base.default_material() if material is None else material
        solver_name = getattr(material, "solver_name", None)
        if solver_name not in self.solvers:
            raise TypeError(f"{type(material).__name__} is not a material of any solver")
        if surface is not None and not isinstance(surface, Surface):
            raise TypeError(f"surface must be a gs.surfaces.* object, got {type(surface).__name__}")
        if not isinstance(visualize_contact, bool):
            raise TypeError(f"visualize_contact must be True or False, got {visualize_contact!r}")
        entity = self.solvers[solver_name].add_entity(morph, material)
        entity.surface, entity.visualize_contact, entity.vis_mode = surface, visualize_contact, vis_mode
        self.entities.append(entity)
        return entity

    def add_camera(self, res=(320, 240), pos=(3.5, 0.0, 2.5), lookat=(0.0, 0.0, 0.5), up=(0.0, 0.0, 1.0),
                   model="pinhole", fov=30.0, aperture=2.8, focus_dist=None, GUI=False, spp=256, denoise=None,  # noqa: N803
                   near=0.05, far=100.0, env_idx=None, debug=False):
        """A camera rendering one env at a time through MuJoCo's renderer (see sim.camera)."""
        from sim.camera import Camera

        camera = Camera(self, len(self.cameras), res, pos, lookat, up, model, fov, aperture, focus_dist, GUI, spp,
                        denoise, near, far, env_idx, debug)
        self.cameras.append(camera)
        return camera

    def add_sensor(self, sensor_options):
        """Attach a gs.sensors.IMU / Contact / ContactForce to a rigid link (before build); returns
        the sensor, read with sensor.read(envs_idx=None). See sim.sensors."""
        return self._sensors.add(sensor_options)

    def read_sensors(self, envs_idx=None) -> dict:
        """Every sensor's reading, one tensor per kind keyed by gs.sensors.types.<Name>."""
        return self._sensors.read_all(envs_idx)

    def build(self, n_envs: int = 0, env_spacing=(0.0, 0.0), n_envs_per_row: int | None = None,
              center_envs_at_origin: bool = True, compile_kernels: bool | None = None) -> None:
        """Compile the scene for n_envs environments: 0 unbatched (no env axis), N >= 1 batched.

        env_spacing / n_envs_per_row / center_envs_at_origin lay envs out on a grid for
        rendering only (Genesis's meaning): they are stored (scene.envs_offset) and change no
        physics; a camera renders one env at a time, at its own place. compile_kernels is
        accepted (kernels compile on first use here)."""
        if self.is_built:
            raise RuntimeError("scene is already built")
        if isinstance(n_envs, bool) or not isinstance(n_envs, (int, np.integer)) or n_envs < 0:
            raise ValueError(f"n_envs must be an int >= 0, got {n_envs!r}")
        n_envs = int(n_envs)
        self.env_spacing = vec("env_spacing", env_spacing, 2)
        if n_envs_per_row is not None and (not isinstance(n_envs_per_row, (int, np.integer)) or n_envs_per_row < 1):
            raise ValueError(f"n_envs_per_row must be an int >= 1 or None, got {n_envs_per_row!r}")
        self.envs_offset = _grid_offsets(max(n_envs, 1), self.env_spacing, n_envs_per_row, center_envs_at_origin)
        _warn_uncoupled(self.active_solvers)
        specs = {f"{s.name}.{spec.name}": spec for s in self.active_solvers for spec in s.state_specs()}
        specs.update(self._sensors.state_specs())
        store = StateStore(specs, self._config.np_float, max(n_envs, 1))
        for solver in self.active_solvers:
            prefix = solver.name + "."
            solver.build(n_envs, max(n_envs, 1),
                         {k[len(prefix):]: f for k, f in store.fields.items() if k.startswith(prefix)})
        self._sensors.build(store.fields)
        self.n_envs = n_envs
        self._store = store
        description = {"precision": self._config.precision,
                       "sim_options": base.to_plain(self.sim_options),
                       "solvers": {s.name: s.describe() for s in self.active_solvers}}
        if self._sensors.sensors:
            description["sensors"] = self._sensors.describe()
        self._meta = checkpoint.make_meta(description, checkpoint.layout(specs, self._config.np_float), n_envs)
        self._init_state = self.get_state()

    # ------------------------------------------------------------------ stepping
    def step(self) -> None:
        require_built(self, "scene.step()")
        for solver in self.active_solvers:
            solver.step()
        self._sensors.update()
        self.t += 1

    # ------------------------------------------------------------------ state
    @property
    def fingerprint(self) -> str:
        require_built(self, "scene.fingerprint")
        return self._meta["fingerprint"]

    def checkpoint_meta(self) -> dict:
        """The "meta" entry this scene writes into checkpoints (layout, fingerprint, n_envs)."""
        require_built(self, "scene.checkpoint_meta()")
        return self._meta

    def get_state(self) -> SimState:
        """A copy of the current state; later steps do not change it."""
        require_built(self, "scene.get_state()")
        arrays = self._store.read_all()
        if self.n_envs == 0:
            arrays = {k: v[0] for k, v in arrays.items()}
        return SimState(arrays, self.t, self.n_envs, self._meta["fingerprint"])

    def reset(self, state: SimState | None = None, envs_idx=None) -> None:
        """Restore `state` (default: the state at the end of build) in all envs, or only in
        `envs_idx`, in which case those envs take their own rows of `state` and `t` is kept.
        Without a state, per-env model parameters (domain randomisation: FieldSpec.reset_keeps)
        keep their current values, as in Genesis. Everything is validated before anything changes."""
        require_built(self, "scene.reset()")
        keep = state is None
        state = self._init_state if state is None else state
        if not isinstance(state, SimState):
            raise TypeError(f"state must be a SimState (scene.get_state()), got {type(state).__name__}")
        arrays = checkpoint.with_optional(state.arrays(), self._meta["layout"], self.n_envs)
        checkpoint.check_arrays(arrays, self._meta["layout"], self.n_envs)
        if envs_idx is None:
            if self.n_envs == 0:
                arrays = {k: v[None] for k, v in arrays.items()}
            self._store.write_all(arrays, keep)
            self.t = state.t
            return
        idx = normalize_envs_idx(envs_idx, self.n_envs)
        if len(idx) == 0:
            return
        if len(idx) == self.n_envs:  # every env takes its own row: a plain full write, t kept
            self._store.write_all(arrays, keep)
        else:
            self._store.write_rows({k: v[idx] for k, v in arrays.items()}, idx, keep)

    def reset_rows(self, arrays: dict[str, np.ndarray], envs_idx) -> None:
        """Give env envs_idx[i] row i of every array (each (len(envs_idx), *per_env_shape)); `t` is
        kept. The partial reset for a caller holding only the selected rows (a genesis_dist shard)."""
        require_built(self, "scene.reset_rows()")
        idx = normalize_envs_idx(envs_idx, self.n_envs)
        checkpoint.check_arrays(arrays, self._meta["layout"], len(idx))
        if len(idx):
            self._store.write_rows(arrays, idx)

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path) -> None:
        """Write the state to one file, atomically (see sim.checkpoint)."""
        require_built(self, "scene.save_checkpoint()")
        checkpoint.write(path, self.get_state().arrays(), self.t, self._meta)

    def load_checkpoint(self, path) -> None:
        """Restore every env and `t` from a file; an incompatible file raises CheckpointError
        naming what differs, and leaves the scene unchanged."""
        require_built(self, "scene.load_checkpoint()")
        data = checkpoint.read(path)
        checkpoint.check_compatible(data, self._meta, path)
        self.reset(SimState(data["arrays"], data["step_index"], self.n_envs))


class SimulatorView:
    """scene.sim: Genesis's simulator object, here only its solver attributes
    (scene.sim.rigid_solver, .mpm_solver, .sph_solver, .pbd_solver, .fem_solver)."""

    def __init__(self, solvers: dict):
        self.solvers = list(solvers.values())
        for name, solver in solvers.items():
            setattr(self, name.removesuffix("Solver").lower() + "_solver", solver)


def _solver_sim_options(sim_options: SimOptions, options) -> SimOptions:
    """The SimOptions a solver steps with: the scene's, with the solver's own dt / gravity if set."""
    changes = {k: getattr(options, k) for k in ("dt", "gravity") if getattr(options, k, None) is not None}
    return dataclasses.replace(sim_options, **changes) if changes else sim_options


def _grid_offsets(n: int, spacing, per_row, centred: bool) -> np.ndarray:
    """Genesis's env layout for rendering: envs on a grid of `per_row` columns (default square)."""
    per_row = per_row or max(1, int(math.ceil(math.sqrt(n))))
    idx = np.arange(n)
    offsets = np.stack([(idx % per_row) * spacing[0], (idx // per_row) * spacing[1], np.zeros(n)], axis=1)
    if centred:
        offsets[:, :2] -= offsets[:, :2].max(axis=0) / 2
    return offsets


def _warn_uncoupled(solvers) -> None:
    """Solvers do not couple yet: say so when bodies of several solvers share a scene (ground
    planes are walls for every solver, so they do not count)."""
    from sim.morphs import Plane

    with_bodies = [s.name for s in solvers if any(not isinstance(e.morph, Plane) for e in s.entities)]
    if len(with_bodies) > 1:
        logger.warning("entities of %s share this scene, but the solvers do not couple yet: they move through each "
                       "other (ground planes are walls for all of them)", " and ".join(with_bodies))
