"""The device path, run on every commit: sim on Taichi's Vulkan backend. Without a GPU this is
Mesa's software Vulkan device (lavapipe), which `make test` installs when it is missing.

Taichi allows one runtime per process, so the Vulkan work runs in few fresh processes: one
float32 process runs every check below and reports each one's outcome (a check's failure fails
only its own test), after checking that float64 is refused there; the 2-shard
DistributedScene has its own shard processes. Compiling for lavapipe is slow (minutes cold,
seconds with Taichi's offline cache warm), so the scenes are the CPU tests' own, and few.

The checks, the mixed scene and the round trip live in `device_checks.py` (which also runs
them on CUDA when a GPU is lent); its docstring says how the tolerances were set. Bit-for-bit
trajectories are a CPU guarantee (deterministic=True), which device backends refuse.
"""

import sys
import tempfile

import cloudpickle
import numpy as np
import pytest
import torch

import genesis_dist as gd
import device_checks as dc
import sim as gs
from isolated import run_isolated
from local_ray import local_ray_fixture
from sim import runtime

VULKAN = runtime.available(gs.vulkan)
needs_vulkan = pytest.mark.skipif(not VULKAN, reason=(
    "no Vulkan device: install Mesa's software driver (apt-get install mesa-vulkan-drivers; "
    "`make test` does it when run as root)"))
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # shards never import this module

# ------------------------------------------------------------------ runtime, no device needed
def test_type_names_and_device_follow_the_runtime():
    cfg = runtime.config()
    assert (gs.tc_float, gs.tc_int, gs.tc_bool) == (torch.float32, torch.int32, torch.bool)
    assert gs.np_float == np.float32 and gs.device == torch.device("cpu") and gs.backend == gs.cpu == cfg.backend


def test_init_keywords_genesis_has_and_unknown_ones():
    cfg = runtime.config()
    same = dict(backend=cfg.backend, precision=cfg.precision, seed=cfg.seed, deterministic=cfg.deterministic,
                logging_level=cfg.logging_level)
    assert gs.init(**same, performance_mode=True) == cfg  # accepted, no effect (fields are always static)
    with pytest.raises(TypeError, match="unknown keyword argument.*: theme, use_deterministic_algorithms"):
        gs.init(**same, use_deterministic_algorithms=True, theme="dark")
    with pytest.raises(TypeError, match="performance_mode"):
        gs.init(**same, performance_mode="yes")
    for device in (gs.gpu, gs.cuda, gs.vulkan):
        with pytest.raises(ValueError, match="deterministic=True needs backend=gs.cpu"):
            gs.init(backend=device, deterministic=True)
    assert runtime.config() == cfg


def _init_errors_without_vulkan():
    errors = []
    for backend in (gs.vulkan, gs.gpu):
        try:
            gs.init(backend=backend)
        except RuntimeError as e:
            errors.append(str(e))
    gs.init(backend=gs.cpu)  # a refused backend leaves nothing half-initialised
    return errors, runtime.available(gs.cuda), runtime.config().backend


def test_missing_vulkan_is_named_at_init(monkeypatch):
    for var in ("VK_ICD_FILENAMES", "VK_DRIVER_FILES"):  # the Vulkan loader finds no driver
        monkeypatch.setenv(var, "/nonexistent/vulkan_icd.json")
    errors, has_cuda, backend = run_isolated(_init_errors_without_vulkan, call_init=False)
    assert backend == gs.cpu
    assert "gs.vulkan was requested but Taichi found no vulkan device" in errors[0]
    if not has_cuda:
        assert "neither a CUDA nor a Vulkan device" in errors[1] and "mesa-vulkan-drivers" in errors[1]


# ------------------------------------------------------------------ scenes
def build_pbd(n_envs):
    """The 2-shard DistributedScene's build function (runs in each shard)."""
    import test_pbd

    return test_pbd._scene(n_envs, floor_height=None)[0]


