"""The rigid solver against MuJoCo (mj_forward / mj_step as the oracle), stage by stage and
over 1 s trajectories, in float64 (a fresh process) and float32 (the test process).

Tolerances. Both codes run the same algorithms in a different order of floating-point
operations, so in float64 they agree to round-off: 1e-12 per stage at a random state,
1e-9 on positions and velocities after 1 s (round-off grows along the trajectory).
In float32 our own round-off (eps ~ 1.2e-7 relative) is what differs: 1e-5 per stage
relative to the largest entry (measured <= 4e-7), and after 1 s (200-500 steps, each adding
a few eps) 1e-4 rad or m on positions (measured <= 4e-6) and 1e-3 relative on velocities
(measured <= 3e-5).

Longer than ~350 lines because its test models are written inline beside the comparisons
that use them (the chain, free body, actuated, feature and constrained models).
"""

import os
import tempfile

import mujoco
import numpy as np
import pytest

from isolated import run_isolated

CHAIN = """<mujoco><option timestep="0.002" integrator="Euler"><flag contact="disable"/></option>
<default><geom contype="0" conaffinity="0"/></default>
<worldbody>
 <body pos="0.1 0 1" quat="0.9 0.1 0.2 0.3">
  <joint type="hinge" axis="0 1 0.3" damping="0.3" armature="0.05" stiffness="2" springref="0.2" pos="0.05 0 0"/>
  <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.03"/>
  <body pos="0.3 0 0" quat="0.8 0.2 0 0.3">
   <joint type="slide" axis="1 0.2 0" damping="1.0" armature="0.1" stiffness="5"/>
   <joint type="hinge" axis="0 0 1" ref="0.3"/>
   <geom type="box" size="0.1 0.05 0.02" pos="0.1 0 0"/>
   <body pos="0.2 0.1 0"><joint type="ball" damping="0.1" armature="0.02"/>
    <geom type="capsule" fromto="0 0 0 0 0.2 0.1" size="0.02"/></body>
  </body>
 </body>
</worldbody></mujoco>"""

FREE = """<mujoco><option timestep="0.002" integrator="Euler"><flag contact="disable"/></option>
<worldbody><body pos="1 1 1"><freejoint/>
 <geom type="box" size="0.1 0.2 0.3" quat="0.9 0.3 0.1 0" contype="0" conaffinity="0"/>
 <geom type="sphere" size="0.1" pos="0.1 0 0" contype="0" conaffinity="0"/>
 <body pos="0.2 0 0"><joint type="hinge" axis="0 1 0" damping="0.05"/>
  <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.03" contype="0" conaffinity="0"/></body>
</body></worldbody></mujoco>"""


ACTUATED = """<mujoco><compiler angle="radian"/>
<option timestep="0.005" integrator="implicitfast"><flag contact="disable"/></option>
<default><geom contype="0" conaffinity="0"/></default>
<worldbody>
 <body pos="0 0 1"><joint name="a" type="hinge" axis="0 1 0" damping="0.2" armature="0.01"/>
  <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.03"/>
  <body pos="0.3 0 0"><joint name="b" type="slide" axis="1 0 0" armature="0.05"/>
   <geom type="box" size="0.05 0.05 0.05"/>
   <body pos="0.1 0 0"><joint name="c" type="hinge" axis="0 0 1"/>
    <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.02"/></body>
  </body>
 </body>
</worldbody>
<actuator>
 <position joint="a" kp="30" kv="2" ctrllimited="true" ctrlrange="-0.3 0.3" forcelimited="true" forcerange="-8 8"/>
 <velocity joint="b" kv="20" ctrllimited="true" ctrlrange="-0.5 0.5"/>
 <motor joint="c" gear="1" ctrllimited="true" ctrlrange="-0.2 0.2"/>
</actuator></mujoco>"""


