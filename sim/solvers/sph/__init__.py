"""The SPH solver (weakly compressible): gs.materials.SPH.Liquid, gs.options.SPHOptions."""

import sim.morphs as morphs
from sim.solvers.sph.solver import Liquid, SPHOptions, SPHSolver

__all__ = ["SPHSolver", "SPHOptions", "Liquid", "benchmark_scene"]


def benchmark_scene(n_particles_target: int):
    """A liquid block of about n_particles_target particles dropping in a 1 m domain,
    for benchmarks/bench_particles.py."""
    side = 0.3
    spacing = side / max(n_particles_target, 1) ** (1 / 3)
    options = SPHOptions(lower_bound=(-0.5, -0.5, 0.0), upper_bound=(0.5, 0.5, 1.0), particle_size=spacing)
    return morphs.Box(pos=(0.0, 0.0, 0.3), size=(side, side, side)), Liquid(), {"sph_options": options}
