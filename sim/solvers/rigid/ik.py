"""Inverse kinematics with Genesis's signatures: batched damped least squares over envs.

Each iteration runs the solver's own forward-kinematics kernel for every env at once (so link
poses and dof axes come from exactly the kinematics the simulation uses), gathers the target
links' poses and the entity's dof axes, and takes one damped least-squares step per env in
torch: dq = J^T (J J^T + damping^2 I)^-1 e, the largest |dq| capped at max_step_size, joint
limits clamped. The per-env solves are tiny (6 * n_links rows), so batched torch on the host
is fast and keeps the kernel code to what the simulation already has; on gs.gpu the tensors
stay on the device. Envs not within tolerance after max_solver_iters restart from a random
configuration inside the joint limits, up to max_samples tries. The scene's state is put back
exactly as it was: IK returns configurations and changes nothing.
"""

import numpy as np
import torch

from sim.field_access import gather, scatter
from sim.solvers.rigid import kinematics
from sim.solvers.rigid.model import BALL, FREE, HINGE, SLIDE
from sim.utils import geom


def inverse_kinematics(entity, link, pos=None, quat=None, init_qpos=None, respect_joint_limit=True, max_samples=50,
                       max_solver_iters=20, damping=0.01, pos_tol=5e-4, rot_tol=5e-3, pos_mask=(True, True, True),
                       rot_mask=(True, True, True), max_step_size=0.5, dofs_idx_local=None, return_error=False,
                       envs_idx=None):
    """qpos (n_envs, n_qs) (or (n_qs,) unbatched) that puts `link` at pos / quat (either may be None)."""
    out = inverse_kinematics_multilink(
        entity, [link], None if pos is None else [pos], None if quat is None else [quat], init_qpos,
        respect_joint_limit, max_samples, max_solver_iters, damping, pos_tol, rot_tol, pos_mask, rot_mask,
        max_step_size, dofs_idx_local, return_error, envs_idx)
    if return_error:
        qpos, error = out
        return qpos, error[..., 0, :]
    return out


