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
from sim.solvers.rigid import broadphase
from sim.solvers.rigid.model import ModelArrays, append_model

PANDA = "xml/franka_emika_panda"
# Our own mesh (not third-party): a 0.2 x 0.2 x 0.1 box as an OBJ file.
BOX_OBJ = "".join(f"v {x} {y} {z}\n" for x in (-.1, .1) for y in (-.1, .1) for z in (-.05, .05)) + \
    "f 1 2 4 3\nf 5 7 8 6\nf 1 5 6 2\nf 3 4 8 7\nf 1 3 7 5\nf 2 6 8 4\n"
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
    entities = {}
    for name in DROPS:
        path = tmp_path / f"{name}.xml"
        path.write_text(f'<mujoco><option timestep="0.01"/>{assets}<worldbody>{_body(name)}</worldbody></mujoco>')
        entities[name] = scene.add_entity(gs.morphs.MJCF(file=str(path)))
    scene.build()
    for _ in range(150):
        scene.step()
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
    return ours, speed, theirs, [(d.contact[i].dist, d.contact[i].geom) for i in range(d.ncon)]


@pytest.mark.parametrize("name", list(DROPS))
def test_drop_rests_at_mujoco_height(drops, name):
    ours, speed, theirs, _ = drops
    assert abs(ours[name][2] - theirs[name][2]) < 2e-3, (name, ours[name][2], theirs[name][2])
    assert np.abs(ours[name][:2] - theirs[name][:2]).max() < 5e-3, name  # landed where it fell
    assert speed[name] < 1e-3, (name, speed[name])  # at rest (a cold-started solver left ~0.02 rad/s)


def test_drops_do_not_interpenetrate(drops):
    contacts = drops[3]
    assert contacts, "MuJoCo should find the resting contacts"
    assert min(dist for dist, _ in contacts) > -2e-3, contacts


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


def test_franka_mesh_colliders_hold_pose():
    home = np.array([0, 0, 0, -1.57079, 0, 1.57079, -0.7853, 0.04, 0.04])
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01))
    scene.add_entity(gs.morphs.Plane())
    robot = scene.add_entity(gs.morphs.MJCF(file=str(genesis_assets(fetch=True) / PANDA / "panda_no_tendon.xml")))
    scene.build()
    data = robot.solver.data
    types = data.geom_type.to_numpy()[data.pair_geoms.to_numpy()[:data.npair]]
    assert (types == 7).all(axis=1).any(), "mesh-mesh self-collision pairs are checked"
    robot.set_dofs_position(home)
    robot.control_dofs_position(home)
    for _ in range(100):
        scene.step()
    q = robot.get_dofs_position().numpy()
    assert np.abs(q - home).max() < 0.01, q - home
    assert np.abs(robot.get_dofs_velocity().numpy()).max() < 1e-2
