"""The one Taichi runtime of this process: backend, precision, seed, determinism.

Taichi allows one runtime per process, so `init` may be called again only with the
same arguments. Using the API before `init` initialises the CPU default (float32), so the
specification's snippets, which never call `gs.init`, run as written.

Backends: gs.cpu, gs.cuda, gs.vulkan, and gs.gpu, which means the first of CUDA, Vulkan
that this machine has (the config records the one chosen). Tensors that getters return
live on `device()`: the CUDA device on CUDA when torch has CUDA, else the CPU. Taichi's
Vulkan memory is not visible to torch, so on Vulkan every field <-> torch transfer is a
copy through host memory.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import random
from dataclasses import dataclass

import numpy as np
import taichi as ti
import torch

logger = logging.getLogger("sim")

cpu = "cpu"
cuda = "cuda"
vulkan = "vulkan"
gpu = "gpu"
_ARCHS = {cpu: ti.cpu, cuda: ti.cuda, vulkan: ti.vulkan}
_GPU_ORDER = (cuda, vulkan)  # what gs.gpu picks, first found
_PRECISIONS = {"32": (ti.f32, np.float32, torch.float32), "64": (ti.f64, np.float64, torch.float64)}


@dataclass(frozen=True)
class RuntimeConfig:
    backend: str  # the backend in use: cpu, cuda or vulkan (never gpu)
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

    @property
    def tc_float(self) -> torch.dtype:
        return _PRECISIONS[self.precision][2]

    @property
    def device(self) -> torch.device:
        """Where torch tensors of this runtime live (see the module docstring)."""
        return torch.device("cuda" if self.backend == cuda and torch.cuda.is_available() else "cpu")


_config: RuntimeConfig | None = None


@functools.cache
def available(backend: str) -> bool:
    """Whether Taichi can start `backend` (cpu, cuda or vulkan) on this machine."""
    return backend == cpu or bool(ti.lang.misc.is_arch_supported(_ARCHS[backend]))


def _resolve(backend) -> str:
    if backend == gpu:
        for candidate in _GPU_ORDER:
            if available(candidate):
                return candidate
        raise RuntimeError("gs.gpu was requested but Taichi found neither a CUDA nor a Vulkan device "
                           "(for Vulkan without a GPU, install Mesa's software driver: "
                           "apt-get install mesa-vulkan-drivers)")
    if not available(backend):
        raise RuntimeError(f"backend gs.{backend} was requested but Taichi found no {backend} device")
    return backend


def init(backend: str = cpu, precision: str = "32", seed: int = 0, deterministic: bool = False,
         logging_level: str = "warning", performance_mode: bool = False, **unknown) -> RuntimeConfig:
    """Start the Taichi runtime. Repeating the same call is harmless; a different one raises.

    deterministic=True makes every kernel reproducible bit for bit: on the CPU backend
    Taichi runs on one thread, so atomic scatters (MPM, SPH) sum in a fixed order. Device
    backends sum atomics in thread-schedule order, so they refuse it.
    performance_mode: Genesis's switch from dynamic arrays to fields with shapes fixed at
    compile time. sim always compiles fields with fixed shapes, so it has no effect here.
    """
    global _config
    if unknown:
        raise TypeError(f"gs.init got unknown keyword argument(s): {', '.join(sorted(unknown))}")
    if not isinstance(performance_mode, bool):
        raise TypeError(f"performance_mode must be a bool, got {type(performance_mode).__name__}")
    precision = str(precision)
    if precision not in _PRECISIONS:
        raise ValueError(f'precision must be "32" or "64", got {precision!r}')
    if not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    level = str(logging_level).lower()
    if level not in ("debug", "info", "warning", "error"):
        raise ValueError(f"logging_level must be debug/info/warning/error, got {logging_level!r}")
    if backend not in (*_ARCHS, gpu):
        raise ValueError(f"backend must be gs.cpu, gs.gpu, gs.cuda or gs.vulkan, got {backend!r}")
    if deterministic and backend != cpu:
        raise ValueError(f"deterministic=True needs backend=gs.cpu: on gs.{backend} atomic float adds "
                         "sum in thread-schedule order, so no bit-exact guarantee holds there")
    chosen = _resolve(backend)
    config = RuntimeConfig(chosen, precision, int(seed), bool(deterministic), level)
    if _config is not None:
        if config != _config:
            raise RuntimeError(
                f"sim is already initialised with {_config}; Taichi allows one runtime per "
                f"process, so it cannot be re-initialised with {config}")
        return _config
    logger.setLevel(level.upper())
    if backend == gpu:
        logger.log(logging.INFO if chosen == cuda else logging.WARNING,
                   "gs.gpu: using %s%s", chosen, "" if chosen == cuda else " (no CUDA device found)")
    kwargs = dict(arch=_ARCHS[chosen], default_fp=config.ti_float, default_ip=ti.i32,
                  random_seed=config.seed, offline_cache=True, log_level=ti.ERROR if level != "debug" else ti.INFO)
    if deterministic:
        kwargs["cpu_max_num_threads"] = 1
    _quiet_ti_init(kwargs)
    arch = ti.lang.impl.current_cfg().arch
    if arch != _ARCHS[chosen] and not (chosen == cpu and arch in (ti.x64, ti.arm64)):
        ti.reset()
        raise RuntimeError(f"gs.{chosen} was requested but Taichi started on {arch.name}")
    if precision == "64" and chosen != cpu:
        _check_float64(chosen)
    random.seed(config.seed)
    np.random.seed(config.seed)
    _config = config
    return config


def _quiet_ti_init(kwargs: dict) -> None:
    """ti.init, without the "[Taichi] Starting on arch=..." line it prints at any log level."""
    with contextlib.redirect_stdout(io.StringIO()):
        ti.init(**kwargs)


def _check_float64(backend: str) -> None:
    """Compile and run one float64 kernel with the functions the solvers call (log, exp, pow,
    sin, cos). Taichi's SPIR-V code (Vulkan) has float64 arithmetic but not these (GLSL.std.450
    defines them for 32 bits only), so there precision="64" fails here, at gs.init, with the
    device's name, rather than in the first MPM, SPH or rigid kernel."""
    try:
        x = ti.field(ti.f64, shape=2)

        @ti.kernel
        def probe():
            for i in x:
                y = 1.0 + 1e-12 * (i + 1)
                x[i] = ti.pow(ti.exp(ti.log(y)), 1.0) * (ti.sin(y) ** 2 + ti.cos(y) ** 2)

        probe()
        error = abs(x.to_numpy()[1] - (1.0 + 2e-12))
    except Exception as e:  # Taichi raises RuntimeError (or its own types) from SPIR-V codegen
        why = f"its kernels cannot compute float64 log/exp/pow/sin/cos, which the solvers need ({e})"
    else:
        if error < 1e-14:
            return
        why = f"float64 arithmetic rounded like float32 (error {error:.1e})"
    ti.reset()
    raise RuntimeError(f'precision="64" is not supported on the {backend} device Taichi picked: {why}; '
                       f'use precision="32", or backend=gs.cpu for float64')


def config() -> RuntimeConfig:
    """The runtime in force, initialising the CPU default if nothing has run `init` yet."""
    if _config is None:
        logger.info("sim used before gs.init(): initialising backend=cpu, precision=32")
        init()
    return _config


def is_initialized() -> bool:
    return _config is not None