def compare_actuated(seconds: float = 1.0) -> dict:
    """Position (target and force clamped), velocity (target clamped) and motor (clamped)
    actuators of an MJCF against MuJoCo's, through control_dofs_position/velocity/force."""
    import sim as gs

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.xml")
        with open(path, "w") as f:
            f.write(ACTUATED)
        m = mujoco.MjModel.from_xml_path(path)
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=m.opt.timestep))
        entity = scene.add_entity(gs.morphs.MJCF(file=path))
        scene.build()
    md = mujoco.MjData(m)
    qerr = 0.0
    for i in range(round(seconds / m.opt.timestep)):
        ctrl = np.array([0.8, 1.0, 0.5]) * np.sin(2 * np.pi * i * m.opt.timestep + np.arange(3))
        md.ctrl[:] = ctrl
        entity.control_dofs_position(ctrl[:1], dofs_idx_local=[0])
        entity.control_dofs_velocity(ctrl[1:2], dofs_idx_local=[1])
        entity.control_dofs_force(np.clip(ctrl[2:], -0.2, 0.2), dofs_idx_local=[2])
        scene.step()
        mujoco.mj_step(m, md)
        qerr = max(qerr, float(np.abs(entity.get_qpos().numpy() - md.qpos).max()))
    return {"qpos": qerr}


FEATURES = """<mujoco><compiler angle="radian" autolimits="true"/>
<option timestep="0.002" integrator="implicitfast"><flag contact="disable"/></option>
<default><geom contype="0" conaffinity="0"/></default>
<worldbody>
 <body pos="0 0 1" gravcomp="0.5">
  <joint name="a" type="hinge" axis="0 1 0" damping="0.2" armature="0.01" stiffness="3" springref="0.4"
         actuatorfrcrange="-2 2"/>
  <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.03"/>
  <body pos="0.3 0 0">
   <joint name="b" type="slide" axis="1 0 0" armature="0.05" damping="0.5"/>
   <geom type="box" size="0.05 0.05 0.05"/>
   <body pos="0.1 0 0" gravcomp="1"><joint name="c" type="hinge" axis="0 0 1" armature="0.02"/>
    <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.02"/></body>
   <body pos="0 0.1 0"><joint name="d" type="hinge" axis="1 0 0" armature="0.02" damping="0.1"/>
    <geom type="capsule" fromto="0 0 0 0 0.2 0" size="0.02"/></body>
  </body>
 </body>
</worldbody>
<tendon><fixed name="t" stiffness="5" damping="0.3" springlength="0.1 0.2">
 <joint joint="c" coef="0.5"/><joint joint="d" coef="-0.7"/></fixed></tendon>
<actuator>
 <motor joint="a" gear="3" ctrlrange="-1 1"/>
 <position joint="b" kp="40" kv="3" gear="2" forcerange="-5 5" ctrlrange="-0.5 0.5"/>
 <general joint="c" gainprm="2" biasprm="0.1 -1 -0.2" gear="1.5" forcerange="-1 1"/>
 <general tendon="t" gainprm="3" biasprm="0 -10 -1" ctrlrange="-1 1"/>
 <velocity joint="d" kv="2" gear="0.5"/>
</actuator></mujoco>"""


def _with_flags(xml: str, flags: str) -> str:
    return xml.replace('<flag contact="disable"/>', f'<flag contact="disable" {flags}/>')


def compare_features(xml: str = FEATURES, seconds: float = 0.6) -> dict:
    """Actuators through gear / general gain-bias / a fixed tendon, force and actuatorfrc
    ranges, gravcomp, springs with springref and a tendon dead band, dampers and armature,
    driven through control_actuators (MuJoCo's ctrl) against mj_step; stage forces too."""
    import sim as gs

    m = mujoco.MjModel.from_xml_string(xml)
    md = mujoco.MjData(m)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=m.opt.timestep))
    entity = scene.add_entity(gs.morphs.MJCF(file=xml))
    scene.build()
    solver = scene.solvers["RigidSolver"]
    qerr = verr = smooth = 0.0
    clamped = 0
    for i in range(round(seconds / m.opt.timestep)):
        ctrl = 1.5 * np.sin(2 * np.pi * i * m.opt.timestep * np.array([1.0, 0.7, 1.3, 0.9, 1.1]) + np.arange(m.nu))
        md.ctrl[:] = ctrl
        solver.control_actuators(entity, ctrl)
        solver.forward()
        mujoco.mj_forward(m, md)
        smooth = max(smooth, float(np.abs(solver.data.qfrc_smooth.to_numpy()[0, :m.nv] - md.qfrc_smooth).max()))
        clamped += int(np.any(np.abs(md.qfrc_actuator[0]) >= 2 - 1e-12))
        scene.step()
        mujoco.mj_step(m, md)
        qerr = max(qerr, float(np.abs(entity.get_qpos().numpy() - md.qpos).max()))
        verr = max(verr, float(np.abs(entity.get_dofs_velocity().numpy() - md.qvel).max()))
    return {"qpos": qerr, "qvel": verr, "smooth": smooth, "clamped": clamped, "scale": float(np.abs(md.qvel).max())}


