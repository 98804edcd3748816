"""gs.sensors (IMU, Contact, ContactForce) against MuJoCo's own sensors on the same model, and
the sensor API's contract (shapes, options honoured or refused, state, bad input).

One batched scene for the module: a plane, and one MJCF with a 2 kg box resting on it under a
0.5 kg box, a hinged arm swinging freely, and a ball spinning in free fall. MuJoCo steps the
same file with an accelerometer and a gyro at the same sites, from the same state.
Tolerances: the arm and the ball touch nothing, and our semi-implicit Euler step is MuJoCo's,
so their readings agree to float32 rounding (2e-3 abs on readings of order 10: the ball spins
at 5 rad/s and its float32 orientation drifts ~1e-4 rad from MuJoCo's float64 one in 40 steps). Contacts are
hard (PGS) here and soft in MuJoCo, so contact-dependent readings are compared at rest, where
both must hold the weight exactly (2e-3 relative).
"""

import mujoco
import numpy as np
import pytest
import torch

import sim as gs

G = 9.81
STEPS = 40
XML = """<mujoco><option timestep="0.01"/><worldbody>
 <body name="box" pos="0 0 0.1"><freejoint/><geom type="box" size="0.1 0.1 0.1" mass="2"/></body>
 <body name="top" pos="0 0 0.25"><freejoint/><geom type="box" size="0.05 0.05 0.05" mass="0.5"/></body>
 <body name="arm" pos="3 0 2"><joint name="hinge" type="hinge" axis="0 1 0"/>
   <geom type="capsule" fromto="0 0 0 0.5 0 0" size="0.03" mass="1" contype="0" conaffinity="0"/></body>
 <body name="ball" pos="-3 0 5"><freejoint/><geom type="sphere" size="0.1" mass="1" contype="0" conaffinity="0"/></body>
</worldbody></mujoco>"""
# link (local index), IMU site offset, euler offset (degrees)
SITES = {"box": (0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)), "arm": (2, (0.2, 0.05, -0.1), (10.0, 20.0, 30.0)),
         "ball": (3, (0.1, 0.0, 0.0), (0.0, 0.0, 0.0))}
SPIN = 5.0


def _oracle(path):
    """MuJoCo's model of the same file, with the plane and an accelerometer + gyro per site."""
    spec = mujoco.MjSpec.from_file(str(path))
    spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 1])
    for name, (_, pos, euler) in SITES.items():
        quat = np.zeros(4)
        mujoco.mju_euler2Quat(quat, np.radians(euler), "XYZ")
        spec.body(name).add_site(name=name, pos=pos, quat=quat)
        for kind in (mujoco.mjtSensor.mjSENS_ACCELEROMETER, mujoco.mjtSensor.mjSENS_GYRO):
            spec.add_sensor(type=kind, objtype=mujoco.mjtObj.mjOBJ_SITE, objname=name)
    m = spec.compile()
    return m, mujoco.MjData(m)


