"""The entity calls about forces: force ranges, the control force the controllers produce, and
Genesis's per-env domain randomisation of link masses, centres of mass and friction (the
fields and how kernels use them: params.py).

Model constants (force limits, damping, stiffness) are read once per entity and kept on the
torch device; `set_dofs_force_range` writes both the solver's fields and that copy. They are
model parameters, not state: a checkpoint does not carry them, as in Genesis. The randomised
masses, centres of mass and friction ratios are per env and are state (Genesis keeps its friction
ratios in its state too): a state restores them, a reset without one keeps them.
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
    def set_friction_ratio(self, friction_ratio, links_idx_local=None, envs_idx=None) -> None:
        """Scale the friction of every geom of these links, per env: friction_ratio (len(envs),
        len(links)) or (len(links),) for all asked envs. A contact takes the larger of its two
        geoms' scaled friction (see params.py). Ratios must be >= 0."""
        envs, links, unbatched = self._param_targets(links_idx_local, envs_idx, "set_friction_ratio")
        ratio = self._values(friction_ratio, len(envs), len(links), unbatched, "friction_ratio")
        if np.any(ratio < 0):
            bad = np.argwhere(ratio < 0)[0]
            raise ValueError(f"set_friction_ratio: friction_ratio {ratio[tuple(bad)]} < 0 for link "
                             f"{self.links[links[bad[1]]].name!r} in env {int(envs[bad[0]])}")
        geoms_of = self._link_geoms()
        cols = np.concatenate([geoms_of[k] for k in links] + [np.zeros(0, np.int32)])
        values = np.concatenate([np.repeat(ratio[:, [i]], len(geoms_of[k]), axis=1) for i, k in enumerate(links)]
                                + [np.zeros((len(envs), 0))], axis=1)
        self._write("geoms_friction_ratio", values, envs, cols)

    def set_mass_shift(self, mass_shift, links_idx_local=None, envs_idx=None) -> None:
        """Each link's mass becomes its model mass + mass_shift (kg), per env: (len(envs),
        len(links)) or (len(links),). The inertia tensor about the centre of mass is kept, as
        in Genesis. A mass that would be <= 0 is refused (a zero shift is always allowed)."""
        self._set_links_param("links_mass_shift", mass_shift, links_idx_local, envs_idx, False, "mass_shift")

    def set_links_mass(self, mass, links_idx_local=None, envs_idx=None) -> None:
        """Genesis 1.4's absolute form of set_mass_shift: each link's mass (kg), per env."""
        self._set_links_param("links_mass_shift", mass, links_idx_local, envs_idx, True, "mass")

    def set_COM_shift(self, com_shift, links_idx_local=None, envs_idx=None) -> None:  # noqa: N802  (Genesis's name)
        """Each link's centre of mass becomes its model one + com_shift (m, in the link frame),
        per env: (len(envs), len(links), 3) or (len(links), 3)."""
        self._set_links_param("links_COM_shift", com_shift, links_idx_local, envs_idx, False, "com_shift")

    def set_links_COM(self, com, links_idx_local=None, envs_idx=None) -> None:  # noqa: N802  (Genesis's name)
        """Genesis 1.4's absolute form of set_COM_shift: each link's centre of mass in its frame (m)."""
        self._set_links_param("links_COM_shift", com, links_idx_local, envs_idx, True, "com")

    def _set_links_param(self, name, values, links_idx_local, envs_idx, absolute, what) -> None:
        """Validate, then store the shift from the model value (absolute: `values` are the new values)."""
        envs, links, unbatched = self._param_targets(links_idx_local, envs_idx, what)
        model = self._model_links("mass" if name == "links_mass_shift" else "com")[links]
        if name == "links_COM_shift":
            values = self._vectors(values, len(envs), len(links), unbatched, what)
        else:
            values = self._values(values, len(envs), len(links), unbatched, what)
        shift = values - model if absolute else values
        if name == "links_mass_shift":
            mass = model + shift
            bad = np.argwhere((mass <= 0) & (shift != 0))
            if len(bad):
                i, k = bad[0]
                raise ValueError(f"{what}: link {self.links[links[k]].name!r} in env {int(envs[i])} would have mass "
                                 f"{mass[i, k]:g} kg (model {model[k]:g} + shift {shift[i, k]:g}); masses must stay > 0")
        self._write(name, shift, envs, links + self.link_start)

    def _param_targets(self, links_idx_local, envs_idx, what):
        envs, unbatched = self._scene_envs(envs_idx)
        if self.n_links == 0:  # a Plane: a geom of the world body here, not a link (Genesis gives it one)
            raise ValueError(f"{what}: {self!r} has no links to randomise (a plane is part of the world here); "
                             f"set its friction with gs.materials.Rigid(friction=...)")
        return envs, self._local(links_idx_local, self.n_links, "links_idx_local"), unbatched

    def _vectors(self, values, n_rows, n_links, unbatched, what) -> np.ndarray:
        """(n_rows, n_links, 3) from (n_links, 3), or from (n_rows, n_links, 3) on a batched scene."""
        arr = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
        if arr.shape == (n_links, 3):
            arr = arr.reshape(n_links * 3)
        elif not unbatched and arr.shape == (n_rows, n_links, 3):
            arr = arr.reshape(n_rows, n_links * 3)
        else:
            expected = f"({n_links}, 3)" + ("" if unbatched else f" or ({n_rows}, {n_links}, 3)")
            raise ValueError(f"{what} has shape {arr.shape}, expected {expected}")
        return self._values(arr, n_rows, n_links * 3, unbatched, what).reshape(n_rows, n_links, 3)

    def get_links_mass(self, links_idx_local=None, envs_idx=None) -> torch.Tensor:
        """Each link's mass (kg) as the solver uses it: model mass + the env's shift."""
        return self._links_param("links_mass_shift", "mass", links_idx_local, envs_idx)

    def get_links_COM(self, links_idx_local=None, envs_idx=None) -> torch.Tensor:  # noqa: N802  (Genesis's name)
        """Each link's centre of mass as an offset in its frame (m): model + the env's shift."""
        return self._links_param("links_COM_shift", "com", links_idx_local, envs_idx)

    def _links_param(self, name, model_key, links_idx_local, envs_idx) -> torch.Tensor:
        envs, unbatched = self._scene_envs(envs_idx)
        links = self._local(links_idx_local, self.n_links, "links_idx_local")
        shift = gather(self.solver.state[name], envs, links + self.link_start)
        out = torch.as_tensor(self._model_links(model_key)[links], dtype=shift.dtype, device=shift.device) + shift
        return out[0] if unbatched else out

    def _model_links(self, key) -> np.ndarray:
        """The model's mass (n_links,) or centre of mass (n_links, 3) of this entity's links."""
        model, bodies = self.solver.model, slice(self.link_start + 1, self.link_start + 1 + self.n_links)
        return np.asarray(model.body_mass if key == "mass" else model.body_ipos, dtype=np.float64)[bodies]

    def _link_geoms(self) -> list:
        """The global geom indices of each link."""
        geom_body = np.asarray(self.solver.model.geom_body)
        return [np.flatnonzero(geom_body == self.link_start + 1 + k).astype(np.int32) for k in range(self.n_links)]
