"""Genesis's particle writes on every particle solver (MPM, SPH, PBD, FEM), in one scene of
three envs: set_particles_pos / set_particles_vel round-trip through the getters, touch only
the asked envs and particles, reset what Genesis resets (velocity; MPM's F, C, Jp), and a set
velocity then carries a body along the ballistic path for one step; bad input is refused
before anything changes. Also MPM / SPH set_particles_active and FEM's set_position /
set_velocity (Genesis's whole-entity forms)."""

import numpy as np
import pytest
import torch

import sim as gs

BOUNDS = dict(lower_bound=(-1.0, -1.0, 0.0), upper_bound=(1.0, 1.0, 1.0))


@pytest.fixture(scope="module")
def bodies():
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01),
                     mpm_options=gs.options.MPMOptions(**BOUNDS, grid_density=16),
                     sph_options=gs.options.SPHOptions(**BOUNDS, particle_size=0.04),
                     pbd_options=gs.options.PBDOptions(substeps=4, particle_size=0.05),
                     fem_options=gs.options.FEMOptions(substeps=10, element_size=0.05))
    mpm = scene.add_entity(gs.morphs.Box(pos=(-0.5, 0.0, 0.6), size=(0.12, 0.12, 0.12)), gs.materials.MPM.Elastic())
    sph = scene.add_entity(gs.morphs.Box(pos=(0.0, -0.5, 0.6), size=(0.12, 0.12, 0.12)),
                           gs.materials.SPH.Liquid(gamma=0.0))
    pbd = scene.add_entity(gs.morphs.Box(pos=(0.5, 0.0, 0.6), size=(0.1, 0.1, 0.1)), gs.materials.PBD.Particle())
    fem = scene.add_entity(gs.morphs.Box(pos=(0.0, 0.5, 0.6), size=(0.1, 0.1, 0.1)),
                           gs.materials.FEM.Elastic(E=2e4, nu=0.3, rho=500.0))
    scene.build(n_envs=3)
    return scene, {"MPMSolver": mpm, "SPHSolver": sph, "PBDSolver": pbd, "FEMSolver": fem}


def changed(before, after) -> set:
    return {k for k in before.keys() if not np.array_equal(before[k], after[k])}


def test_round_trip_touches_only_the_asked_envs_and_particles(bodies):
    scene, entities = bodies
    rng = np.random.default_rng(1)
    for name, body in entities.items():
        scene.reset()
        body.set_particles_vel(rng.normal(0, 0.3, (3, body.n_particles, 3)))
        scene.step()  # so that velocities (and MPM's F, C) are not at their rest values
        if name == "MPMSolver":  # nor Jp (plastic history, which an elastic body does not build up)
            arrays = {k: np.array(v, copy=True) for k, v in scene.get_state().arrays().items()}
            arrays["MPMSolver.Jp"][:] = 0.9
            scene.reset(gs.SimState(arrays, scene.t, scene.n_envs, scene.get_state().fingerprint))
        idx = np.array([3, 0, body.n_particles - 1])
        # (envs, k, 3) torch values for envs [2, 0]
        target = body.get_particles_pos(envs_idx=[2, 0])[:, idx] + torch.as_tensor(rng.normal(0, 0.01, (2, 3, 3)),
                                                                                 dtype=gs.tc_float)
        vel = rng.normal(0, 1.0, (3, 3))  # (k, 3): the same in every env asked for
        body.set_particles_vel(vel, particles_idx_local=idx.tolist(), envs_idx=[1, 2])
        np.testing.assert_array_equal(body.get_particles_vel(envs_idx=[2, 1])[:, idx].numpy(),
                                      np.broadcast_to(vel.astype(np.float32), (2, 3, 3)))
        before = scene.get_state()
        body.set_particles_pos(target, particles_idx_local=torch.as_tensor(idx), envs_idx=[2, 0])
        after = scene.get_state()
        np.testing.assert_array_equal(body.get_particles_pos(envs_idx=[2, 0])[:, idx], target)
        rows = np.arange(body.start, body.start + body.n_particles)[idx]
        resets = {f"{name}.vel": 0.0, "MPMSolver.C": 0.0, "MPMSolver.F": np.eye(3), "MPMSolver.Jp": 1.0}
        for key in before.keys():
            want = np.array(before[key], copy=True)
            if key == f"{name}.pos":
                want[np.ix_([2, 0], rows)] = target.numpy()
            elif key in resets and key.startswith(name):  # a moved particle restarts at rest
                assert not (want[np.ix_([2, 0], rows)] == resets[key]).all(), f"{key}: the reset is not seen"
                want[np.ix_([2, 0], rows)] = resets[key]
            np.testing.assert_array_equal(after[key], want, err_msg=f"{name}: {key}")


def test_per_env_particle_indices_and_per_env_values(bodies):
    """Genesis's (envs, k) particle indices: each env writes its own particles; (envs, 3) gives
    one value per env."""
    scene, entities = bodies
    scene.reset()
    body = entities["SPHSolver"]
    before = body.get_particles_vel().numpy()
    per_env = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]  # (envs, 3); with 2 particles it would read as (k, 3)
    body.set_particles_vel(per_env, particles_idx_local=[[0, 1, 2], [5, 6, 9]], envs_idx=[0, 2])
    expected = before.copy()
    expected[0, [0, 1, 2]] = per_env[0]
    expected[2, [5, 6, 9]] = per_env[1]
    np.testing.assert_array_equal(body.get_particles_vel().numpy(), expected)


