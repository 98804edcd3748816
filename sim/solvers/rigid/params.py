"""Per-env model parameters: Genesis's domain randomisation of link masses, centres of mass and
friction (`set_mass_shift`, `set_COM_shift`, `set_friction_ratio`).

Each env has its own row of three state fields (env axis first, so checkpoints merge and
reshard them like any other array): `links_mass_shift` (kg, added to the model's link mass),
`links_COM_shift` (m, added to the link's centre of mass, in the link frame) and
`geoms_friction_ratio` (scales the friction of a geom). The inertia tensor about the centre of
mass is left as the model gives it, as Genesis does. The fields are declared `reset_keeps`: a
state restores them, a reset without a state keeps them.

Kernels read a body's mass and centre of mass, and a candidate pair's friction, through the
funcs below. A pair's friction is the larger of its two geoms' friction, each times its
ratio (Genesis's rule, and MuJoCo's at ratio 1); where MuJoCo takes one geom's friction (the
geom of higher priority) it is that geom's times its ratio; a `<pair>` element's own friction
is scaled by the larger of the two ratios; a frictionless pair (condim 1) stays frictionless.
"""

import numpy as np
import taichi as ti


@ti.func
def body_mass(d: ti.template(), e, i):
    m = d.body_mass[i]
    if i > 0:
        m += d.links_mass_shift[e, i - 1]
    return m


@ti.func
def body_ipos(d: ti.template(), e, i):
    c = d.body_ipos[i]
    if i > 0:
        c += d.links_COM_shift[e, i - 1]
    return c


@ti.func
def pair_friction(d: ti.template(), e, pr):
    g1, g2 = d.pair_geoms[pr][0], d.pair_geoms[pr][1]
    src = d.pair_mu_src[pr]
    return ti.max(src[0] * d.geoms_friction_ratio[e, g1], src[1] * d.geoms_friction_ratio[e, g2])


def pair_friction_sources(model, pair_geoms: np.ndarray, pair_mu: np.ndarray) -> np.ndarray:
    """(npair, 2): the friction each geom of a pair contributes before its ratio scales it, so
    that max(src * ratio) is the pair's friction (`pair_mu`, MuJoCo's rule) at ratio 1."""
    rules = model.contact
    explicit = {(min(p[0], p[1]), max(p[0], p[1])) for p in rules.pairs}
    friction, priority = np.asarray(model.geom_friction), np.asarray(rules.geom_priority)
    src = np.zeros((len(pair_mu), 2))
    for k, ((g1, g2), mu) in enumerate(zip(pair_geoms, pair_mu)):
        if mu == 0 or (min(g1, g2), max(g1, g2)) in explicit:
            src[k] = mu
        elif priority[g1] != priority[g2]:
            src[k, 0 if priority[g1] > priority[g2] else 1] = mu
        else:
            src[k] = friction[g1], friction[g2]
    if not np.allclose(src.max(axis=1, initial=0.0), pair_mu):
        raise RuntimeError("pair friction sources disagree with the candidate pairs' friction")
    return src
