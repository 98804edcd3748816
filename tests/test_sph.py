"""SPH solver against answers known without it: free fall, mass and momentum conservation,
a column settling at the rest density, what `active` means, and the shared state checks."""

import numpy as np
import pytest
import torch

import sim as gs
import particle_checks as pc
from isolated import run_isolated

KEY = "SPHSolver"
D = 0.025  # particle spacing of these tests
DOMAIN = dict(lower_bound=(-0.5, -0.5, 0.0), upper_bound=(0.5, 0.5, 1.0), particle_size=D)


def two_blocks(n_envs=3, gravity=(0.0, 0.0, -9.81)):
    """Two liquid blocks (sizes multiples of D, so they start at rest density) in the air: `a`
    with Genesis's default surface tension, `b` lighter and without."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01, gravity=gravity),
                     sph_options=gs.options.SPHOptions(**DOMAIN))
    a = scene.add_entity(gs.morphs.Box(pos=(-0.15, 0.0, 0.6), size=(0.15, 0.15, 0.15)), gs.materials.SPH.Liquid())
    b = scene.add_entity(gs.morphs.Box(pos=(0.15, 0.02, 0.62), size=(0.1, 0.1, 0.1)),
                         gs.materials.SPH.Liquid(rho=800.0, gamma=0.0))
    scene.build(n_envs=n_envs)
    return scene, a, b


def build_small():
    """Module-level builder for the save/load test (runs again in a fresh process)."""
    return two_blocks(n_envs=2)[0]


@pytest.fixture(scope="module")
def falling():
    return two_blocks()


def with_velocity(state, entity_vel: dict):
    arrays = {k: np.array(v, copy=True) for k, v in state.arrays().items()}
    for entity, vel in entity_vel.items():
        arrays[f"{KEY}.vel"][:, entity.particles] = np.asarray(vel)[:, None, :]
    return gs.SimState(arrays, state.t, state.n_envs, state.fingerprint)


def test_free_fall_matches_ballistic_path(falling):
    """Without surface tension every particle of a falling block follows the parabola; with it,
    the block's centre of mass does (cohesion is internal: it pulls the corners in)."""
    scene, a, b = falling
    vel = np.array([(0.0, 0.0, 0.0), (0.3, -0.2, 0.5), (-0.1, 0.1, -0.4)])
    scene.reset(with_velocity(scene.get_state(), {a: vel, b: vel}))
    n_steps = 12
    dt_sub = scene.sim_options.dt / scene.solvers[KEY].substeps
    t = n_steps * scene.sim_options.dt
    # symplectic Euler lags the parabola by |g| t dt_sub / 2; the rest is float32 rounding
    tolerance = 0.5 * 9.81 * t * dt_sub + 2e-5
    start = scene.get_state()
    error = pc.free_fall_error(scene, KEY, n_steps, particles=b.particles)
    assert error < tolerance, f"free fall off by {error:.3g} m (tolerance {tolerance:.3g})"
    scene.reset(start)
    error = pc.free_fall_error(scene, KEY, n_steps, particles=a.particles, mean=True)
    assert error < tolerance, f"the centre of mass is off by {error:.3g} m (tolerance {tolerance:.3g})"
    scene.reset(start)
    error = pc.free_fall_error(scene, KEY, n_steps, particles=a.particles)
    assert error > 3 * tolerance, "surface tension reshapes the block as it falls"


def test_mass_is_conserved_through_a_splash(falling):
    """Particles carry the mass: none is lost (all stay in the domain, finite) and every active
    one is binned for the density sums, whatever happens on impact."""
    scene, a, b = falling
    scene.reset()
    solver = scene.solvers[KEY]
    a.set_active(np.arange(a.n_particles) % 3 == 0, envs_idx=[2])
    for _ in range(40):
        scene.step()
    state = scene.get_state()
    pos, active = state[f"{KEY}.pos"], state[f"{KEY}.active"]
    assert np.isfinite(pos).all()
    assert (pos >= np.array(DOMAIN["lower_bound"])).all() and (pos <= np.array(DOMAIN["upper_bound"])).all()
    assert pos[0, :, 2].min() < 0.02, "the blocks hit the floor"
    np.testing.assert_array_equal(solver.cell_count.to_numpy().sum(1), active.sum(1))
    mass = (solver.p_mass.to_numpy()[None].astype(np.float64) * active).sum(1)
    expected = np.array([a.material.rho * 0.15 ** 3 + b.material.rho * 0.1 ** 3] * 2)
    np.testing.assert_allclose(mass[:2], expected, rtol=0.05)  # lattice mass: ~rho D^3 each
    assert mass[2] < mass[0]


