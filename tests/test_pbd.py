"""PBD solver: free fall, floor contact, a cloth hanging from two pinned corners, pinning per
env, and the shared reset / independence / save-load checks."""

import numpy as np
import pytest
import torch

import sim as gs
from isolated import run_isolated
from particle_checks import (check_env_independence, check_partial_reset, check_save_load_continue,
                             free_fall_error, run)
from sim.solvers.pbd.constraints import colour, grid_triangles, stretch_and_bending_pairs

RES = (9, 9)
CLOTH_SIZE = (0.4, 0.4)


def _scene(n_envs, floor_height=0.0, damping=0.0, substeps=8):
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01),
                     pbd_options=gs.options.PBDOptions(substeps=substeps, floor_height=floor_height,
                                                       damping=damping, particle_size=0.05))
    cloth = scene.add_entity(gs.morphs.Cloth(pos=(0.0, 0.0, 1.0), size=CLOTH_SIZE, res=RES),
                             material=gs.materials.PBD.Cloth())
    block = scene.add_entity(gs.morphs.Box(pos=(1.0, 0.0, 0.5), size=(0.1, 0.15, 0.2)),
                             material=gs.materials.PBD.Particle())
    scene.build(n_envs=n_envs)
    return scene, cloth, block


def build_batched():
    """Module-level so that a fresh process can rebuild it (save -> load test)."""
    scene, cloth, block = _scene(3)
    cloth.set_free([0], False, envs_idx=[1])
    block.set_velocity((0.3, 0.0, 2.0))
    return scene


def _edge_strain(pos, cloth):
    edges, _ = stretch_and_bending_pairs(grid_triangles(*RES))
    rest = np.linalg.norm(cloth.rest_pos[edges[:, 0]] - cloth.rest_pos[edges[:, 1]], axis=1)
    p = pos[..., cloth.start:cloth.start + cloth.n_vertices, :]
    length = np.linalg.norm(p[..., edges[:, 0], :] - p[..., edges[:, 1], :], axis=-1)
    return np.abs(length / rest - 1.0).max()


def test_cloth_constraints_and_their_colouring():
    """A 4 x 3 grid: 23 edges, one bending pair per interior edge, and a colouring in which no
    two constraints of a colour share a vertex (so a colour is projected in parallel)."""
    edges, bending = stretch_and_bending_pairs(grid_triangles(4, 3))
    assert len(edges) == 3 * 3 + 4 * 2 + 3 * 2 and len(bending) == len(edges) - 2 * (3 + 2)
    assert [0, 5] in edges.tolist() and [1, 4] in bending.tolist()   # quad (0,1,4,5): diagonal 0-5
    pairs = np.concatenate([edges, bending])
    colours = colour(pairs, 12)
    for c in range(colours.max() + 1):
        members = pairs[colours == c].ravel()
        assert len(np.unique(members)) == len(members)


def test_particles_sampled_in_box():
    _, cloth, block = _scene(0)
    assert cloth.n_particles == RES[0] * RES[1]
    assert block.n_particles == 2 * 3 * 4                 # 0.1 x 0.15 x 0.2 at 0.05 spacing
    assert np.allclose(block.rest_pos.mean(0), (1.0, 0.0, 0.5))
    assert np.all(np.abs(block.rest_pos - (1.0, 0.0, 0.5)) < (0.05, 0.075, 0.1))


def test_free_fall_matches_ballistic_formula():
    """Cloth and particles in flight follow x0 + v0 t + g t^2/2; symplectic Euler is off by
    exactly |g| t dt/2, so that (plus float32 rounding) is the tolerance."""
    scene, cloth, block = _scene(2, floor_height=None)
    cloth.set_velocity((0.5, 0.0, 1.0), envs_idx=[0])
    block.set_velocity((-0.2, 0.3, 0.0), envs_idx=[1])
    n_steps = 40
    t, dt_sub = n_steps * 0.01, 0.01 / 8
    err = free_fall_error(scene, "PBDSolver", n_steps)
    assert err < 9.81 * t * dt_sub / 2 + 1e-4, err
    assert err > 0.5 * 9.81 * t * dt_sub / 2  # the integrator's known O(dt) term is there
    assert _edge_strain(scene.get_state()["PBDSolver.pos"], cloth) < 1e-4