CONSTRAINED = """<mujoco><compiler angle="radian" autolimits="true"/>
<option timestep="0.002" integrator="implicitfast"><flag contact="disable"/></option>
<default><geom contype="0" conaffinity="0"/><joint armature="0.01" damping="0.05"/></default>
<worldbody>
 <body name="crank" pos="0 0 1"><joint name="crank" type="hinge" axis="0 1 0"/>
  <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.02"/>
  <body name="coupler" pos="0.2 0 0"><joint type="hinge" axis="0 1 0"/>
   <geom type="capsule" fromto="0 0 0 0.3 0 0.2" size="0.02"/></body>
 </body>
 <body name="rocker" pos="0.4 0 1"><joint name="rocker" type="hinge" axis="0 1 0"/>
  <geom type="capsule" fromto="0 0 0 0.1 0 0.2" size="0.02"/></body>
 <body pos="1 0 1"><joint name="p" type="hinge" axis="0 1 0" frictionloss="0.05"/>
  <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.02"/></body>
 <body pos="1.5 0 1"><joint name="s1" type="slide" axis="1 0 0"/><geom type="box" size="0.05 0.05 0.05"/></body>
 <body pos="1.5 1 1"><joint name="s2" type="slide" axis="1 0 0"/><geom type="box" size="0.05 0.05 0.05"/></body>
 <body pos="2 0 1"><joint name="h1" type="hinge" axis="0 0 1"/><geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.02"/></body>
 <body pos="2 1 1"><joint name="h2" type="hinge" axis="0 0 1"/><geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.02"/></body>
</worldbody>
<equality>
 <connect body1="coupler" body2="rocker" anchor="0.3 0 0.2"/>
 <joint joint1="h1" joint2="h2" polycoef="0.1 -0.5 0.3 0 0"/>
</equality>
<tendon><fixed name="t" limited="true" range="-0.05 0.08"><joint joint="s1" coef="1"/><joint joint="s2" coef="1"/></fixed></tendon>
<keyframe><key name="home" qpos="0 0 0 0 0 0 0.1 0"/></keyframe>
<actuator><motor joint="crank"/><motor joint="p"/><motor tendon="t"/><motor joint="h2"/></actuator>
</mujoco>"""


def compare_constrained(seconds: float = 1.0) -> dict:
    """A four-bar linkage closed by <connect>, a polynomial <joint> equality, a limited fixed
    tendon and a joint with frictionloss, driven by motors, against mj_step. MuJoCo's
    constraints are soft (solref/solimp), ours hard: the comparison is of trajectories within a
    tolerance, and of how well ours hold (see constraint.py)."""
    import sim as gs

    m = mujoco.MjModel.from_xml_string(CONSTRAINED)
    md = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, md, 0)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=m.opt.timestep))
    entity = scene.add_entity(gs.morphs.MJCF(file=CONSTRAINED))
    scene.build()
    solver = scene.solvers["RigidSolver"]
    out = {"linkage": 0.0, "others": 0.0, "connect": 0.0, "joint_eq": 0.0, "tendon_over": 0.0, "tendon_hit": 0}
    coupler, rocker = entity.get_link("coupler"), entity.get_link("rocker")
    for i in range(round(seconds / m.opt.timestep)):
        t = i * m.opt.timestep
        ctrl = np.array([0.3 * np.sin(3 * t), 0.08 * np.sin(2 * t), 2 * np.sin(4 * t), 0.02 * np.sin(5 * t)])
        md.ctrl[:] = ctrl
        solver.control_actuators(entity, ctrl)
        scene.step()
        mujoco.mj_step(m, md)
        q = entity.get_qpos().numpy()
        out["linkage"] = max(out["linkage"], float(np.abs(q[:3] - md.qpos[:3]).max()))
        out["others"] = max(out["others"], float(np.abs(q[3:] - md.qpos[3:]).max()))
        tip = coupler.get_pos().numpy() + _rotate(coupler.get_quat().numpy(), [0.3, 0, 0.2])
        base = rocker.get_pos().numpy() + _rotate(rocker.get_quat().numpy(), [0.1, 0, 0.2])
        out["connect"] = max(out["connect"], float(np.abs(tip - base).max()))
        out["joint_eq"] = max(out["joint_eq"], abs(q[6] - 0.1 - (-0.5 * q[7] + 0.3 * q[7] ** 2)))
        out["tendon_over"] = max(out["tendon_over"], q[4] + q[5] - 0.08, -0.05 - q[4] - q[5])
        out["tendon_hit"] += int(md.qpos[4] + md.qpos[5] > 0.0799)
    return out


