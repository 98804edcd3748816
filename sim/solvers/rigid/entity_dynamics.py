"""The entity calls about forces: force ranges, the control force the controllers produce, and
domain randomisation of model parameters (refused: they are shared by all envs here).

Model constants (force limits, damping, stiffness) are read once per entity and kept on the
torch device; `set_dofs_force_range` writes both the solver's fields and that copy. They are
model parameters, not state: a checkpoint does not carry them, as in Genesis.
"""

import numpy as np
import torch

from sim import runtime
from sim.field_access import gather
from sim.solvers.rigid.model import CTRL_FORCE, CTRL_POSITION, HINGE, SLIDE


class EntityDynamics:
    def _consts(self) -> dict:
        if getattr(self, "_const_cache", None) is None:
            d = self.solver.data
            dofs = slice(self.dof_start, self.dof_start + self.n_dofs)
            jnt = d.dof_jnt.to_numpy()[dofs]
            raw = {"force_lo": d.dof_force_lo.to_numpy()[dofs], "force_hi": d.dof_force_hi.to_numpy()[dofs],
                   "target_lo": d.dof_target_lo.to_numpy()[dofs], "target_hi": d.dof_target_hi.to_numpy()[dofs],
                   "damping": d.dof_damping.to_numpy()[dofs],
                   "stiffness": np.where(np.isin(d.jnt_type.to_numpy()[jnt], (HINGE, SLIDE)),
                                         d.jnt_stiffness.to_numpy()[jnt], 0.0),
                   "springref": d.jnt_springref.to_numpy()[jnt]}
            self._const_cache = {k: torch.as_tensor(v, device=runtime.config().device) for k, v in raw.items()}
        return self._const_cache

    def set_dofs_force_range(self, lower, upper, dofs_idx_local=None, envs_idx=None) -> None:
        """Clip the actuator force of these dofs to [lower, upper] (N or N m) in every env."""
        self._scene_envs(None)
        if envs_idx is not None:
            raise ValueError("set_dofs_force_range: force ranges are shared by all envs here; pass envs_idx=None")
        dofs = self._dofs(dofs_idx_local)
        lo = self._values(lower, 1, len(dofs), True, "lower")[0]
        hi = self._values(upper, 1, len(dofs), True, "upper")[0]
        if np.any(lo > hi):
            raise ValueError(f"set_dofs_force_range: lower {lo.tolist()} exceeds upper {hi.tolist()}")
        consts = self._consts()
        d = self.solver.data
        for name, field, values in (("force_lo", d.dof_force_lo, lo), ("force_hi", d.dof_force_hi, hi)):
            arr = field.to_numpy()
            arr[dofs + self.dof_start] = values
            field.from_numpy(arr)
            consts[name][torch.as_tensor(dofs, dtype=torch.long)] = torch.as_tensor(
                values, dtype=consts[name].dtype, device=consts[name].device)

    def get_dofs_force_range(self, dofs_idx_local=None, envs_idx=None):
        envs, unbatched = self._scene_envs(envs_idx)
        idx = torch.as_tensor(self._dofs(dofs_idx_local), dtype=torch.long)
        consts = self._consts()
        lo, hi = (consts[k][idx].expand(len(envs), len(idx)) for k in ("force_lo", "force_hi"))
        return (lo[0], hi[0]) if unbatched else (lo, hi)

    def get_dofs_control_force(self, dofs_idx_local=None, envs_idx=None) -> torch.Tensor:
        """The force each dof's controller produces at the current state (what the next step
        starts from), clipped to its force range: kp (q* - q) + kv (qdot* - qdot) in position
        mode, kv (qdot* - qdot) in velocity mode, the commanded force in force mode."""
        envs, unbatched = self._scene_envs(envs_idx)
        force = self._control_force(self._dofs(dofs_idx_local), envs)
        return force[0] if unbatched else force

    def get_dofs_force(self, dofs_idx_local=None, envs_idx=None) -> torch.Tensor:
        """The control force plus the joints' passive forces (damping, stiffness) at the current state."""
        envs, unbatched = self._scene_envs(envs_idx)
        dofs = self._dofs(dofs_idx_local)
        idx = torch.as_tensor(dofs, dtype=torch.long)
        consts = self._consts()
        q = self._dofs_position(dofs, envs)
        qd = gather(self.solver.state["dofs_vel"], envs, dofs + self.dof_start)
        passive = -consts["damping"][idx] * qd - consts["stiffness"][idx] * (q - consts["springref"][idx])
        force = self._control_force(dofs, envs) + passive.to(qd.dtype)
        return force[0] if unbatched else force

    def _control_force(self, dofs, envs) -> torch.Tensor:
        cols = dofs + self.dof_start
        state = self.solver.state
        mode, target_q, target_v, target_f, kp, kv, qd = (gather(state[n], envs, cols) for n in (
            "ctrl_mode", "ctrl_pos", "ctrl_vel", "ctrl_force", "dofs_kp", "dofs_kv", "dofs_vel"))
        q = self._dofs_position(dofs, envs)
        idx = torch.as_tensor(dofs, dtype=torch.long)
        consts = {k: v[idx].to(qd.dtype) for k, v in self._consts().items()}
        position = kp * (torch.clamp(target_q, consts["target_lo"], consts["target_hi"]) - q) + kv * (target_v - qd)
        velocity = kv * (torch.clamp(target_v, consts["target_lo"], consts["target_hi"]) - qd)
        ctrl = torch.where(mode == CTRL_POSITION, position, torch.where(mode == CTRL_FORCE, target_f, velocity))
        return torch.clamp(ctrl, consts["force_lo"], consts["force_hi"])

    # ------------------------------------------------------------------ domain randomisation
    def _refuse_randomisation(self, what):
        raise NotImplementedError(f"{what}: link masses, centres of mass and friction are model constants shared "
                                  f"by every env in this solver, so per-env randomisation is not supported yet")

    def set_friction_ratio(self, friction_ratio, links_idx_local=None, envs_idx=None):
        self._refuse_randomisation("set_friction_ratio")

    def set_mass_shift(self, mass_shift, links_idx_local=None, envs_idx=None):
        self._refuse_randomisation("set_mass_shift")

    def set_COM_shift(self, com_shift, links_idx_local=None, envs_idx=None):  # noqa: N802  (Genesis's name)
        self._refuse_randomisation("set_COM_shift")
