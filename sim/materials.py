"""Materials with Genesis's names: `gs.materials.Rigid`, `gs.materials.MPM.Elastic`, ...

The built-in solvers' materials are named below (each solver's family as a class whose
attributes are its materials), so an editor or type checker follows `gs.materials.MPM.Elastic`
to its definition; tests/test_genesis_api.py checks that every material a built-in solver
registers is reachable that way. A solver registered from outside `sim` (a plugin, the test
suite's ToySolver) needs no line here: `__getattr__` publishes its materials from the registry.
"""

from __future__ import annotations

from types import SimpleNamespace

from sim.solvers import fem as _fem
from sim.solvers import mpm as _mpm
from sim.solvers import pbd as _pbd
from sim.solvers import sph as _sph
from sim.solvers.rigid import Rigid


class MPM:
    """MLS-MPM materials (sim/solvers/mpm)."""

    Elastic = _mpm.Elastic
    ElastoPlastic = _mpm.ElastoPlastic
    Liquid = _mpm.Liquid
    Snow = _mpm.Snow


class SPH:
    """Weakly compressible SPH materials (sim/solvers/sph)."""

    Liquid = _sph.Liquid


class PBD:
    """Position-based dynamics materials (sim/solvers/pbd)."""

    Cloth = _pbd.Cloth
    Particle = _pbd.Particle


class FEM:
    """Finite-element materials (sim/solvers/fem)."""

    Elastic = _fem.Elastic


def __getattr__(name: str):
    """Materials of solvers registered from outside sim (see the module docstring)."""
    if name.startswith("__"):  # import machinery probing (__path__, ...): never load solvers for it
        raise AttributeError(name)
    from sim.solvers import base

    found = {}
    for solver in base.registered_solvers().values():
        for path, cls in solver.materials.items():
            head, _, rest = path.partition(".")
            if head != name:
                continue
            if not rest:
                return cls
            found[rest] = cls
    if found:
        return SimpleNamespace(**found)
    raise AttributeError(f"sim.materials has no {name!r}")
