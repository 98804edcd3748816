"""Collision geometry and filtering against MuJoCo, with models nobody here wrote.

- Cylinders, an ellipsoid and meshes (Genesis's Franka link0 and hand; a mesh box stack) dropped
  on a plane rest at MuJoCo's resting height within 2 mm, and MuJoCo's own collision detector
  finds no interpenetration beyond 2 mm in our final poses. Contacts use PGS (see constraint.py),
  not MuJoCo's soft constraints, so trajectories are not compared step by step.
- The candidate geom pairs are exactly the pairs MuJoCo collides (all geoms overlapping, so every
  allowed pair touches): contype/conaffinity, weld groups, parent-child filter, filterparent flag,
  <exclude>, <pair> with its friction.
- dm_control's cartpole (`<flag contact="disable"/>`) rolls as in MuJoCo instead of jamming.
- A Franka with mesh colliders holds its pose (the ant, go2 and a grasp: test_rigid_robots.py).
"""

import mujoco
import numpy as np
import pytest

import sim as gs
from sim.model_wheels import genesis_assets, wheel_dir
from sim.solvers.rigid import broadphase, collision
from sim.solvers.rigid.model import ModelArrays, append_model

PANDA = "xml/franka_emika_panda"
# Our own mesh (not third-party): a 0.2 x 0.2 x 0.1 box as an OBJ file.
BOX_OBJ = "".join(f"v {x} {y} {z}\n" for x in (-.1, .1) for y in (-.1, .1) for z in (-.05, .05)) + \
    "f 1 2 4 3\nf 5 7 8 6\nf 1 5 6 2\nf 3 4 8 7\nf 1 3 7 5\nf 2 6 8 4\n"
RELEASE_HALF, RELEASE_GAP = 0.05, 0.8e-3
DROPS = {  # name: (geom, pos, quat)
    "cylinder_upright": ('<geom type="cylinder" size="0.05 0.08"/>', "0 0 0.3", "1 0 0 0"),
    "cylinder_lying": ('<geom type="cylinder" size="0.05 0.08"/>', "0.5 0 0.3", "0.7071068 0.7071068 0 0"),
    "ellipsoid": ('<geom type="ellipsoid" size="0.1 0.06 0.04"/>', "1 0 0.3", "1 0 0 0"),
    "franka_link0": ('<geom type="mesh" mesh="link0"/>', "1.5 0 0.3", "1 0 0 0"),
    "franka_hand": ('<geom type="mesh" mesh="hand"/>', "2.5 0 0.08", "0 1 0 0"),
    "mesh_box": ('<geom type="mesh" mesh="box"/>', "2 0 0.3", "1 0 0 0"),
    "mesh_box_on_mesh_box": ('<geom type="mesh" mesh="box"/>', "2 0 0.6", "1 0 0 0"),
    "box_on_cylinder": ('<geom type="box" size="0.1 0.1 0.05"/>', "0 0 0.6", "1 0 0 0"),
}


def _assets(tmp_path):
    (tmp_path / "box.obj").write_text(BOX_OBJ)
    meshes = genesis_assets(fetch=True) / PANDA / "assets"
    return (f'<asset><mesh name="link0" file="{meshes / "link0.stl"}"/><mesh name="hand" file="{meshes / "hand.stl"}"/>'
            f'<mesh name="box" file="{tmp_path / "box.obj"}"/></asset>')


def _body(name):
    geom, pos, quat = DROPS[name]
    return f'<body name="{name}" pos="{pos}" quat="{quat}"><freejoint/>{geom}</body>'


@pytest.fixture(scope="module")
def drops(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("drops")
    assets = _assets(tmp_path)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01))  # default options: the box on the cylinder rests
    scene.add_entity(gs.morphs.Plane())
    # a box released at rest closer to the floor than it falls in its first step (g dt^2 = 0.98 mm)
    released = scene.add_entity(gs.morphs.Box(pos=(3.5, 0, RELEASE_HALF + RELEASE_GAP), size=(2 * RELEASE_HALF,) * 3))
    entities = {}
    for name in DROPS:
        path = tmp_path / f"{name}.xml"
        path.write_text(f'<mujoco><option timestep="0.01"/>{assets}<worldbody>{_body(name)}</worldbody></mujoco>')
        entities[name] = scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build()
    bottom = []
    for _ in range(150):
        scene.step()
        bottom.append(float(released.get_pos().numpy()[2]) - RELEASE_HALF)
    ours = {name: e.get_qpos().numpy().astype(np.float64) for name, e in entities.items()}
    speed = {name: np.abs(e.get_dofs_velocity().numpy()).max() for name, e in entities.items()}
    m = mujoco.MjModel.from_xml_string(f'<mujoco>{assets}<worldbody><geom type="plane" size="0 0 1"/>'
                                       + "".join(_body(n) for n in DROPS) + "</worldbody></mujoco>")
    d = mujoco.MjData(m)
    mujoco.mj_step(m, d, int(1.5 / m.opt.timestep))
    theirs = {name: d.body(name).xpos.copy() for name in DROPS}
    # our final poses, judged by MuJoCo's collision detector
    d.qpos[:] = np.concatenate([ours[name] for name in DROPS])
    mujoco.mj_forward(m, d)
    return ours, speed, theirs, [(d.contact[i].dist, d.contact[i].geom) for i in range(d.ncon)], np.array(bottom)


