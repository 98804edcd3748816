"""The Taichi fields holding a scene's state, and the one kernel that writes selected env rows.

The scene allocates every solver's declared `FieldSpec`s here. A partial reset packs the
selected rows of all fields into one float64 buffer (exact for float32, float64 and int32)
and scatters it with a single kernel launch whose work is O(len(envs_idx)).
"""


import numpy as np
import taichi as ti

_TI_DTYPES = {np.dtype(np.float32): ti.f32, np.dtype(np.float64): ti.f64, np.dtype(np.int32): ti.i32}


@ti.data_oriented
class StateStore:
    def __init__(self, specs: dict, float_dtype: np.dtype, batch: int):
        """specs: full key ("Solver.field") -> FieldSpec. Fields get shape (batch, *spec.shape)."""
        self.keys = list(specs)
        self.specs = specs
        self.dtypes = {k: s.np_dtype(float_dtype) for k, s in specs.items()}
        self.fields = {k: self._allocate(s, self.dtypes[k], batch) for k, s in specs.items()}
        self.row_sizes = [int(np.prod(specs[k].per_env_shape, dtype=np.int64)) for k in self.keys]
        self.offsets = [int(x) for x in np.cumsum([0] + self.row_sizes[:-1])]
        self._field_list = [self.fields[k] for k in self.keys]
        self._elements = [tuple(specs[k].element) for k in self.keys]
        self._kept = [bool(specs[k].reset_keeps) for k in self.keys]

    @staticmethod
    def _allocate(spec, dtype, batch):
        shape = (batch, *spec.shape)
        ti_dtype = _TI_DTYPES[dtype]
        if len(spec.element) == 0:
            return ti.field(ti_dtype, shape=shape)
        if len(spec.element) == 1:
            return ti.Vector.field(spec.element[0], ti_dtype, shape=shape)
        return ti.Matrix.field(spec.element[0], spec.element[1], ti_dtype, shape=shape)

    def read_all(self) -> dict[str, np.ndarray]:
        """A copy of every field, (batch, *per_env_shape)."""
        return {k: self.fields[k].to_numpy() for k in self.keys}

    def write_all(self, arrays: dict[str, np.ndarray], keep: bool = False) -> None:
        """keep: leave the fields declared `reset_keeps` as they are."""
        for k, kept in zip(self.keys, self._kept):
            if not (keep and kept):
                self.fields[k].from_numpy(np.ascontiguousarray(arrays[k], dtype=self.dtypes[k]))

    def write_rows(self, arrays: dict[str, np.ndarray], envs_idx: np.ndarray, keep: bool = False) -> None:
        """Write row i of each array into env envs_idx[i]: arrays are (len(envs_idx), *per_env_shape).
        keep: leave the fields declared `reset_keeps` as they are."""
        packed = np.empty((len(envs_idx), sum(self.row_sizes)), dtype=np.float64)
        for k, off, size in zip(self.keys, self.offsets, self.row_sizes):
            packed[:, off:off + size] = arrays[k].reshape(len(envs_idx), size)
        self._scatter(packed, np.ascontiguousarray(envs_idx, dtype=np.int32), keep)

    @ti.kernel
    def _scatter(self, src: ti.types.ndarray(dtype=ti.f64, ndim=2), idx: ti.types.ndarray(dtype=ti.i32, ndim=1),
                 keep: ti.template()):
        for fi in ti.static(range(len(self._field_list))):
            if ti.static(not (keep and self._kept[fi])):
                f = ti.static(self._field_list[fi])
                off = ti.static(self.offsets[fi])
                el = ti.static(self._elements[fi])
                for I in ti.grouped(ti.ndrange(idx.shape[0], *f.shape[1:])):
                    J = I
                    J[0] = idx[I[0]]
                    lin = 0
                    for d in ti.static(range(1, len(f.shape))):
                        lin = lin * f.shape[d] + I[d]
                    if ti.static(len(el) == 0):
                        f[J] = ti.cast(src[I[0], off + lin], f.dtype)
                    elif ti.static(len(el) == 1):
                        for c in ti.static(range(el[0])):
                            f[J][c] = ti.cast(src[I[0], off + lin * el[0] + c], f.dtype)
                    else:
                        for r, c in ti.static(ti.ndrange(el[0], el[1])):
                            f[J][r, c] = ti.cast(src[I[0], off + (lin * el[0] + r) * el[1] + c], f.dtype)
