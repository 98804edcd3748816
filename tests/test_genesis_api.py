"""Genesis's API surface as Genesis scripts call it: Scene viewer/vis arguments, RigidOptions
(physics options honoured, Genesis-internal ones accepted), materials, surfaces, Box(euler,
fixed), entity joints / base / force reads, external wrenches (MuJoCo's xfrc_applied as the
oracle), empty envs_idx, and batched inverse kinematics reaching targets to 1 mm."""

import os
import tempfile

import mujoco
import numpy as np
import pytest
import torch

import sim as gs

N_ENVS = 3


@pytest.fixture(scope="module")
def franka():
    scene = gs.Scene(viewer_options=gs.options.ViewerOptions(camera_pos=(3.0, 0.0, 2.0), max_FPS=60),
                     vis_options=gs.options.VisOptions(show_world_frame=False), renderer=gs.renderers.Rasterizer(),
                     show_viewer=False, show_FPS=False,
                     rigid_options=gs.options.RigidOptions(box_box_detection=True, max_collision_pairs=100,
                                                           constraint_solver=gs.constraint_solver.Newton,
                                                           integrator=gs.integrator.implicitfast, tolerance=1e-6))
    scene.add_entity(gs.morphs.Plane(), surface=gs.surfaces.Rough(color=(0.4, 0.4, 0.4)))
    robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"), visualize_contact=False)
    box = scene.add_entity(gs.morphs.Box(pos=(0.5, 0.3, 0.05), size=(0.1, 0.1, 0.1)))
    scene.build(n_envs=N_ENVS, env_spacing=(1.0, 1.0))
    return scene, robot, box


def test_scene_surface_and_refusals():
    assert gs.Scene().show_viewer is False
    with pytest.raises(ValueError, match="show_viewer=True"):
        gs.Scene(show_viewer=True)
    with pytest.raises(TypeError, match="bogus"):
        gs.Scene(bogus=1)
    with pytest.raises(TypeError, match="bogus"):
        gs.options.RigidOptions(bogus=1)
    with pytest.raises(TypeError, match="colour"):
        gs.surfaces.Default(colour=(1, 0, 0))
    with pytest.raises(ValueError, match="Euler"):
        gs.options.RigidOptions(integrator=gs.integrator.Euler)
    with pytest.raises(ValueError, match="enable_adjacent_collision"):
        gs.options.RigidOptions(enable_adjacent_collision=True)
    with pytest.raises(ValueError, match="gravity_compensation"):
        gs.materials.Rigid(gravity_compensation=1.5)
    with pytest.raises(NotImplementedError, match="RayTracer"):
        gs.renderers.RayTracer()
    with pytest.raises(ValueError, match="segmentation_level"):
        gs.options.VisOptions(segmentation_level="pixel")
    gs.materials.Rigid(needs_coup=True, coup_friction=0.2)
    with pytest.raises(ValueError, match="euler or quat"):
        gs.morphs.Box(euler=(0, 0, 90), quat=(0.0, 1.0, 0.0, 0.0))


def test_scene_accessors(franka):
    scene, robot, _ = franka
    assert scene.dt == 0.01 and scene.sim.rigid_solver is scene.rigid_solver is scene.solvers["RigidSolver"]
    assert scene.envs_offset.shape == (N_ENVS, 3) and scene.env_spacing == (1.0, 1.0)
    assert scene.entities[0].surface.color == (0.4, 0.4, 0.4)


def _drop_scene(**rigid):
    scene = gs.Scene(rigid_options=gs.options.RigidOptions(**rigid))
    scene.add_entity(gs.morphs.Plane())
    box = scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 0.1), size=(0.1, 0.1, 0.1), euler=(0, 0, 30)))
    fixed = scene.add_entity(gs.morphs.Box(pos=(1.0, 0.0, 0.5), size=(0.1, 0.1, 0.1), fixed=True))
    scene.build()
    return scene, box, fixed