def test_momentum_is_conserved_without_gravity_or_walls():
    scene, a, b = two_blocks(n_envs=1, gravity=(0.0, 0.0, 0.0))
    scene.reset(with_velocity(scene.get_state(), {a: [(1.0, 0.1, 0.0)], b: [(-1.5, 0.0, 0.2)]}))
    m = scene.solvers[KEY].p_mass.to_numpy().astype(np.float64)
    start = scene.get_state()
    p0 = np.einsum("p,bpd->bd", m, start[f"{KEY}.vel"])
    scale = np.einsum("p,bp->b", m, np.linalg.norm(start[f"{KEY}.vel"], axis=-1))
    for _ in range(12):  # they meet and splash, far from the walls
        scene.step()
    end = scene.get_state()
    assert np.abs(end[f"{KEY}.vel"][0, b.particles, 0] + 1.5).max() > 0.5, "the blocks collided"
    drift = np.abs(np.einsum("p,bpd->bd", m, end[f"{KEY}.vel"]) - p0).max() / scale.max()
    # pair forces are exactly antisymmetric; float32 rounding of the sums is the limit
    assert drift < 1e-5, f"momentum drifted by {drift:.3g} of sum m|v|"


def settle_column(rho):
    scene = gs.Scene(sph_options=gs.options.SPHOptions(lower_bound=(0, 0, 0), upper_bound=(0.1, 0.1, 0.6),
                                                       particle_size=0.02))
    scene.add_entity(gs.morphs.Box(pos=(0.05, 0.05, 0.15), size=(0.1, 0.1, 0.3)), gs.materials.SPH.Liquid(rho=rho))
    scene.build(n_envs=1)
    for _ in range(150):
        scene.step()
    solver = scene.solvers[KEY]
    return solver.density.to_numpy()[0], scene.get_state()[f"{KEY}.vel"][0]


def test_column_settles_near_rest_density():
    density, vel = settle_column(rho=800.0)
    assert np.abs(vel).max() < 0.1, "the column has come to rest"
    # WCSPH with sound speed ~21 m/s compresses a 0.3 m column by ~0.5% (1 + rho g H / stiffness...)
    assert abs(np.median(density) / 800.0 - 1) < 0.01, f"median density {np.median(density):.1f}"
    assert density.max() < 800.0 * 1.03


def test_inactive_particles_neither_move_nor_push():
    scene, a, b = two_blocks(n_envs=2, gravity=(0.0, 0.0, 0.0))
    start = with_velocity(scene.get_state(), {a: [(1.5, 0.0, 0.0)] * 2, b: [(-1.5, 0.0, 0.0)] * 2})
    scene.reset(start)
    a.set_active(False, envs_idx=[1])
    n_steps = 15
    for _ in range(n_steps):
        scene.step()
    end = scene.get_state()
    for field in ("pos", "vel"):
        np.testing.assert_array_equal(end[f"{KEY}.{field}"][1, a.particles], start[f"{KEY}.{field}"][1, a.particles])
    free_flight = start[f"{KEY}.pos"][1, b.particles] + n_steps * scene.sim_options.dt * np.array([-1.5, 0.0, 0.0])
    np.testing.assert_allclose(end[f"{KEY}.pos"][1, b.particles], free_flight, atol=1e-3)
    assert np.abs(end[f"{KEY}.pos"][0, b.particles] - free_flight).max() > 0.01, "in env 0 the blocks collide"
    scene.reset(start)
    assert scene.get_state()[f"{KEY}.active"].all(), "reset restores activity"


def test_partial_reset_touches_only_those_envs(falling):
    falling[0].reset()
    pc.check_partial_reset(falling[0], envs_idx=(1,), n_steps=2)


