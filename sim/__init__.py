"""sim: a Genesis-compatible batched simulator in Taichi. Use it as `import sim as gs`."""

from sim import headless_gl  # noqa: F401  (must run before anything imports mujoco)
from sim import materials, morphs, options, runtime
from sim import solvers as _solvers  # noqa: F401  (registers every solver)
from sim.checkpoint import CheckpointError, UnsafeCheckpointError
from sim.runtime import cpu, gpu, init, is_initialized
from sim.scene import Scene
from sim.state import SimState

__all__ = ["init", "cpu", "gpu", "is_initialized", "Scene", "SimState", "CheckpointError",
           "UnsafeCheckpointError", "morphs", "materials", "options"]


def __getattr__(name: str):
    """gs.ti_float / gs.np_float: the float types of the current precision."""
    if name == "ti_float":
        return runtime.config().ti_float
    if name == "np_float":
        return runtime.config().np_float
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


# Genesis-compatibility surface: gs.surfaces, gs.renderers, gs.constraint_solver, gs.integrator, sim.utils.geom
from sim import renderers, surfaces, utils  # noqa: E402
from sim.enums import constraint_solver, integrator  # noqa: E402
