"""The rigid solver's options and material, with Genesis's argument names.

Options that change the physics are honoured: `enable_collision`, `enable_self_collision`,
`enable_joint_limit`, `disable_constraint` (applied when the solver builds, see `build_inputs`),
`dt` and `gravity` (the scene hands the solver its own SimOptions with them), `iterations`.
Options that only tune Genesis's own solver internals are accepted and have no effect here
(`GENESIS_ONLY`, listed in the README); a value we cannot honour raises naming it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from sim.enums import constraint_solver, integrator

# RigidOptions fields accepted for Genesis compatibility that tune only Genesis internals.
GENESIS_ONLY = ("max_collision_pairs", "constraint_solver", "tolerance", "ls_iterations", "ls_tolerance",
                "sparse_solve", "contact_resolve_time", "constraint_timeconst", "use_contact_island",
                "box_box_detection", "use_hibernation", "hibernation_thresh_vel", "hibernation_thresh_acc",
                "max_dynamic_constraints", "IK_max_targets", "batch_links_info", "batch_joints_info",
                "batch_dofs_info", "enable_multi_contact", "enable_mujoco_compatibility", "use_gjk_collision")


@dataclass(frozen=True)
class RigidOptions:
    """iterations: most Gauss-Seidel sweeps of the constraint solver per substep (it stops
    early once the impulses stop changing).
    baumgarte: fraction of a penetration removed per substep. contact_slop: penetration (m)
    left alone, so resting contacts do not jitter. contact_margin: a fixed band (m) added to
    every pair's reporting distance, on top of the model's margin and of the distance the pair
    can close in the step (see collision.py); 0 as MuJoCo, raise it to report contacts earlier
    (joint and tendon limits use it too). max_contacts: cap per environment.

    Genesis's names: dt / gravity (None: SimOptions'), enable_collision, enable_self_collision,
    enable_joint_limit, disable_constraint are honoured; enable_adjacent_collision=True (collide
    parent and child bodies) is refused; integrator: implicitfast semantics (damping and servo kv
    implicit), so Euler is refused; the fields in GENESIS_ONLY are accepted with no effect."""

    iterations: int = 100  # Genesis's default; the sweeps stop early once the impulses settle
    baumgarte: float = 0.2
    contact_slop: float = 1e-3
    contact_margin: float = 0.0
    max_contacts: int = 64
    dt: float | None = None
    gravity: tuple | None = None
    enable_collision: bool = True
    enable_joint_limit: bool = True
    enable_self_collision: bool = True
    enable_adjacent_collision: bool = False
    disable_constraint: bool = False
    integrator: integrator = integrator.approximate_implicitfast
    # accepted, no effect here (GENESIS_ONLY)
    max_collision_pairs: int = 300
    constraint_solver: constraint_solver = constraint_solver.Newton
    tolerance: float = 1e-8
    ls_iterations: int = 50
    ls_tolerance: float = 1e-2
    sparse_solve: bool = False
    contact_resolve_time: float | None = None
    constraint_timeconst: float | None = None
    use_contact_island: bool = False
    box_box_detection: bool = False
    use_hibernation: bool = False
    hibernation_thresh_vel: float = 1e-3
    hibernation_thresh_acc: float = 1e-2
    max_dynamic_constraints: int = 8
    IK_max_targets: int = 6
    batch_links_info: bool = False
    batch_joints_info: bool = False
    batch_dofs_info: bool = False
    enable_multi_contact: bool = True
    enable_mujoco_compatibility: bool = False
    use_gjk_collision: bool = False

    def __post_init__(self):
        if int(self.iterations) != self.iterations or self.iterations < 1:
            raise ValueError(f"RigidOptions.iterations must be an int >= 1, got {self.iterations}")
        if int(self.max_contacts) != self.max_contacts or self.max_contacts < 1:
            raise ValueError(f"RigidOptions.max_contacts must be an int >= 1, got {self.max_contacts}")
        if not 0 <= self.baumgarte <= 1:
            raise ValueError(f"RigidOptions.baumgarte must be in [0, 1], got {self.baumgarte}")
        for name in ("contact_slop", "contact_margin"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"RigidOptions.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("enable_collision", "enable_joint_limit", "enable_self_collision", "enable_adjacent_collision",
                     "disable_constraint"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"RigidOptions.{name} must be True or False, got {getattr(self, name)!r}")
        if self.enable_adjacent_collision:
            raise ValueError("RigidOptions.enable_adjacent_collision=True is not supported: parent and child "
                             "bodies never collide here (MuJoCo's filter)")
        if self.dt is not None and not float(self.dt) > 0:
            raise ValueError(f"RigidOptions.dt must be positive or None, got {self.dt}")
        if self.gravity is not None and len(tuple(self.gravity)) != 3:
            raise ValueError(f"RigidOptions.gravity must have 3 components or be None, got {self.gravity!r}")
        object.__setattr__(self, "integrator", _enum(integrator, self.integrator, "integrator"))
        object.__setattr__(self, "constraint_solver", _enum(constraint_solver, self.constraint_solver,
                                                            "constraint_solver"))
        if self.integrator == integrator.Euler:
            raise ValueError("RigidOptions.integrator=gs.integrator.Euler is not supported: this solver integrates "
                             "joint damping and servo gains implicitly (implicitfast); use implicitfast or "
                             "approximate_implicitfast")


def _enum(cls, value, name):
    try:
        return cls(value)
    except ValueError:
        raise ValueError(f"RigidOptions.{name} must be one of {[m.name for m in cls]}, got {value!r}") from None


@dataclass(frozen=True)
class Rigid:
    """The default material. rho (kg/m^3) sets the mass of Box / Sphere morphs (MJCF models
    carry their own masses); friction is their Coulomb coefficient.

    Genesis's needs_coup / coup_friction / coup_softness / coup_restitution tune rigid-particle
    coupling, which does not exist here yet: accepted, no effect. gravity_compensation is the
    fraction of gravity cancelled on every body of the entity (MuJoCo's body gravcomp, which it
    sets, replacing the file's own)."""

    rho: float = 1000.0
    friction: float = 1.0
    needs_coup: bool = True
    coup_friction: float = 0.1
    coup_softness: float = 0.002
    coup_restitution: float = 0.0
    gravity_compensation: float = 0.0

    def __post_init__(self):
        if not self.rho > 0:
            raise ValueError(f"Rigid.rho must be positive, got {self.rho}")
        if self.friction is None or not self.friction >= 0:
            raise ValueError(f"Rigid.friction must be >= 0, got {self.friction}")
        g = self.gravity_compensation
        if isinstance(g, bool) or not isinstance(g, (int, float)) or not 0 <= g <= 1:
            raise ValueError(f"Rigid.gravity_compensation must be a number in [0, 1], got {g!r}")


def build_inputs(solver):
    """The model and candidate geom pairs the solver builds with, after the options that remove
    constraints: no contacts (enable_collision=False), none within one entity
    (enable_self_collision=False), no joint limits (enable_joint_limit=False); disable_constraint
    removes both."""
    opts, model = solver.options, solver.model
    pairs = solver.candidate_pairs()
    geoms = pairs.arrays["pair_geoms"]
    if not opts.enable_collision or opts.disable_constraint:
        pairs = pairs.select(np.zeros(len(geoms), dtype=bool))
    elif not opts.enable_self_collision and len(geoms):
        owner = np.full(model.nbody, -1)
        for i, e in enumerate(solver.entities):
            owner[e.link_start + 1:e.link_start + 1 + e.n_links] = i
        geom_owner = owner[np.asarray(model.geom_body)[geoms]]
        pairs = pairs.select((geom_owner[:, 0] < 0) | (geom_owner[:, 0] != geom_owner[:, 1]))
    if not opts.enable_joint_limit or opts.disable_constraint:
        model = dataclasses.replace(model, jnt_limited=[0] * model.njnt)
    if opts.disable_constraint:  # tendon limits, friction loss and equalities are constraints too
        model = dataclasses.replace(model, ten_limited=[0] * len(model.ten_limited),
                                    dof_frictionloss=[0.0] * model.nv,
                                    ten_frictionloss=[0.0] * len(model.ten_frictionloss),
                                    eq_type=[], eq_obj=[], eq_data=[], eq_ref=[], eq_timeconst=[])
    return model, pairs
