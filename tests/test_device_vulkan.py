"""The device path, run on every commit: sim on Taichi's Vulkan backend. Without a GPU this is
Mesa's software Vulkan device (lavapipe), which `make test` installs when it is missing.

Taichi allows one runtime per process, so the Vulkan work runs in few fresh processes: one
float32 process runs every check below and reports each one's outcome (a check's failure fails
only its own test), after checking that float64 is refused there; the 2-shard
DistributedScene has its own shard processes. Compiling for lavapipe is slow (minutes cold,
seconds with Taichi's offline cache warm), so the scenes are the CPU tests' own, and few.

Tolerances: the known-answer checks reuse the CPU tests' functions and their tolerances,
which are all set by physics and float rounding (the symplectic lag plus 2e-5 m, momentum to
1e-5 of sum m|v|), not by bit-exactness: on a device, atomic float adds (MPM particle-to-grid,
SPH density sums) land in thread-schedule order, so results agree with the CPU to rounding
only. What is pure data movement (reset, partial reset, checkpoint load) stays bit-exact on
the device too, and is checked as such; bit-for-bit trajectories are a CPU guarantee
(deterministic=True), which device backends refuse.
"""

import logging
import os
import sys
import tempfile
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import torch

import genesis_dist as gd
import particle_checks as pc
import sim as gs
from isolated import run_isolated
from local_ray import local_ray_fixture
from sim import runtime

VULKAN = runtime.available(gs.vulkan)
needs_vulkan = pytest.mark.skipif(not VULKAN, reason=(
    "no Vulkan device: install Mesa's software driver (apt-get install mesa-vulkan-drivers; "
    "`make test` does it when run as root)"))
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # shards never import this module

# Continuing the same checkpoint on the CPU and on Vulkan for ROUND_TRIP_STEPS steps: positions
# agree to ROUND_TRIP_ATOL (m). Each step rounds differently (FMA contraction, atomic order);
# over 3 steps that is ~1e-6 m, and 1e-4 m leaves room for contact solves that amplify it.
ROUND_TRIP_STEPS = 3
ROUND_TRIP_ATOL = 1e-4


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
def mixed_scene():
    """Every solver in one small batched scene: a franka on a plane, an MPM cube, an SPH block,
    a PBD cloth and an FEM box, apart."""
    scene = gs.Scene(mpm_options=gs.options.MPMOptions(lower_bound=(-0.5, -0.5, 0.0), upper_bound=(0.5, 0.5, 1.0),
                                                       grid_density=16),
                     sph_options=gs.options.SPHOptions(lower_bound=(-0.5, -0.5, 0.0), upper_bound=(0.5, 0.5, 1.0),
                                                       particle_size=0.025),
                     pbd_options=gs.options.PBDOptions(substeps=4),
                     fem_options=gs.options.FEMOptions(substeps=5))
    scene.add_entity(gs.morphs.Plane())
    robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    scene.add_entity(gs.morphs.Box(pos=(0.2, 0.0, 0.5), size=(0.1, 0.1, 0.1)), gs.materials.MPM.Elastic())
    scene.add_entity(gs.morphs.Box(pos=(-0.2, 0.0, 0.5), size=(0.1, 0.1, 0.1)), gs.materials.SPH.Liquid())
    scene.add_entity(gs.morphs.Cloth(pos=(1.0, 0.0, 0.5), size=(0.2, 0.2), res=(4, 4)), gs.materials.PBD.Cloth())
    scene.add_entity(gs.morphs.Box(pos=(1.5, 0.0, 0.3), size=(0.1, 0.1, 0.1)), gs.materials.FEM.Elastic())
    scene.build(n_envs=2)
    robot.control_dofs_position(np.full(9, 0.3))
    return scene


def build_pbd(n_envs):
    """The 2-shard DistributedScene's build function (runs in each shard)."""
    import test_pbd

    return test_pbd._scene(n_envs, floor_height=None)[0]