def test_particles_land_on_floor_and_stack():
    """A 2 x 3 x 4 block of particles 0.05 apart (their diameter) lands and rests as a stack
    of 4 layers: the lowest centres one radius above the floor, the highest 3 diameters
    higher, no two particles overlapping. The cloth, being thin, lies on the floor itself."""
    scene, cloth, block = _scene(0, damping=0.5)
    for _ in range(150):
        scene.step()
    state = scene.get_state()
    pos = state["PBDSolver.pos"][block.particles]
    assert abs(pos[:, 2].min() - 0.025) < 1e-6
    assert abs(pos[:, 2].max() - 0.025 - 3 * 0.05) < 0.005
    gaps = np.linalg.norm(pos[:, None] - pos[None], axis=-1) + np.eye(len(pos))
    assert gaps.min() > 0.95 * 0.05
    assert np.abs(state["PBDSolver.vel"][block.particles]).max() < 1e-3
    assert np.abs(state["PBDSolver.pos"][cloth.particles, 2]).max() < 1e-6


def test_cloth_pinned_at_two_corners_hangs_without_stretching():
    """A 0.4 m cloth of inextensible edges pinned at its two y = +0.2 corners (env 0 only)
    swings down and hangs; its edges never stretch past 2 %; the pins never move. In env 1
    nothing is pinned and the cloth falls to the floor."""
    scene, cloth, _ = _scene(2, damping=4.0)
    nx, ny = RES
    corners = [(ny - 1) * nx, ny * nx - 1]
    cloth.set_free(corners, False, envs_idx=[0])
    pinned_at = scene.get_state()["PBDSolver.pos"][0, corners]
    worst = 0.0
    for _ in range(15):
        state = run(scene, 10)
        worst = max(worst, _edge_strain(state["PBDSolver.pos"][0], cloth))
        assert np.array_equal(state["PBDSolver.pos"][0, corners], pinned_at)
    assert worst < 0.02, worst
    hanging = state["PBDSolver.pos"][0, :cloth.n_vertices]
    assert hanging[:, 2].min() < 1.0 - 0.9 * CLOTH_SIZE[1]   # hangs nearly straight down
    assert np.abs(state["PBDSolver.vel"][0, :cloth.n_vertices]).max() < 0.2
    assert state["PBDSolver.pos"][1, :cloth.n_vertices, 2].max() < 0.05  # env 1: on the floor


def test_pin_and_release_per_env_are_state():
    scene, _, block = _scene(2)
    block.set_free(None, False, envs_idx=[0])
    pinned = scene.get_state()
    moved = run(scene, 5)
    ids = slice(block.start, None)
    assert np.array_equal(moved["PBDSolver.pos"][0, ids], pinned["PBDSolver.pos"][0, ids])
    assert not np.array_equal(moved["PBDSolver.pos"][1, ids], pinned["PBDSolver.pos"][1, ids])
    block.set_free([0, 1], True, envs_idx=[0])
    released = run(scene, 2)
    assert not np.array_equal(released["PBDSolver.pos"][0, block.start], pinned["PBDSolver.pos"][0, block.start])
    assert np.array_equal(released["PBDSolver.pos"][0, block.start + 2], pinned["PBDSolver.pos"][0, block.start + 2])
    scene.reset(pinned)
    assert np.array_equal(scene.get_state()["PBDSolver.free"], pinned["PBDSolver.free"])
    scene.reset()
    assert scene.get_state()["PBDSolver.free"].min() == 1


def test_partial_reset_touches_only_those_envs():
    check_partial_reset(build_batched(), envs_idx=(0, 2), n_steps=3)


def test_envs_evolve_independently():
    check_env_independence(build_batched(), "PBDSolver.pos", n_steps=20)


def test_save_load_in_new_process_continues_bit_identically(tmp_path):
    check_save_load_continue(build_batched, tmp_path / "pbd.pkl", n_before=5, n_after=10)


def _pile_trajectory():
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01), pbd_options=gs.options.PBDOptions(particle_size=0.05, floor_height=0.0))
    scene.add_entity(gs.morphs.Box(pos=(0.0, 0.0, 0.2), size=(0.2, 0.2, 0.2)), material=gs.materials.PBD.Particle())
    scene.build(n_envs=4)
    return run(scene, 40)


def test_particle_contacts_do_not_depend_on_thread_count():
    """Contacts are found with atomics; sorted buckets make a multi-threaded run bit-identical
    to this single-threaded (deterministic) one."""
    threaded = run_isolated(_pile_trajectory, deterministic=False)
    single = _pile_trajectory()
    assert all(np.array_equal(single[k], threaded[k]) for k in single)
    assert single["PBDSolver.pos"][:, :, 2].max() < 0.2                # they did land and pile up


