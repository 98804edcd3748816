"""Per-env domain randomisation (Genesis's set_mass_shift, set_COM_shift, set_friction_ratio)
against known answers: MuJoCo with the same masses and centres of mass changed in its model,
and Coulomb friction on a pushed box; state, reset and checkpoint behaviour of the parameters.

One scene for the module (float32, the test process): the bundled franka (compared with
MuJoCo as tests/test_rigid_mujoco.py does, same float32 tolerance: 1e-4 on joint positions
after the run; measured 1e-6) beside a plane and a box far from it. The pushed box is held to
5 % of Coulomb's distance 1/2 (F/m - mu g) t^2 (measured 2 % over: the contact solver's
stabilisation, not friction, is what differs) and must not move at all where mu g > F/m.
"""

import mujoco
import numpy as np
import pytest
import torch

import sim as gs
from sim import checkpoint

N_ENVS = 3
BOX_FRICTION, PLANE_FRICTION, PUSH = 0.5, 0.05, 0.4  # push: the force on the box, in units of its weight
G = 9.81
NEUTRAL = None  # the build-time state, set by the fixture


@pytest.fixture(scope="module")
def world():
    model = mujoco.MjModel.from_xml_path(gs.morphs.MJCF(file="franka.xml").file)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=model.opt.timestep, gravity=(0, 0, -G)))
    robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    plane = scene.add_entity(gs.morphs.Plane(), material=gs.materials.Rigid(friction=PLANE_FRICTION))
    box = scene.add_entity(gs.morphs.Box(pos=(2.0, 0.0, 0.1), size=(0.2, 0.2, 0.2)),
                           material=gs.materials.Rigid(friction=BOX_FRICTION))
    scene.build(n_envs=N_ENVS)
    global NEUTRAL
    NEUTRAL = scene.get_state()  # the build-time state: no randomisation
    return scene, robot, box, model, plane


def _shifts(robot):  # called on a neutral scene
    """Per-env mass (kg) and centre-of-mass (m) shifts: env 0 none, envs 1 and 2 different."""
    rng, n_envs = np.random.default_rng(3), robot.solver.n_envs
    mass = np.zeros((n_envs, robot.n_links))
    com = np.zeros((n_envs, robot.n_links, 3))
    model_mass = robot.get_links_mass(envs_idx=[0]).cpu().numpy()[0]  # before any shift
    mass[1:, 1:] = model_mass[1:] * rng.uniform(-0.3, 0.5, (n_envs - 1, robot.n_links - 1))
    mass[-1, 8] = 2.0  # the hand carries a payload
    com[1:, 1:] = rng.uniform(-0.03, 0.03, (n_envs - 1, robot.n_links - 1, 3))
    return mass, com


def test_mass_and_com_shifts_match_mujoco(world):
    scene, robot, _, model, _ = world
    scene.reset(state=NEUTRAL)
    mass, com = _shifts(robot)
    robot.set_mass_shift(mass)
    robot.set_COM_shift(com)
    home = np.r_[model.key_qpos[0][:7], 0.02, 0.02]
    robot.set_dofs_position(np.broadcast_to(model.key_qpos[0], (N_ENVS, 9)))  # where MuJoCo starts
    refs = []
    for e in range(N_ENVS):
        m = mujoco.MjModel.from_xml_path(gs.morphs.MJCF(file="franka.xml").file)
        m.opt.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
        m.body_mass[1:] += mass[e]
        m.body_ipos[1:] += com[e]
        m.body_sameframe[:] = 0  # MuJoCo skips body_ipos where the compiler found it zero (a frame flag)
        md = mujoco.MjData(m)
        mujoco.mj_resetDataKeyframe(m, md, 0)
        refs.append((m, md))
    assert np.allclose(robot.get_links_mass().numpy(), [m.body_mass[1:] for m, _ in refs], atol=1e-6)
    assert np.allclose(robot.get_links_COM(envs_idx=[2]).numpy()[0], refs[2][0].body_ipos[1:], atol=1e-6)
    qerr, spread = 0.0, np.zeros(2)
    for i in range(100):
        target = home + 0.3 * np.sin(2 * np.pi * i * model.opt.timestep + np.arange(9)) * np.r_[np.ones(7), 0.05, 0.05]
        robot.control_dofs_position(np.broadcast_to(target, (N_ENVS, 9)))
        scene.step()
        qpos = robot.get_dofs_position().numpy()
        for e, (m, md) in enumerate(refs):
            md.ctrl[:] = target
            mujoco.mj_step(m, md)
            qerr = max(qerr, float(np.abs(qpos[e] - md.qpos).max()))
        spread = np.maximum(spread, np.abs(np.diff(qpos, axis=0)).max(axis=1))
    assert all(md.nefc == 0 for _, md in refs)
    assert qerr < 1e-4, qerr
    # the shifts matter: the envs' trajectories differ by far more than the tolerance
    assert np.all(spread > 1e-3), spread


