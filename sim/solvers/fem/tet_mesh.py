"""Tetrahedral meshes of a box and a ball, in the body frame.

Both start from a grid of cubes, each split into the six tetrahedra around one of its
diagonals (Kuhn's subdivision), chosen so that faces match across cubes (a conforming mesh).
The ball maps the cube [-1, 1]^3 onto the unit ball along rays from the centre
(p -> p * |p|_inf / |p|_2).
"""

import itertools

import numpy as np

# The six paths from corner (0,0,0) to (1,1,1) along cube edges, as corner offsets.
_KUHN = [np.array([[0, 0, 0], e1, e1 + e2, [1, 1, 1]])
         for perm in itertools.permutations(range(3))
         for e1, e2 in [(np.eye(3, dtype=int)[perm[0]], np.eye(3, dtype=int)[perm[1]])]]


def signed_volumes(vertices: np.ndarray, tets: np.ndarray) -> np.ndarray:
    x0 = vertices[tets[:, 0]]
    edges = np.stack([vertices[tets[:, k]] - x0 for k in (1, 2, 3)], axis=-1)
    return np.linalg.det(edges) / 6.0


def cube_grid(res) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (in [0, 1]^3) and positively oriented tets of a res = (nx, ny, nz) cube grid.

    Each cell's diagonal runs from its corner nearest the grid centre outwards (the split is
    mirrored per octant), so the mesh is symmetric and, mapped onto a ball, every tet keeps a
    vertex inside the ball instead of lying flat on its surface. Faces still match: a face's
    diagonal depends only on the octant signs of the two axes it spans, which neighbours share.
    """
    nx, ny, nz = res
    axes = [np.linspace(0.0, 1.0, n + 1) for n in res]
    vertices = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    cells = np.stack(np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz), indexing="ij"), -1).reshape(-1, 3)
    outward = (2 * cells + 1 >= np.asarray(res)).astype(int)     # 1: cell above the centre on that axis
    tets = []
    for path in _KUHN:
        mirrored = np.where(outward[:, None, :] == 1, path[None], 1 - path[None])  # (cells, 4, 3)
        corners = cells[:, None, :] + mirrored
        tets.append((corners[..., 0] * (ny + 1) + corners[..., 1]) * (nz + 1) + corners[..., 2])
    tets = np.concatenate(tets)
    flip = signed_volumes(vertices, tets) < 0
    tets[flip] = tets[flip][:, [0, 2, 1, 3]]
    return vertices, tets.astype(np.int32)


def box(size, element_size: float) -> tuple[np.ndarray, np.ndarray]:
    """A box of full edge lengths `size` centred at the origin, with cells about element_size wide."""
    size = np.asarray(size, dtype=np.float64)
    res = [max(1, int(np.ceil(s / element_size - 1e-9))) for s in size]
    vertices, tets = cube_grid(res)
    return (vertices - 0.5) * size, tets


def ball(radius: float, element_size: float) -> tuple[np.ndarray, np.ndarray]:
    """A ball of `radius` centred at the origin, about 2 * radius / element_size cells across."""
    n = max(2, int(np.ceil(2 * radius / element_size - 1e-9)))
    vertices, tets = cube_grid((n, n, n))
    p = 2.0 * vertices - 1.0
    norm2 = np.linalg.norm(p, axis=1)
    scale = np.divide(np.abs(p).max(axis=1), norm2, out=np.zeros_like(norm2), where=norm2 > 0)
    return p * scale[:, None] * radius, tets