# ------------------------------------------------------------------ the float32 Vulkan process
def _vulkan_float32(tmp: str, cpu_checkpoint: str):
    """In a fresh process: float64 refused on Vulkan, then gs.gpu (Vulkan where there is no
    CUDA) runs every check and the device half of the checkpoint round trip."""
    backend = gs.vulkan if runtime.available(gs.cuda) else gs.gpu
    try:
        gs.init(backend=backend, precision="64")
    except RuntimeError as e:
        refused = str(e)
    else:
        raise AssertionError("gs.init(precision='64') on Vulkan was accepted")
    return dict(dc.device_half(tmp, cpu_checkpoint, backend), float64_refused=refused)


@pytest.fixture(scope="module")
def vulkan_run():
    """The CPU half of the round trip (this process), then the Vulkan process."""
    if not VULKAN:
        pytest.skip(needs_vulkan.kwargs["reason"])
    with tempfile.TemporaryDirectory() as tmp:
        cpu, path, first = dc.cpu_half(tmp)
        out = run_isolated(_vulkan_float32, tmp, path, call_init=False, timeout=1200)
        yield dict(out, cpu_scene=cpu, tmp=tmp, **first)


@needs_vulkan
def test_gpu_is_vulkan_here_and_says_so(vulkan_run):
    if not runtime.available(gs.cuda):
        assert vulkan_run["backend"] == gs.vulkan
        assert any("gs.gpu: using vulkan" in m for m in vulkan_run["notices"]), vulkan_run["notices"]
    assert vulkan_run["device"] == "cpu" and vulkan_run["tc_float"] == "torch.float32"


@needs_vulkan
def test_float64_on_vulkan_is_refused_at_init_by_name(vulkan_run):
    """Taichi's SPIR-V code has float64 arithmetic but no float64 log/exp/pow/sin/cos, which
    MPM, SPH and rigid kernels call: gs.init says so instead of the first kernel failing."""
    refused = vulkan_run["float64_refused"]
    assert 'precision="64" is not supported on the vulkan device' in refused and "float64 log" in refused


@needs_vulkan
@pytest.mark.parametrize("check", ["spec_snippets", "franka_api", "rigid_contact", "mpm", "sph", "pbd", "fem"])
def test_check_passes_on_vulkan(vulkan_run, check):
    if check in vulkan_run["skipped"]:
        pytest.skip(vulkan_run["skipped"][check])
    assert check not in vulkan_run["failures"], vulkan_run["failures"].get(check)


@needs_vulkan
def test_checkpoint_round_trip_cpu_vulkan_cpu(vulkan_run):
    """CPU saves, Vulkan loads bit for bit and continues as the CPU did (to rounding), Vulkan
    saves, the CPU loads bit for bit."""
    dc.check_round_trip(vulkan_run)


# ------------------------------------------------------------------ genesis_dist on Vulkan
local_ray = local_ray_fixture(num_cpus=4, autouse=False)


@needs_vulkan
def test_two_vulkan_shards_step_save_and_load_into_a_cpu_scene(local_ray, tmp_path):
    """A 2-shard DistributedScene whose shards run gs.vulkan: it steps, resets envs across the
    shard boundary, and its merged checkpoint loads bit for bit into a plain CPU scene."""
    try:
        dscene = gd.DistributedScene(build_pbd, n_envs=4, n_shards=2, backend=gs.vulkan,
                                     resources_per_shard={"num_cpus": 1})
    except ValueError as e:
        if "backend" not in str(e):
            raise
        pytest.skip(f"this genesis_dist refuses backend='vulkan': {e}")
    with dscene:
        start = dscene.get_state()
        for _ in range(3):
            dscene.step()
        dscene.reset(state=start, envs_idx=[1, 2])
        state = dscene.get_state()
        dscene.save_checkpoint(tmp_path / "vulkan_shards.pkl")
    for key in state.keys():
        np.testing.assert_array_equal(state[key][[1, 2]], start[key][[1, 2]], err_msg=key)
    assert not np.array_equal(state["PBDSolver.pos"][0], start["PBDSolver.pos"][0]), "envs 0 and 3 moved"
    cpu = build_pbd(4)
    cpu.load_checkpoint(tmp_path / "vulkan_shards.pkl")
    assert cpu.t == 3
    for key, value in cpu.get_state().arrays().items():
        np.testing.assert_array_equal(value, state[key], err_msg=key)
