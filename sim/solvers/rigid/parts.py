"""An entity's links and joints, as Genesis names them (`entity.links`, `entity.joints`)."""

from sim.solvers.rigid.model import BALL, DOF_SIZE, FREE, HINGE, SLIDE

JOINT_TYPES = {FREE: "FREE", BALL: "SPHERICAL", SLIDE: "PRISMATIC", HINGE: "REVOLUTE"}


class RigidLink:
    """One body of an entity (`entity.get_link(name)`); idx is its solver-wide link index."""

    def __init__(self, entity, name: str, idx_local: int):
        self.entity, self.name, self.idx_local = entity, name, idx_local
        self.idx = entity.link_start + idx_local

    def get_pos(self, envs_idx=None):
        return self.entity.get_links_pos([self.idx_local], envs_idx)[..., 0, :]

    def get_quat(self, envs_idx=None):
        return self.entity.get_links_quat([self.idx_local], envs_idx)[..., 0, :]

    def __repr__(self):
        return f"RigidLink({self.name!r}, idx={self.idx})"


class RigidJoint:
    """One joint of an entity (`entity.get_joint(name)`, `entity.joints`)."""

    def __init__(self, entity, name: str, idx_local: int, jtype: int, dof_start: int, q_start: int):
        self.entity, self.name, self.idx_local = entity, name, idx_local
        self.type = JOINT_TYPES[jtype]
        self.n_dofs, self.n_qs = DOF_SIZE[jtype], {FREE: 7, BALL: 4}.get(jtype, 1)
        self.dofs_idx_local = list(range(dof_start - entity.dof_start, dof_start - entity.dof_start + self.n_dofs))
        self.dofs_idx = [entity.dof_start + d for d in self.dofs_idx_local]
        self.dof_start, self.q_start = dof_start, q_start
        self.qs_idx_local = list(range(q_start - entity.q_start, q_start - entity.q_start + self.n_qs))

    @property
    def dof_idx_local(self):
        """The dof of a one-dof joint (Genesis's shorthand), else the list."""
        return self.dofs_idx_local[0] if self.n_dofs == 1 else self.dofs_idx_local

    def __repr__(self):
        return f"RigidJoint({self.name!r}, {self.type}, dofs_idx_local={self.dofs_idx_local})"