def inverse_kinematics_multilink(entity, links, poss=None, quats=None, init_qpos=None, respect_joint_limit=True,
                                 max_samples=50, max_solver_iters=20, damping=0.01, pos_tol=5e-4, rot_tol=5e-3,
                                 pos_mask=(True, True, True), rot_mask=(True, True, True), max_step_size=0.5,
                                 dofs_idx_local=None, return_error=False, envs_idx=None):
    """Like inverse_kinematics for several links at once; poss / quats are lists (or None)."""
    envs, unbatched = entity._scene_envs(envs_idx)
    solver, data = entity.solver, entity.solver.data
    for name, value in (("max_samples", max_samples), ("max_solver_iters", max_solver_iters)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if not (damping >= 0 and pos_tol > 0 and rot_tol > 0 and max_step_size > 0):
        raise ValueError("damping must be >= 0 and pos_tol, rot_tol, max_step_size positive")
    links = list(links)
    if not links or any(getattr(link, "entity", None) is not entity for link in links):
        raise ValueError("links must be a non-empty list of this entity's links (entity.get_link(name))")
    if len(envs) == 0:
        empty = torch.zeros((0, entity.n_qs))
        return (empty, torch.zeros((0, len(links), 6))) if return_error else empty
    n, device = len(envs), None
    qs_cols = np.arange(entity.q_start, entity.q_start + entity.n_qs, dtype=np.int32)
    saved = gather(solver.state["qpos"], envs, qs_cols)
    device, dtype = saved.device, torch.float64
    pos_mask = torch.as_tensor(np.asarray(pos_mask, dtype=bool), device=device)
    rot_mask = torch.as_tensor(np.asarray(rot_mask, dtype=bool), device=device)
    dofs = entity._dofs(dofs_idx_local)
    active = torch.zeros(entity.n_dofs, dtype=torch.bool, device=device)
    active[torch.as_tensor(dofs, dtype=torch.long)] = True
    reach = _reach_masks(entity, links, device) & active  # (n_links, n_dofs)
    joints = _joint_table(entity)

    q = saved.to(dtype) if init_qpos is None else torch.as_tensor(
        entity._values(init_qpos, n, entity.n_qs, unbatched, "init_qpos"), dtype=dtype, device=device)
    try:
        targets_pos = _targets(poss, len(links), n, 3, "poss", entity, unbatched, device)
        targets_quat = _targets(quats, len(links), n, 4, "quats", entity, unbatched, device)
        if targets_pos is None:  # keep each link where it is
            targets_pos = gather(solver.state["links_pos"], envs,
                                 np.asarray([link.idx for link in links], dtype=np.int32)).to(dtype)
        best_q, best_err = q.clone(), torch.full((n,), np.inf, dtype=dtype, device=device)
        best_error = torch.zeros((n, len(links), 6), dtype=dtype, device=device)
        pending = torch.ones(n, dtype=torch.bool, device=device)
        generator = torch.Generator(device="cpu").manual_seed(0)
        for sample in range(max_samples):
            if sample > 0:
                q = torch.where(pending[:, None], _random_qpos(joints, q, generator), q)
            for _ in range(max_solver_iters):
                error, jac = _error_and_jacobian(entity, links, q, envs, qs_cols, targets_pos, targets_quat,
                                                 pos_mask, rot_mask, reach)
                done = _within(error, pos_tol, rot_tol)
                if bool(done.all()):
                    break
                jjt = jac @ jac.transpose(1, 2) + damping ** 2 * torch.eye(jac.shape[1], dtype=dtype, device=device)
                dq = (jac.transpose(1, 2) @ torch.linalg.solve(jjt, error.reshape(n, -1, 1)))[..., 0]
                dq = dq * torch.clamp(max_step_size / dq.abs().amax(-1, keepdim=True).clamp_min(1e-12), max=1.0)
                dq = torch.where(done[:, None], torch.zeros_like(dq), dq)
                q = _integrate(joints, q, dq, respect_joint_limit)
            error, _ = _error_and_jacobian(entity, links, q, envs, qs_cols, targets_pos, targets_quat,
                                           pos_mask, rot_mask, reach)
            size = error.reshape(n, -1).norm(dim=-1)
            better = pending & (size < best_err)
            best_q = torch.where(better[:, None], q, best_q)
            best_err = torch.where(better, size, best_err)
            best_error = torch.where(better[:, None, None], error, best_error)
            pending = pending & ~_within(error, pos_tol, rot_tol)
            if not bool(pending.any()):
                break
    finally:
        scatter(solver.state["qpos"], saved.cpu().numpy(), envs, qs_cols)
        solver.update_links()
    qpos = best_q.to(saved.dtype)
    qpos = qpos[0] if unbatched else qpos
    if return_error:
        err = best_error.to(saved.dtype)
        return qpos, err[0] if unbatched else err
    return qpos


def _targets(values, n_links, n, width, what, entity, unbatched, device):
    if values is None:
        return None
    values = list(values)
    if len(values) != n_links:
        raise ValueError(f"{what} has {len(values)} entries for {n_links} links")
    return torch.stack([torch.as_tensor(entity._values(v, n, width, unbatched, what), device=device)
                        for v in values], 1)


def _within(error, pos_tol, rot_tol):
    return (error[..., :3].norm(dim=-1) <= pos_tol).all(-1) & (error[..., 3:].norm(dim=-1) <= rot_tol).all(-1)


def _reach_masks(entity, links, device):
    """(n_links, n_dofs): which of the entity's dofs move each link (the dofs up its chain)."""
    d = entity.solver.data
    lastdof, parent = d.body_lastdof.to_numpy(), d.dof_parent.to_numpy()
    out = np.zeros((len(links), entity.n_dofs), dtype=bool)
    for i, link in enumerate(links):
        k = lastdof[link.idx + 1]
        while k >= 0:
            if entity.dof_start <= k < entity.dof_start + entity.n_dofs:
                out[i, k - entity.dof_start] = True
            k = parent[k]
    return torch.as_tensor(out, device=device)


def _joint_table(entity):
    """Per joint of the entity: (type, local qpos address, local dof address, limited, low, high)."""
    model = entity.solver.model
    return [(model.jnt_type[j], model.jnt_qadr[j] - entity.q_start, model.jnt_dadr[j] - entity.dof_start,
             bool(model.jnt_limited[j]), *model.jnt_range[j]) for j in entity._jnt_ids]


def _integrate(joints, q, dq, respect_joint_limit):
    q = q.clone()
    for jt, qa, da, limited, low, high in joints:
        if jt in (HINGE, SLIDE):
            q[:, qa] += dq[:, da]
            if respect_joint_limit and limited:
                q[:, qa] = q[:, qa].clamp(float(low), float(high))
        else:
            if jt == FREE:  # translation in world axes, then rotation about the body's own axes
                q[:, qa:qa + 3] += dq[:, da:da + 3]
                qa, da = qa + 3, da + 3
            rot = geom.transform_quat_by_quat(geom.rotvec_to_quat(dq[:, da:da + 3]), q[:, qa:qa + 4])
            q[:, qa:qa + 4] = geom.normalize(rot)
    return q


def _random_qpos(joints, q, generator):
    out = q.clone()
    for jt, qa, _, limited, low, high in joints:
        if jt in (HINGE, SLIDE):
            low, high = (float(low), float(high)) if limited else (-np.pi, np.pi)
            out[:, qa] = low + (high - low) * torch.rand(len(q), generator=generator, dtype=q.dtype).to(q.device)
        elif jt == BALL:
            out[:, qa:qa + 4] = geom.normalize(torch.randn((len(q), 4), generator=generator, dtype=q.dtype).to(q.device))
    return out


def _error_and_jacobian(entity, links, q, envs, qs_cols, targets_pos, targets_quat, pos_mask, rot_mask, reach):
    """Task error (n, n_links, 6) = (position error, rotation vector error), masked, and the
    matching Jacobian (n, 6 * n_links, n_dofs), from the solver's kinematics at q."""
    solver, d = entity.solver, entity.solver.data
    scatter(solver.state["qpos"], q.cpu().numpy(), envs, qs_cols)
    kinematics.forward_kinematics(d, True)
    dtype = q.dtype
    link_rows = np.asarray([link.idx for link in links], dtype=np.int32)
    pos = gather(solver.state["links_pos"], envs, link_rows).to(dtype)
    quat = gather(solver.state["links_quat"], envs, link_rows).to(dtype)
    dof_cols = np.arange(entity.dof_start, entity.dof_start + entity.n_dofs, dtype=np.int32)
    ang = gather(d.cdof_ang, envs, dof_cols).to(dtype)  # (n, n_dofs, 3), about the world origin
    lin = gather(d.cdof_lin, envs, dof_cols).to(dtype)
    err_pos = (targets_pos - pos) * pos_mask
    if targets_quat is None:
        err_rot = torch.zeros_like(err_pos)
        rot_rows = torch.zeros(3, dtype=torch.bool, device=pos.device)
    else:
        err_rot = geom.quat_to_rotvec(geom.transform_quat_by_quat(geom.inv_quat(quat), targets_quat)) * rot_mask
        rot_rows = rot_mask
    # velocity of the point p moving with dof k: lin_k + ang_k x p
    jac_pos = lin[:, None] + torch.linalg.cross(ang[:, None], pos[:, :, None].expand(-1, -1, ang.shape[1], -1))
    jac_rot = ang[:, None].expand(-1, len(links), -1, -1)
    mask = reach[None, :, :, None].to(dtype)
    jac_pos = jac_pos * mask * pos_mask.to(dtype)
    jac_rot = jac_rot * mask * rot_rows.to(dtype)
    jac = torch.cat([jac_pos, jac_rot], dim=-1)  # (n, n_links, n_dofs, 6)
    error = torch.cat([err_pos, err_rot], dim=-1)
    return error, jac.permute(0, 1, 3, 2).reshape(len(q), 6 * len(links), entity.n_dofs)
