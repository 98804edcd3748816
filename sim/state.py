"""SimState: a detached copy of a scene's state, keyed "Solver.field"."""

from __future__ import annotations

from types import MappingProxyType

import numpy as np


class SimState:
    """Numpy arrays keyed "Solver.field" (env axis first when batched), plus the step index.

    A state is a copy: later steps of the scene do not change it. `state.solvers` groups the
    arrays per solver (`state.solvers["RigidSolver"]["qpos"]`).
    """

    def __init__(self, arrays: dict[str, np.ndarray], t: int, n_envs: int, fingerprint: str | None = None):
        self._arrays = dict(arrays)
        self.t = int(t)
        self.n_envs = int(n_envs)
        self.fingerprint = fingerprint

    def __getitem__(self, key: str) -> np.ndarray:
        try:
            return self._arrays[key]
        except KeyError:
            raise KeyError(f"no state field {key!r}; fields are {sorted(self._arrays)}") from None

    def __contains__(self, key: str) -> bool:
        return key in self._arrays

    def keys(self):
        return self._arrays.keys()

    def arrays(self) -> dict[str, np.ndarray]:
        """The flat dict of numpy arrays that a checkpoint holds (a new dict; arrays shared)."""
        return dict(self._arrays)

    @property
    def solvers(self) -> MappingProxyType:
        grouped: dict[str, dict[str, np.ndarray]] = {}
        for key, value in self._arrays.items():
            solver, _, field = key.partition(".")
            grouped.setdefault(solver, {})[field] = value
        return MappingProxyType({k: MappingProxyType(v) for k, v in grouped.items()})

    def serializable(self) -> "SimState":
        """A deep copy on the CPU, detached from everything: safe to pickle and to send through Ray."""
        return SimState({k: np.array(v, copy=True) for k, v in self._arrays.items()},
                        self.t, self.n_envs, self.fingerprint)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._arrays.values())

    def __getstate__(self):
        return {"arrays": self._arrays, "t": self.t, "n_envs": self.n_envs, "fingerprint": self.fingerprint}

    def __setstate__(self, d):
        self.__init__(d["arrays"], d["t"], d["n_envs"], d["fingerprint"])

    def __repr__(self):
        fields = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self._arrays.items())
        return f"SimState(t={self.t}, n_envs={self.n_envs}, {fields})"