def test_friction_ratio_slides_or_sticks_as_coulomb_says(world):
    scene, _, box, _, _ = world
    scene.reset(state=NEUTRAL)
    ratios = np.array([0.4, 3.0, 0.6])  # friction max(0.5 r, 0.05): 0.2, 1.5, 0.3
    box.set_friction_ratio(ratios[:, None])
    mu = np.maximum(BOX_FRICTION * ratios, PLANE_FRICTION)
    solver, link = scene.sim.rigid_solver, box.links[0].idx
    weight = float(box.get_links_mass()[0, 0]) * G
    start = box.get_pos().numpy()
    steps = 50
    for _ in range(steps):
        solver.apply_links_external_force([[PUSH * weight, 0.0, 0.0]], links_idx=[link])
        scene.step()
    moved = box.get_pos().numpy()[:, 0] - start[:, 0]
    seconds = steps * scene.dt
    expected = 0.5 * np.maximum(PUSH - mu, 0.0) * G * seconds ** 2
    assert abs(moved[1]) < 1e-4, moved              # mu = 1.5 > push 0.4: sticks
    assert np.allclose(moved[[0, 2]], expected[[0, 2]], rtol=0.05), (moved, expected)


def _randomise(robot, box):
    mass, com = _shifts(robot)
    robot.set_mass_shift(mass)
    robot.set_COM_shift(com)
    box.set_friction_ratio(np.linspace(0.3, 2.0, robot.solver.n_envs)[:, None])


PARAMS = ("RigidSolver.links_mass_shift", "RigidSolver.links_COM_shift", "RigidSolver.geoms_friction_ratio")


def check_parameters_kept_and_restored(scene, robot, box, steps=10):
    """Randomise a neutral scene with >= 2 envs, step; resets without a state keep the parameters
    (partial and full), a reset to the state taken after randomising restores them, and a state
    from before brings the neutral values back. Pure data movement: exact on every backend (the
    Vulkan test runs it too). Returns the state and what `steps` steps from it gave."""
    neutral = scene.get_state()
    _randomise(robot, box)
    robot.control_dofs_position(np.zeros(9))
    state = scene.get_state()
    for _ in range(steps):
        scene.step()
    after = scene.get_state()
    scene.reset(envs_idx=[1])
    scene.reset()
    kept = scene.get_state()
    assert all(np.array_equal(kept[k], state[k]) for k in PARAMS)
    scene.reset(state=neutral, envs_idx=[1])
    back = scene.get_state()
    assert all(np.array_equal(back[k][1], neutral[k][1]) for k in PARAMS)
    scene.reset(state=state)
    assert all(np.array_equal(scene.get_state()[k], state[k]) for k in PARAMS)
    return state, after


def test_state_round_trip_is_bit_exact_and_resets_keep_parameters(world):
    scene, robot, box, _, _ = world
    scene.reset(state=NEUTRAL)
    state, after = check_parameters_kept_and_restored(scene, robot, box)
    scene.reset()  # the rest of the state goes back to the build-time one
    assert np.array_equal(scene.get_state()["RigidSolver.qpos"], NEUTRAL["RigidSolver.qpos"])
    assert all(np.array_equal(scene.get_state()[k], state[k]) for k in PARAMS)
    scene.reset(state=state)
    for _ in range(10):  # from the restored state: the same trajectory, bit for bit (CPU, deterministic)
        scene.step()
    again = scene.get_state()
    for key in after.keys():
        assert np.array_equal(after[key], again[key]), key


def test_checkpoint_restores_parameters(world, tmp_path):
    scene, robot, box, _, _ = world
    scene.reset(state=NEUTRAL)
    _randomise(robot, box)
    saved = scene.get_state()
    scene.save_checkpoint(tmp_path / "ck.pkl")
    robot.set_mass_shift(np.zeros(robot.n_links))
    box.set_friction_ratio([1.0])
    scene.load_checkpoint(tmp_path / "ck.pkl")
    for key in PARAMS:
        assert np.array_equal(scene.get_state()[key], saved[key]), key