def test_envs_evolve_independently(falling):
    falling[0].reset()
    pc.check_env_independence(falling[0], f"{KEY}.pos", n_steps=3)


def test_save_load_in_new_process_continues_bit_exactly(tmp_path):
    pc.check_save_load_continue(build_small, tmp_path / "sph.pkl", n_before=2, n_after=3)


def test_bad_options_and_entities_raise():
    with pytest.raises(ValueError, match="particle_size"):
        gs.options.SPHOptions(particle_size=-1)
    with pytest.raises(ValueError, match="rho"):
        gs.materials.SPH.Liquid(rho=0)
    scene = gs.Scene(sph_options=gs.options.SPHOptions(**DOMAIN))
    with pytest.raises(ValueError, match="outside the solver domain"):
        scene.add_entity(gs.morphs.Sphere(pos=(0, 0, 0.05), radius=0.1), gs.materials.SPH.Liquid())
    with pytest.raises(TypeError, match="SPH.Liquid"):
        scene.solvers[KEY].add_entity(gs.morphs.Box(size=(0.1, 0.1, 0.1), pos=(0, 0, 0.5)), gs.materials.MPM.Liquid())
    assert scene.solvers[KEY].entities == []


def test_bit_exact_whatever_the_thread_count():
    """Cell lists are sorted by particle index and every sum is a gather, so SPH does not need
    deterministic mode to repeat itself bit for bit on the CPU."""
    pc.check_thread_count_independent(build_small, n_steps=4)


def mpm_and_sph_scene(with_plane=False):
    """An SPH block and an MPM cube in one scene, optionally over a plane at z = 0.2."""
    scene = gs.Scene(sph_options=gs.options.SPHOptions(**DOMAIN),
                     mpm_options=gs.options.MPMOptions(lower_bound=(-0.5, -0.5, 0.0), upper_bound=(0.5, 0.5, 1.0),
                                                       grid_density=16))
    if with_plane:
        scene.add_entity(gs.morphs.Plane(pos=(0.0, 0.0, 0.2)))
    sph = scene.add_entity(gs.morphs.Box(pos=(-0.2, 0.0, 0.5), size=(0.1, 0.1, 0.1)), gs.materials.SPH.Liquid())
    mpm = scene.add_entity(gs.morphs.Box(pos=(0.2, 0.0, 0.5), size=(0.2, 0.2, 0.2)), gs.materials.MPM.Elastic())
    scene.build(n_envs=2)
    return scene, sph, mpm


def _mpm_and_sph_free_fall_float64():
    scene, _, _ = mpm_and_sph_scene()
    start = scene.get_state()
    result = {}
    for name in ("SPHSolver", "MPMSolver"):
        assert start[f"{name}.pos"].dtype == np.float64
        scene.reset(start)
        lag = 0.5 * 9.81 * 0.1 * scene.sim_options.dt / scene.solvers[name].substeps
        # SPH's block has Genesis's default surface tension: its centre of mass falls freely
        result[name] = (pc.free_fall_error(scene, name, 10, mean=name == KEY), lag)
    return result


def test_float64_mpm_and_sph_in_one_scene_fall_freely():
    """Both solvers in one scene, in double precision: the parabola up to the symplectic lag."""
    for name, (error, lag) in run_isolated(_mpm_and_sph_free_fall_float64, precision="64",
                                           deterministic=True).items():
        assert error < lag + 1e-7, f"{name}: free fall off by {error:.3g} m (lag {lag:.3g})"


def test_unbatched_scene_has_no_env_axis():
    scene = gs.Scene(sph_options=gs.options.SPHOptions(**DOMAIN))
    body = scene.add_entity(gs.morphs.Sphere(pos=(0.0, 0.0, 0.3), radius=0.06), gs.materials.SPH.Liquid())
    scene.build(n_envs=0)
    scene.step()
    assert scene.get_state()[f"{KEY}.pos"].shape == (body.n_particles, 3)
    with pytest.raises(ValueError, match="unbatched"):
        body.set_active(False, envs_idx=[0])
    body.set_active(False)
    assert not scene.get_state()[f"{KEY}.active"].any()


