"""Morphs describe an entity's shape and pose; the material decides which solver simulates it.

Each validates its arguments on construction, so a bad morph fails before any scene sees it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.utils.geom import xyz_to_quat
from sim.validate import positive, unit_quat, vec

ASSETS_DIR = Path(__file__).parent / "assets"


@dataclass(frozen=True)
class Plane:
    """An infinite static ground plane through `pos` with upward `normal`."""

    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    normal: tuple[float, float, float] = (0.0, 0.0, 1.0)

    def __post_init__(self):
        object.__setattr__(self, "pos", vec("Plane.pos", self.pos, 3))
        normal = vec("Plane.normal", self.normal, 3)
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
        object.__setattr__(self, "pos", vec("Box.pos", self.pos, 3))
        object.__setattr__(self, "size", vec("Box.size", self.size, 3))
        positive("Box.size", self.size)
        object.__setattr__(self, "quat", unit_quat("Box.quat", self.quat))
        if self.euler is not None:
            if self.quat != (1.0, 0.0, 0.0, 0.0):
                raise ValueError("Box takes euler or quat, not both")
            euler = vec("Box.euler", self.euler, 3)
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
        object.__setattr__(self, "pos", vec("Sphere.pos", self.pos, 3))
        positive("Sphere.radius", [self.radius])
        object.__setattr__(self, "radius", float(self.radius))


@dataclass(frozen=True)
class Cloth:
    """A flat rectangular sheet centred at `pos`, spanning `size` (x, y) metres in the
    horizontal plane, meshed with `res` (nx, ny) vertices along each side."""

    pos: tuple[float, float, float] = (0.0, 0.0, 0.5)
    size: tuple[float, float] = (1.0, 1.0)
    res: tuple[int, int] = (16, 16)

    def __post_init__(self):
        object.__setattr__(self, "pos", vec("Cloth.pos", self.pos, 3))
        object.__setattr__(self, "size", vec("Cloth.size", self.size, 2))
        positive("Cloth.size", self.size)
        res = tuple(self.res)
        if len(res) != 2 or any(int(r) != r or r < 2 for r in res):
            raise ValueError(f"Cloth.res must be two ints >= 2, got {self.res!r}")
        object.__setattr__(self, "res", tuple(int(r) for r in res))


def _placement(kind: str, pos, euler, quat) -> tuple[tuple, tuple]:
    """A file morph's pose: `quat` (w, x, y, z) or `euler` (degrees, scipy's extrinsic x-y-z, as
    Genesis takes it), never both; identity when neither is given."""
    pos = vec(f"{kind}.pos", pos, 3)
    if euler is not None and quat is not None:
        raise ValueError(f"{kind}: 'euler' and 'quat' cannot both be set")
    if euler is not None:
        quat = xyz_to_quat(vec(f"{kind}.euler", euler, 3), rpy=True, degrees=True)
        return pos, tuple(float(q) for q in quat)
    return pos, unit_quat(f"{kind}.quat", (1.0, 0.0, 0.0, 0.0) if quat is None else quat)


def _check_scale(kind: str, scale) -> None:
    if scale != 1.0:
        raise ValueError(f"{kind}: scale={scale!r} is not supported (models load at their own size)")


@dataclass(frozen=True)
class MJCF:
    """A MuJoCo MJCF model: a path, a Genesis asset path (`xml/franka_emika_panda/panda.xml`), the
    bare name of a model bundled in sim/assets, or the XML itself. pos and quat / euler (degrees)
    place it: the transform is applied to the file's root bodies (and free-joint roots)."""

    file: str
    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    quat: tuple[float, float, float, float] | None = None
    euler: tuple[float, float, float] | None = None
    scale: float = 1.0

    def __post_init__(self):
        _check_scale("MJCF", self.scale)
        object.__setattr__(self, "file", resolve_asset(self.file, "MJCF"))
        pos, quat = _placement("MJCF", self.pos, self.euler, self.quat)
        object.__setattr__(self, "pos", pos)
        object.__setattr__(self, "quat", quat)
        object.__setattr__(self, "euler", None)


