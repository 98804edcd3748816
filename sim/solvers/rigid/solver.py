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
from sim.solvers.rigid import collision, constraint, dynamics, integrator, kinematics
from sim.solvers.rigid.data import RigidData
from sim.solvers.rigid.entity import RigidEntity
from sim.solvers.rigid.external import ExternalWrenches
from sim.solvers.rigid.external_api import ExternalForceAPI
from sim.solvers.rigid.options import Rigid, RigidOptions, build_inputs
from sim.solvers.rigid.model import (BOX, CAPSULE, PLANE, SPHERE, ModelArrays, append_model, file_fingerprint,
                                     load_mjcf, primitive_xml)

logger = logging.getLogger("sim")

# contacts one candidate pair can produce, by (type of first geom, type of second)
_PAIR_CONTACTS = {(PLANE, SPHERE): 1, (PLANE, CAPSULE): 2, (PLANE, BOX): 8, (SPHERE, SPHERE): 1,
                  (SPHERE, CAPSULE): 1, (SPHERE, BOX): 1, (CAPSULE, CAPSULE): 1, (CAPSULE, BOX): 3, (BOX, BOX): 8}


class RigidSolver(ExternalForceAPI, Solver):
    name = "RigidSolver"
    options_cls = RigidOptions
    options_kwarg = "rigid_options"
    materials = {"Rigid": Rigid}

    def __init__(self, scene, options, sim_options):
        super().__init__(scene, options, sim_options)
        self.model = ModelArrays()
        self.data: RigidData | None = None

    # ------------------------------------------------------------------ construction
    def add_entity(self, morph, material):
        if not isinstance(material, Rigid):
            raise TypeError(f"RigidSolver takes gs.materials.Rigid, got {type(material).__name__}")
        if isinstance(morph, morphs.MJCF):
            m, qpos = load_mjcf(morph.file)
            self._warn_options(m, morph.file)
            pose = (morph.pos, morph.quat)
        elif isinstance(morph, (morphs.Box, morphs.Sphere, morphs.Plane)):
            m, qpos = mujoco.MjModel.from_xml_string(primitive_xml(morph, material.rho, material.friction)), None
            pose = ((0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0))
        else:
            raise TypeError(f"the rigid solver takes MJCF, Box, Sphere or Plane morphs, got {type(morph).__name__}")
        ranges = append_model(self.model, m, *pose, qpos_init=qpos)
        entity = RigidEntity(self, morph, material, len(self.entities), ranges)
        self.entities.append(entity)
        return entity

    def _warn_options(self, m, path):
        if not np.allclose(m.opt.gravity, self.sim_options.gravity):
            logger.warning("%s sets gravity %s; the scene's SimOptions.gravity %s is used", path,
                           tuple(m.opt.gravity), self.sim_options.gravity)
        if not np.isclose(m.opt.timestep, self.sim_options.dt / self.sim_options.substeps):
            logger.warning("%s sets timestep %g; the scene's SimOptions dt/substeps %g is used", path,
                           m.opt.timestep, self.sim_options.dt / self.sim_options.substeps)

    def describe(self) -> dict:
        """Like Solver.describe, but an MJCF file is named by basename and content hash, so a
        checkpoint written on one machine loads on another."""
        entities = []
        for e in self.entities:
            morph = to_plain(e.morph)
            if isinstance(e.morph, morphs.MJCF):
                morph.update(file_fingerprint(e.morph.file))
            entities.append({"morph": morph, "material": to_plain(e.material)})
        return {"options": to_plain(self.options), "entities": entities}

    @property
    def n_links(self) -> int:
        return self.model.nbody - 1

    def state_specs(self):
        nq, nv, nl = max(self.model.nq, 1), max(self.model.nv, 1), max(self.n_links, 1)
        return [FieldSpec("qpos", (nq,)), FieldSpec("dofs_vel", (nv,)),
                FieldSpec("links_pos", (nl,), FLOAT, (3,)), FieldSpec("links_quat", (nl,), FLOAT, (4,)),
                FieldSpec("ctrl_mode", (nv,), "int32"), FieldSpec("ctrl_pos", (nv,)), FieldSpec("ctrl_vel", (nv,)),
                FieldSpec("ctrl_force", (nv,)), FieldSpec("dofs_kp", (nv,)), FieldSpec("dofs_kv", (nv,))]

    def candidate_pairs(self) -> np.ndarray:
        """Geom pairs that may touch (MuJoCo's rules: not on one body, not both static, not
        parent and child unless the parent is the world, contype/conaffinity compatible),
        ordered so the first geom has the lower type; shape (npair, 2)."""
        mdl = self.model
        pairs = []
        for g1 in range(mdl.ngeom):
            for g2 in range(g1 + 1, mdl.ngeom):
                b1, b2 = mdl.geom_body[g1], mdl.geom_body[g2]
                if b1 == b2 or (mdl.body_static[b1] and mdl.body_static[b2]):
                    continue
                if (mdl.body_parent[b2] == b1 and b1 != 0) or (mdl.body_parent[b1] == b2 and b2 != 0):
                    continue
                if not (mdl.geom_contype[g1] & mdl.geom_conaffinity[g2] or mdl.geom_contype[g2] & mdl.geom_conaffinity[g1]):
                    continue
                pair = (g1, g2) if mdl.geom_type[g1] <= mdl.geom_type[g2] else (g2, g1)
                if (mdl.geom_type[pair[0]], mdl.geom_type[pair[1]]) in _PAIR_CONTACTS:
                    pairs.append(pair)
        return np.asarray(pairs, dtype=np.int32).reshape(-1, 2)

    def build(self, n_envs, batch, state):
        mdl, pairs = build_inputs(self)  # the model and pairs left by the options that remove constraints
        possible = sum(_PAIR_CONTACTS[(mdl.geom_type[a], mdl.geom_type[b])] for a, b in pairs)
        max_contacts = max(1, min(possible, self.options.max_contacts))
        dt = self.sim_options.dt / self.sim_options.substeps
        self.n_envs, self.batch = n_envs, batch
        self.data = RigidData(mdl, pairs, batch, state, runtime.config().ti_float, max_contacts,
                              self.options, dt, self.sim_options.gravity)
        self.state = state
        self.external = ExternalWrenches(self.data, runtime.config().ti_float)
        init = {"qpos": mdl.qpos0, "ctrl_mode": mdl.dof_mode, "ctrl_pos": mdl.dof_target,
                "dofs_kp": mdl.dof_kp, "dofs_kv": mdl.dof_kv}
        for name, values in init.items():
            field = state[name]
            row = np.zeros(field.shape[1:], dtype=np.int32 if name == "ctrl_mode" else runtime.config().np_float)
            row[:len(values)] = values
            field.from_numpy(np.ascontiguousarray(np.broadcast_to(row, field.shape)))
        self.update_links()

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
            self.external.apply()
            collision.detect_contacts(d)
            constraint.solve_constraints(d, dt)
            integrator.integrate_positions(d, dt)
        self.external.clear()
        self.update_links()


register_solver(RigidSolver, default_material=Rigid)