def test_static_plane_is_a_floor():
    """A gs.morphs.Plane (held by whichever solver takes it) stops MPM and SPH bodies at z = 0.2,
    above the domain floor: within a grid cell for MPM, exactly for SPH (particles are projected)."""
    try:
        scene, sph, mpm = mpm_and_sph_scene(with_plane=True)
    except (TypeError, ValueError) as e:
        pytest.skip(f"no solver here takes a gs.morphs.Plane: {e}")
    dx = scene.solvers["MPMSolver"].options.dx
    lowest_mpm, lowest_sph = [], []
    for _ in range(40):
        scene.step()
        state = scene.get_state()
        lowest_mpm.append(state["MPMSolver.pos"][0, mpm.particles, 2].min())
        lowest_sph.append(state[f"{KEY}.pos"][0, sph.particles, 2].min())
    assert 0.2 - dx < min(lowest_mpm) < 0.2 + dx, "the cube lands on the plane and does not sink through"
    assert 0.2 - 1e-6 <= min(lowest_sph) < 0.21, "the liquid lands on the plane"


def test_viscosity_mu_is_the_kinematic_viscosity_of_navier_stokes():
    """Two liquid blocks sheared as v_x = U sin(k z), in zero gravity, one with 10x the mu of the
    other. One substep in, the interior's acceleration is nu * laplacian(v) = -mu k^2 v (the
    analytic answer, to 3 %); 50 substeps on, the more viscous block has lost more of its
    kinetic energy, and neither has decayed faster than exp(-mu k^2 t) allows. Without surface
    tension, which would add its own motion at the blocks' faces."""
    D, U, DT, size = 0.01, 0.05, 2e-4, np.array([0.08, 0.08, 0.24])
    k = 2 * np.pi / size[2]
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=DT, gravity=(0.0, 0.0, 0.0)),
                     sph_options=gs.options.SPHOptions(lower_bound=(-0.3, -0.3, 0.0), upper_bound=(0.3, 0.3, 0.5),
                                                       particle_size=D))
    mus = (0.005, 0.05)
    bodies = [scene.add_entity(gs.morphs.Box(pos=(0.0, y, 0.25), size=tuple(size)),
                               gs.materials.SPH.Liquid(mu=mu, viscosity=0.0, gamma=0.0)) for y, mu in zip((-0.1, 0.1), mus)]
    scene.build(n_envs=1)
    assert scene.solvers[KEY].substeps == 1
    start = scene.get_state()
    pos = start[f"{KEY}.pos"][0].astype(np.float64)
    wave = np.sin(k * (pos[:, 2] - (0.25 - size[2] / 2)))
    scene.reset(with_velocity(start, {b: [(U, 0.0, 0.0)] for b in bodies}))
    arrays = {key: np.array(v, copy=True) for key, v in scene.get_state().arrays().items()}
    arrays[f"{KEY}.vel"][0, :, 0] = U * wave
    scene.reset(gs.SimState(arrays, 0, 1, start.fingerprint))
    v0 = bodies[0].get_particles_vel()[0].numpy()  # the getters: one gather of this body's rows
    np.testing.assert_array_equal(v0, arrays[f"{KEY}.vel"][0, bodies[0].particles])
    scene.step()
    kinetic = []
    for body, mu in zip(bodies, mus):
        p = pos[body.particles]
        inner = np.all(np.abs(p - [0.0, p[:, 1].mean(), 0.25]) < size / 2 - 2 * D - 1e-3, axis=1)
        acc = (body.get_particles_vel()[0, :, 0].numpy() - U * wave[body.particles])[inner] / DT
        expected = -mu * k * k * U * wave[body.particles][inner]
        assert np.abs(acc - expected).max() < 0.03 * mu * k * k * U, (mu, np.abs(acc - expected).max())
    for _ in range(49):
        scene.step()
    for body, mu in zip(bodies, mus):
        ratio = float((body.get_particles_vel()[0].numpy().astype(np.float64) ** 2).sum()
                      / (U * U * (wave[body.particles] ** 2).sum()))
        assert np.exp(-2 * mu * k * k * 50 * DT) - 0.01 < ratio < 1.0, (mu, ratio)
        kinetic.append(ratio)
    assert kinetic[1] < kinetic[0] - 0.1, kinetic