def test_rigid_options_change_the_physics():
    scene, box, fixed = _drop_scene(dt=0.02)
    assert scene.rigid_solver.data.dt == 0.02 and fixed.n_dofs == 0
    assert np.allclose(box.get_quat().numpy(), [np.cos(np.pi / 12), 0, 0, np.sin(np.pi / 12)], atol=1e-6)
    for _ in range(20):
        scene.step()
    assert abs(box.get_pos()[2].item() - 0.05) < 5e-3  # rests on the plane
    assert np.allclose(fixed.get_pos().numpy(), [1.0, 0.0, 0.5])  # welded
    scene, box, _ = _drop_scene(enable_collision=False, dt=0.02)
    for _ in range(20):
        scene.step()
    z = 0.1 - 9.81 * 0.02 ** 2 * (20 * 21 / 2)  # semi-implicit Euler free fall
    assert abs(box.get_pos()[2].item() - z) < 1e-4


TWO_BOXES = """<mujoco><worldbody>
 <body pos="0 0 0.3"><freejoint/><geom type="box" size="0.1 0.1 0.1"/></body>
 <body pos="0 0 0.5"><freejoint/><geom type="box" size="0.1 0.1 0.1"/></body>
</worldbody></mujoco>"""


def test_self_collision_and_joint_limit_options(tmp_path):
    path = tmp_path / "two_boxes.xml"
    path.write_text(TWO_BOXES)

    def built(model, build=True, **rigid):
        scene = gs.Scene(rigid_options=gs.options.RigidOptions(**rigid))
        scene.add_entity(gs.morphs.Plane())
        entity = scene.add_entity(gs.morphs.MJCF(file=model))
        if build:
            scene.build()
        return scene, entity

    scene, _ = built(str(path), build=False)
    assert len(scene.rigid_solver.candidate_pairs()) == 3  # plane-box, plane-box, box-box
    scene, boxes = built(str(path), enable_self_collision=False)
    assert scene.rigid_solver.data.npair == 2  # the two boxes of one entity no longer collide
    for _ in range(40):
        scene.step()
    assert abs(boxes.get_links_pos()[1, 2].item() - boxes.get_links_pos()[0, 2].item()) < 0.05  # they overlap
    # with limits (the default) joint1 stops at its range: tests/test_rigid_contact.py; without, it passes it
    scene, robot = built("franka.xml", enable_joint_limit=False, enable_collision=False)
    robot.control_dofs_force(np.array([80.0]), dofs_idx_local=[0])
    for _ in range(60):
        scene.step()
    assert robot.get_dofs_position([0]).item() > 2.8973 + 0.01  # beyond joint1's upper limit


def test_joints_base_and_reads(franka):
    scene, robot, box = franka
    scene.reset()
    names = [j.name for j in robot.joints]
    assert names[:2] == ["joint1", "joint2"] and robot.get_joint("finger_joint1").dofs_idx_local == [7]
    assert box.joints[0].type == "FREE" and box.joints[0].dofs_idx_local == list(range(6))
    with pytest.raises(ValueError, match="no joint named"):
        robot.get_joint("nope")
    qpos = scene.get_state()["RigidSolver.qpos"]
    q = robot.get_dofs_position(slice(1, 4), envs_idx=[2, 0])
    assert q.shape == (2, 3) and np.array_equal(q.numpy(), qpos[[2, 0]][:, 1:4])
    box.set_dofs_velocity(np.array([0.1, 0.2, 0.3, 0.0, 0.0, 0.5]), envs_idx=[1])
    assert np.allclose(box.get_vel()[1].numpy(), [0.1, 0.2, 0.3]) and np.allclose(box.get_ang()[1].numpy(), [0, 0, 0.5])
    assert np.allclose(box.get_pos()[0].numpy(), [0.5, 0.3, 0.05]) and box.get_quat().shape == (N_ENVS, 4)
    # domain randomisation is real (tests/test_domain_randomisation.py); here: Genesis's call shapes
    robot.set_mass_shift(torch.zeros(N_ENVS, robot.n_links))
    robot.set_COM_shift(torch.zeros(N_ENVS, robot.n_links, 3))
    robot.set_friction_ratio(torch.ones(N_ENVS, robot.n_links))
    with pytest.raises(ValueError, match="mass_shift has shape"):
        robot.set_mass_shift(torch.zeros(N_ENVS + 1, robot.n_links))


