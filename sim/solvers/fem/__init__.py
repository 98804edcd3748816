"""Finite elements: hyperelastic tetrahedral bodies (see solver.py)."""

from sim.solvers.fem.solver import Elastic, FEMEntity, FEMOptions, FEMSolver

__all__ = ["Elastic", "FEMEntity", "FEMOptions", "FEMSolver"]