def test_particle_getters_and_closest_particle(falling):
    scene, a, b = falling
    scene.reset()
    scene.step()
    state = scene.get_state()
    pos, vel = b.get_particles_pos(), b.get_particles_vel(envs_idx=[2, 0])
    np.testing.assert_array_equal(pos.numpy(), state[f"{KEY}.pos"][:, b.particles])
    np.testing.assert_array_equal(vel.numpy(), state[f"{KEY}.vel"][[2, 0], b.particles])
    # off the lattice, so that no two particles tie
    target = np.array([[0.1431, 0.0172, 0.6613], [0.1127, -0.0093, 0.6021], [0.1874, 0.0461, 0.5537]])
    closest = b.find_closest_particle(target)
    assert closest.dtype == torch.int32 and closest.shape == (3,)
    expected = np.linalg.norm(pos.numpy() - target[:, None], axis=-1).argmin(1)
    np.testing.assert_array_equal(closest.numpy(), expected)
    assert b.find_closest_particle(target[1], envs_idx=[1]).tolist() == [expected[1]]
    with pytest.raises(ValueError, match="pos must be"):
        b.find_closest_particle([0.0, 1.0])
    with pytest.raises(RuntimeError, match="needs a built scene"):
        gs.Scene().add_entity(gs.morphs.Box(pos=(0, 0, 0.5), size=(0.1, 0.1, 0.1)),
                              gs.materials.SPH.Liquid()).get_particles_pos()


def test_liquid_arguments_genesis_names():
    liquid = gs.materials.SPH.Liquid(mu=0.1, sampler="random", gamma=0.0)
    assert liquid.mu == 0.1 and liquid.sampler == "random"
    assert gs.materials.SPH.Liquid().gamma == 0.01, "Genesis's default surface tension"
    for bad, needle in ((dict(sampler="pbs"), "physics-based sampler"), (dict(sampler="grid"), "sampler must be"),
                        (dict(gamma=-0.01), "gamma"), (dict(gamma=float("nan")), "gamma"), (dict(mu=-1.0), "mu")):
        with pytest.raises(ValueError, match=needle):
            gs.materials.SPH.Liquid(**bad)
    from sim.solvers.particles import sample_morph

    box = gs.morphs.Box(pos=(0.0, 0.0, 0.5), size=(0.2, 0.1, 0.1))
    points, volume = sample_morph(box, 0.01, "random")
    again, _ = sample_morph(box, 0.01, "random")
    assert len(points) == 2000 and np.isclose(len(points) * volume, 0.002) and np.array_equal(points, again)
    assert (np.abs(points - box.pos) <= np.array(box.size) / 2).all()


@pytest.fixture(scope="module")
def three_cubes():
    """Three cubes of 6^3 particles at rest in zero gravity, gamma = 0, 0.01 (Genesis's default)
    and 0.02, and a pair of particles (gamma = 0.01), far apart; dt small enough for one substep
    a step."""
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=8e-4, gravity=(0.0, 0.0, 0.0)),
                     sph_options=gs.options.SPHOptions(lower_bound=(-0.5, -0.5, 0.0), upper_bound=(0.5, 0.5, 0.5),
                                                       particle_size=0.02))
    cubes = [scene.add_entity(gs.morphs.Box(pos=(x, 0.0, 0.25), size=(0.12, 0.12, 0.12)),
                              gs.materials.SPH.Liquid(gamma=gamma)) for x, gamma in ((-0.25, 0.0), (0.0, 0.01), (0.25, 0.02))]
    pair = scene.add_entity(gs.morphs.Box(pos=(0.0, 0.3, 0.25), size=(0.04, 0.02, 0.02)), gs.materials.SPH.Liquid())
    scene.build(n_envs=1)
    assert scene.solvers[KEY].substeps == 1 and pair.n_particles == 2
    return scene, cubes, pair


