"""RigidSolver: articulated rigid bodies from MJCF, Box / Sphere free bodies and ground planes.

One scene step = per substep: kinematics, mass matrix, bias forces, smooth acceleration,
contact detection, constraint solve (velocity), position integration; then kinematics
again so that `links_pos` / `links_quat` describe the new `qpos`. Each stage is one kernel
launch over every environment.
"""

from __future__ import annotations

import logging

import mujoco
import numpy as np

from sim import morphs, runtime
from sim.solvers.base import FLOAT, FieldSpec, Solver, register_solver, to_plain
from sim.solvers.rigid import broadphase, collision, constraint, dynamics, integrator, kinematics, warmstart
from sim.solvers.rigid.data import RigidData
from sim.field_access import scatter
from sim.solvers.rigid.entity import RigidEntity
from sim.solvers.rigid.external import ExternalWrenches
from sim.solvers.rigid.external_api import ExternalForceAPI
from sim.solvers.rigid.loader import compile_morph, morph_fingerprint, morph_source
from sim.solvers.rigid.model import CTRL_FORCE, CTRL_POSITION, CTRL_VELOCITY, ModelArrays, append_model, primitive_xml
from sim.solvers.rigid.options import Rigid, RigidOptions, build_inputs

logger = logging.getLogger("sim")