def _rotate(quat, vec):
    out = np.zeros(3)
    mujoco.mju_rotVecQuat(out, np.asarray(vec, dtype=np.float64), np.asarray(quat, dtype=np.float64))
    return out


def _random_state(m, rng):
    qpos = m.qpos0 + 0.3 * rng.normal(size=m.nq)
    for j in range(m.njnt):
        adr = m.jnt_qposadr[j] + (3 if m.jnt_type[j] == 0 else 0)
        if m.jnt_type[j] in (0, 1):
            qpos[adr:adr + 4] /= np.linalg.norm(qpos[adr:adr + 4])
    return qpos, rng.normal(size=m.nv)


def compare_passive(xml: str, seconds: float = 1.0) -> dict:
    """Largest differences from MuJoCo at a random state per stage, then over `seconds`."""
    import sim as gs

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.xml")
        with open(path, "w") as f:
            f.write(xml)
        m = mujoco.MjModel.from_xml_path(path)
        md = mujoco.MjData(m)
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=m.opt.timestep, gravity=tuple(m.opt.gravity)))
        entity = scene.add_entity(gs.morphs.MJCF(file=path))
        scene.build()
    solver = scene.solvers["RigidSolver"]
    qpos, qvel = _random_state(m, np.random.default_rng(0))
    md.qpos[:], md.qvel[:] = qpos, qvel
    entity.set_qpos(qpos)
    entity.set_dofs_velocity(qvel)
    solver.forward()
    mujoco.mj_forward(m, md)
    mass = np.zeros((m.nv, m.nv))
    mujoco.mj_fullM(m, md, mass)
    d = solver.data

    def rel(ours, ref):
        return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1.0))

    out = {"xpos": rel(d.xpos.to_numpy()[0], md.xpos), "xquat": rel(d.xquat.to_numpy()[0], md.xquat),
           "mass": rel(d.mass.to_numpy()[0], mass), "bias": rel(d.bias.to_numpy()[0], md.qfrc_bias),
           "smooth": rel(d.qfrc_smooth.to_numpy()[0], md.qfrc_smooth)}
    qerr = verr = 0.0
    for _ in range(round(seconds / m.opt.timestep)):
        scene.step()
        mujoco.mj_step(m, md)
        qerr = max(qerr, float(np.abs(entity.get_qpos().numpy() - md.qpos).max()))
        verr = max(verr, float(np.abs(entity.get_dofs_velocity().numpy() - md.qvel).max()))
    out.update(qpos=qerr, qvel=verr, scale=float(np.abs(md.qvel).max()))
    return out


def compare_franka_pd(seconds: float = 1.0) -> dict:
    """The bundled franka tracking moving PD targets (forces saturating at times) against MuJoCo's
    position actuators with the implicitfast integrator, the one that treats kv as we do."""
    import sim as gs

    m = mujoco.MjModel.from_xml_path(gs.morphs.MJCF(file="franka.xml").file)
    m.opt.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    md = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, md, 0)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=m.opt.timestep))
    robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    scene.build()
    home = np.r_[m.key_qpos[0][:7], 0.02, 0.02]
    qerr = verr = 0.0
    saturated = 0
    for i in range(round(seconds / m.opt.timestep)):
        t = i * m.opt.timestep
        target = home + 0.3 * np.sin(2 * np.pi * t + np.arange(9)) * np.r_[np.ones(7), 0.05, 0.05]
        md.ctrl[:] = target
        robot.control_dofs_position(target)
        scene.step()
        mujoco.mj_step(m, md)
        saturated += int(np.sum(np.abs(md.actuator_force) >= m.actuator_forcerange[:, 1] - 1e-9))
        qerr = max(qerr, float(np.abs(robot.get_dofs_position().numpy() - md.qpos).max()))
        verr = max(verr, float(np.abs(robot.get_dofs_velocity().numpy() - md.qvel).max()))
    assert md.nefc == 0, "the trajectory should stay inside the joint limits"
    return {"qpos": qerr, "qvel": verr, "saturated": saturated, "scale": float(np.abs(md.qvel).max())}