# ------------------------------------------------------------------ the float32 Vulkan process
class _Recorder(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _checks(tmp: Path):
    """name -> function of the checks run on the device; each is a CPU test's own check."""
    import test_domain_randomisation
    import test_fem
    import test_mpm
    import test_pbd
    import test_rigid_contact
    import test_rigid_entity
    import test_spec_snippets
    import test_sph

    def spec_snippets():
        monkeypatch = pytest.MonkeyPatch()
        try:
            test_spec_snippets.test_spec_snippets_run_as_written(tmp, monkeypatch)
        finally:
            monkeypatch.undo()

    def franka_api():
        scene, robot, box = test_rigid_entity.franka_scene.__wrapped__()
        test_rigid_entity.test_shapes_and_links((scene, robot, box))
        test_rigid_entity.test_set_position_only_touches_selected_envs((scene, robot, box))
        q = robot.get_dofs_position()
        assert q.device == gs.device and q.dtype == gs.tc_float
        pc.check_partial_reset(scene, envs_idx=(1, 3))
        test_domain_randomisation.check_parameters_kept_and_restored(scene, robot, box)

    def mpm():
        falling = test_mpm.three_bodies()
        test_mpm.test_free_fall_matches_ballistic_path(falling)
        pc.check_partial_reset(falling[0], envs_idx=(0, 2))
        test_mpm.test_momentum_is_conserved_without_gravity_or_walls(test_mpm.colliding_boxes())

    def sph():
        falling = test_sph.two_blocks()
        test_sph.test_free_fall_matches_ballistic_path(falling)
        pc.check_partial_reset(falling[0])
        test_sph.test_momentum_is_conserved_without_gravity_or_walls()

    def pbd():
        test_pbd.test_free_fall_matches_ballistic_formula()
        test_pbd.test_particles_land_on_floor_and_stack()
        test_pbd.test_partial_reset_touches_only_those_envs()

    def fem():
        test_fem.test_free_fall_matches_ballistic_formula()
        test_fem.test_rests_on_floor_stably()
        test_fem.test_partial_reset_touches_only_those_envs()

    return {"spec_snippets": spec_snippets, "franka_api": franka_api,
            "rigid_contact": test_rigid_contact.test_momentum_in_free_flight_and_collision,
            "mpm": mpm, "sph": sph, "pbd": pbd, "fem": fem}


def _vulkan_float32(tmp: str, cpu_checkpoint: str):
    """In a fresh process: gs.gpu (Vulkan where there is no CUDA), every check, and the device
    half of the checkpoint round trip. Returns what the tests assert on."""
    import traceback

    recorder = _Recorder()
    logging.getLogger("sim").addHandler(recorder)
    backend = gs.vulkan if runtime.available(gs.cuda) else gs.gpu
    try:
        gs.init(backend=backend, precision="64")
    except RuntimeError as e:
        refused = str(e)
    else:
        raise AssertionError("gs.init(precision='64') on Vulkan was accepted")
    gs.init(backend=backend)  # the refusal left no runtime behind
    out = {"backend": runtime.config().backend, "notices": recorder.messages, "device": str(gs.device),
           "tc_float": str(gs.tc_float), "float64_refused": refused, "failures": {}}
    for name, check in _checks(Path(tmp)).items():
        try:
            check()
        except Exception:  # reported to the parent, which fails this check's test
            out["failures"][name] = traceback.format_exc()
    scene = mixed_scene()
    scene.load_checkpoint(cpu_checkpoint)
    out["loaded"] = scene.get_state().arrays()
    out["continued"] = pc.run(scene, ROUND_TRIP_STEPS)
    scene.save_checkpoint(os.path.join(tmp, "vulkan.pkl"))
    out["saved"] = scene.get_state().arrays()
    return out


@pytest.fixture(scope="module")
def vulkan_run():
    """The CPU half of the round trip (this process), then the Vulkan process."""
    if not VULKAN:
        pytest.skip(needs_vulkan.kwargs["reason"])
    with tempfile.TemporaryDirectory() as tmp:
        cpu = mixed_scene()
        pc.run(cpu, 2)
        path = os.path.join(tmp, "cpu.pkl")
        cpu.save_checkpoint(path)
        saved = cpu.get_state()
        continued = pc.run(cpu, ROUND_TRIP_STEPS)
        out = run_isolated(_vulkan_float32, tmp, path, call_init=False, timeout=1200)
        cpu.load_checkpoint(os.path.join(tmp, "vulkan.pkl"))
        yield dict(out, cpu_scene=cpu, cpu_saved=saved.arrays(), cpu_continued=continued)


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
    assert check not in vulkan_run["failures"], vulkan_run["failures"].get(check)


@needs_vulkan
def test_checkpoint_round_trip_cpu_vulkan_cpu(vulkan_run):
    """CPU saves, Vulkan loads bit for bit and continues as the CPU did (to rounding), Vulkan
    saves, the CPU loads bit for bit."""
    for key, value in vulkan_run["cpu_saved"].items():
        np.testing.assert_array_equal(vulkan_run["loaded"][key], value, err_msg=f"Vulkan loading {key}")
    for key, value in vulkan_run["cpu_continued"].items():
        if value.dtype.kind == "f":
            np.testing.assert_allclose(vulkan_run["continued"][key], value, rtol=0, atol=ROUND_TRIP_ATOL, err_msg=key)
        else:
            np.testing.assert_array_equal(vulkan_run["continued"][key], value, err_msg=key)
    back = vulkan_run["cpu_scene"].get_state().arrays()
    for key, value in vulkan_run["saved"].items():
        np.testing.assert_array_equal(back[key], value, err_msg=f"CPU loading {key}")


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
