"""The floor every layer of `sim` validates its arguments with: numbers, vectors, quaternions,
a particle solver's domain box, and "is the scene built?". It imports nothing from `sim`, so
options, morphs, the scene and the solvers can all use it without an import running back up.

Each check raises ValueError (TypeError where the kind of value is wrong) naming the argument.
"""

from __future__ import annotations

import math

import numpy as np


def vec(name: str, value, length: int) -> tuple[float, ...]:
    """`value` as a tuple of `length` floats."""
    try:
        out = tuple(float(v) for v in value)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of {length} numbers, got {value!r}") from None
    if len(out) != length:
        raise ValueError(f"{name} must have {length} components, got {len(out)}")
    return out


def positive(name: str, values) -> None:
    """Every value > 0."""
    if any(not v > 0 for v in values):
        raise ValueError(f"{name} must be positive, got {tuple(values)}")


def unit_quat(name: str, quat) -> tuple[float, ...]:
    """A unit quaternion (w, x, y, z) as 4 floats (norm within 1e-6 of 1)."""
    quat = vec(name, quat, 4)
    norm = sum(q * q for q in quat) ** 0.5
    if abs(norm - 1.0) > 1e-6:
        raise ValueError(f"{name} must be a unit quaternion (w, x, y, z), got norm {norm:.6g}")
    return quat


def check_number(name: str, value, low: float, low_inclusive: bool = True) -> None:
    """A finite number >= low (> low when low_inclusive is False)."""
    ok = math.isfinite(value) and (value >= low if low_inclusive else value > low)
    if not ok:
        raise ValueError(f"{name} must be a finite number {'>=' if low_inclusive else '>'} {low}, got {value!r}")


def check_count(name: str, value) -> None:
    """An int >= 1 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def domain_bounds(owner: str, lower, upper) -> tuple[tuple, tuple]:
    """Validated (lower_bound, upper_bound) of a particle solver's box-shaped domain."""
    lower = vec(f"{owner}.lower_bound", lower, 3)
    upper = vec(f"{owner}.upper_bound", upper, 3)
    if any(not u > lo for lo, u in zip(lower, upper)):
        raise ValueError(f"{owner}.upper_bound {upper} must exceed lower_bound {lower} on every axis")
    return lower, upper


def require_built(scene, what: str) -> None:
    """Raise RuntimeError unless `scene` is built: "<what> needs a built scene (call scene.build() first)"."""
    if not scene.is_built:
        raise RuntimeError(f"{what} needs a built scene (call scene.build() first)")