def test_set_qpos_skip_forward_and_empty_envs_idx(franka):
    scene, robot, _ = franka
    scene.reset()
    hand = robot.get_link("hand")
    before, state = hand.get_pos(), scene.get_state().arrays()
    robot.set_dofs_position(np.zeros(9), envs_idx=[])
    robot.control_dofs_position(np.zeros(9), envs_idx=np.zeros(N_ENVS, dtype=bool))
    scene.reset(envs_idx=[])
    assert all(np.array_equal(state[k], scene.get_state().arrays()[k]) for k in state)
    robot.set_qpos(np.zeros(9), envs_idx=[0], skip_forward=True)
    assert torch.equal(hand.get_pos(), before)  # links not recomputed yet
    robot.set_qpos(np.zeros(9), envs_idx=[0])
    assert not torch.equal(hand.get_pos()[0], before[0]) and torch.equal(hand.get_pos()[1:], before[1:])


def test_position_velocity_control_and_force_reads(franka):
    scene, robot, _ = franka
    scene.reset()
    arm = np.arange(7)
    robot.set_dofs_kp(np.zeros(7), arm)
    robot.set_dofs_kv(np.full(7, 20.0), arm)
    robot.control_dofs_position_velocity(np.zeros(7), np.full(7, 0.3), arm)
    expected = 20.0 * (0.3 - robot.get_dofs_velocity(arm))
    assert torch.allclose(robot.get_dofs_control_force(arm), expected)
    for _ in range(3):
        scene.step()
    with_targets = scene.get_state().arrays()
    scene.reset()
    robot.set_dofs_kp(np.zeros(7), arm)
    robot.set_dofs_kv(np.full(7, 20.0), arm)
    robot.control_dofs_velocity(np.full(7, 0.3), arm)  # kp = 0: the same force law
    for _ in range(3):
        scene.step()
    assert np.array_equal(scene.get_state()["RigidSolver.qpos"], with_targets["RigidSolver.qpos"])
    scene.reset()
    robot.set_dofs_force_range(-np.full(2, 5.0), np.full(2, 5.0), dofs_idx_local=[0, 1])
    robot.control_dofs_position(np.array([2.0, 1.0]), dofs_idx_local=[0, 1])
    assert np.allclose(robot.get_dofs_control_force([0, 1]).numpy(), 5.0)
    lo, hi = robot.get_dofs_force_range([0, 1])
    assert lo.shape == (N_ENVS, 2) and np.allclose(hi.numpy(), 5.0)
    q0 = robot.get_dofs_position([0]).clone()
    scene.step()
    moved = (robot.get_dofs_position([0]) - q0).abs().max().item()
    robot.set_dofs_force_range(-np.full(2, 87.0), np.full(2, 87.0), dofs_idx_local=[0, 1])
    assert 0 < moved < 5e-3  # 5 N m on a heavy arm barely moves it in one step
    with pytest.raises(ValueError, match="shared by all envs"):
        robot.set_dofs_force_range([-1.0], [1.0], [0], envs_idx=[0])


FREE = """<mujoco><option timestep="0.002" integrator="Euler"><flag contact="disable"/></option>
<worldbody><body pos="1 1 1"><freejoint/>
 <geom type="box" size="0.1 0.2 0.3" quat="0.9 0.3 0.1 0" contype="0" conaffinity="0"/>
 <body pos="0.2 0 0"><joint type="hinge" axis="0 1 0" damping="0.05"/>
  <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.03" contype="0" conaffinity="0"/></body>
</body></worldbody></mujoco>"""


