"""MPM solver against answers known without it: free fall, conservation of mass and momentum,
what `active` means, plasticity, rest on the ground, and the shared state checks."""

import numpy as np
import pytest

import sim as gs
import particle_checks as pc

KEY = "MPMSolver"
DOMAIN = dict(lower_bound=(-0.5, -0.5, 0.0), upper_bound=(0.5, 0.5, 1.0), grid_density=16)


def three_bodies(n_envs=3, gravity=(0.0, 0.0, -9.81), **options):
    """An elastic box, a snow sphere and a liquid box, apart and above the floor."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01, gravity=gravity),
                     mpm_options=gs.options.MPMOptions(**{**DOMAIN, **options}))
    bodies = [scene.add_entity(gs.morphs.Box(pos=(-0.2, 0.0, 0.6), size=(0.2, 0.2, 0.2)), gs.materials.MPM.Elastic()),
              scene.add_entity(gs.morphs.Sphere(pos=(0.2, 0.0, 0.6), radius=0.1), gs.materials.MPM.Snow()),
              scene.add_entity(gs.morphs.Box(pos=(0.0, 0.25, 0.6), size=(0.15, 0.15, 0.15)), gs.materials.MPM.Liquid())]
    scene.build(n_envs=n_envs)
    return scene, bodies


def build_small():
    """Module-level builder for the save/load test (runs again in a fresh process)."""
    return three_bodies(n_envs=2)[0]


@pytest.fixture(scope="module")
def falling():
    return three_bodies()


def with_velocity(state, vel_per_env):
    arrays = {k: np.array(v, copy=True) for k, v in state.arrays().items()}
    arrays[f"{KEY}.vel"][:] = np.asarray(vel_per_env, dtype=arrays[f"{KEY}.vel"].dtype)[:, None, :]
    return gs.SimState(arrays, state.t, state.n_envs, state.fingerprint)


def test_free_fall_matches_ballistic_path(falling):
    scene, _ = falling
    scene.reset(with_velocity(scene.get_state(), [(0.0, 0.0, 0.0), (0.3, -0.2, 0.5), (-0.1, 0.1, -0.4)]))
    n_steps = 12  # 0.12 s: the lowest body drops about 0.1 m, clear of the floor and each other
    dt_sub = scene.sim_options.dt / scene.solvers[KEY].substeps
    t = n_steps * scene.sim_options.dt
    # symplectic Euler lags the exact parabola by |g| t dt_sub / 2; the rest is float32 rounding
    tolerance = 0.5 * 9.81 * t * dt_sub + 2e-5
    error = pc.free_fall_error(scene, KEY, n_steps)
    assert error < tolerance, f"free fall off by {error:.3g} m (tolerance {tolerance:.3g})"
    state = scene.get_state()
    assert np.all(state[f"{KEY}.Jp"] == 1.0), "a body in free fall is unstressed: no plastic flow"


def grid_mass(solver):
    return solver.grid_m.to_numpy().reshape(solver.grid_m.shape[0], -1).sum(1, dtype=np.float64)


def particle_mass(solver, active):
    return (solver.p_mass.to_numpy()[None, :].astype(np.float64) * active).sum(1)


def test_mass_is_conserved_through_impact_and_deactivation(falling):
    scene, bodies = falling
    scene.reset()
    solver = scene.solvers[KEY]
    bodies[0].set_active(np.arange(bodies[0].n_particles) % 2 == 0, envs_idx=[1])
    for _ in range(40):  # everything lands, the liquid spreads against the walls
        scene.step()
        state = scene.get_state()
        expected = particle_mass(solver, state[f"{KEY}.active"])
        np.testing.assert_allclose(grid_mass(solver), expected, rtol=1e-5)
    assert expected[1] < expected[0], "half of body 0 is inactive in env 1"
    pos = state[f"{KEY}.pos"]
    assert np.isfinite(pos).all()
    assert (pos >= np.array(DOMAIN["lower_bound"])).all() and (pos <= np.array(DOMAIN["upper_bound"])).all()
    assert pos[0, :, 2].min() < 0.05, "the bodies reached the floor"
    body = bodies[1]  # Genesis's particle reads (one implementation with SPH, PBD, FEM)
    np.testing.assert_array_equal(body.get_particles_pos(envs_idx=[1]).numpy(), pos[[1], body.particles])
    np.testing.assert_array_equal(body.get_particles_vel().numpy(), state[f"{KEY}.vel"][:, body.particles])


def colliding_boxes(n_envs=2):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01, gravity=(0.0, 0.0, 0.0)),
                     mpm_options=gs.options.MPMOptions(**DOMAIN))
    a = scene.add_entity(gs.morphs.Box(pos=(-0.15, 0.0, 0.5), size=(0.2, 0.2, 0.2)), gs.materials.MPM.Elastic())
    b = scene.add_entity(gs.morphs.Box(pos=(0.15, 0.02, 0.52), size=(0.15, 0.15, 0.15)), gs.materials.MPM.Snow())
    scene.build(n_envs=n_envs)
    state = scene.get_state()
    arrays = {k: np.array(v, copy=True) for k, v in state.arrays().items()}
    arrays[f"{KEY}.vel"][:, a.particles] = (1.0, 0.1, 0.0)
    arrays[f"{KEY}.vel"][:, b.particles] = (-1.5, 0.0, 0.2)
    start = gs.SimState(arrays, 0, n_envs)
    scene.reset(start)
    return scene, a, b, start


@pytest.fixture(scope="module")
def collision():
    return colliding_boxes()


def momentum(solver, state):
    m = solver.p_mass.to_numpy().astype(np.float64)
    return np.einsum("p,bpd->bd", m, state[f"{KEY}.vel"].astype(np.float64))


def test_momentum_is_conserved_without_gravity_or_walls(collision):
    scene, a, b, start = collision
    scene.reset(start)
    solver = scene.solvers[KEY]
    p0 = momentum(solver, start)
    scale = np.einsum("p,bp->b", solver.p_mass.to_numpy(), np.linalg.norm(start[f"{KEY}.vel"], axis=-1))
    for _ in range(10):  # they meet and bounce, far from the walls
        scene.step()
    end = scene.get_state()
    assert not np.allclose(end[f"{KEY}.vel"][0, b.particles, 0], -1.5, atol=0.1), "the boxes collided"
    # APIC transfers and grid forces conserve momentum exactly; float32 rounding is the limit
    drift = np.abs(momentum(solver, end) - p0).max(1) / scale
    assert drift.max() < 1e-5, f"momentum drifted by {drift.max():.3g} of sum m|v|"


def test_inactive_particles_neither_move_nor_push(collision):
    scene, a, b, start = collision
    scene.reset(start)
    a.set_active(False, envs_idx=[1])
    n_steps = 10
    for _ in range(n_steps):
        scene.step()
    end = scene.get_state()
    for field in ("pos", "vel", "C", "F", "Jp"):
        np.testing.assert_array_equal(end[f"{KEY}.{field}"][1, a.particles], start[f"{KEY}.{field}"][1, a.particles])
    free_flight = start[f"{KEY}.pos"][1, b.particles] + n_steps * scene.sim_options.dt * np.array([-1.5, 0.0, 0.2])
    np.testing.assert_allclose(end[f"{KEY}.pos"][1, b.particles], free_flight, atol=1e-4)
    assert np.abs(end[f"{KEY}.pos"][0, b.particles] - free_flight).max() > 0.01, "in env 0 the boxes collide"
    scene.reset(start)
    assert scene.get_state()[f"{KEY}.active"].all(), "reset restores activity"


def test_set_active_validates_before_changing_anything(collision):
    scene, a, _, _ = collision
    before = scene.get_state()[f"{KEY}.active"]
    with pytest.raises(TypeError, match="bool"):
        a.set_active(1)
    with pytest.raises(ValueError, match="shape"):
        a.set_active(np.ones(a.n_particles + 1, dtype=bool))
    with pytest.raises(ValueError, match="out of range"):
        a.set_active(False, envs_idx=[5])
    np.testing.assert_array_equal(scene.get_state()[f"{KEY}.active"], before)


def spread_about_centre(points):
    """Mean distance to the centroid: unchanged by rigid motion, changed by deformation."""
    return np.linalg.norm(points - points.mean(0), axis=1).mean()


def test_snow_yields_and_elastic_springs_back_on_the_ground(falling):
    scene, (box, snow, liquid) = falling
    scene.reset()
    start = scene.get_state()
    for _ in range(80):
        scene.step()
    state = scene.get_state()
    pos, Jp, F = state[f"{KEY}.pos"][0], state[f"{KEY}.Jp"][0], state[f"{KEY}.F"][0]
    assert np.all(Jp[box.particles] == 1.0) and np.all(Jp[liquid.particles] == 1.0)
    assert np.abs(Jp[snow.particles] - 1.0).max() > 1e-3, "snow deforms plastically on impact"
    spread = spread_about_centre(pos[box.particles])
    start_spread = spread_about_centre(start[f"{KEY}.pos"][0, box.particles])
    # at 3 cells per edge MPM compacts particles by a few percent on impact (3% alone, measured)
    assert abs(spread / start_spread - 1) < 0.1, "the elastic cube keeps its shape after landing"
    assert abs(np.linalg.det(F[box.particles]).mean() - 1) < 0.03, "and its volume"
    assert pos[box.particles, 2].min() < 0.05
    assert np.ptp(pos[liquid.particles, 2]) < 0.1, "the liquid spreads out"
    F_liquid = F[liquid.particles]
    np.testing.assert_allclose(F_liquid, F_liquid[:, :1, :1] * np.eye(3), atol=1e-6)


def test_partial_reset_touches_only_those_envs(falling):
    falling[0].reset()
    pc.check_partial_reset(falling[0], envs_idx=(0, 2), n_steps=2)


def test_envs_evolve_independently(falling):
    falling[0].reset()
    pc.check_env_independence(falling[0], f"{KEY}.pos", n_steps=3)


def test_save_load_in_new_process_continues_bit_exactly(tmp_path):
    pc.check_save_load_continue(build_small, tmp_path / "mpm.pkl", n_before=2, n_after=3)


def test_morph_sampling_fills_the_shape():
    from sim.solvers.particles import sample_morph
    from sim.utils.geom import quat_to_R

    half = np.sin(np.pi / 8)  # 45 degrees about z
    box = gs.morphs.Box(pos=(0.1, -0.2, 0.5), size=(0.3, 0.2, 0.1), quat=(np.cos(np.pi / 8), 0.0, 0.0, half))
    points, volume = sample_morph(box, 0.02)
    local = (points - np.array(box.pos)) @ quat_to_R(box.quat)
    assert (np.abs(local) < np.array(box.size) / 2).all(), "every particle is inside the rotated box"
    assert len(points) == 15 * 10 * 5 and np.isclose(len(points) * volume, 0.3 * 0.2 * 0.1)
    sphere = gs.morphs.Sphere(pos=(0.0, 0.0, 0.5), radius=0.1)
    points, volume = sample_morph(sphere, 0.01)
    assert (np.linalg.norm(points - np.array(sphere.pos), axis=1) <= 0.1 + 1e-9).all()
    assert abs(len(points) * volume / (4 / 3 * np.pi * 0.1 ** 3) - 1) < 0.05


def test_bad_options_and_entities_raise():
    with pytest.raises(ValueError, match="upper_bound"):
        gs.options.MPMOptions(lower_bound=(0, 0, 0), upper_bound=(1, 1, 0))
    with pytest.raises(ValueError, match="grid_density"):
        gs.options.MPMOptions(grid_density=0)
    with pytest.raises(ValueError, match="nu"):
        gs.materials.MPM.Elastic(nu=0.5)
    scene = gs.Scene(mpm_options=gs.options.MPMOptions(**DOMAIN))
    with pytest.raises(ValueError, match="outside the solver domain"):
        scene.add_entity(gs.morphs.Box(pos=(0.45, 0, 0.5), size=(0.2, 0.2, 0.2)), gs.materials.MPM.Elastic())
    with pytest.raises(TypeError, match="Box or gs.morphs.Sphere"):
        scene.add_entity(gs.morphs.Cloth(), gs.materials.MPM.Elastic())
    assert scene.solvers[KEY].entities == []

