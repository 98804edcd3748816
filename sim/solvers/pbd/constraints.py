"""Distance constraints of a cloth sheet, and their colouring for parallel Gauss-Seidel.

Stretch constraints are the edges of the sheet's triangulation; bending constraints join the
two vertices opposite each interior edge, so folding the sheet along that edge lengthens them.
Constraints of one colour share no vertex, so a colour is projected in parallel without races
or atomics, and colours run one after the other: the result does not depend on threads.
"""

import numpy as np


def grid_triangles(nx: int, ny: int) -> np.ndarray:
    """Triangles (n, 3) of an nx by ny vertex grid; vertex (i, j) has index j * nx + i."""
    i, j = np.meshgrid(np.arange(nx - 1), np.arange(ny - 1), indexing="xy")
    v00 = (j * nx + i).ravel()
    v10, v01, v11 = v00 + 1, v00 + nx, v00 + nx + 1
    return np.concatenate([np.stack([v00, v10, v11], 1), np.stack([v00, v11, v01], 1)])


def stretch_and_bending_pairs(triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(edges (e, 2), bending pairs (b, 2)) of a manifold triangle mesh, each pair sorted."""
    half = np.concatenate([triangles[:, [0, 1, 2]], triangles[:, [1, 2, 0]], triangles[:, [2, 0, 1]]])
    keys = np.sort(half[:, :2], axis=1)          # the edge, and half[:, 2] the vertex opposite it
    order = np.lexsort((keys[:, 1], keys[:, 0]))
    keys, opposite = keys[order], half[order, 2]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = np.any(keys[1:] != keys[:-1], axis=1)
    edges = keys[first]
    shared = np.flatnonzero(~first)               # second half-edge of an interior edge
    bending = np.sort(np.stack([opposite[shared - 1], opposite[shared]], 1), axis=1)
    return edges, bending


def colour(pairs: np.ndarray, n_vertices: int) -> np.ndarray:
    """Greedy colours of constraints (i, j) such that no two of one colour share a vertex."""
    used = [0] * n_vertices  # bit c set: vertex is in a constraint of colour c
    colours = np.empty(len(pairs), dtype=np.int64)
    for k, (i, j) in enumerate(pairs.tolist()):
        taken = used[i] | used[j]
        c = (~taken & (taken + 1)).bit_length() - 1  # the lowest free colour
        colours[k] = c
        used[i] |= 1 << c
        used[j] |= 1 << c
    return colours
