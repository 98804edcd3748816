"""The rigid-body solver (registered on import): see solver.py for the step pipeline."""

from sim.solvers.rigid.solver import Rigid, RigidOptions, RigidSolver

__all__ = ["Rigid", "RigidOptions", "RigidSolver"]