@pytest.mark.parametrize("name", list(DROPS))
def test_drop_rests_at_mujoco_height(drops, name):
    ours, speed, theirs, _, _ = drops
    assert abs(ours[name][2] - theirs[name][2]) < 2e-3, (name, ours[name][2], theirs[name][2])
    assert np.abs(ours[name][:2] - theirs[name][:2]).max() < 5e-3, name  # landed where it fell
    assert speed[name] < 1e-3, (name, speed[name])  # at rest (a cold-started solver left ~0.02 rad/s)


def test_drops_do_not_interpenetrate(drops):
    contacts = drops[3]
    assert contacts, "MuJoCo should find the resting contacts"
    assert min(dist for dist, _ in contacts) > -2e-3, contacts


def test_box_released_just_above_the_floor_is_caught(drops):
    """Released at rest 0.8 mm up, the box falls g dt^2 = 0.98 mm in its first step (semi-implicit
    Euler moves it with v + dt g): the contact is reported from the velocity the step integrates,
    so it lands without sinking (a band from the velocity at the start, zero, would let it sink
    0.18 mm), and it stays reported at rest: no drift, no bounce."""
    bottom, slop = drops[4], gs.options.RigidOptions().contact_slop
    assert bottom[0] > -1e-5, bottom[:3]                 # caught in the step that closes the gap
    assert bottom.min() > -slop and bottom.max() < RELEASE_GAP, (bottom.min(), bottom.max())
    assert np.ptp(bottom[5:]) < 1e-5, np.ptp(bottom[5:])  # at rest: no jitter


FILTER_XML = """<mujoco><option><flag filterparent="{filterparent}"/></option><worldbody>
  <geom name="floor" type="plane" size="0 0 1"/>
  <body name="a"><freejoint/><geom name="a" size="0.1"/><geom name="a_only_type" size="0.1" contype="2" conaffinity="0"/>
    <body name="b"><joint type="hinge"/><geom name="b" size="0.1"/>
      <body name="b_welded"><geom name="b_welded" size="0.1"/>
        <body name="c"><joint type="hinge"/><geom name="c" size="0.1" contype="2" conaffinity="2"/></body>
      </body>
    </body>
  </body>
  <body name="e"><freejoint/><geom name="e" size="0.1"/><geom name="e_visual" size="0.1" contype="0" conaffinity="0"/></body>
  <body name="f"><freejoint/><geom name="f" type="capsule" size="0.1 0.1" contype="4" conaffinity="4"/></body>
</worldbody>
<contact><exclude body1="a" body2="e"/><pair geom1="a" geom2="b" friction="0.3 0.3 0.005 0.0001 0.0001"/>
  <pair geom1="e_visual" geom2="f"/></contact></mujoco>"""


@pytest.mark.parametrize("filterparent", ["enable", "disable"])
def test_candidate_pairs_are_the_pairs_mujoco_collides(filterparent):
    m = mujoco.MjModel.from_xml_string(FILTER_XML.format(filterparent=filterparent))
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)  # every geom sits at the origin: each allowed pair touches
    names = lambda g1, g2: frozenset((mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, int(g)) for g in (g1, g2)))  # noqa: E731
    theirs = {names(*d.contact[i].geom) for i in range(d.ncon)}
    model = ModelArrays()
    append_model(model, m, (0, 0, 0), (1, 0, 0, 0))
    pairs = broadphase.candidate_pairs(model).arrays
    kept = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, n) for n in
            ("floor", "a", "a_only_type", "b", "b_welded", "c", "e", "e_visual", "f")]
    ours = {names(kept[i], kept[j]) for i, j in pairs["pair_geoms"]}
    assert ours == theirs, (ours - theirs, theirs - ours)
    friction = {names(kept[i], kept[j]): mu for (i, j), mu in zip(pairs["pair_geoms"], pairs["pair_mu"])}
    assert friction[frozenset(("a", "b"))] == pytest.approx(0.3)