def test_external_wrench_matches_mujoco_xfrc_applied():
    force, torque = np.array([3.0, -1.0, 2.0]), np.array([0.2, 0.5, -0.3])
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "free.xml")
        with open(path, "w") as f:
            f.write(FREE)
        m = mujoco.MjModel.from_xml_path(path)
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=m.opt.timestep))
        entity = scene.add_entity(gs.morphs.MJCF(file=path))
        scene.build()
    md = mujoco.MjData(m)
    child = entity.links[1]
    for step in range(5):
        if step < 3:  # a wrench lasts one step
            scene.rigid_solver.apply_links_external_force(force, links_idx=[child.idx], ref="link_com")
            scene.rigid_solver.apply_links_external_torque(torque, links_idx=[child.idx])
            md.xfrc_applied[2] = np.concatenate([force, torque])
        else:
            md.xfrc_applied[:] = 0
        scene.step()
        mujoco.mj_step(m, md)
    vel = entity.get_dofs_velocity().numpy()
    assert np.allclose(vel, md.qvel, rtol=1e-3, atol=1e-4), (vel, md.qvel)
    assert abs(md.qvel[6]) > 0.01  # the torque spun the hinge (gravity alone leaves it at rest)
    with pytest.raises(ValueError, match="root_com"):
        scene.rigid_solver.apply_links_external_force(force, links_idx=[0], ref="root_com")


def test_inverse_kinematics_reaches_targets_to_a_millimetre(franka):
    scene, robot, _ = franka
    scene.reset()
    hand = robot.get_link("hand")
    before = scene.get_state().arrays()
    targets = np.array([[0.5, 0.1, 0.4], [0.4, -0.2, 0.5], [0.6, 0.0, 0.3]])
    down = np.array([0.0, 1.0, 0.0, 0.0])
    qpos, err = robot.inverse_kinematics(link=hand, pos=targets, quat=down, pos_tol=1e-4, rot_tol=1e-3,
                                         max_solver_iters=50, return_error=True)
    assert qpos.shape == (N_ENVS, 9) and err.shape == (N_ENVS, 6)
    assert all(np.array_equal(before[k], scene.get_state().arrays()[k]) for k in before)  # IK changes nothing
    robot.set_qpos(qpos)
    assert np.linalg.norm(hand.get_pos().numpy() - targets, axis=1).max() < 1e-3
    assert np.allclose(np.abs(hand.get_quat().numpy() @ down), 1.0, atol=1e-3)
    # two links at once, only the arm's dofs, one env
    left, right = robot.get_link("left_finger"), robot.get_link("right_finger")
    goal = np.array([0.45, 0.0, 0.35])
    qpos = robot.inverse_kinematics_multilink([left, right], poss=[goal + [0, 0.04, 0], goal - [0, 0.04, 0]],
                                              dofs_idx_local=np.arange(7), envs_idx=[1], pos_tol=1e-4,
                                              max_solver_iters=60)
    robot.set_qpos(qpos, envs_idx=[1])
    mid = (left.get_pos(envs_idx=[1]) + right.get_pos(envs_idx=[1])).numpy()[0] / 2
    assert np.linalg.norm(mid - goal) < 1e-3


def test_mpm_elastoplastic_is_snow_without_hardening():
    with pytest.raises(ValueError, match="use_von_mises"):
        gs.materials.MPM.ElastoPlastic()
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=2e-3),
                     mpm_options=gs.options.MPMOptions(lower_bound=(-0.5, -0.5, 0.0), upper_bound=(0.5, 0.5, 1.0),
                                                       grid_density=16, substeps=4))
    scene.add_entity(gs.morphs.Plane())
    plastic = scene.add_entity(gs.morphs.Box(pos=(-0.25, 0.0, 0.1), size=(0.15, 0.15, 0.15)),
                               material=gs.materials.MPM.ElastoPlastic(use_von_mises=False, yield_lower=0.02))
    snow = scene.add_entity(gs.morphs.Box(pos=(0.25, 0.0, 0.1), size=(0.15, 0.15, 0.15)),
                            material=gs.materials.MPM.Snow(E=3e5, nu=0.2, rho=1000.0, theta_c=0.02, theta_s=4.5e-3,
                                                           hardening=0.0))
    scene.build()
    for _ in range(60):
        scene.step()
    state = scene.get_state()
    jp, pos = state["MPMSolver.Jp"], state["MPMSolver.pos"]
    assert jp[plastic.particles].min() < 0.999  # it flowed plastically on landing
    assert np.allclose(jp[plastic.particles], jp[snow.particles], atol=1e-4)
    assert np.allclose(pos[plastic.particles] + [0.5, 0.0, 0.0], pos[snow.particles], atol=1e-4)


