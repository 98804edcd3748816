"""Scene-wide options. Each solver's own options class is published here by the registry
(`gs.options.MPMOptions`, ...), so this module never names a particular solver."""

from __future__ import annotations

from dataclasses import dataclass


def _vec(name: str, value, length: int) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in value)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of {length} numbers, got {value!r}") from None
    if len(out) != length:
        raise ValueError(f"{name} must have {length} components, got {len(out)}")
    return out


@dataclass(frozen=True)
class SimOptions:
    """dt: seconds per scene.step(); substeps: solver substeps per step; gravity in m/s^2."""

    dt: float = 0.01
    substeps: int = 1
    gravity: tuple[float, float, float] = (0.0, 0.0, -9.81)

    def __post_init__(self):
        if not float(self.dt) > 0:
            raise ValueError(f"SimOptions.dt must be positive, got {self.dt}")
        if int(self.substeps) != self.substeps or self.substeps < 1:
            raise ValueError(f"SimOptions.substeps must be an int >= 1, got {self.substeps}")
        object.__setattr__(self, "dt", float(self.dt))
        object.__setattr__(self, "substeps", int(self.substeps))
        object.__setattr__(self, "gravity", _vec("SimOptions.gravity", self.gravity, 3))


def __getattr__(name: str):
    if name.startswith("__"):  # import machinery probing (__path__, ...): never load solvers for it
        raise AttributeError(name)
    from sim.solvers import base

    for solver in base.registered_solvers().values():
        if solver.options_cls.__name__ == name:
            return solver.options_cls
    raise AttributeError(f"sim.options has no {name!r}")
