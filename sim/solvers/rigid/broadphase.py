"""Candidate geom pairs, listed once per scene with MuJoCo's filtering rules, and their
contact parameters.

MuJoCo's rules (engine_collision_driver.c), applied here in the same order:
- dynamic pairs: contype/conaffinity compatible; not in one weld group (bodies rigidly joined,
  including everything welded to the world); not parent and child weld groups unless one of
  them is the world or the entity disabled `filterparent`; not `<exclude>`d; not also an
  explicit `<pair>` (the explicit one wins).
- explicit `<pair>`s: always, with their own friction, condim, margin and gap.
Parameters of a dynamic pair: the geom with the higher `priority` gives friction and condim,
otherwise the larger of the two; margin and gap are the larger of the two.

Per step, each listed pair is pruned first by bounding spheres (`collision.detect_contacts`),
so only pairs whose geoms are close run a narrow phase.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.solvers.rigid.geometry import BOX, CAPSULE, PLANE, SPHERE

CONVEX_CONTACTS = 4  # the corners of the contact patch (convex.patch)
# pairs with an exact path in collision.detect_primitive, and their most contacts; all others go
# through convex.detect
PRIMITIVE = {(PLANE, SPHERE): 1, (PLANE, CAPSULE): 2, (PLANE, BOX): 8, (SPHERE, SPHERE): 1, (SPHERE, CAPSULE): 1,
             (SPHERE, BOX): 1, (CAPSULE, CAPSULE): 1, (CAPSULE, BOX): 3, (BOX, BOX): 8}


@dataclass
class PairList:
    arrays: dict          # pair_geoms, pair_mu, pair_offset, pair_cap: one row per pair
    n_primitive: int      # the first n_primitive pairs are PRIMITIVE ones

    def __len__(self) -> int:
        return len(self.arrays["pair_geoms"])

    def select(self, keep: np.ndarray) -> "PairList":
        """The pairs where `keep` (a bool per pair) is true, in the same order."""
        keep = np.asarray(keep, dtype=bool)
        return PairList({k: v[keep] for k, v in self.arrays.items()}, int(keep[:self.n_primitive].sum()))


def _weld_ids(model) -> np.ndarray:
    """MuJoCo's body_weldid: the nearest ancestor-or-self with a joint, 0 for the world."""
    weld = np.zeros(model.nbody, dtype=np.int64)
    for b in range(1, model.nbody):
        weld[b] = b if model.body_jntnum[b] else weld[model.body_parent[b]]
    return weld


def candidate_pairs(model) -> PairList:
    """pair_geoms (npair, 2) ordered so the first geom has the lower type; pair_mu; pair_offset
    (margin - gap: the distance at which the pair rests); pair_cap (most contacts)."""
    rules = model.contact
    weld = _weld_ids(model)
    explicit = {(min(p[0], p[1]), max(p[0], p[1])) for p in rules.pairs}
    rows = []

    def add(g1, g2, mu, condim, margin, gap):
        if model.geom_type[g2] < model.geom_type[g1]:
            g1, g2 = g2, g1
        t1, t2 = model.geom_type[g1], model.geom_type[g2]
        if t1 == PLANE and t2 == PLANE:
            return
        rows.append((g1, g2, mu if condim != 1 else 0.0, margin - gap, PRIMITIVE.get((t1, t2), CONVEX_CONTACTS)))

    for g1 in range(model.ngeom):
        if not rules.geom_dynamic[g1]:
            continue
        for g2 in range(g1 + 1, model.ngeom):
            if not rules.geom_dynamic[g2] or (g1, g2) in explicit:
                continue
            b1, b2 = model.geom_body[g1], model.geom_body[g2]
            w1, w2 = weld[b1], weld[b2]
            if w1 == w2:
                continue
            if w1 and w2 and not ({b1, b2} & rules.no_parent_filter) and (
                    weld[model.body_parent[w1]] == w2 or weld[model.body_parent[w2]] == w1):
                continue
            if (min(b1, b2), max(b1, b2)) in rules.exclude:
                continue
            if not (model.geom_contype[g1] & model.geom_conaffinity[g2]
                    or model.geom_contype[g2] & model.geom_conaffinity[g1]):
                continue
            p1, p2 = rules.geom_priority[g1], rules.geom_priority[g2]
            if p1 != p2:
                g = g1 if p1 > p2 else g2
                mu, condim = model.geom_friction[g], rules.geom_condim[g]
            else:
                mu = max(model.geom_friction[g1], model.geom_friction[g2])
                condim = max(rules.geom_condim[g1], rules.geom_condim[g2])
            add(g1, g2, mu, condim, max(rules.geom_margin[g1], rules.geom_margin[g2]),
                max(rules.geom_gap[g1], rules.geom_gap[g2]))
    for g1, g2, mu, condim, margin, gap in rules.pairs:
        add(g1, g2, mu, condim, margin, gap)
    # primitive pairs first (collision.detect_primitive), then the convex ones
    primitive = [(model.geom_type[r[0]], model.geom_type[r[1]]) in PRIMITIVE for r in rows]
    rows = [r for r, p in zip(rows, primitive) if p] + [r for r, p in zip(rows, primitive) if not p]
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    return PairList({"pair_geoms": arr[:, :2].astype(np.int32), "pair_mu": arr[:, 2], "pair_offset": arr[:, 3],
                     "pair_cap": arr[:, 4].astype(np.int32)}, sum(primitive))
