"""The cubic spline smoothing kernel of SPH (Monaghan 1992's, normalised in 3-D as Genesis's is):
W(r, h) = 8 / (pi h^3) * {6q^3 - 6q^2 + 1 (q <= 1/2); 2(1 - q)^3 (q <= 1); 0}, q = r / h, with h
the support radius. `cubic_spline` is the numpy form (lattice calibrations); `spline_w` and
`spline_dw` (dW/dr) the Taichi ones the kernels call."""

import numpy as np
import taichi as ti


def cubic_spline(r, h):
    """W(r, h) in numpy."""
    q = np.asarray(r) / h
    sigma = 8.0 / (np.pi * h ** 3)
    return sigma * np.where(q <= 0.5, 6 * q ** 3 - 6 * q ** 2 + 1, np.where(q <= 1, 2 * (1 - q) ** 3, 0.0))


@ti.func
def spline_w(r, h):
    q = r / h
    sigma = 8.0 / (ti.math.pi * h ** 3)
    w = 0.0
    if q <= 0.5:
        w = sigma * (6.0 * q ** 3 - 6.0 * q ** 2 + 1.0)
    elif q <= 1.0:
        w = sigma * 2.0 * (1.0 - q) ** 3
    return w


@ti.func
def spline_dw(r, h):
    """dW/dr."""
    q = r / h
    sigma = 8.0 / (ti.math.pi * h ** 3)
    dw = 0.0
    if q <= 0.5:
        dw = sigma / h * (18.0 * q ** 2 - 12.0 * q)
    elif q <= 1.0:
        dw = -sigma / h * 6.0 * (1.0 - q) ** 2
    return dw