def _mujoco_contact_force(m, d, body: str) -> np.ndarray:
    """Net contact force on `body`, world frame (mj_contactForce gives the force on geom2)."""
    total, f6 = np.zeros(3), np.zeros(6)
    for i in range(d.ncon):
        c = d.contact[i]
        mujoco.mj_contactForce(m, d, i, f6)
        world = c.frame.reshape(3, 3).T @ f6[:3]
        total += world if m.geom_bodyid[c.geom2] == m.body(body).id else \
            -world if m.geom_bodyid[c.geom1] == m.body(body).id else 0.0
    return total


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("sensors") / "bodies.xml"
    path.write_text(XML)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01))
    scene.add_entity(gs.morphs.Plane())
    entity = scene.add_entity(gs.morphs.MJCF(file=str(path)))
    e = scene.entities.index(entity)
    imus = {name: scene.add_sensor(gs.sensors.IMU(entity_idx=e, link_idx_local=link, pos_offset=pos,
                                                  euler_offset=euler))
            for name, (link, pos, euler) in SITES.items()}
    box, top = entity.links[0].idx, entity.links[1].idx
    force, contact = gs.sensors.ContactForce, gs.sensors.Contact
    extra = {
        "force": scene.add_sensor(force(entity_idx=e, link_idx_local=0)),
        "force_top": scene.add_sensor(force(entity_idx=e, link_idx_local=1)),
        "force_no_top": scene.add_sensor(force(entity_idx=e, link_idx_local=0, filter_link_idx=[top])),
        "force_clipped": scene.add_sensor(force(entity_idx=e, link_idx_local=0, min_force=1.0,
                                                max_force=(5.0, 5.0, 10.0))),
        "touch": scene.add_sensor(contact(entity_idx=e, link_idx_local=0)),
        "touch_top_only": scene.add_sensor(contact(entity_idx=e, link_idx_local=1, filter_link_idx=[box])),
        "touch_ball": scene.add_sensor(contact(entity_idx=e, link_idx_local=3)),
        "touch_high": scene.add_sensor(contact(entity_idx=e, link_idx_local=0, threshold=100.0)),
        "imu_biased": scene.add_sensor(gs.sensors.IMU(entity_idx=e, link_idx_local=0, acc_bias=(0.1, 0.2, 0.3),
                                                      acc_resolution=0.5, gyro_bias=1.0)),
        "imu_coupled": scene.add_sensor(gs.sensors.IMU(entity_idx=e, link_idx_local=0, acc_cross_axis_coupling=0.1,
                                                       magnetic_field=(0.3, 0.0, 0.0))),
        "imu_late": scene.add_sensor(gs.sensors.IMU(entity_idx=e, link_idx_local=2, pos_offset=SITES["arm"][1],
                                                    euler_offset=SITES["arm"][2], delay=0.03)),
        "force_history": scene.add_sensor(force(entity_idx=e, link_idx_local=0, history_length=3)),
    }
    scene.build(n_envs=2)
    m, d = _oracle(path)
    d.qpos[m.joint("hinge").qposadr[0]] = 0.7
    ball = m.joint(m.body("ball").jntadr[0]).dofadr[0]
    d.qvel[ball + 3:ball + 6] = [0.0, 0.0, SPIN]
    entity.set_qpos(torch.tensor(np.tile(d.qpos, (2, 1)), dtype=torch.float32))
    entity.set_dofs_velocity(torch.tensor(np.tile(d.qvel, (2, 1)), dtype=torch.float32))
    ours, ref, late = [], [], []
    for _ in range(STEPS):
        scene.step()
        mujoco.mj_step(m, d)
        ours.append({name: tuple(t.numpy().copy() for t in s.read()[:2]) for name, s in imus.items()})
        ours[-1]["force"] = extra["force"].read().numpy().copy()
        late.append((extra["imu_late"].read().lin_acc.numpy().copy(), extra["force_history"].read().numpy().copy()))
        ref.append({name: d.sensordata[6 * i:6 * i + 6].reshape(2, 3).copy() for i, name in enumerate(SITES)})
    return {"scene": scene, "entity": entity, "imus": imus, **extra, "ours": ours, "ref": ref, "late": late,
            "rest": scene.get_state(), "mj_force": {b: _mujoco_contact_force(m, d, b) for b in ("box", "top")},
            "mj_touch": {b: any(m.body(b).id in (m.geom_bodyid[c.geom1], m.geom_bodyid[c.geom2])
                                for c in d.contact[:d.ncon]) for b in ("box", "ball")}}


def test_imu_matches_mujoco_on_free_motion(run):
    """The swinging arm (offset, turned sensor) and the spinning ball in free fall, every step."""
    for name in ("arm", "ball"):
        acc = np.array([o[name][0] for o in run["ours"]])  # (steps, envs, 3)
        gyro = np.array([o[name][1] for o in run["ours"]])
        ref = np.array([r[name] for r in run["ref"]])
        assert np.abs(acc - ref[:, None, 0]).max() < 2e-3, name
        assert np.abs(gyro - ref[:, None, 1]).max() < 2e-3, name
    acc, gyro = run["ours"][-1]["ball"]
    # free fall: only the centripetal acceleration of the offset point, -w^2 r along x; gyro = w
    np.testing.assert_allclose(acc, [[-SPIN ** 2 * 0.1, 0, 0]] * 2, atol=2e-3)
    np.testing.assert_allclose(gyro, [[0, 0, SPIN]] * 2, atol=2e-3)
    assert np.abs(np.array([o["arm"][1] for o in run["ours"]])).max() > 1.0  # the arm did swing


