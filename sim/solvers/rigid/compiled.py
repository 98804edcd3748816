"""Each rigid entity's own compiled MuJoCo model, made on first use (joint names, rendering).

The solver keeps only the combined arrays; the names of joints and the visual geoms live in
MuJoCo's model of each entity, which is compiled again from the morph when first asked for,
and checked against the entity's ranges so the two can never disagree silently.
"""

import mujoco

from sim import morphs
from sim.solvers.rigid.model import primitive_xml


def compile_morph(morph, material) -> mujoco.MjModel:
    if isinstance(morph, (morphs.Box, morphs.Sphere, morphs.Plane)):
        return mujoco.MjModel.from_xml_string(primitive_xml(morph, material.rho, material.friction))
    if not isinstance(morph, (morphs.MJCF, morphs.URDF)):
        raise TypeError(f"cannot compile a {type(morph).__name__} morph into a MuJoCo model")
    from sim.solvers.rigid.loader import compile_morph as compile_file  # URDF's free base, inline XML

    return compile_file(morph)[0]


def entity_model(entity) -> mujoco.MjModel:
    """The entity's MjModel (cached on the entity)."""
    m = getattr(entity, "_mjmodel", None)
    if m is None:
        m = compile_morph(entity.morph, entity.material)
        if (m.nbody - 1, m.nv, m.nq) != (entity.n_links, entity.n_dofs, entity.n_qs):
            raise RuntimeError(f"{entity!r}: recompiling {type(entity.morph).__name__} gave {m.nbody - 1} links, "
                               f"{m.nv} dofs, {m.nq} qs; the solver built {entity.n_links}, {entity.n_dofs}, "
                               f"{entity.n_qs}")
        entity._mjmodel = m
    return m