def test_gravity_compensation_cancels_that_fraction_of_gravity():
    """A free sphere with gravity_compensation=g falls with (1 - g) * 9.81 (MuJoCo's gravcomp)."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01))
    full = scene.add_entity(gs.morphs.Sphere(pos=(0, 0, 5), radius=0.1))
    half = scene.add_entity(gs.morphs.Sphere(pos=(1, 0, 5), radius=0.1), material=gs.materials.Rigid(gravity_compensation=0.5))
    held = scene.add_entity(gs.morphs.Sphere(pos=(2, 0, 5), radius=0.1), material=gs.materials.Rigid(gravity_compensation=1.0))
    scene.build()
    for _ in range(50):
        scene.step()
    drop = [5.0 - e.get_pos()[2].item() for e in (full, half, held)]
    assert drop[0] > 1.0
    assert drop[1] == pytest.approx(0.5 * drop[0], rel=1e-4)
    assert abs(drop[2]) < 1e-6


def _static_definition(module: str, path: str) -> tuple[str, str]:
    """Where `module`.`path` (e.g. "MPM.Elastic") is defined, found as an editor finds it: by
    reading source, following `import` / `from ... import` / `name = a.b` and class bodies, never
    running a module's __getattr__. Returns (module, class name) of the ClassDef; raises
    LookupError naming the step a static reader cannot follow."""
    import ast
    import importlib.util

    head, _, rest = path.partition(".")
    spec = importlib.util.find_spec(module)
    tree = ast.parse(open(spec.origin).read())

    def follow_expr(expr, tail):
        dotted = []
        while isinstance(expr, ast.Attribute):
            dotted.insert(0, expr.attr)
            expr = expr.value
        if not isinstance(expr, ast.Name):
            raise LookupError(f"{module}.{path}: bound to an expression a static reader cannot follow")
        return _static_definition(module, ".".join([expr.id, *dotted, *filter(None, [tail])]))

    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == head:
            if not rest:
                return module, head
            attr, _, tail = rest.partition(".")
            for item in node.body:
                if isinstance(item, ast.Assign) and any(getattr(t, "id", None) == attr for t in item.targets):
                    return follow_expr(item.value, tail)
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            for alias in node.names:
                if (alias.asname or alias.name) == head:
                    sub = f"{node.module}.{alias.name}"
                    if importlib.util.find_spec(node.module).submodule_search_locations and \
                            importlib.util.find_spec(sub) is not None:
                        return _static_definition(sub, rest)
                    return _static_definition(node.module, ".".join(filter(None, [alias.name, rest])))
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == head for t in node.targets):
            return follow_expr(node.value, rest)
    raise LookupError(f"{module}.{path}: no import, assignment or class binds {head!r} in {spec.origin}")


def test_registered_names_are_statically_importable():
    """Every built-in solver's gs.options.<Name> and gs.materials.<Path> resolves by reading
    source alone (what an editor's go-to-definition does) to the very class the registry holds."""
    import importlib

    from sim.solvers import base

    checked = 0
    for solver in base.registered_solvers().values():
        if not solver.__module__.startswith("sim."):
            continue  # a plugin (tests' ToySolver) is published at run time only
        targets = [("sim.options", solver.options_cls.__name__, solver.options_cls)]
        targets += [("sim.materials", path, cls) for path, cls in solver.materials.items()]
        for module, path, cls in targets:
            where, name = _static_definition(module, path)
            assert getattr(importlib.import_module(where), name) is cls, f"{module}.{path} -> {where}.{name}"
            checked += 1
    assert checked >= 14  # 5 options classes, 9 materials
    with pytest.raises(LookupError, match="ToyOptions"):
        _static_definition("sim.options", "ToyOptions")
    assert gs.options.ToyOptions.__name__ == "ToyOptions" and gs.materials.Toy.Points.__name__ == "ToyMaterial"
