"""The core's state machinery on the test-only ToySolver: get_state, reset, envs_idx, scene lifecycle."""

import pickle

import numpy as np
import pytest
import torch

import sim as gs
from isolated import run_isolated

N = 6


def make_scene(n_envs=N, n_points=3, pos=(0.0, 0.0, 1.0), **scene_kwargs):
    scene = gs.Scene(**scene_kwargs)
    scene.add_entity(gs.morphs.Box(pos=pos), material=gs.materials.Toy.Points(n_points=n_points))
    scene.build(n_envs=n_envs)
    return scene


def run(scene, steps):
    for _ in range(steps):
        scene.step()


def assert_states_equal(a, b, rows=slice(None)):
    assert set(a.keys()) == set(b.keys())
    for k in a.keys():
        np.testing.assert_array_equal(a[k][rows], b[k][rows], err_msg=k)


def test_state_holds_every_declared_field_with_env_axis_first():
    scene = make_scene()
    state = scene.get_state()
    assert state["ToySolver.pos"].shape == (N, 3, 3) and state["ToySolver.pos"].dtype == np.float32
    assert state["ToySolver.frame"].shape == (N, 2, 2)
    assert state["ToySolver.hits"].dtype == np.int32
    assert set(state.arrays()) == {"ToySolver.pos", "ToySolver.vel", "ToySolver.frame", "ToySolver.energy",
                                   "ToySolver.hits"}
    assert state.solvers["ToySolver"]["vel"] is state["ToySolver.vel"]
    assert state.t == 0 and scene.t == 0
    with pytest.raises(KeyError, match="no state field"):
        state["ToySolver.nope"]


def test_get_state_is_a_copy():
    scene = make_scene()
    state = scene.get_state()
    before = state["ToySolver.pos"].copy()
    run(scene, 5)
    np.testing.assert_array_equal(state["ToySolver.pos"], before)
    assert scene.t == 5 and state.t == 0


def test_reset_to_state_reproduces_trajectory_bit_for_bit():
    scene = make_scene()
    run(scene, 3)
    mid = scene.get_state()
    run(scene, 60)
    first = scene.get_state()
    scene.reset(state=mid)
    assert scene.t == 3
    run(scene, 60)
    assert_states_equal(scene.get_state(), first)
    assert scene.get_state()["ToySolver.hits"].sum() > 0  # the trajectory went through a bounce


def test_reset_without_state_goes_back_to_build_time():
    scene = make_scene()
    init = scene.get_state()
    run(scene, 10)
    scene.reset()
    assert scene.t == 0
    assert_states_equal(scene.get_state(), init)


@pytest.mark.parametrize("form", [
    [0, 2, 5], (0, 2, 5), np.array([0, 2, 5]), torch.tensor([0, 2, 5]),
    np.array([True, False, True, False, False, True]), torch.tensor([True, False, True, False, False, True]),
])
def test_partial_reset_touches_exactly_the_selected_envs(form):
    scene = make_scene()
    init = scene.get_state()
    run(scene, 20)
    stepped = scene.get_state()
    scene.reset(envs_idx=form)
    after = scene.get_state()
    assert scene.t == 20
    assert_states_equal(after, init, rows=[0, 2, 5])
    assert_states_equal(after, stepped, rows=[1, 3, 4])
    for k in after.keys():
        assert not np.array_equal(after[k][[0, 2, 5]], stepped[k][[0, 2, 5]]) or k == "ToySolver.hits", k


def test_partial_reset_with_state_takes_each_envs_own_row():
    scene = make_scene()
    run(scene, 7)
    snap = scene.get_state()
    run(scene, 7)
    later = scene.get_state()
    scene.reset(state=snap, envs_idx=[4, 1])
    after = scene.get_state()
    assert_states_equal(after, snap, rows=[1, 4])
    assert_states_equal(after, later, rows=[0, 2, 3, 5])


def test_reset_of_every_env_by_index_keeps_t():
    scene = make_scene()
    run(scene, 4)
    snap = scene.get_state()
    run(scene, 4)
    scene.reset(state=snap, envs_idx=[5, 4, 3, 2, 1, 0])
    assert scene.t == 8
    assert_states_equal(scene.get_state(), snap)


@pytest.mark.parametrize("bad", [[0, 6], [-1], [1, 1], [0.0], np.ones(5, dtype=bool)])  # empty: a no-op, see test_genesis_api
def test_bad_envs_idx_raises_and_changes_nothing(bad):
    scene = make_scene()
    run(scene, 5)
    before = scene.get_state()
    with pytest.raises((ValueError, TypeError)):
        scene.reset(envs_idx=bad)
    assert scene.t == 5
    assert_states_equal(scene.get_state(), before)


