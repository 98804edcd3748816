"""Scene-wide options, and every solver's options class under its own name (`gs.options.MPMOptions`).

The built-in solvers' classes are imported below by name, so an editor or type checker follows
`gs.options.RigidOptions` to its definition (tests/test_genesis_api.py checks that every built-in
solver's class is reachable that way). A solver registered from outside `sim` (a plugin, the test
suite's ToySolver) needs no line here: `__getattr__` publishes it from the solver registry.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.validate import vec


@dataclass(frozen=True)
class SimOptions:
    """dt: seconds per scene.step(); substeps: solver substeps per step; gravity in m/s^2."""

    dt: float = 0.01
    substeps: int = 1
    gravity: tuple[float, float, float] = (0.0, 0.0, -9.81)

    def __post_init__(self):
        if not float(self.dt) > 0:
            raise ValueError(f"SimOptions.dt must be positive, got {self.dt}")
        if int(self.substeps) != self.substeps or self.substeps < 1:
            raise ValueError(f"SimOptions.substeps must be an int >= 1, got {self.substeps}")
        object.__setattr__(self, "dt", float(self.dt))
        object.__setattr__(self, "substeps", int(self.substeps))
        object.__setattr__(self, "gravity", vec("SimOptions.gravity", self.gravity, 3))


def __getattr__(name: str):
    """Options classes of solvers registered from outside sim (see the module docstring)."""
    if name.startswith("__"):  # import machinery probing (__path__, ...): never load solvers for it
        raise AttributeError(name)
    from sim.solvers import base

    for solver in base.registered_solvers().values():
        if solver.options_cls.__name__ == name:
            return solver.options_cls
    raise AttributeError(f"sim.options has no {name!r}")


@dataclass(frozen=True)
class ViewerOptions:
    """Genesis's interactive-viewer settings. There is no viewer here (Scene(show_viewer=True) is
    refused), so these are accepted and have no effect; cameras take their own pose."""

    res: tuple | None = None
    run_in_thread: bool | None = None
    refresh_rate: int = 60
    max_FPS: int | None = 60
    camera_pos: tuple = (3.5, 0.5, 2.5)
    camera_lookat: tuple = (0.0, 0.0, 0.5)
    camera_up: tuple = (0.0, 0.0, 1.0)
    camera_fov: float = 40.0


@dataclass(frozen=True)
class VisOptions:
    """Genesis's visualisation settings. Honoured by cameras: segmentation_level ('entity',
    'link' or 'geom': what a segmentation image labels) and particle_size_scale; the rest are
    accepted and have no effect (see the README's table)."""

    show_world_frame: bool = True
    world_frame_size: float = 1.0
    show_link_frame: bool = False
    link_frame_size: float = 0.2
    show_cameras: bool = False
    shadow: bool = True
    plane_reflection: bool = False
    env_separate_rigid: bool = False
    background_color: tuple = (0.04, 0.08, 0.12)
    ambient_light: tuple = (0.1, 0.1, 0.1)
    visualize_mpm_boundary: bool = False
    visualize_sph_boundary: bool = False
    visualize_pbd_boundary: bool = False
    segmentation_level: str = "link"
    render_particle_as: str = "sphere"
    particle_size_scale: float = 1.0
    contact_force_scale: float = 0.01
    n_support_neighbors: int = 12
    n_rendered_envs: int | None = None
    rendered_envs_idx: tuple | None = None
    lights: tuple = ({"type": "directional", "dir": (-1, -1, -1), "color": (1.0, 1.0, 1.0), "intensity": 5.0},)

    def __post_init__(self):
        if self.segmentation_level not in ("entity", "link", "geom"):
            raise ValueError(f"VisOptions.segmentation_level must be 'entity', 'link' or 'geom', "
                             f"got {self.segmentation_level!r}")
        if self.render_particle_as != "sphere":
            raise ValueError(f"VisOptions.render_particle_as={self.render_particle_as!r} is not supported "
                             f"(particles render as spheres)")
        if not float(self.particle_size_scale) > 0:
            raise ValueError(f"VisOptions.particle_size_scale must be positive, got {self.particle_size_scale}")


# The built-in solvers' options (after SimOptions: importing a solver never needs this module).
from sim.solvers.fem import FEMOptions  # noqa: E402
from sim.solvers.mpm import MPMOptions  # noqa: E402
from sim.solvers.pbd import PBDOptions  # noqa: E402
from sim.solvers.rigid import RigidOptions  # noqa: E402
from sim.solvers.sph import SPHOptions  # noqa: E402
