"""The RigidEntity API (dof state, PD control, links, envs_idx), MJCF refusal, the fingerprint,
and bit-exact reset / checkpoint round trips with controller targets in the state."""

import os
import shutil

import numpy as np
import pytest
import torch

import sim as gs
from sim.morphs import ASSETS_DIR

N_ENVS = 4


@pytest.fixture(scope="module")
def franka_scene():
    scene = gs.Scene()
    scene.add_entity(gs.morphs.Plane())
    robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    box = scene.add_entity(gs.morphs.Box(pos=(0.5, 0.0, 0.05), size=(0.1, 0.1, 0.1)))
    scene.build(n_envs=N_ENVS)
    return scene, robot, box


def test_shapes_and_links(franka_scene):
    scene, robot, box = franka_scene
    scene.reset()
    assert robot.n_dofs == 9 and box.n_dofs == 6
    assert robot.get_dofs_position().shape == (N_ENVS, 9)
    assert robot.get_dofs_velocity(envs_idx=[2]).shape == (1, 9)
    assert robot.get_links_pos().shape == (N_ENVS, robot.n_links, 3)
    assert robot.get_links_quat().shape == (N_ENVS, robot.n_links, 4)
    hand = robot.get_link("hand")
    assert torch.equal(hand.get_pos(), robot.get_links_pos()[:, hand.idx_local])
    with pytest.raises(ValueError, match="no link named"):
        robot.get_link("nope")


def test_set_position_only_touches_selected_envs(franka_scene):
    scene, robot, _ = franka_scene
    scene.reset()
    before = robot.get_dofs_position()
    hand_before = robot.get_link("hand").get_pos()
    robot.set_dofs_position(torch.tensor([0.5, -0.3]), dofs_idx_local=[0, 1], envs_idx=[1, 3])
    after = robot.get_dofs_position()
    assert torch.equal(after[[0, 2]], before[[0, 2]])
    assert torch.allclose(after[[1, 3]][:, :2].double().cpu(), torch.tensor([[0.5, -0.3]] * 2, dtype=torch.float64))
    hand_after = robot.get_link("hand").get_pos()
    assert torch.equal(hand_after[0], hand_before[0])
    assert not torch.allclose(hand_after[1], hand_before[1])  # links follow qpos at once


def test_free_body_dofs_round_trip(franka_scene):
    scene, _, box = franka_scene
    scene.reset()
    target = np.array([0.1, 0.2, 0.3, 0.3, -0.2, 0.1])
    box.set_dofs_position(target, envs_idx=[0])
    assert np.allclose(box.get_dofs_position(envs_idx=[0]).numpy()[0], target, atol=1e-6)
    with pytest.raises(ValueError, match="all three rotational"):
        box.set_dofs_position([0.1], dofs_idx_local=[4], envs_idx=[0])


@pytest.mark.parametrize("call, error", [
    (lambda r: r.set_dofs_position(np.zeros(9), envs_idx=[4]), ValueError),
    (lambda r: r.set_dofs_position(np.zeros(9), envs_idx=[1, 1]), ValueError),
    (lambda r: r.set_dofs_position(np.zeros(9), envs_idx=[0.5]), TypeError),
    (lambda r: r.set_dofs_position(np.zeros(8)), ValueError),
    (lambda r: r.set_dofs_position(np.zeros((3, 9)), envs_idx=[0, 1]), ValueError),
    (lambda r: r.control_dofs_position(np.zeros(2), dofs_idx_local=[0, 9]), ValueError),
    (lambda r: r.control_dofs_position(np.full(9, np.nan)), ValueError),
    (lambda r: r.set_dofs_kp(-np.ones(9)), ValueError),
    (lambda r: r.control_dofs_force(["a"] * 9), TypeError),
])
def test_bad_input_raises_and_changes_nothing(franka_scene, call, error):
    scene, robot, _ = franka_scene
    scene.reset()
    before = scene.get_state().arrays()
    with pytest.raises(error):
        call(robot)
    after = scene.get_state().arrays()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_controls_are_state_and_reset_is_bit_exact(franka_scene):
    scene, robot, box = franka_scene
    scene.reset()
    robot.set_dofs_kp(np.full(9, 3000.0), envs_idx=[0, 1])
    for _ in range(5):
        scene.step()
    state = scene.get_state()

    def run():
        robot.control_dofs_position(robot.get_dofs_position()[:, :7] + 0.2, dofs_idx_local=range(7),
                                    envs_idx=np.arange(N_ENVS))
        robot.control_dofs_velocity(np.array([0.1, -0.1]), dofs_idx_local=[7, 8], envs_idx=[2])
        box.control_dofs_force(np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.01]))
        for _ in range(20):
            scene.step()
        return scene.get_state().arrays()

    first = run()
    assert not np.array_equal(first["RigidSolver.ctrl_pos"], state["RigidSolver.ctrl_pos"])
    scene.reset(state=state)
    assert np.array_equal(scene.get_state()["RigidSolver.ctrl_pos"], state["RigidSolver.ctrl_pos"])
    second = run()
    for key in first:
        assert np.array_equal(first[key], second[key]), key
    # a partial reset restores those envs' controller state too
    scene.reset(state=state, envs_idx=[1])
    assert np.array_equal(scene.get_state()["RigidSolver.ctrl_pos"][1], state["RigidSolver.ctrl_pos"][1])
    assert np.array_equal(scene.get_state()["RigidSolver.dofs_kp"][1, :9], np.full(9, 3000.0, np.float32))


