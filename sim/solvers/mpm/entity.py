"""An MPM body: Genesis's particle reads and writes (sim.solvers.particles.ParticleEntity), and
what moving an MPM particle means. As in Genesis, a particle written to a new position starts
again undeformed and at rest: v = 0, C = 0 (no affine velocity), F = I, Jp = 1 (no plastic
history). Its stored deformation belonged to the neighbourhood it left."""

import numpy as np
import taichi as ti

from sim.solvers.particles import ParticleEntity


@ti.kernel
def _restart(vel: ti.template(), C: ti.template(), F: ti.template(), Jp: ti.template(),
             envs: ti.types.ndarray(dtype=ti.i32, ndim=1), cols: ti.types.ndarray(dtype=ti.i32, ndim=2)):
    for i, c in ti.ndrange(cols.shape[0], cols.shape[1]):
        b, p = envs[i], cols[i, c]
        vel[b, p] = ti.Vector.zero(vel.dtype, 3)
        C[b, p] = ti.Matrix.zero(C.dtype, 3, 3)
        F[b, p] = ti.Matrix.identity(F.dtype, 3)
        Jp[b, p] = 1.0


class MPMEntity(ParticleEntity):
    def _restart(self, envs: np.ndarray, cols: np.ndarray) -> None:
        cols = np.ascontiguousarray(np.broadcast_to(cols, (len(envs), cols.shape[-1])), dtype=np.int32)
        s = self.solver.state
        _restart(s["vel"], s["C"], s["F"], s["Jp"], envs, cols)
