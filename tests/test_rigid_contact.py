"""Contacts: primitives resting on the plane and on each other at the right height without
jitter, Coulomb friction, momentum conservation in free flight and through a collision, and
the bundled quadruped standing under PD control for 5 s."""

import numpy as np
import pytest

import sim as gs

CAPSULE = """<mujoco><worldbody><body pos="{x} 2 {z}" euler="0 90 0"><freejoint/>
<geom type="capsule" size="0.05 0.2" density="1000"/></body></worldbody></mujoco>"""


def _capsule(tmp_path, x, z):
    path = tmp_path / f"capsule_{x}.xml"
    path.write_text(CAPSULE.format(x=x, z=z))
    return gs.morphs.MJCF(file=str(path))


def _run(scene, entities, steps):
    """Each entity's qpos after every step: (steps, n_entities) list of arrays."""
    return [[e.get_qpos().numpy().copy() for e in entities] for _ in range(steps) if scene.step() is None]


@pytest.fixture(scope="module")
def resting(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("rigid")
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01))
    scene.add_entity(gs.morphs.Plane(), material=gs.materials.Rigid(friction=0.5))
    rigid = gs.materials.Rigid(friction=0.5)
    bodies = {
        "box": (scene.add_entity(gs.morphs.Box(pos=(0, 0, 0.5), size=(0.2, 0.3, 0.2),
                                               quat=(0.9238795, 0.3826834, 0, 0)), material=rigid), 0.1),
        "sphere": (scene.add_entity(gs.morphs.Sphere(pos=(1, 0, 0.5), radius=0.1), material=rigid), 0.1),
        "capsule": (scene.add_entity(_capsule(tmp_path, 0, 0.3)), 0.05),
        # body-body: box on box, sphere on box, capsule across a box
        "box_on_box": (scene.add_entity(gs.morphs.Box(pos=(2, 0, 0.35), size=(0.2, 0.2, 0.2)), material=rigid), 0.3),
        "sphere_on_box": (scene.add_entity(gs.morphs.Sphere(pos=(3, 0, 0.4), radius=0.1), material=rigid), 0.3),
        "capsule_on_box": (scene.add_entity(_capsule(tmp_path, 4, 0.3)), 0.25),
    }
    for x in (2, 3):
        scene.add_entity(gs.morphs.Box(pos=(x, 0, 0.1), size=(0.2, 0.2, 0.2)), material=rigid)
    scene.add_entity(gs.morphs.Box(pos=(4, 2, 0.1), size=(0.2, 0.6, 0.2)), material=rigid)
    slider = scene.add_entity(gs.morphs.Box(pos=(6, 0, 0.1), size=(0.2, 0.2, 0.2)), material=rigid)
    scene.build()
    slider.set_dofs_velocity([1.0, 0, 0, 0, 0, 0])
    names = list(bodies)
    history = np.array([[q[2] for q in step] for step in _run(scene, [bodies[n][0] for n in names], 250)])
    return names, bodies, history, slider


@pytest.mark.parametrize("name", ["box", "sphere", "capsule", "box_on_box", "sphere_on_box", "capsule_on_box"])
def test_rests_at_the_right_height_without_jitter(resting, name):
    names, bodies, history, _ = resting
    entity, height = bodies[name]
    z = history[:, names.index(name)]
    assert abs(z[-1] - height) < 2.5e-3, (name, z[-1], height)  # contact_slop 1e-3 per contact layer
    # no jitter: over the last half second the height moves by under 0.1 mm (a stack still
    # creeps down by a few micrometres per step as Gauss-Seidel converges, without oscillating)
    assert np.ptp(z[-50:]) < 1e-4, (name, np.ptp(z[-50:]))
    assert np.all(np.diff(z[-50:]) <= 1e-6) or np.all(np.diff(z[-50:]) >= -1e-6), name
    assert np.abs(entity.get_dofs_velocity().numpy()).max() < 1e-3


def test_friction_stops_a_sliding_box(resting):
    slider = resting[3]
    distance = slider.get_qpos()[0].item() - 6
    expected = 1.0 ** 2 / (2 * 0.5 * 9.81)  # v^2 / (2 mu g)
    assert abs(distance - expected) < 0.15 * expected, distance
    assert abs(slider.get_dofs_velocity()[0].item()) < 1e-4


