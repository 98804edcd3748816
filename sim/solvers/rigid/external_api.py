"""The rigid solver's Genesis calls for external wrenches: `scene.sim.rigid_solver.
apply_links_external_force(force, links_idx, envs_idx, ref=, local=)` and `..._torque`.
links_idx are solver-wide link indices (`link.idx`). See `external.py` for the dynamics."""

import numpy as np
import torch

from sim.envs_idx import normalize_envs_idx
from sim.solvers.rigid.external import REFS
from sim.validate import require_built


class ExternalForceAPI:
    def _wrench_args(self, values, links_idx, envs_idx, ref, local, what):
        require_built(self.scene, what)
        if ref == "root_com":
            raise ValueError(f"{what}: ref='root_com' is not supported; use 'link_origin' or 'link_com'")
        if ref not in REFS:
            raise ValueError(f"{what}: ref must be 'link_origin' or 'link_com', got {ref!r}")
        n_links = self.model.nbody - 1
        links = np.arange(n_links) if links_idx is None else np.asarray(
            links_idx.detach().cpu().numpy() if isinstance(links_idx, torch.Tensor) else links_idx).reshape(-1)
        if links.size and (not np.issubdtype(links.dtype, np.integer) or links.min() < 0 or links.max() >= n_links):
            raise ValueError(f"{what}: links_idx must be link indices in 0..{n_links - 1}, got {links.tolist()}")
        if np.unique(links).size != links.size:
            raise ValueError(f"{what}: links_idx holds duplicates")
        unbatched = self.n_envs == 0
        envs = np.arange(max(self.n_envs, 1)) if envs_idx is None else normalize_envs_idx(envs_idx, self.n_envs)
        arr = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
        if not np.issubdtype(arr.dtype, np.number):
            raise TypeError(f"{what}: values must be numeric, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
        full = (len(envs), len(links), 3)
        if unbatched and arr.shape in ((3,), (len(links), 3)):
            arr = np.broadcast_to(arr, full)
        elif not unbatched and arr.shape in ((3,), (len(links), 3), full):
            arr = np.broadcast_to(arr, full)
        else:
            expected = f"({len(links)}, 3)" if unbatched else f"{full} or ({len(links)}, 3)"
            raise ValueError(f"{what}: values have shape {arr.shape}, expected {expected}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{what}: values hold non-finite numbers")
        return (np.ascontiguousarray(arr), envs.astype(np.int32), (links + 1).astype(np.int32),
                ref, bool(local))

    def apply_links_external_force(self, force, links_idx=None, envs_idx=None, *, ref="link_origin", local=False):
        """Push links with `force` (N, world axes unless local=True) at their origin or centre of
        mass during the next scene.step()."""
        values, envs, bodies, ref, local = self._wrench_args(force, links_idx, envs_idx, ref, local,
                                                             "apply_links_external_force")
        self.external.add(values, envs, bodies, False, ref, local)

    def apply_links_external_torque(self, torque, links_idx=None, envs_idx=None, *, ref="link_origin",
                                    local=False):
        """Twist links with `torque` (N m, world axes unless local=True) during the next scene.step()."""
        values, envs, bodies, ref, local = self._wrench_args(torque, links_idx, envs_idx, ref, local,
                                                             "apply_links_external_torque")
        self.external.add(values, envs, bodies, True, ref, local)
