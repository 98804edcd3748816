"""The dof tree as flat ancestor lists, so that kernels walk a dof's ancestors with a counted
loop over independent loads instead of chasing `dof_parent` one load at a time.

`dof_anc[dof_ancadr[k] : dof_ancadr[k] + dof_ancnum[k]]` are the ancestors of dof k, nearest
first. The ancestors of the p-th entry are the entries after it (a tree), which is what the
mass matrix, its L^T D L factor and the solves walk (MuJoCo's sparse layout of M).
"""

import numpy as np


def ancestor_arrays(dof_parent) -> dict[str, np.ndarray]:
    parent = np.asarray(dof_parent, dtype=np.int32)
    lists = []
    for k in range(len(parent)):
        chain, j = [], int(parent[k])
        while j >= 0:
            chain.append(j)
            j = int(parent[j])
        lists.append(chain)
    num = np.array([len(c) for c in lists], dtype=np.int32)
    adr = np.concatenate([[0], np.cumsum(num)[:-1]]).astype(np.int32) if len(num) else num
    anc = np.array([j for c in lists for j in c], dtype=np.int32)
    return {"dof_ancadr": adr, "dof_ancnum": num, "dof_anc": anc}