def _momentum(entity, mass):
    """Linear momentum and angular momentum about the origin of a free body whose com is its origin."""
    q, v = (t.cpu().numpy().astype(np.float64) for t in (entity.get_qpos(), entity.get_dofs_velocity()))
    w, x, y, z = q[3:7]
    rot = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                    [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                    [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
    return mass * v[:3], rot, v[3:]


def test_momentum_in_free_flight_and_collision():
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.005, gravity=(0, 0, 0)))
    a = scene.add_entity(gs.morphs.Sphere(pos=(0, 0, 1), radius=0.1))
    b = scene.add_entity(gs.morphs.Sphere(pos=(0.5, 0.05, 1), radius=0.1))
    box = scene.add_entity(gs.morphs.Box(pos=(3, 0, 1), size=(0.1, 0.3, 0.6)))
    scene.build()
    a.set_dofs_velocity([1.0, 0, 0, 0, 0, 0])
    b.set_dofs_velocity([-0.5, 0, 0, 0, 0, 0])
    box.set_dofs_velocity([0.2, 0.1, 0, 1.0, 0.05, 2.0])
    m_sphere = 1000 * 4 / 3 * np.pi * 0.1 ** 3
    m_box = 1000 * 0.1 * 0.3 * 0.6
    inertia = m_box / 12 * np.diag([0.3 ** 2 + 0.6 ** 2, 0.1 ** 2 + 0.6 ** 2, 0.1 ** 2 + 0.3 ** 2])

    def totals():
        pa, _, _ = _momentum(a, m_sphere)
        pb, _, _ = _momentum(b, m_sphere)
        pbox, rot, omega = _momentum(box, m_box)
        return pa + pb, pbox, rot @ inertia @ omega

    p0, pbox0, l0 = totals()
    for _ in range(200):
        scene.step()
    p1, pbox1, l1 = totals()
    va, vb = a.get_dofs_velocity().cpu().numpy()[:3], b.get_dofs_velocity().cpu().numpy()[:3]
    assert np.linalg.norm(va - vb) < 0.8, "the spheres collided"  # they approached at 1.5 m/s
    assert np.allclose(p1, p0, atol=1e-5 * m_sphere), (p0, p1)
    assert np.allclose(pbox1, pbox0, atol=1e-6)
    # explicit gyroscopic terms: angular momentum drifts O(dt) (intermediate-axis spin here)
    assert np.linalg.norm(l1 - l0) < 0.02 * np.linalg.norm(l0), (l0, l1)


def test_quadruped_stands_for_five_seconds():
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01))
    scene.add_entity(gs.morphs.Plane())
    robot = scene.add_entity(gs.morphs.MJCF(file="quadruped.xml"))
    scene.build(n_envs=2)
    robot.set_dofs_position(np.array([0.05, -0.05]), dofs_idx_local=[6, 9], envs_idx=[1])  # splay one env a bit
    torso = np.array([step[0][:, :7] for step in _run(scene, [robot], 500)])
    assert np.all(torso[:, :, 2] > 0.28)
    assert np.abs(torso[-1, :, :2]).max() < 0.05  # no walking away
    assert np.all(np.abs(torso[-1, :, 3]) > 0.995)  # upright
    assert np.ptp(torso[-100:, :, 2], axis=0).max() < 1e-4  # settled, no jitter


def test_joint_limit_holds_a_falling_pendulum(tmp_path):
    path = tmp_path / "pendulum.xml"
    path.write_text("""<mujoco><compiler angle="radian"/><worldbody><body pos="0 0 1">
        <joint type="hinge" axis="0 1 0" range="-0.5 0.5"/>
        <geom type="capsule" fromto="0 0 0 0.5 0 0" size="0.02" contype="0" conaffinity="0"/></body>
        </worldbody></mujoco>""")
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01))
    pendulum = scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build()
    angles = [pendulum.get_dofs_position()[0].item() for _ in range(200) if scene.step() is None]
    # gravity turns the arm (along +x) down: positive rotation about y; the upper limit stops it
    assert max(angles) < 0.5 + 2e-3 and abs(angles[-1] - 0.5) < 2e-3, (max(angles), angles[-1])
    assert np.ptp(angles[-50:]) < 1e-5


def test_sphere_capsule_and_capsule_capsule_collisions_conserve_momentum(tmp_path):
    path = tmp_path / "capsule.xml"
    path.write_text('<mujoco><worldbody><body><freejoint/><geom type="capsule" size="0.05 0.2"/></body>'
                    '</worldbody></mujoco>')
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.005, gravity=(0, 0, 0)))
    sphere = scene.add_entity(gs.morphs.Sphere(pos=(-0.5, 0, 1.1), radius=0.05))
    target = scene.add_entity(gs.morphs.MJCF(file=str(path), pos=(0, 0, 1)))  # upright capsule
    mover = scene.add_entity(gs.morphs.MJCF(file=str(path), pos=(0, 3, 1), quat=(0.7071068, 0.7071068, 0, 0)))
    other = scene.add_entity(gs.morphs.MJCF(file=str(path), pos=(0, 2.5, 1.05)))
    scene.build()
    sphere.set_dofs_velocity([1.0, 0, 0, 0, 0, 0])
    mover.set_dofs_velocity([0, -1.0, 0, 0, 0, 0])
    mass = {"sphere": 1000 * 4 / 3 * np.pi * 0.05 ** 3,
            "capsule": 1000 * (np.pi * 0.05 ** 2 * 0.4 + 4 / 3 * np.pi * 0.05 ** 3)}
    before = [mass["sphere"] * 1.0, -mass["capsule"] * 1.0]
    for _ in range(200):
        scene.step()
    v = {name: e.get_dofs_velocity().numpy()[:3] for name, e in
         [("sphere", sphere), ("target", target), ("mover", mover), ("other", other)]}
    assert v["target"][0] > 0.1 and v["other"][1] < -0.1, v  # both collisions happened
    assert abs(mass["sphere"] * v["sphere"][0] + mass["capsule"] * v["target"][0] - before[0]) < 1e-4
    assert abs(mass["capsule"] * (v["mover"][1] + v["other"][1]) - before[1]) < 1e-4