def test_cartpole_contact_disable_is_honoured():
    path = wheel_dir("dm-control") / "dm_control/suite/cartpole.xml"
    m = mujoco.MjModel.from_xml_path(str(path))
    assert m.opt.disableflags & mujoco.mjtDisableBit.mjDSBL_CONTACT
    m.opt.integrator = mujoco.mjtIntegrator.mjINT_EULER  # the file asks for RK4; we step semi-implicit Euler
    d = mujoco.MjData(m)
    d.qpos[1] = 0.2  # the pole starts tilted; the cart has to roll under it
    mujoco.mj_step(m, d, int(round(1.0 / m.opt.timestep)))
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=m.opt.timestep))
    cartpole = scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build()
    cartpole.set_dofs_position(np.array([0.0, 0.2]))
    for _ in range(int(round(1.0 / m.opt.timestep))):
        scene.step()
    x = cartpole.get_qpos().numpy().astype(np.float64)
    assert abs(d.qpos[0]) > 0.02  # the cart does move in MuJoCo
    assert np.abs(x - d.qpos).max() < 1e-3, (x, d.qpos)


HOME = np.array([0, 0, 0, -1.57079, 0, 1.57079, -0.7853, 0.04, 0.04])


@pytest.fixture(scope="module")
def panda():
    """Genesis's mesh panda (the benchmark's model) on a plane, and MuJoCo's model of the same."""
    path = genesis_assets(fetch=True) / PANDA / "panda_no_tendon.xml"
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01))
    scene.add_entity(gs.morphs.Plane())
    robot = scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build()
    spec = mujoco.MjSpec.from_file(str(path))
    spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 1])
    return robot, spec.compile()


def test_franka_mesh_colliders_hold_pose(panda):
    robot, _ = panda
    data = robot.solver.data
    types = data.geom_type.to_numpy()[data.pair_geoms.to_numpy()[:data.npair]]
    assert (types == 7).all(axis=1).any(), "mesh-mesh self-collision pairs are checked"
    robot.set_dofs_position(HOME)
    robot.control_dofs_position(HOME)
    for _ in range(100):
        robot.solver.scene.step()
    q = robot.get_dofs_position().numpy()
    assert np.abs(q - HOME).max() < 0.01, q - HOME
    assert np.abs(robot.get_dofs_velocity().numpy()).max() < 1e-2


def _contact_bodies(m, d) -> set:
    names = [m.body(b).name for b in m.geom_bodyid]
    return {frozenset((names[c.geom[0]], names[c.geom[1]])) for c in d.contact[:d.ncon]}


@pytest.mark.parametrize("pose", ["home", "elbow_folded", "fingers_in_floor"])
def test_panda_reports_mujocos_contact_set(panda, pose):
    """Our contact list at rest in a pose is MuJoCo's (the body pairs it finds at the same qpos,
    margin 0): home has none (link0 and link1 are 0.99 mm apart: no fixed band reports them);
    a folded elbow puts the fingers into link0 and link1; a bent shoulder puts them in the floor.
    At rest we report gaps the step can close (each geom's reach, about |qacc| dt^2): the pose
    decides the set when MuJoCo finds the same pairs with its margin at the largest band."""
    robot, m = panda
    q = {"home": HOME, "elbow_folded": np.r_[0, 0, 0, -3.0, 0, 1.57, -0.78, 0.04, 0.04],
         "fingers_in_floor": np.r_[0, 1.7, 0, -0.07, 0, 1.57, -0.78, 0.04, 0.04]}[pose]
    solver, data = robot.solver, robot.solver.data
    robot.set_dofs_position(q)
    robot.control_dofs_position(q)
    solver.forward()
    collision.detect_contacts(data)
    names = {link.idx + 1: link.name for link in robot.links} | {0: "world"}
    n = data.con_count.to_numpy()[0]
    ours = {frozenset((names[a], names[b])) for a, b in data.con_body.to_numpy()[0, :n]}
    d = mujoco.MjData(m)
    d.qpos[:] = q
    mujoco.mj_forward(m, d)
    theirs = _contact_bodies(m, d)
    # pairs within our band of touching (a body's band: its geoms' largest reach this step)
    reach = {}
    for g, r in zip(data.geom_body.to_numpy()[:data.ngeom], data.geom_reach.to_numpy()[0]):
        reach[names[g]] = max(reach.get(names[g], 0.0), float(r))
    flags, wide = m.opt.enableflags, 2 * max(reach.values()) + 1e-4
    m.opt.o_margin, m.opt.enableflags = wide, flags | mujoco.mjtEnableBit.mjENBL_OVERRIDE
    mujoco.mj_forward(m, d)
    m.opt.enableflags = flags
    for c in d.contact[:d.ncon]:
        b1, b2 = (m.body(m.geom_bodyid[g]).name for g in c.geom)
        assert c.dist < 0 or c.dist > reach[b1] + reach[b2] + 1e-4, (b1, b2, c.dist, "undecided")
    assert ours == theirs, (pose, ours - theirs, theirs - ours)
    assert (pose == "home") == (not theirs)