def test_imu_at_rest_reads_gravity_up_like_mujoco(run):
    acc, gyro = run["ours"][-1]["box"]
    np.testing.assert_allclose(acc, [[0, 0, G]] * 2, atol=1e-3)
    np.testing.assert_allclose(acc, run["ref"][-1]["box"][None, 0].repeat(2, 0), atol=1e-3)
    np.testing.assert_allclose(gyro, 0.0, atol=1e-4)


def test_contact_force_holds_the_weight_like_mujoco(run):
    run["scene"].reset(run["rest"])
    force, top = run["force"].read(), run["force_top"].read()
    assert force.shape == (2, 3) and force.dtype == gs.tc_float and force.device == gs.device
    # the ground pushes 2.5 g up, the top box 0.5 g down: 2 g up on the box, 0.5 g up on the top box
    np.testing.assert_allclose(force.numpy(), [[0, 0, 2 * G]] * 2, rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(top.numpy(), [[0, 0, 0.5 * G]] * 2, rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(force[0].numpy(), run["mj_force"]["box"], rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(top[0].numpy(), run["mj_force"]["top"], rtol=2e-3, atol=2e-3)
    # filtering out the top box leaves the ground's push alone
    np.testing.assert_allclose(run["force_no_top"].read().numpy(), [[0, 0, 2.5 * G]] * 2, rtol=2e-3, atol=2e-3)
    clipped = run["force_clipped"].read().numpy()
    np.testing.assert_array_equal(clipped[:, :2], 0.0)
    np.testing.assert_allclose(clipped[:, 2], 10.0)


def test_contact_flags(run):
    run["scene"].reset(run["rest"])
    touch = run["touch"].read()
    assert touch.dtype == torch.bool and touch.shape == (2, 1)
    assert touch.all() and run["mj_touch"]["box"]
    assert not run["touch_ball"].read().any() and not run["mj_touch"]["ball"]
    assert not run["touch_high"].read().any()  # fewer contacts than the threshold
    assert not run["touch_top_only"].read().any()  # its only contact is with the filtered box


def test_bias_resolution_coupling_and_ground_truth(run):
    run["scene"].reset(run["rest"])
    truth = run["imus"]["box"].read_ground_truth()
    biased = run["imu_biased"].read()
    np.testing.assert_allclose(biased.lin_acc.numpy(), [[0.0, 0.0, 10.0]] * 2)  # (0.1, 0.2, 9.81 + 0.3) to 0.5
    np.testing.assert_allclose(biased.ang_vel.numpy(), truth.ang_vel.numpy() + 1.0, atol=1e-6)
    np.testing.assert_allclose(run["imu_biased"].read_ground_truth().lin_acc.numpy(), truth.lin_acc.numpy())
    coupled = run["imu_coupled"].read()
    a = truth.lin_acc.numpy()
    np.testing.assert_allclose(coupled.lin_acc.numpy(), a @ (np.full((3, 3), 0.1) + 0.9 * np.eye(3)).T, atol=1e-5)
    np.testing.assert_allclose(coupled.mag.numpy(), [[0.3, 0, 0]] * 2, atol=1e-4)  # level box, field along x


def test_delay_and_history(run):
    """delay=0.03 (3 steps) reads what the undelayed sensor read 3 steps earlier (zeros before);
    history_length=3 gives the last 3 readings, newest first, as Genesis does."""
    for t, (acc, history) in enumerate(run["late"]):
        expected = run["ours"][t - 3]["arm"][0] if t >= 3 else np.zeros_like(acc)
        np.testing.assert_array_equal(acc, expected)
        assert history.shape == (2, 3, 3)
        for k in range(3):
            np.testing.assert_array_equal(history[:, k], run["ours"][t - k]["force"] if t >= k else 0.0)
    run["scene"].reset(run["rest"])
    assert torch.equal(run["imu_late"].read_ground_truth().lin_acc, run["imus"]["arm"].read().lin_acc)


def test_readings_are_state(run, tmp_path):
    """reset(state) and checkpoints restore readings; a reset to the build state reads zeros."""
    scene, imu = run["scene"], run["imus"]["arm"]
    scene.reset(run["rest"])
    before = imu.read().lin_acc.clone()
    scene.step()
    after = imu.read().lin_acc.clone()
    scene.save_checkpoint(tmp_path / "ckpt.pkl")
    scene.reset(run["rest"])
    assert torch.equal(imu.read().lin_acc, before)
    scene.step()
    assert torch.equal(imu.read().lin_acc, after)  # the same step reads the same, bit for bit
    scene.reset(envs_idx=[1])
    assert torch.equal(imu.read(envs_idx=[0]).lin_acc[0], after[0]) and not imu.read().lin_acc[1].any()
    assert not run["force"].read(envs_idx=[1]).any()
    scene.load_checkpoint(tmp_path / "ckpt.pkl")
    assert torch.equal(imu.read().lin_acc, after)
    assert {gs.sensors.types.IMU, gs.sensors.types.Contact, gs.sensors.types.ContactForce} == set(scene.read_sensors())
    readings = scene.read_sensors(envs_idx=[1])
    assert readings[gs.sensors.types.IMU].shape == (1, 9 * 6) and readings[gs.sensors.types.Contact].dtype == torch.bool
    # a ContactForce keeps a history, so that kind reads (envs, 3 steps, 5 sensors x 3)
    assert readings[gs.sensors.types.ContactForce].shape == (1, 3, 15)
    assert torch.equal(readings[gs.sensors.types.ContactForce][:, 0, :3], run["force"].read(envs_idx=[1]))


def test_bad_input_is_refused_and_changes_nothing(run):
    with pytest.raises(TypeError, match="acc_nosie"):
        gs.sensors.IMU(entity_idx=0, acc_nosie=0.1)
    with pytest.raises(TypeError, match="bias"):
        gs.sensors.IMU(entity_idx=0, bias=0.1)  # the IMU's biases are acc_bias / gyro_bias / mag_bias
    with pytest.raises(ValueError, match="min_force"):
        gs.sensors.ContactForce(entity_idx=0, min_force=2.0, max_force=1.0)
    scene = gs.Scene()
    box = scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.5), size=(0.2, 0.2, 0.2)))
    e = scene.entities.index(box)
    refusals = [(gs.sensors.IMU(entity_idx=e, acc_noise=0.01), NotImplementedError, "acc_noise"),
                (gs.sensors.Contact(entity_idx=e, delay=0.02, jitter=0.01), NotImplementedError, "jitter"),
                (gs.sensors.ContactForce(entity_idx=e, random_walk=0.1), NotImplementedError, "random_walk"),
                (gs.sensors.Lidar(pattern=gs.sensors.SphericalPattern()), NotImplementedError, "Lidar"),
                (gs.sensors.JointTorque(entity_idx=e), NotImplementedError, "JointTorque"),
                (gs.sensors.IMU(entity_idx=5), ValueError, "entity_idx 5"),
                (gs.sensors.IMU(entity_idx=e, link_idx_local=1), ValueError, "link_idx_local 1"),
                (gs.sensors.ContactForce(entity_idx=e, filter_link_idx=[7]), ValueError, "filter_link_idx 7"),
                ("IMU", TypeError, "str")]
    for options, error, match in refusals:
        with pytest.raises(error, match=match):
            scene.add_sensor(options)
    assert scene._sensors.sensors == []
    sensor = scene.add_sensor(gs.sensors.IMU(entity_idx=e))
    with pytest.raises(RuntimeError, match="build"):
        sensor.read()
    with pytest.raises(RuntimeError, match="build"):
        scene.read_sensors()
    with pytest.raises(RuntimeError, match="before scene.build"):
        run["scene"].add_sensor(gs.sensors.IMU(entity_idx=1))
    with pytest.raises(ValueError):
        run["imus"]["box"].read(envs_idx=[2])


def test_camera_has_genesis_import_path():
    from sim.camera import Camera
    from sim.vis.camera import Camera as VisCamera

    assert VisCamera is Camera
