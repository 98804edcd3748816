"""Position-based dynamics: cloth and loose particles (see solver.py)."""

from sim.solvers.pbd.solver import Cloth, Particle, PBDEntity, PBDOptions, PBDSolver

__all__ = ["Cloth", "Particle", "PBDEntity", "PBDOptions", "PBDSolver"]
