"""Checks every particle solver's tests share (MPM, SPH, PBD, FEM): partial reset, independent
envs, save -> load in a new process -> continue, and free fall. Each takes a built scene (or a
module-level function that builds one) and fails with an assertion naming what differs.

A solver's state keys are "<SolverName>.<field>"; the checks compare every key of the state,
so they cover whatever fields a solver declares.
"""

import numpy as np

import sim as gs
from isolated import run_isolated


def arrays_equal(a: dict, b: dict, rows=slice(None)) -> list[str]:
    """Keys whose arrays (restricted to env `rows`) are not bit-identical."""
    assert a.keys() == b.keys(), f"state keys differ: {sorted(a)} vs {sorted(b)}"
    return [k for k in a if not np.array_equal(a[k][rows], b[k][rows])]


def perturbed(state: gs.SimState, key: str, env: int = 0, delta: float = 1e-3) -> gs.SimState:
    """A copy of `state` with `delta` added to every entry of env `env` of array `key`."""
    arrays = {k: np.array(v, copy=True) for k, v in state.arrays().items()}
    arrays[key][env] = arrays[key][env] + np.asarray(delta, dtype=arrays[key].dtype)
    return gs.SimState(arrays, state.t, state.n_envs, state.fingerprint)


def run(scene, n_steps: int) -> dict:
    """Step `n_steps` times and return the state arrays."""
    for _ in range(n_steps):
        scene.step()
    return scene.get_state().arrays()


def check_partial_reset(scene, envs_idx=(1,), n_steps: int = 2) -> None:
    """reset(state, envs_idx) writes exactly those envs' rows of `state` and leaves the others.

    `scene` is built with n_envs >= 2 and is stepped in place.
    """
    snapshot = scene.get_state()
    before = run(scene, n_steps)
    changed = [k for k in before if not np.array_equal(before[k], snapshot[k])]
    assert changed, "stepping changed nothing: the partial-reset check would be vacuous"
    scene.reset(state=snapshot, envs_idx=list(envs_idx))
    after = scene.get_state().arrays()
    others = [i for i in range(scene.n_envs) if i not in envs_idx]
    assert not arrays_equal(after, snapshot.arrays(), list(envs_idx)), "reset envs do not match the state"
    assert not arrays_equal(after, before, others), "reset touched envs outside envs_idx"
    assert scene.t == snapshot.t + n_steps, "a partial reset must keep scene.t"


def check_env_independence(scene, key: str, n_steps: int = 3, delta: float = 1e-3) -> None:
    """Perturbing env 0's `key` changes env 0's future and leaves envs 1.. bit-identical."""
    start = scene.get_state()
    reference = run(scene, n_steps)
    scene.reset(state=perturbed(start, key, 0, delta))
    disturbed = run(scene, n_steps)
    assert arrays_equal(reference, disturbed, 0), "the perturbation did not change env 0"
    differ = arrays_equal(reference, disturbed, slice(1, None))
    assert not differ, f"perturbing env 0 changed envs 1.. in {differ}"


def trajectory(scene, n_steps: int) -> list[dict]:
    """The state arrays after each of `n_steps` steps."""
    return [run(scene, 1) for _ in range(n_steps)]


def _load_and_continue(build_fn, path: str, n_steps: int) -> list[dict]:
    scene = build_fn()
    scene.load_checkpoint(path)
    return trajectory(scene, n_steps)


def check_save_load_continue(build_fn, path, n_before: int = 2, n_after: int = 3) -> None:
    """Save after `n_before` steps; continuing here and, after loading in a fresh process
    (same backend, precision and determinism), continuing there give bit-identical states
    after every one of the `n_after` steps.

    `build_fn` is a module-level function () -> built scene, so the new process can import it.
    """
    scene = build_fn()
    run(scene, n_before)
    scene.save_checkpoint(path)
    expected = trajectory(scene, n_after)
    cfg = gs.runtime.config()
    got = run_isolated(_load_and_continue, build_fn, str(path), n_after, backend=cfg.backend,
                       precision=cfg.precision, deterministic=cfg.deterministic)
    for step, (want, have) in enumerate(zip(expected, got), 1):
        differ = arrays_equal(want, have)
        assert not differ, f"save -> load in a new process -> continue differs after {step} step(s) in {differ}"


def _run_from_build(build_fn, n_steps: int) -> list[dict]:
    return trajectory(build_fn(), n_steps)


def check_thread_count_independent(build_fn, n_steps: int = 4) -> None:
    """The trajectory from a fresh build is bit-identical in this (deterministic, one-thread)
    process and in a fresh multi-threaded process (deterministic=False), on the CPU.

    For solvers that sum floats in an order fixed by the data, not by the thread schedule.
    """
    cfg = gs.runtime.config()
    assert cfg.backend == gs.cpu and cfg.deterministic, "compare against the one-thread CPU run"
    expected = _run_from_build(build_fn, n_steps)
    got = run_isolated(_run_from_build, build_fn, n_steps, backend=cfg.backend, precision=cfg.precision,
                       deterministic=False)
    for step, (want, have) in enumerate(zip(expected, got), 1):
        differ = arrays_equal(want, have)
        assert not differ, f"multi-threaded run differs after {step} step(s) in {differ}"


def free_fall_error(scene, solver_name: str, n_steps: int, particles=slice(None), mean: bool = False) -> float:
    """Largest distance, over `particles` of active rows, between positions after `n_steps` and
    x0 + v0 t + g t^2 / 2, where x0, v0 are the state when called and t = n_steps * dt. With
    `mean`, the distance of the particles' mean position instead (a body's centre of mass when
    its particles weigh the same: internal forces cannot move it off the parabola)."""
    start = scene.get_state()
    x0, v0 = start[f"{solver_name}.pos"][:, particles], start[f"{solver_name}.vel"][:, particles]
    end = run(scene, n_steps)[f"{solver_name}.pos"][:, particles]
    t = n_steps * scene.sim_options.dt
    g = np.asarray(scene.sim_options.gravity)
    expected = x0.astype(np.float64) + v0 * t + 0.5 * g * t * t
    if mean:
        return float(np.abs(end.astype(np.float64).mean(-2) - expected.mean(-2)).max())
    return float(np.abs(end - expected).max())