class RigidSolver(ExternalForceAPI, Solver):
    name = "RigidSolver"
    options_cls = RigidOptions
    options_kwarg = "rigid_options"
    materials = {"Rigid": Rigid}

    def __init__(self, scene, options, sim_options):
        super().__init__(scene, options, sim_options)
        self.model = ModelArrays()
        self.data: RigidData | None = None
        self.actuator_maps: list[dict] = []  # per entity: how its MJCF actuators are driven
        self.after_forward: list = []  # called after each substep's forward pass (sensors snapshot what they read)

    # ------------------------------------------------------------------ construction
    def add_entity(self, morph, material):
        if not isinstance(material, Rigid):
            raise TypeError(f"RigidSolver takes gs.materials.Rigid, got {type(material).__name__}")
        if isinstance(morph, (morphs.MJCF, morphs.URDF)):
            m, qpos, ctrl = compile_morph(morph)
            source = morph_source(morph)
            self._warn_options(m, source)
            pose = (morph.pos, morph.quat)
        elif isinstance(morph, (morphs.Box, morphs.Sphere, morphs.Plane)):
            m, qpos, ctrl = mujoco.MjModel.from_xml_string(primitive_xml(morph, material.rho, material.friction)), None, None
            pose, source = ((0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)), type(morph).__name__
        else:
            raise TypeError(f"the rigid solver takes MJCF, URDF, Box, Sphere or Plane morphs, got {type(morph).__name__}")
        if material.gravity_compensation:
            m.body_gravcomp[1:] = material.gravity_compensation
        ranges = append_model(self.model, m, *pose, qpos_init=qpos, ctrl_init=ctrl, source=source)
        entity = RigidEntity(self, morph, material, len(self.entities), ranges)
        self.actuator_maps.append(ranges)
        self.entities.append(entity)
        return entity

    def _warn_options(self, m, path):
        if not np.allclose(m.opt.gravity, self.sim_options.gravity):
            logger.warning("%s sets gravity %s; the scene's SimOptions.gravity %s is used", path,
                           tuple(m.opt.gravity), self.sim_options.gravity)
        if not np.isclose(m.opt.timestep, self.sim_options.dt / self.sim_options.substeps):
            logger.warning("%s sets timestep %g; the scene's SimOptions dt/substeps %g is used", path,
                           m.opt.timestep, self.sim_options.dt / self.sim_options.substeps)
        if int(m.opt.integrator) in (int(mujoco.mjtIntegrator.mjINT_RK4), int(mujoco.mjtIntegrator.mjINT_IMPLICIT)):
            # (not Euler: ours differs from it only in taking servo kv implicitly)
            logger.warning("%s sets integrator %s; the rigid solver steps semi-implicit Euler with damping and "
                           "servo gains implicit (as implicitfast)", path,
                           mujoco.mjtIntegrator(m.opt.integrator).name.removeprefix("mjINT_").lower())

    def describe(self) -> dict:
        """Like Solver.describe, but an MJCF file is named by basename and content hash, so a
        checkpoint written on one machine loads on another."""
        entities = []
        for e in self.entities:
            morph = to_plain(e.morph)
            if isinstance(e.morph, (morphs.MJCF, morphs.URDF)):
                morph.update(morph_fingerprint(e.morph))
            entities.append({"morph": morph, "material": to_plain(e.material)})
        return {"options": to_plain(self.options), "entities": entities}

    @property
    def n_links(self) -> int:
        return self.model.nbody - 1

    def state_specs(self):
        nq, nv, nl = max(self.model.nq, 1), max(self.model.nv, 1), max(self.n_links, 1)
        mdl, _, max_contacts = self._built_model()
        return [FieldSpec("qpos", (nq,)), FieldSpec("dofs_vel", (nv,)),
                FieldSpec("links_pos", (nl,), FLOAT, (3,)), FieldSpec("links_quat", (nl,), FLOAT, (4,)),
                FieldSpec("ctrl_mode", (nv,), "int32"), FieldSpec("ctrl_pos", (nv,)), FieldSpec("ctrl_vel", (nv,)),
                FieldSpec("ctrl_force", (nv,)), FieldSpec("dofs_kp", (nv,)), FieldSpec("dofs_kv", (nv,)),
                FieldSpec("ctrl", (max(self.model.nact, 1),)),
                FieldSpec("links_mass_shift", (nl,), reset_keeps=True),
                FieldSpec("links_COM_shift", (nl,), FLOAT, (3,), reset_keeps=True),
                FieldSpec("geoms_friction_ratio", (max(self.model.ngeom, 1),), reset_keeps=True),
                *warmstart.state_specs(mdl, max_contacts)]

    def _built_model(self):
        """The model the solver builds (after the options, see build_inputs), its candidate pairs
        and its contact capacity per env."""
        mdl, pairs = build_inputs(self)
        return mdl, pairs, max(1, min(int(pairs.arrays["pair_cap"].sum()), self.options.max_contacts))

    def candidate_pairs(self) -> broadphase.PairList:
        """The geom pairs that may touch, with their contact parameters (see broadphase)."""
        return broadphase.candidate_pairs(self.model)

    def build(self, n_envs, batch, state):
        mdl, pairs, max_contacts = self._built_model()  # left by the options that remove constraints
        dt = self.sim_options.dt / self.sim_options.substeps
        self.n_envs, self.batch = n_envs, batch
        self.data = RigidData(mdl, pairs, batch, state, runtime.config().ti_float, max_contacts,
                              self.options, dt, self.sim_options.gravity)
        self.state = state
        self.external = ExternalWrenches(self.data, runtime.config().ti_float)
        init = {"qpos": mdl.qpos0, "ctrl_mode": mdl.dof_mode, "ctrl_pos": mdl.dof_target,
                "dofs_kp": mdl.dof_kp, "dofs_kv": mdl.dof_kv, "ctrl": mdl.act_ctrl0,
                "geoms_friction_ratio": np.ones(mdl.ngeom)}
        for name, values in init.items():
            field = state[name]
            row = np.zeros(field.shape[1:], dtype=np.int32 if name == "ctrl_mode" else runtime.config().np_float)
            row[:len(values)] = values
            field.from_numpy(np.ascontiguousarray(np.broadcast_to(row, field.shape)))
        self.update_links()

    def control_actuators(self, entity, ctrl, envs_idx=None) -> None:
        """Drive an MJCF / URDF entity through its own actuators, in file order, as MuJoCo's
        `data.ctrl` does: shorthand joint actuators set their dof's controller (position target
        ctrl / gear, velocity target ctrl / gear, or force gear * gain * ctrl); the others take
        `ctrl` as it is (see elements.py). Checked before anything is written."""
        amap = self.actuator_maps[entity.idx]["actuators"]
        envs, unbatched = entity._scene_envs(envs_idx)
        values = entity._values(ctrl, len(envs), len(amap), unbatched, "ctrl")
        cols = {name: ([], []) for name in ("ctrl_pos", "ctrl_vel", "ctrl_force", "ctrl")}
        modes = ([], [])
        for a, entry in enumerate(amap):
            if entry[0] == "ctrl":
                cols["ctrl"][0].append(entry[1])
                cols["ctrl"][1].append(values[:, a])
                continue
            _, dof, kind, gear, gain = entry
            name, mode, scale = {"position": ("ctrl_pos", CTRL_POSITION, 1 / gear),
                                 "velocity": ("ctrl_vel", CTRL_VELOCITY, 1 / gear),
                                 "motor": ("ctrl_force", CTRL_FORCE, gear * gain)}[kind]
            cols[name][0].append(dof + entity.dof_start)
            cols[name][1].append(values[:, a] * scale)
            modes[0].append(dof + entity.dof_start)
            modes[1].append(np.full(len(envs), mode))
        for name, (idx, vals) in list(cols.items()) + [("ctrl_mode", modes)]:
            if idx:
                scatter(self.state[name], np.stack(vals, axis=1), envs, idx)

    # ------------------------------------------------------------------ stepping
    def update_links(self):
        """links_pos / links_quat from qpos (after build and after set_dofs_position)."""
        kinematics.forward_kinematics(self.data, False)

    def forward(self):
        """Every stage before the velocity update, at the current state (tests read the fields)."""
        d, dt = self.data, self.data.dt
        kinematics.forward_kinematics(d, True)
        dynamics.mass_matrix(d)
        dynamics.bias_forces(d)
        dynamics.smooth_acceleration(d, dt)

    def step(self):
        d, dt = self.data, self.data.dt
        for _ in range(self.sim_options.substeps):
            self.forward()
            for hook in self.after_forward:
                hook()
            self.external.apply()
            collision.detect_contacts(d)
            constraint.solve_constraints(d, dt)
            integrator.integrate_positions(d, dt)
            constraint.relax_constraints(d)
        self.external.clear()
        self.update_links()


register_solver(RigidSolver, default_material=Rigid)