def test_set_velocity_then_ballistic_flight(bodies):
    """A whole body given one velocity per env moves rigidly: after a step every particle sits
    at x0 + v dt + g dt^2 / 2, up to symplectic Euler's lag g dt dt_sub / 2."""
    scene, entities = bodies
    scene.reset()
    vels = np.array([(0.4, -0.2, 1.0), (0.0, 0.0, 0.0), (-0.3, 0.5, -0.5)])
    for body in entities.values():
        body.set_particles_vel(vels[:, None, :])
    start = {name: body.get_particles_pos().numpy().astype(np.float64) for name, body in entities.items()}
    scene.step()
    dt, g = scene.sim_options.dt, np.array(scene.sim_options.gravity)
    for name, body in entities.items():
        dt_sub = dt / scene.solvers[name].substeps
        expected = start[name] + vels[:, None, :] * dt + 0.5 * g * dt * dt
        error = np.abs(body.get_particles_pos().numpy() - expected).max()
        assert error < 0.5 * 9.81 * dt * dt_sub + 2e-5, f"{name}: off the ballistic path by {error:.3g} m"
        np.testing.assert_allclose(body.get_particles_vel().numpy(), np.broadcast_to(vels[:, None, :] + g * dt,
                                                                                      (3, body.n_particles, 3)),
                                   atol=1e-4, err_msg=name)


def test_active_flags_of_mpm_and_sph(bodies):
    scene, entities = bodies
    scene.reset()
    for name in ("MPMSolver", "SPHSolver"):
        body = entities[name]
        body.set_particles_active([[False, False], [False, True]], particles_idx_local=[[2, 3], [4, 5]],
                                  envs_idx=[1, 0])
        active = body.get_particles_active()
        assert active.dtype == torch.bool and active.shape == (3, body.n_particles)
        expected = np.ones((3, body.n_particles), bool)
        expected[1, [2, 3]] = expected[0, 4] = False
        np.testing.assert_array_equal(active.numpy(), expected)
        np.testing.assert_array_equal(scene.get_state()[f"{name}.active"][:, body.particles], expected)
    assert not hasattr(entities["PBDSolver"], "set_particles_active"), "PBD has no active flag to honour"


def test_fem_whole_entity_position_and_velocity(bodies):
    scene, entities = bodies
    scene.reset()
    fem = entities["FEMSolver"]
    vel_before = fem.get_particles_vel().numpy()
    fem.set_position([[0.1, 0.5, 0.4], [0.0, 0.4, 0.5]], envs_idx=[0, 2])  # centroids, one per env
    pos = fem.get_particles_pos().numpy().astype(np.float64)
    np.testing.assert_allclose(pos[[0, 2]].mean(1), [[0.1, 0.5, 0.4], [0.0, 0.4, 0.5]], atol=1e-6)
    np.testing.assert_allclose(pos[0] - pos[0].mean(0), fem.rest_pos - fem.rest_pos.mean(0), atol=1e-6)
    np.testing.assert_array_equal(pos[1], fem.rest_pos.astype(np.float32))
    np.testing.assert_array_equal(fem.get_particles_vel().numpy(), vel_before)
    fem.set_velocity((0.0, 0.0, 1.0), envs_idx=[1])
    assert (fem.get_particles_vel().numpy()[1] == [0.0, 0.0, 1.0]).all()


@pytest.mark.parametrize("name", ["MPMSolver", "SPHSolver", "PBDSolver", "FEMSolver"])
def test_bad_input_is_refused_and_changes_nothing(bodies, name):
    scene, entities = bodies
    scene.reset()
    body = entities[name]
    before = scene.get_state()
    n = body.n_particles
    cases = [
        (ValueError, "shape", dict(poss=np.zeros((3, n + 1, 3)))),
        (ValueError, "shape", dict(poss=np.zeros((2,)))),
        (ValueError, "NaN", dict(poss=np.full((3, n, 3), np.nan))),
        (TypeError, "numbers", dict(poss=np.full((3,), "a"))),
        (ValueError, "out of range", dict(poss=(0.0, 0.0, 0.5), particles_idx_local=[0, n])),
        (ValueError, "out of range", dict(poss=(0.0, 0.0, 0.5), particles_idx_local=[-1])),
        (ValueError, "duplicates", dict(poss=(0.0, 0.0, 0.5), particles_idx_local=[1, 1])),
        (TypeError, "integers", dict(poss=(0.0, 0.0, 0.5), particles_idx_local=[0.5])),
        (ValueError, "one row per env", dict(poss=(0.0, 0.0, 0.5), particles_idx_local=[[0], [1]])),
        (ValueError, "out of range", dict(poss=(0.0, 0.0, 0.5), envs_idx=[3])),
        (ValueError, "duplicates", dict(poss=(0.0, 0.0, 0.5), envs_idx=[0, 0])),
    ]
    if name in ("MPMSolver", "SPHSolver"):
        cases.append((ValueError, "outside the solver domain", dict(poss=(0.0, 0.0, 1.5))))
    for error, needle, kwargs in cases:
        with pytest.raises(error, match=needle):
            body.set_particles_pos(kwargs.pop("poss"), **kwargs)
    with pytest.raises(ValueError, match="infinite"):
        body.set_particles_vel((np.inf, 0.0, 0.0), envs_idx=[0])
    assert not changed(before, scene.get_state())
    body.set_particles_vel((1.0, 0.0, 0.0), envs_idx=[])  # an empty selection is a no-op
    body.set_particles_pos((0.0, 0.0, 0.5), particles_idx_local=[])
    assert not changed(before, scene.get_state())
