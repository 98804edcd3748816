"""Surface tension as Genesis defines `SPH.Liquid(gamma=)`: the cohesion term of Becker & Teschner
(2007), a pairwise attraction between every two particles within the support radius h,

    a_i += -gamma * (m_j / m_i) * W(max(|x_ij|, d), h) * x_ij,    x_ij = x_i - x_j,

with d the particle size (the clamp keeps close pairs from pulling harder than neighbours one
spacing apart) and W the cubic spline. gamma is in m^3/s^2 (W is 1/m^3). In the bulk the pulls
cancel; at the free surface they pull particles inwards, the pressure (never negative) pushes
back, and a body of liquid rounds up.

Genesis uses particle i's gamma and the mass ratio, so that the forces on i and j cancel only
for one material. Here a pair uses the mean of the two gammas and 2 m_j / (m_i + m_j) for the
mass ratio: for one material that is Genesis's term exactly, and for any pair of particles the
forces are equal and opposite, so total momentum is conserved."""

import numpy as np
import taichi as ti

from sim.solvers.sph.kernels import spline_w


@ti.func
def cohesion(xij, r, h, d, gamma_i, gamma_j, m_i, m_j):
    """Particle i's acceleration from its cohesion with particle j (r = |xij| < h)."""
    return -(gamma_i + gamma_j) * m_j / (m_i + m_j) * spline_w(ti.max(r, d), h) * xij


def substeps_needed(gamma: float, h: float, n_neighbours: int, dt: float) -> int:
    """Substeps that keep symplectic Euler stable against the cohesion's stiffness. Per
    neighbour, |d(W(max(r, d)) x) / dx| <= W + r |dW/dr| <= 8 / (pi h^3) for d = h / 2, so
    gamma * n_neighbours * 8 / (pi h^3) bounds its spring constant per unit mass (omega^2); a
    substep of 0.5 / omega stays well inside the limit 2 / omega."""
    omega = np.sqrt(gamma * n_neighbours * 8.0 / (np.pi * h ** 3))
    return max(1, int(np.ceil(dt * omega / 0.5)))