def resting_heights() -> list:
    """Centre heights of a box (half height 0.1) and a sphere (radius 0.05) dropped on the plane."""
    import sim as gs

    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01))
    scene.add_entity(gs.morphs.Plane())
    bodies = [scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.4), size=(0.3, 0.2, 0.2))),
              scene.add_entity(gs.morphs.Sphere(pos=(1, 0, 0.4), radius=0.05))]
    scene.build()
    for _ in range(150):
        scene.step()
    return [float(b.get_qpos()[2]) for b in bodies]


FLAG_VARIANTS = {"gravity clampctrl": 'gravity="disable" clampctrl="disable"',
                 "spring damper actuation": 'spring="disable" damper="disable" actuation="disable"'}


def all_comparisons() -> dict:
    out = {"chain": compare_passive(CHAIN), "free": compare_passive(FREE), "franka": compare_franka_pd(),
           "actuated": compare_actuated(), "resting": resting_heights(), "features": compare_features(),
           "constrained": compare_constrained()}
    out.update({f"flags {k}": compare_features(_with_flags(FEATURES, v), 0.2) for k, v in FLAG_VARIANTS.items()})
    return out


def test_matches_mujoco_float64():
    results = run_isolated(all_comparisons, precision="64", timeout=900)
    for name in ("chain", "free"):
        r = results[name]
        for stage in ("xpos", "xquat", "mass", "bias", "smooth"):
            assert r[stage] < 1e-12, (name, stage, r)
        assert r["qpos"] < 1e-9 and r["qvel"] < 1e-9 * max(r["scale"], 1.0), (name, r)
    franka = results["franka"]
    assert franka["saturated"] > 0  # the force clipping path is exercised
    assert franka["qpos"] < 1e-9 and franka["qvel"] < 1e-8, franka
    assert results["actuated"]["qpos"] < 1e-9, results["actuated"]
    assert np.allclose(results["resting"], [0.1, 0.05], atol=1e-3), results["resting"]  # contacts in float64
    features = results["features"]
    assert features["clamped"] > 0, features  # actuatorfrcrange is exercised
    for name in ["features"] + [f"flags {k}" for k in FLAG_VARIANTS]:
        r = results[name]
        assert r["smooth"] < 1e-10 and r["qpos"] < 1e-9 and r["qvel"] < 1e-8 * max(r["scale"], 1.0), (name, r)


    # Hard constraints against MuJoCo's soft ones (measured: linkage 1.8e-2 rad after 1 s, the
    # other joints 2.4e-3; ours hold connect to 2.5e-4 m (velocity-level drift, corrected at
    # the solref rate), the joint equality to 6e-7 rad, the tendon limit exactly while
    # MuJoCo's yields by 1e-3 m).
    con = results["constrained"]
    assert con["tendon_hit"] > 0, con  # the limit is reached
    assert con["connect"] < 1e-3 and con["joint_eq"] < 1e-5 and con["tendon_over"] < 1e-6, con
    assert con["linkage"] < 5e-2 and con["others"] < 1e-2, con


def test_features_match_mujoco_float32():
    r = compare_features()
    assert r["qpos"] < 1e-4 and r["qvel"] < 1e-3 * max(r["scale"], 1.0), r


@pytest.mark.parametrize("xml", [CHAIN, FREE], ids=["chain", "free"])
def test_matches_mujoco_float32(xml):
    r = compare_passive(xml)
    for stage in ("xpos", "xquat", "mass", "bias", "smooth"):
        assert r[stage] < 1e-5, (stage, r)
    assert r["qpos"] < 1e-4 and r["qvel"] < 1e-3 * max(r["scale"], 1.0), r


def test_franka_pd_matches_mujoco_float32():
    r = compare_franka_pd()
    assert r["qpos"] < 1e-4 and r["qvel"] < 1e-3 * max(r["scale"], 1.0), r


def test_actuators_match_mujoco_float32():
    assert compare_actuated()["qpos"] < 1e-4