def test_state_of_another_scene_is_refused_and_changes_nothing():
    scene = make_scene()
    other = make_scene(n_envs=N + 1)
    more_points = make_scene(n_points=4)
    run(scene, 5)
    before = scene.get_state()
    with pytest.raises(gs.CheckpointError, match=f"n_envs={N + 1}.*n_envs={N}"):
        scene.reset(state=other.get_state())
    with pytest.raises(gs.CheckpointError, match=r"ToySolver.pos has shape \(6, 4, 3\)"):
        scene.reset(state=more_points.get_state())
    with pytest.raises(TypeError, match="SimState"):
        scene.reset(state={"ToySolver.pos": 0})
    assert_states_equal(scene.get_state(), before)


def test_unbatched_scene_has_no_env_axis():
    scene = make_scene(n_envs=0)
    init = scene.get_state()
    assert init["ToySolver.pos"].shape == (3, 3) and init["ToySolver.frame"].shape == (2, 2)
    run(scene, 10)
    scene.reset(state=init)
    assert_states_equal(scene.get_state(), init)
    with pytest.raises(ValueError, match="unbatched"):
        scene.reset(envs_idx=[0])


def test_serializable_state_pickles_and_restores():
    scene = make_scene()
    run(scene, 12)
    state = scene.get_state()
    copy = pickle.loads(pickle.dumps(state.serializable()))
    assert copy.t == 12 and copy["ToySolver.pos"] is not state["ToySolver.pos"]
    run(scene, 3)
    scene.reset(state=copy)
    assert_states_equal(scene.get_state(), state)


def test_lifecycle_errors():
    scene = gs.Scene()
    with pytest.raises(RuntimeError, match="build"):
        scene.step()
    scene.add_entity(gs.morphs.Box(), material=gs.materials.Toy.Points())
    with pytest.raises(ValueError, match="n_envs"):
        scene.build(n_envs=-1)
    scene.build(n_envs=2)
    with pytest.raises(RuntimeError, match="before scene.build"):
        scene.add_entity(gs.morphs.Box(), material=gs.materials.Toy.Points())
    with pytest.raises(RuntimeError, match="already built"):
        scene.build(n_envs=2)
    with pytest.raises(TypeError, match="unknown keyword"):
        gs.Scene(nonsense_options=1)
    with pytest.raises(TypeError, match="ToyOptions"):
        gs.Scene(toy_options=gs.options.SimOptions())
    with pytest.raises(TypeError, match="not a material"):
        gs.Scene().add_entity(gs.morphs.Box(), material=object())


def test_solver_options_and_sim_options_reach_the_solver():
    slow = make_scene(sim_options=gs.options.SimOptions(dt=0.01, substeps=4, gravity=(0, 0, -1.0)),
                      toy_options=gs.options.ToyOptions(damping=0.0))
    run(slow, 10)
    # 10 steps of dt=0.01 in 4 substeps under g=-1: semi-implicit Euler velocity is exactly -g t
    np.testing.assert_allclose(slow.get_state()["ToySolver.vel"][..., 2], -0.1, rtol=1e-5)


def test_several_scenes_in_one_process_are_independent():
    a, b = make_scene(), make_scene(n_envs=2, pos=(0, 0, 3.0))
    run(a, 5)
    b_init = b.get_state()
    run(b, 1)
    b.reset()
    assert_states_equal(b.get_state(), b_init)
    assert a.t == 5 and b.t == 0


def _scene_before_init():
    from sim import runtime

    assert not runtime.is_initialized()
    make_scene(n_envs=2)
    return runtime.config().backend, runtime.config().precision


def test_api_before_init_initialises_the_cpu_default():
    assert run_isolated(_scene_before_init, call_init=False) == ("cpu", "32")


def test_init_twice_same_is_harmless_conflicting_raises():
    from sim import runtime

    cfg = runtime.config()
    gs.init(backend=cfg.backend, precision=cfg.precision, seed=cfg.seed, deterministic=cfg.deterministic,
            logging_level=cfg.logging_level)
    with pytest.raises(RuntimeError, match="already initialised"):
        gs.init(backend=gs.cpu, precision="64")
    with pytest.raises(ValueError, match="precision"):
        gs.init(precision="16")
    with pytest.raises(ValueError, match="backend"):
        gs.init(backend="tpu")


@pytest.mark.parametrize("bad, words", [
    (lambda: gs.morphs.Box(size=(1, -1, 1)), "positive"),
    (lambda: gs.morphs.Box(pos=(0, 0)), "3 components"),
    (lambda: gs.morphs.Box(quat=(1, 1, 0, 0)), "unit quaternion"),
    (lambda: gs.morphs.Sphere(radius=0), "positive"),
    (lambda: gs.morphs.Cloth(res=(1, 4)), "ints >= 2"),
    (lambda: gs.morphs.MJCF(file="no_such_robot.xml"), "not found"),
    (lambda: gs.options.SimOptions(dt=0), "dt must be positive"),
    (lambda: gs.options.SimOptions(substeps=0), "substeps"),
])
def test_bad_morphs_and_options_raise(bad, words):
    with pytest.raises((ValueError, TypeError, FileNotFoundError), match=words):
        bad()
