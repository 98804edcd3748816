"""A Wavefront .obj reader for gs.morphs.Mesh: vertex positions and faces, nothing else.

No installed library parses .obj without pulling in a scene graph (trimesh is not a dependency),
and the part a simulator needs is small. The file is not trusted: its size is bounded, every
number must parse and be finite, every face index must name a vertex, and statements that would
change the shape but are not read here (lines, points, curves, surfaces) are refused by name.
Texture coordinates, normals, groups and materials (vt, vn, o, g, s, usemtl, mtllib) describe
appearance only and are skipped. Polygons are split into triangle fans.
"""

from __future__ import annotations

import os

import numpy as np

MAX_BYTES = 256 * 2 ** 20
APPEARANCE = {"vt", "vn", "vp", "o", "g", "s", "usemtl", "mtllib"}
REFUSED = {"l", "p", "curv", "curv2", "surf", "cstype", "deg", "bmat", "step", "parm", "trim", "hole"}


def read_obj(path) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (n, 3) float64, triangles (m, 3) int64 indexing them) of an .obj file."""
    path = os.fspath(path)
    size = os.path.getsize(path)
    if size > MAX_BYTES:
        raise ValueError(f"{path}: {size} bytes, more than the {MAX_BYTES} this reader takes")
    vertices, faces = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            kind, args = words[0], words[1:]
            if kind == "v":
                if len(args) < 3:
                    raise ValueError(f"{path}:{number}: a vertex needs 3 coordinates, got {len(args)}")
                vertices.append(_numbers(args[:3], path, number))
            elif kind == "f":
                if len(args) < 3:
                    raise ValueError(f"{path}:{number}: a face needs 3 vertices or more, got {len(args)}")
                ids = [_index(a.split("/", 1)[0], len(vertices), path, number) for a in args]
                faces += [(ids[0], ids[k], ids[k + 1]) for k in range(1, len(ids) - 1)]
            elif kind in REFUSED:
                raise ValueError(f"{path}:{number}: .obj statement {kind!r} is not supported (only faces)")
            elif kind not in APPEARANCE:
                raise ValueError(f"{path}:{number}: unknown .obj statement {kind!r}")
    if not faces:
        raise ValueError(f"{path}: no faces")
    return np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64)


def _numbers(words, path, number) -> tuple[float, ...]:
    try:
        values = tuple(float(w) for w in words)
    except ValueError:
        raise ValueError(f"{path}:{number}: {' '.join(words)!r} are not numbers") from None
    if not all(np.isfinite(values)):
        raise ValueError(f"{path}:{number}: non-finite coordinate")
    return values


def _index(word: str, n_vertices: int, path, number) -> int:
    """0-based index of a 1-based (or, when negative, end-relative) .obj vertex reference."""
    try:
        i = int(word)
    except ValueError:
        raise ValueError(f"{path}:{number}: face index {word!r} is not an integer") from None
    i = i - 1 if i > 0 else n_vertices + i
    if not 0 <= i < n_vertices:
        raise ValueError(f"{path}:{number}: face index {word} names no vertex defined so far ({n_vertices})")
    return i
