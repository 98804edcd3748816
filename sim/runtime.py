"""The one Taichi runtime of this process: backend, precision, seed, determinism.

Taichi allows one runtime per process, so `init` may be called again only with the
same arguments. Using the API before `init` initialises the CPU default (float32), so the
specification's snippets, which never call `gs.init`, run as written.
"""

from __future__ import annotations

import contextlib
import io
import logging
import random
from dataclasses import dataclass

import numpy as np
import taichi as ti

logger = logging.getLogger("sim")

cpu = "cpu"
gpu = "gpu"
_BACKENDS = {cpu: ti.cpu, gpu: ti.cuda}
_PRECISIONS = {"32": (ti.f32, np.float32), "64": (ti.f64, np.float64)}


@dataclass(frozen=True)
class RuntimeConfig:
    backend: str
    precision: str
    seed: int
    deterministic: bool
    logging_level: str

    @property
    def ti_float(self):
        return _PRECISIONS[self.precision][0]

    @property
    def np_float(self):
        return np.dtype(_PRECISIONS[self.precision][1])


_config: RuntimeConfig | None = None


def init(backend: str = cpu, precision: str = "32", seed: int = 0, deterministic: bool = False,
         logging_level: str = "warning") -> RuntimeConfig:
    """Start the Taichi runtime. Repeating the same call is harmless; a different one raises.

    deterministic=True makes every kernel reproducible bit for bit: on the CPU backend
    Taichi runs on one thread, so atomic scatters (MPM, SPH) sum in a fixed order.
    """
    global _config
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be gs.cpu or gs.gpu, got {backend!r}")
    precision = str(precision)
    if precision not in _PRECISIONS:
        raise ValueError(f'precision must be "32" or "64", got {precision!r}')
    if not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    level = str(logging_level).lower()
    if level not in ("debug", "info", "warning", "error"):
        raise ValueError(f"logging_level must be debug/info/warning/error, got {logging_level!r}")
    config = RuntimeConfig(backend, precision, int(seed), bool(deterministic), level)
    if _config is not None:
        if config != _config:
            raise RuntimeError(
                f"sim is already initialised with {_config}; Taichi allows one runtime per "
                f"process, so it cannot be re-initialised with {config}")
        return _config
    logger.setLevel(level.upper())
    random.seed(config.seed)
    np.random.seed(config.seed)
    kwargs = dict(arch=_BACKENDS[backend], default_fp=config.ti_float, default_ip=ti.i32,
                  random_seed=config.seed, offline_cache=True, log_level=ti.ERROR if level != "debug" else ti.INFO)
    if deterministic and backend == cpu:
        kwargs["cpu_max_num_threads"] = 1
    with contextlib.redirect_stdout(io.StringIO()):  # Taichi prints "[Taichi] Starting on arch=..." at any log level
        ti.init(**kwargs)
    if backend == gpu and ti.lang.impl.current_cfg().arch != ti.cuda:
        raise RuntimeError("gs.gpu was requested but Taichi found no CUDA device")
    _config = config
    return config


def config() -> RuntimeConfig:
    """The runtime in force, initialising the CPU default if nothing has run `init` yet."""
    if _config is None:
        logger.info("sim used before gs.init(): initialising backend=cpu, precision=32")
        init()
    return _config


def is_initialized() -> bool:
    return _config is not None
