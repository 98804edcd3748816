"""Materials are published by their solvers (`gs.materials.Rigid`, `gs.materials.MPM.Elastic`, ...):
this module looks them up in the solver registry so it never names a particular solver."""

from __future__ import annotations

from types import SimpleNamespace


def __getattr__(name: str):
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
