"""Morphs describe an entity's shape and pose; the material decides which solver simulates it.

Each validates its arguments on construction, so a bad morph fails before any scene sees it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sim.options import _vec

ASSETS_DIR = Path(__file__).parent / "assets"


def _positive(name: str, values) -> None:
    if any(not v > 0 for v in values):
        raise ValueError(f"{name} must be positive, got {tuple(values)}")


def _unit_quat(name: str, quat) -> tuple[float, ...]:
    quat = _vec(name, quat, 4)
    norm = sum(q * q for q in quat) ** 0.5
    if abs(norm - 1.0) > 1e-6:
        raise ValueError(f"{name} must be a unit quaternion (w, x, y, z), got norm {norm:.6g}")
    return quat


@dataclass(frozen=True)
class Plane:
    """An infinite static ground plane through `pos` with upward `normal`."""

    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    normal: tuple[float, float, float] = (0.0, 0.0, 1.0)

    def __post_init__(self):
        object.__setattr__(self, "pos", _vec("Plane.pos", self.pos, 3))
        normal = _vec("Plane.normal", self.normal, 3)
        norm = sum(n * n for n in normal) ** 0.5
        if norm == 0:
            raise ValueError("Plane.normal must be non-zero")
        object.__setattr__(self, "normal", tuple(n / norm for n in normal))


@dataclass(frozen=True)
class Box:
    """An axis-aligned box (before `quat`) centred at `pos` with full edge lengths `size`.

    euler: Genesis's alternative to quat, extrinsic x-y-z angles in degrees (scipy's "xyz");
    it sets quat (give one or the other). fixed=True welds the box to the world (no free joint).
    """

    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    size: tuple[float, float, float] = (1.0, 1.0, 1.0)
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    euler: tuple[float, float, float] | None = None
    fixed: bool = False

    def __post_init__(self):
        object.__setattr__(self, "pos", _vec("Box.pos", self.pos, 3))
        object.__setattr__(self, "size", _vec("Box.size", self.size, 3))
        _positive("Box.size", self.size)
        object.__setattr__(self, "quat", _unit_quat("Box.quat", self.quat))
        if self.euler is not None:
            if self.quat != (1.0, 0.0, 0.0, 0.0):
                raise ValueError("Box takes euler or quat, not both")
            from sim.utils.geom import xyz_to_quat

            euler = _vec("Box.euler", self.euler, 3)
            object.__setattr__(self, "euler", euler)
            object.__setattr__(self, "quat", tuple(float(q) for q in xyz_to_quat(euler, rpy=True, degrees=True)))
        if not isinstance(self.fixed, bool):
            raise TypeError(f"Box.fixed must be True or False, got {self.fixed!r}")


@dataclass(frozen=True)
class Sphere:
    """A sphere centred at `pos`."""

    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius: float = 0.5

    def __post_init__(self):
        object.__setattr__(self, "pos", _vec("Sphere.pos", self.pos, 3))
        _positive("Sphere.radius", [self.radius])
        object.__setattr__(self, "radius", float(self.radius))


@dataclass(frozen=True)
class Cloth:
    """A flat rectangular sheet centred at `pos`, spanning `size` (x, y) metres in the
    horizontal plane, meshed with `res` (nx, ny) vertices along each side."""

    pos: tuple[float, float, float] = (0.0, 0.0, 0.5)
    size: tuple[float, float] = (1.0, 1.0)
    res: tuple[int, int] = (16, 16)

    def __post_init__(self):
        object.__setattr__(self, "pos", _vec("Cloth.pos", self.pos, 3))
        object.__setattr__(self, "size", _vec("Cloth.size", self.size, 2))
        _positive("Cloth.size", self.size)
        res = tuple(self.res)
        if len(res) != 2 or any(int(r) != r or r < 2 for r in res):
            raise ValueError(f"Cloth.res must be two ints >= 2, got {self.res!r}")
        object.__setattr__(self, "res", tuple(int(r) for r in res))


@dataclass(frozen=True)
class MJCF:
    """A MuJoCo MJCF model: a path, or the bare name of a model bundled in sim/assets."""

    file: str
    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)

    def __post_init__(self):
        object.__setattr__(self, "file", resolve_asset(self.file))
        object.__setattr__(self, "pos", _vec("MJCF.pos", self.pos, 3))
        object.__setattr__(self, "quat", _unit_quat("MJCF.quat", self.quat))


def resolve_asset(file) -> str:
    """A bare name resolves to sim/assets first; anything else is taken as a path."""
    file = os.fspath(file)
    bundled = ASSETS_DIR / file
    if os.sep not in file and bundled.is_file():
        return str(bundled)
    if Path(file).is_file():
        return str(Path(file).resolve())
    available = sorted(p.name for p in ASSETS_DIR.glob("*.xml"))
    raise FileNotFoundError(f"MJCF file {file!r} not found as a path nor among bundled assets {available}")
