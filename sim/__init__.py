"""sim: a Genesis-compatible batched simulator in Taichi. Use it as `import sim as gs`."""

import torch

from sim import headless_gl  # noqa: F401  (must run before anything imports mujoco)
from sim import materials, morphs, options, runtime
from sim import solvers as _solvers  # noqa: F401  (registers every solver)
from sim.checkpoint import CheckpointError, UnsafeCheckpointError
from sim.runtime import cpu, cuda, gpu, init, is_initialized, vulkan
from sim.scene import Scene
from sim.state import SimState

__all__ = ["init", "cpu", "gpu", "cuda", "vulkan", "is_initialized", "Scene", "SimState", "CheckpointError",
           "UnsafeCheckpointError", "morphs", "materials", "options"]

# Genesis's type names of the runtime in force (read after gs.init; reading one before it
# initialises the CPU default, like any other use of the API).
_RUNTIME_ATTRS = {
    "ti_float": lambda c: c.ti_float,
    "np_float": lambda c: c.np_float,
    "tc_float": lambda c: c.tc_float,
    "tc_int": lambda c: torch.int32,
    "tc_bool": lambda c: torch.bool,
    "device": lambda c: c.device,
    "backend": lambda c: c.backend,
}


def __getattr__(name: str):
    """gs.ti_float, gs.np_float, gs.tc_float, gs.tc_int, gs.tc_bool, gs.device, gs.backend."""
    if name in _RUNTIME_ATTRS:
        return _RUNTIME_ATTRS[name](runtime.config())
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


# Genesis-compatibility surface: gs.surfaces, gs.renderers, gs.constraint_solver, gs.integrator, sim.utils.geom
from sim import renderers, sensors, surfaces, utils  # noqa: E402
from sim.enums import constraint_solver, integrator  # noqa: E402