def test_bad_input_raises_and_changes_nothing():
    with pytest.raises(TypeError, match="gs.morphs.Cloth"):
        gs.Scene().add_entity(gs.morphs.Box(), material=gs.materials.PBD.Cloth())
    with pytest.raises(ValueError, match="stretch_compliance"):
        gs.materials.PBD.Cloth(stretch_compliance=-1.0)
    with pytest.raises(ValueError, match="substeps"):
        gs.options.PBDOptions(substeps=0)
    scene, cloth, _ = _scene(2)
    before = scene.get_state()
    with pytest.raises(ValueError, match="out of range"):
        cloth.set_free([0, RES[0] * RES[1]], False)
    with pytest.raises(ValueError, match="out of range"):
        cloth.set_free([0], False, envs_idx=[2])
    with pytest.raises(TypeError, match="True or False"):
        cloth.set_free([0], 0)
    with pytest.raises(ValueError, match="vel"):
        cloth.set_velocity((1.0, 2.0))
    after = scene.get_state()
    assert all(np.array_equal(before[k], after[k]) for k in before.keys())


def test_cloth_from_genesis_obj_mesh_hangs_from_two_pinned_corners():
    """Genesis's own meshes/cloth.obj as gs.morphs.Mesh(scale, pos, euler), as Genesis's cloth
    example loads it: vertices placed as scipy places them, mass = rho * area, and pinned at two
    corners (find_closest_particle / fix_particles) the sheet swings down without stretching."""
    from scipy.spatial.transform import Rotation

    from sim.mesh_file import read_obj
    from sim.model_wheels import genesis_assets

    raw, triangles = read_obj(genesis_assets(fetch=True) / "meshes" / "cloth.obj")
    mesh = gs.morphs.Mesh(file="meshes/cloth.obj", scale=0.6, pos=(0.0, 0.0, 1.0), euler=(0.0, 0.0, 30.0))
    expected = Rotation.from_euler("xyz", [0, 0, 30], degrees=True).apply(raw * 0.6) + [0.0, 0.0, 1.0]
    assert np.allclose(mesh.vertices, expected) and np.array_equal(mesh.triangles, triangles)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01),
                     pbd_options=gs.options.PBDOptions(substeps=10, iterations=5, damping=4.0))
    cloth = scene.add_entity(mesh, material=gs.materials.PBD.Cloth(rho=0.3))
    scene.build(n_envs=1)
    side = 0.6 * np.ptp(raw[:, :2], axis=0)  # the sheet is a flat square
    mass = 1.0 / scene.solvers["PBDSolver"].inv_mass.to_numpy().astype(np.float64)
    assert abs(mass.sum() / (0.3 * side.prod()) - 1) < 1e-4
    corners = [int(np.argmin(raw[:, 0] + raw[:, 1])), int(np.argmax(raw[:, 0] + raw[:, 1]))]  # two opposite
    pins = torch.cat([cloth.find_closest_particle(mesh.vertices[c] + [1e-3, 0.0, 0.0]) for c in corners])
    assert pins.tolist() == corners
    cloth.fix_particles(pins)
    pinned_at = cloth.get_particles_pos()[0, pins.long()].clone()
    edges, _ = stretch_and_bending_pairs(triangles)
    rest = np.linalg.norm(mesh.vertices[edges[:, 0]] - mesh.vertices[edges[:, 1]], axis=1)
    for _ in range(30):
        scene.step()
    pos = cloth.get_particles_pos()[0].numpy()
    assert torch.equal(cloth.get_particles_pos()[0, pins.long()], pinned_at)
    length = np.linalg.norm(pos[edges[:, 0]] - pos[edges[:, 1]], axis=1)
    # the mesh is irregular (edges of 0.03 to 9 mm): its total edge length, and each edge to 1 cm
    assert abs(length.sum() / rest.sum() - 1) < 0.01 and np.abs(length - rest).max() < 0.01
    assert pos[:, 2].min() < 1.0 - 0.15, "the free corners swung down"


def test_mesh_morph_refusals():
    from sim.mesh_file import read_obj

    with pytest.raises(ValueError, match="only Wavefront .obj"):
        gs.morphs.Mesh(file="franka.xml")
    with pytest.raises(TypeError, match="decimate"):
        gs.morphs.Mesh(file="meshes/cloth.obj", decimate=True)
    with pytest.raises(TypeError, match="Box or gs.morphs.Sphere, got Mesh"):
        gs.Scene().add_entity(gs.morphs.Mesh(file="meshes/cloth.obj"), material=gs.materials.SPH.Liquid())
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for body, needle in (("v 0 0 0\nv 1 0 0\nf 1 2 3\n", "names no vertex"), ("v 0 0 nan\n", "non-finite"),
                             ("v 0 0 0\nl 1 1\n", "'l' is not supported"), ("v 0 0 0\n", "no faces")):
            path = f"{tmp}/bad.obj"
            open(path, "w").write(body)
            with pytest.raises(ValueError, match=needle):
                read_obj(path)
        open(f"{tmp}/quad.obj", "w").write("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3/1 -1/1\n")
        vertices, triangles = read_obj(f"{tmp}/quad.obj")
        assert vertices.shape == (4, 3) and triangles.tolist() == [[0, 1, 2], [0, 2, 3]]