def test_unbatched_scene_shapes_and_morph_pose():
    import mujoco

    quat = (np.cos(np.pi / 6), 0.0, 0.0, np.sin(np.pi / 6))  # 60 degrees about z
    scene = gs.Scene()
    robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml", pos=(1.0, 2.0, 0.5), quat=quat))
    scene.build()
    m = mujoco.MjModel.from_xml_path(robot.morph.file)
    d = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, d, 0)
    mujoco.mj_kinematics(m, d)
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, np.asarray(quat))
    expected = d.xpos[1:] @ rot.reshape(3, 3).T + np.array([1.0, 2.0, 0.5])
    assert np.allclose(robot.get_links_pos().numpy(), expected, atol=1e-5)
    assert robot.get_dofs_position().shape == (9,)
    assert robot.get_links_pos().shape == (robot.n_links, 3)
    with pytest.raises(ValueError, match="unbatched"):
        robot.get_dofs_position(envs_idx=[0])
    robot.control_dofs_position(np.zeros(9))
    scene.step()
    assert np.all(np.isfinite(robot.get_dofs_position().numpy()))


@pytest.mark.parametrize("body, needle", [
    ('<body><joint type="hinge"/><geom size="0.1" condim="6"/></body>', "condim"),
    ('<body><joint name="j" type="ball" frictionloss="1"/><geom size="0.1"/></body>', "frictionloss"),
    ('<body><joint type="hinge"/><geom size="0.1"/><site name="s"/></body></worldbody>'
     '<tendon><spatial><site site="s"/><site site="s"/></spatial></tendon><worldbody>', "tendon"),
    ('<body><joint name="j" type="hinge"/><geom size="0.1"/></body></worldbody>'
     '<actuator><general joint="j" dyntype="integrator"/></actuator><worldbody>', "dyntype"),
])
def test_unsupported_mjcf_is_refused_by_name(tmp_path, body, needle):
    path = tmp_path / "bad.xml"
    path.write_text(f"<mujoco><worldbody>{body}</worldbody></mujoco>")
    scene = gs.Scene()
    with pytest.raises(ValueError, match=needle):
        scene.add_entity(gs.morphs.MJCF(file=str(path)))
    assert scene.entities == [] and scene.solvers["RigidSolver"].model.nbody == 1


def test_fingerprint_uses_file_content_not_path(tmp_path):
    def describe(path):
        scene = gs.Scene()
        scene.add_entity(gs.morphs.MJCF(file=path))
        return scene.solvers["RigidSolver"].describe()

    copy = tmp_path / "franka.xml"
    shutil.copy(ASSETS_DIR / "franka.xml", copy)
    assert describe(str(copy)) == describe("franka.xml")
    copy.write_text(copy.read_text().replace('kp="4500"', 'kp="4400"'))
    assert describe(str(copy)) != describe("franka.xml")
    assert os.path.basename(describe("franka.xml")["entities"][0]["morph"]["file"]) == "franka.xml"


def continue_from_checkpoint(path: str, steps: int) -> dict:
    """In a fresh process: franka_scene's scene built anew loads the checkpoint and steps on,
    with no control calls."""
    scene, _, _ = franka_scene.__wrapped__()
    scene.load_checkpoint(path)
    for _ in range(steps):
        scene.step()
    return scene.get_state().arrays()


def test_checkpoint_in_a_new_process_continues_bit_exact(franka_scene, tmp_path):
    """The module's scene (with the earlier tests' history behind it) saves; a fresh process
    builds the same scene, loads the file and steps on as this one does, bit for bit."""
    from isolated import run_isolated

    scene, robot, box = franka_scene
    scene.reset()
    robot.control_dofs_position(np.array([0.3, -0.5]), dofs_idx_local=[0, 1], envs_idx=[1])
    robot.set_dofs_kv(np.full(9, 300.0), envs_idx=[0])
    box.set_dofs_velocity(np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0]))
    for _ in range(10):
        scene.step()
    path = str(tmp_path / "rigid.pkl")
    scene.save_checkpoint(path)
    for _ in range(15):
        scene.step()
    ours = scene.get_state().arrays()
    theirs = run_isolated(continue_from_checkpoint, path, 15, precision="32", deterministic=True)
    for key in ours:
        assert np.array_equal(ours[key], theirs[key]), key