def genesis_cohesion(pos: np.ndarray, gamma: float, d: float) -> np.ndarray:
    """Genesis's surface tension acceleration for particles of one mass, written from its
    definition: a_i = -gamma sum_j W(max(|x_ij|, d), 2d) x_ij over the neighbours within 2d."""
    from sim.solvers.sph.kernels import cubic_spline

    x = pos[:, None, :] - pos[None, :, :]
    r = np.linalg.norm(x, axis=-1)
    w = np.where(r < 2 * d, cubic_spline(np.maximum(r, d), 2 * d), 0.0)
    return -gamma * np.einsum("ij,ijk->ik", w, x)


def sphericity(pos: np.ndarray) -> float:
    """Largest over root-mean-square distance from the centroid: 1.46 for the 6^3 lattice cube,
    smaller the rounder the body (1.29 for a solid ball)."""
    r = np.linalg.norm(pos - pos.mean(0), axis=1)
    return float(r.max() / np.sqrt((r * r).mean()))


def test_surface_tension_is_genesis_cohesion_and_rounds_a_cube(three_cubes):
    """One substep in, each cube's acceleration is Genesis's cohesion term (computed here in
    numpy), linear in gamma and zero for gamma = 0 (the lattice starts at rest density, so there
    is no pressure). Then, stepping on: the cubes with surface tension round up steadily, about
    twice as fast with twice the gamma, their centres of mass stay put, and the cube without
    surface tension keeps its shape."""
    scene, cubes, _ = three_cubes
    scene.reset()
    dt = scene.sim_options.dt
    start = [c.get_particles_pos()[0].numpy().astype(np.float64) for c in cubes]
    scene.step()
    # float32 rounding of the rest density leaves ~0.1 Pa of pressure: ~3e-3 m/s^2 here
    tolerance = 2e-3 * np.abs(genesis_cohesion(start[1], 0.01, 0.02)).max()
    for cube, pos in zip(cubes, start):
        error = np.abs(cube.get_particles_vel()[0].numpy() / dt - genesis_cohesion(pos, cube.material.gamma, 0.02))
        assert error.max() < tolerance, f"gamma = {cube.material.gamma}: off Genesis's term by {error.max():.3g} m/s^2"
    shapes = [[sphericity(p) for p in start]]
    for _ in range(5):
        for _ in range(20):
            scene.step()
        shapes.append([sphericity(c.get_particles_pos()[0].numpy().astype(np.float64)) for c in cubes])
    shapes = np.array(shapes)  # (checkpoint, cube)
    assert np.abs(shapes[:, 0] - shapes[0, 0]).max() < 1e-4, f"gamma = 0 changed the cube: {shapes[:, 0]}"
    assert (np.diff(shapes[:, 1:], axis=0) < 0).all(), f"not rounding up steadily: {shapes}"
    drop = shapes[0] - shapes[-1]
    assert drop[1] > 0.02 and 1.8 < drop[2] / drop[1] < 2.2, f"sphericity drops {drop}"
    for cube, pos in zip(cubes, start):
        np.testing.assert_allclose(cube.get_particles_pos()[0].numpy().mean(0), pos.mean(0), atol=1e-6)


@pytest.mark.parametrize("separation", [0.5, 1.5])
def test_surface_tension_of_a_pair_clamps_the_distance_at_one_spacing(three_cubes, separation):
    """Two particles alone (far below rest density: no pressure; at rest: no viscosity) attract
    each other by Genesis's cohesion only: a = gamma W(max(r, d)) r toward each other; closer than
    one spacing d the kernel is taken at d."""
    scene, _, pair = three_cubes
    scene.reset()
    d, h, gamma = 0.02, 0.04, pair.material.gamma
    start = np.array([[0.0, 0.3, 0.25], [separation * d, 0.3, 0.25]])
    pair.set_particles_pos(start)
    scene.step()
    from sim.solvers.sph.kernels import cubic_spline

    pull = gamma * cubic_spline(max(separation, 1.0) * d, h) * separation * d
    acc = pair.get_particles_vel()[0].numpy() / scene.sim_options.dt
    np.testing.assert_allclose(acc, [[pull, 0.0, 0.0], [-pull, 0.0, 0.0]], rtol=1e-5, atol=1e-6 * pull)
