"""The device checks: the CPU tests' own checks run on a device backend (Vulkan in
`test_device_vulkan.py`, CUDA when a GPU is lent: `python tests/device_checks.py`), and a
checkpoint round trip CPU -> device -> CPU on a scene with every solver.

Tolerances: the known-answer checks reuse the CPU tests' functions and their tolerances, set by
physics and float rounding, not by bit-exactness: on a device, atomic float adds land in
thread-schedule order, so results agree with the CPU to rounding only. Pure data movement
(reset, partial reset, checkpoint load) stays bit-exact on a device too, and is checked as such.
"""

import logging
import os
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import particle_checks as pc  # noqa: E402
import sim as gs  # noqa: E402
from sim import runtime  # noqa: E402

# Continuing the same checkpoint on the CPU and on a device for ROUND_TRIP_STEPS steps: positions
# agree to ROUND_TRIP_ATOL (m). Each step rounds differently (FMA contraction, atomic order);
# over 3 steps that is ~1e-6 m, and 1e-4 m leaves room for contact solves that amplify it.
ROUND_TRIP_STEPS = 3
ROUND_TRIP_ATOL = 1e-4


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


class _Recorder(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def checks(tmp: Path):
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


def cpu_half(tmp: str):
    """On the CPU (this process): the mixed scene runs 2 steps and is saved to tmp/cpu.pkl, then
    continues ROUND_TRIP_STEPS. Returns (scene, checkpoint path, what check_round_trip reads)."""
    cpu = mixed_scene()
    pc.run(cpu, 2)
    path = os.path.join(tmp, "cpu.pkl")
    cpu.save_checkpoint(path)
    saved = cpu.get_state()
    continued = pc.run(cpu, ROUND_TRIP_STEPS)
    return cpu, path, {"cpu_saved": saved.arrays(), "cpu_continued": continued}


def device_half(tmp: str, cpu_checkpoint: str, backend) -> dict:
    """In a fresh process: gs.init(backend), every check (each failure recorded with its
    traceback), then the CPU checkpoint loaded, continued, and saved to tmp/device.pkl."""
    recorder = _Recorder()
    logging.getLogger("sim").addHandler(recorder)
    gs.init(backend=backend)
    out = {"backend": runtime.config().backend, "notices": recorder.messages, "device": str(gs.device),
           "tc_float": str(gs.tc_float), "failures": {}, "skipped": {}}
    for name, check in checks(Path(tmp)).items():
        try:
            check()
        except pytest.skip.Exception as e:  # e.g. the spec snippets where ../shared is absent
            out["skipped"][name] = str(e)
        except Exception:  # reported to the parent, which fails this check's test
            out["failures"][name] = traceback.format_exc()
    scene = mixed_scene()
    scene.load_checkpoint(cpu_checkpoint)
    out["loaded"] = scene.get_state().arrays()
    out["continued"] = pc.run(scene, ROUND_TRIP_STEPS)
    scene.save_checkpoint(os.path.join(tmp, "device.pkl"))
    out["saved"] = scene.get_state().arrays()
    return out


def check_round_trip(run: dict):
    """The device loaded the CPU's checkpoint bit for bit and continued as the CPU did (to
    rounding); the CPU scene loads the device's checkpoint bit for bit."""
    for key, value in run["cpu_saved"].items():
        np.testing.assert_array_equal(run["loaded"][key], value, err_msg=f"device loading {key}")
    for key, value in run["cpu_continued"].items():
        if value.dtype.kind == "f":
            np.testing.assert_allclose(run["continued"][key], value, rtol=0, atol=ROUND_TRIP_ATOL, err_msg=key)
        else:
            np.testing.assert_array_equal(run["continued"][key], value, err_msg=key)
    run["cpu_scene"].load_checkpoint(os.path.join(run["tmp"], "device.pkl"))
    back = run["cpu_scene"].get_state().arrays()
    for key, value in run["saved"].items():
        np.testing.assert_array_equal(back[key], value, err_msg=f"CPU loading {key}")


def main():
    """CUDA (gs.gpu on a machine with an NVIDIA GPU): every check and the round trip; exit 1 on
    any failure."""
    from isolated import run_isolated

    import toy_solver  # noqa: F401  (registers the test-only ToySolver, as conftest does)

    gs.init(backend=gs.cpu, precision="32", deterministic=True)
    with tempfile.TemporaryDirectory() as tmp:
        cpu, path, first = cpu_half(tmp)
        run = run_isolated(device_half, tmp, path, gs.gpu, call_init=False, timeout=1500)
        run.update(first, cpu_scene=cpu, tmp=tmp)
        print(f"backend {run['backend']}, device {run['device']}, {run['tc_float']}; notices {run['notices']}")
        for name in checks(Path(tmp)):
            print(f"{name:15s} {'FAILED' if name in run['failures'] else 'skipped' if name in run['skipped'] else 'passed'}")
        for name, trace in run["failures"].items():
            print(f"--- {name}\n{trace}")
        try:
            check_round_trip(run)
            print("checkpoint round trip CPU -> device -> CPU passed")
        except AssertionError:
            print(f"checkpoint round trip FAILED\n{traceback.format_exc()}")
            return 1
    return 1 if run["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