@dataclass(frozen=True)
class URDF:
    """A URDF robot compiled through MuJoCo's URDF importer. Its root link gets a free joint
    unless `fixed` (MuJoCo welds it to the world). `package://name/...` mesh paths resolve
    against the folders above the file and `package_dirs` (each a folder holding the package
    folder, or the package folder itself). merge_fixed_links fuses links joined by fixed joints
    (MuJoCo's fusestatic); links_to_keep needs merge_fixed_links=False here."""

    file: str
    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    quat: tuple[float, float, float, float] | None = None
    euler: tuple[float, float, float] | None = None
    fixed: bool = False
    merge_fixed_links: bool = True
    links_to_keep: tuple[str, ...] = ()
    package_dirs: tuple[str, ...] = ()
    scale: float = 1.0

    def __post_init__(self):
        _check_scale("URDF", self.scale)
        for name in ("fixed", "merge_fixed_links"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"URDF.{name} must be a bool, got {getattr(self, name)!r}")
        keep = (self.links_to_keep,) if isinstance(self.links_to_keep, str) else tuple(self.links_to_keep)
        if keep and self.merge_fixed_links:
            raise ValueError(f"URDF.links_to_keep={list(keep)} is not supported with merge_fixed_links=True "
                             f"(MuJoCo fuses every static link or none); pass merge_fixed_links=False")
        object.__setattr__(self, "links_to_keep", keep)
        dirs = (self.package_dirs,) if isinstance(self.package_dirs, (str, os.PathLike)) else self.package_dirs
        dirs = tuple(str(Path(d).resolve()) for d in dirs)
        missing = [d for d in dirs if not Path(d).is_dir()]
        if missing:
            raise FileNotFoundError(f"URDF.package_dirs {missing} are not folders")
        object.__setattr__(self, "package_dirs", dirs)
        object.__setattr__(self, "file", resolve_asset(self.file, "URDF"))
        pos, quat = _placement("URDF", self.pos, self.euler, self.quat)
        object.__setattr__(self, "pos", pos)
        object.__setattr__(self, "quat", quat)
        object.__setattr__(self, "euler", None)


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh from a Wavefront .obj file (a path, or a Genesis asset path such as
    `meshes/cloth.obj`), scaled by `scale` (a number or one per axis), then rotated by quat /
    euler (degrees) and moved to pos, as Genesis places it. `vertices` and `triangles` are the
    placed mesh. Used by PBD.Cloth (the mesh is the sheet); other solvers refuse it by name."""

    file: str
    scale: float | tuple[float, float, float] = 1.0
    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    euler: tuple[float, float, float] | None = None
    quat: tuple[float, float, float, float] | None = None

    def __post_init__(self):
        from sim.mesh_file import read_obj
        from sim.utils.geom import transform_by_trans_quat

        scale = (self.scale,) * 3 if isinstance(self.scale, (int, float)) else self.scale
        scale = vec("Mesh.scale", scale, 3)
        positive("Mesh.scale", scale)
        object.__setattr__(self, "scale", scale)
        file = resolve_asset(self.file, "Mesh")
        if not file.lower().endswith(".obj"):
            raise ValueError(f"Mesh file {file!r} is not supported: only Wavefront .obj files are read here")
        object.__setattr__(self, "file", file)
        pos, quat = _placement("Mesh", self.pos, self.euler, self.quat)
        object.__setattr__(self, "pos", pos)
        object.__setattr__(self, "quat", quat)
        object.__setattr__(self, "euler", None)
        vertices, triangles = read_obj(file)
        placed = transform_by_trans_quat(vertices * np.asarray(scale), pos, quat)
        placed.setflags(write=False)
        triangles.setflags(write=False)
        object.__setattr__(self, "_mesh", (placed, triangles))  # not a field: kept out of fingerprints

    @property
    def vertices(self) -> np.ndarray:
        """(n, 3) placed vertex positions (read-only)."""
        return self._mesh[0]

    @property
    def triangles(self) -> np.ndarray:
        """(m, 3) vertex indices of each triangle (read-only)."""
        return self._mesh[1]


def is_inline_xml(file: str) -> bool:
    return file.lstrip().startswith("<")


def resolve_asset(file, kind: str = "MJCF") -> str:
    """XML text is kept as it is. A bare name resolves to sim/assets first; then the path as
    given; then Genesis's asset folder (sim.model_wheels.genesis_assets), as Genesis resolves
    `xml/franka_emika_panda/panda.xml`. A missing file names every place looked in."""
    from sim import model_wheels

    file = os.fspath(file)
    if is_inline_xml(file):
        return file
    bundled = ASSETS_DIR / file
    if os.sep not in file and bundled.is_file():
        return str(bundled)
    if Path(file).is_file():
        return str(Path(file).resolve())
    looked = [f"{Path(file).resolve()} (as given)"]
    if os.sep not in file:
        looked.insert(0, f"{bundled} (bundled: {sorted(p.name for p in ASSETS_DIR.glob('*.xml'))})")
    try:
        genesis = model_wheels.genesis_assets(fetch=False)
    except model_wheels.ModelFetchError:
        looked.append("Genesis's assets (not fetched: run `genesis-dist assets`)")
    else:
        if not Path(file).is_absolute() and (genesis / file).is_file():
            return str((genesis / file).resolve())
        looked.append(f"{genesis / file} (Genesis assets)")
    raise FileNotFoundError(f"{kind} file {file!r} not found; looked in: " + "; ".join(looked))
