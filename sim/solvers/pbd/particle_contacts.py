"""Non-penetration of loose PBD particles (spheres of radius r), per environment.

Each env hashes its particles into a table of cells 2r wide (counting sort: count, prefix sum,
fill), then every particle gathers the pushes from overlapping neighbours in the 27 cells
around it (Jacobi, averaged over its contacts) and all move at once. The fill order of a
bucket depends on thread timing, so each bucket is sorted by particle index before use: the
sums run in a fixed order and the result is bit-reproducible on any thread count.
"""

import numpy as np
import taichi as ti


@ti.data_oriented
class ParticleContacts:
    def __init__(self, pos, free, loose_ids: np.ndarray, radius: float, batch: int):
        self.pos, self.free = pos, free
        self.radius = radius
        n_loose = len(loose_ids)
        self.table_size = 1 << max(4, int(np.ceil(np.log2(2 * n_loose))))
        self.loose = ti.field(ti.i32, shape=n_loose)
        self.count = ti.field(ti.i32, shape=(batch, self.table_size))
        self.start = ti.field(ti.i32, shape=(batch, self.table_size + 1))
        self.sorted = ti.field(ti.i32, shape=(batch, n_loose))
        self.push = ti.Vector.field(3, float, shape=(batch, n_loose))
        self.loose.from_numpy(loose_ids.astype(np.int32))

    @ti.func
    def _bucket(self, cell):
        h = (cell[0] * 73856093) ^ (cell[1] * 19349663) ^ (cell[2] * 83492791)
        return h & (self.table_size - 1)

    @ti.func
    def _cell(self, p):
        return ti.floor(p / (2.0 * self.radius), ti.i32)

    @ti.kernel
    def solve(self):
        for b, h in self.count:
            self.count[b, h] = 0
        for b, k in self.sorted:
            ti.atomic_add(self.count[b, self._bucket(self._cell(self.pos[b, self.loose[k]]))], 1)
        for b in range(self.start.shape[0]):
            total = 0
            for h in range(self.table_size):
                self.start[b, h] = total
                total += self.count[b, h]
                self.count[b, h] = 0  # reused as the fill cursor
            self.start[b, self.table_size] = total
        for b, k in self.sorted:
            h = self._bucket(self._cell(self.pos[b, self.loose[k]]))
            self.sorted[b, self.start[b, h] + ti.atomic_add(self.count[b, h], 1)] = self.loose[k]
        for b, h in self.count:  # insertion sort of each (small) bucket
            for s in range(self.start[b, h] + 1, self.start[b, h + 1]):
                value = self.sorted[b, s]
                t = s
                while t > self.start[b, h] and self.sorted[b, t - 1] > value:
                    self.sorted[b, t] = self.sorted[b, t - 1]
                    t -= 1
                self.sorted[b, t] = value
        for b, k in self.sorted:
            self.push[b, k] = self._gather(b, self.loose[k])
        for b, k in self.sorted:
            i = self.loose[k]
            if self.free[b, i]:
                self.pos[b, i] += self.push[b, k]

    @ti.func
    def _gather(self, b, i):
        """The averaged push on particle i from the particles overlapping it."""
        p = self.pos[b, i]
        cell = self._cell(p)
        seen = ti.Vector.zero(ti.i32, 27)
        push = ti.Vector([0.0, 0.0, 0.0])
        contacts = 0
        for n in range(27):
            h = self._bucket(cell + ti.Vector([n // 9 - 1, n // 3 % 3 - 1, n % 3 - 1]))
            seen[n] = h
            repeated = False
            for m in range(n):
                if seen[m] == h:
                    repeated = True
            if not repeated:
                for s in range(self.start[b, h], self.start[b, h + 1]):
                    j = self.sorted[b, s]
                    d = p - self.pos[b, j]
                    dist = d.norm()
                    if j != i and dist < 2.0 * self.radius and dist > 1e-9:
                        share = 1.0 if self.free[b, j] == 0 else 0.5  # a pinned neighbour does not give way
                        push += share * (2.0 * self.radius - dist) / dist * d
                        contacts += 1
        return push / ti.max(contacts, 1)