def test_checkpoint_from_before_randomisation(world, tmp_path):
    """A file written before these arrays existed is refused, naming them; the documented
    conversion (add the neutral arrays, write without meta) loads."""
    scene, robot, box, _, _ = world
    scene.reset(state=NEUTRAL)
    meta = scene.checkpoint_meta()
    arrays = {k: v for k, v in scene.get_state().arrays().items() if k not in PARAMS}
    old_layout = [entry for entry in meta["layout"] if entry[0] not in PARAMS]
    old_meta = checkpoint.make_meta(meta["scene"], old_layout, N_ENVS)
    checkpoint.write(tmp_path / "old.pkl", arrays, 7, old_meta)
    _randomise(robot, box)
    before = scene.get_state().arrays()
    with pytest.raises(checkpoint.CheckpointError, match="links_mass_shift is new in the scene"):
        scene.load_checkpoint(tmp_path / "old.pkl")
    assert all(np.array_equal(v, scene.get_state()[k]) for k, v in before.items())
    # the README's conversion
    data = checkpoint.read(tmp_path / "old.pkl")
    n = data["meta"]["n_envs"]
    layout = {k: (shape, dtype) for k, shape, dtype in scene.checkpoint_meta()["layout"]}
    neutral = {"links_mass_shift": 0.0, "links_COM_shift": 0.0, "geoms_friction_ratio": 1.0}
    for name, value in neutral.items():
        shape, dtype = layout["RigidSolver." + name]
        data["arrays"]["RigidSolver." + name] = np.full(((n,) if n else ()) + tuple(shape), value, dtype=dtype)
    checkpoint.write(tmp_path / "new.pkl", data["arrays"], data["step_index"], None)
    scene.load_checkpoint(tmp_path / "new.pkl")
    assert scene.t == 7 and float(robot.get_links_mass()[1, 3]) == np.float32(scene.sim.rigid_solver.model.body_mass[4])


def test_bad_input_is_refused_and_changes_nothing(world):
    scene, robot, box, _, plane = world
    scene.reset(state=NEUTRAL)
    _randomise(robot, box)
    before = scene.get_state().arrays()
    bad_mass = np.zeros((N_ENVS, robot.n_links))
    bad_mass[2, 4] = -10.0
    cases = [
        (ValueError, "link 'link4' in env 2 would have mass", lambda: robot.set_mass_shift(bad_mass)),
        (ValueError, r"mass_shift has shape \(2, 11\)", lambda: robot.set_mass_shift(np.zeros((2, 11)))),
        (ValueError, r"com_shift has shape \(11,\)", lambda: robot.set_COM_shift(np.zeros(11))),
        (ValueError, "non-finite", lambda: robot.set_COM_shift(np.full((11, 3), np.nan))),
        (ValueError, "friction_ratio -0.5 < 0 for link 'box_baselink'|friction_ratio -0.5 < 0",
         lambda: box.set_friction_ratio([[1.0], [-0.5]], envs_idx=[0, 1])),
        (ValueError, "out of range", lambda: robot.set_mass_shift(np.zeros(1), links_idx_local=[11])),
        (ValueError, "out of range", lambda: box.set_friction_ratio([1.0], envs_idx=[3])),
        (TypeError, "must be numeric", lambda: box.set_friction_ratio(["a"])),
        (ValueError, "has no links to randomise", lambda: plane.set_friction_ratio(np.ones((N_ENVS, 1)))),
    ]
    for exc, match, call in cases:
        with pytest.raises(exc, match=match):
            call()
    after = scene.get_state().arrays()
    assert all(np.array_equal(v, after[k]) for k, v in before.items())
    robot.set_mass_shift(np.zeros((0, 11)), envs_idx=[])  # an empty envs_idx is a no-op
    robot.set_mass_shift(torch.zeros(2), links_idx_local=[0, 1])  # links at their model mass: a zero shift


def test_genesis_1_4_absolute_setters_store_the_same_shifts(world):
    """set_links_mass / set_links_COM (Genesis 1.4) write what set_mass_shift / set_COM_shift would."""
    scene, robot, _, _, _ = world
    scene.reset(state=NEUTRAL)
    mass, com = _shifts(robot)
    robot.set_mass_shift(mass)
    robot.set_COM_shift(com)
    shifted = {k: scene.get_state()[k] for k in PARAMS}
    scene.reset(state=NEUTRAL)
    model_mass, model_com = robot.get_links_mass().numpy()[0], robot.get_links_COM().numpy()[0]
    robot.set_links_mass(torch.as_tensor(model_mass + mass))
    robot.set_links_COM(model_com + com)
    for key in PARAMS:
        assert np.allclose(scene.get_state()[key], shifted[key], atol=1e-6), key
    with pytest.raises(ValueError, match="link 'hand' in env 0 would have mass 0 kg"):
        robot.set_links_mass(np.zeros(1), links_idx_local=[8], envs_idx=[0])
