"""The MPM solver (MLS-MPM / APIC): gs.materials.MPM.Elastic / Snow / ElastoPlastic / Liquid, gs.options.MPMOptions."""

import sim.morphs as morphs
from sim.solvers.mpm.solver import Elastic, ElastoPlastic, Liquid, MPMOptions, MPMSolver, Snow

__all__ = ["MPMSolver", "MPMOptions", "Elastic", "Snow", "ElastoPlastic", "Liquid", "benchmark_scene"]


def benchmark_scene(n_particles_target: int):
    """An elastic cube of about n_particles_target particles (2 per cell per axis) falling
    in a 1 m domain, for benchmarks/bench_particles.py."""
    side = 0.3
    spacing = side / max(n_particles_target, 1) ** (1 / 3)
    options = MPMOptions(lower_bound=(-0.5, -0.5, 0.0), upper_bound=(0.5, 0.5, 1.0),
                         grid_density=0.5 / spacing, particle_size=spacing)
    return morphs.Box(pos=(0.0, 0.0, 0.45), size=(side, side, side)), Elastic(), {"mpm_options": options}
