"""Rotation helpers with Genesis's names and conventions (`genesis.utils.geom`).

Quaternions are (w, x, y, z). Every function takes torch tensors or numpy arrays, batched over
any leading axes, and returns the same kind (numpy in, numpy out). One torch implementation
serves both (numpy inputs pass through torch on the CPU).

Euler angles: `xyz_to_quat(xyz, rpy=True)` reads xyz as extrinsic x-y-z angles, R = Rz Ry Rx
(roll, pitch, yaw; what a morph's `euler=` means, in degrees there); rpy=False reads them as
intrinsic x-y-z, R = Rx Ry Rz. `quat_to_xyz` inverts each. `transform_quat_by_quat(v, u)` is
u * v (v first, then u), as in Genesis.
"""

import math

import numpy as np
import torch


def _io(fn):
    """Run `fn` on torch tensors; numpy (or list) inputs come back as numpy."""
    def wrapped(*args, **kwargs):
        as_numpy = not any(isinstance(a, torch.Tensor) for a in args)
        targs = [a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a, dtype=np.float64))
                 for a in args]
        out = fn(*targs, **kwargs)
        if not as_numpy:
            return out
        return tuple(o.numpy() for o in out) if isinstance(out, tuple) else out.numpy()
    wrapped.__name__, wrapped.__doc__ = fn.__name__, fn.__doc__
    return wrapped


def _qmul(u, v):
    w1, x1, y1, z1 = u.unbind(-1)
    w2, x2, y2, z2 = v.unbind(-1)
    return torch.stack([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2], dim=-1)


def _rotate(v, q):
    """v rotated by q; leading axes broadcast (one quaternion for many points, or the reverse)."""
    lead = torch.broadcast_shapes(v.shape[:-1], q.shape[:-1])
    v, q = v.expand(*lead, 3), q.expand(*lead, 4)
    w, xyz = q[..., :1], q[..., 1:]
    t = 2.0 * torch.linalg.cross(xyz, v)
    return v + w * t + torch.linalg.cross(xyz, t)


@_io
def normalize(x):
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True)


@_io
def inv_quat(quat):
    """The inverse of a unit quaternion (its conjugate)."""
    return quat * torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=quat.dtype, device=quat.device)


@_io
def transform_quat_by_quat(v, u):
    """Rotation v followed by rotation u: the quaternion u * v (R_u @ R_v)."""
    return _qmul(u, v)


@_io
def transform_by_quat(v, quat):
    """Rotate vectors v (..., 3) by quat (..., 4)."""
    return _rotate(v, quat)


@_io
def inv_transform_by_quat(v, quat):
    return _rotate(v, quat * torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=quat.dtype, device=quat.device))


@_io
def transform_by_trans_quat(pos, trans, quat):
    """Points given in a frame at (trans, quat), in world coordinates."""
    return _rotate(pos, quat) + trans


@_io
def inv_transform_by_trans_quat(pos, trans, quat):
    """World points in the coordinates of a frame at (trans, quat)."""
    return _rotate(pos - trans, quat * torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=quat.dtype, device=quat.device))


@_io
def quat_to_R(quat):
    """(..., 4) -> (..., 3, 3) rotation matrices."""
    w, x, y, z = normalize(quat).unbind(-1)
    return torch.stack([
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        torch.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)], -2)


@_io
def R_to_quat(R):  # noqa: N802  (Genesis's name)
    """(..., 3, 3) -> (..., 4) with w >= 0, from the largest of the four candidate pivots."""
    m = R
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    candidates = torch.stack([
        torch.stack([1 + trace, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
        torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
                     m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
        torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0],
                     1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2], m[..., 1, 2] + m[..., 2, 1]], -1),
        torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1],
                     1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]], -1)], -2)
    pivots = torch.stack([1 + trace, 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
                          1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2], 1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]], -1)
    best = pivots.argmax(-1, keepdim=True)
    q = torch.gather(candidates, -2, best[..., None].expand(*best.shape[:-1], 1, 4)).squeeze(-2)
    q = q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def _axis_quat(angle, axis: int):
    half = angle / 2
    parts = [torch.cos(half)] + [torch.sin(half) if k == axis else torch.zeros_like(half) for k in range(3)]
    return torch.stack(parts, -1)


@_io
def xyz_to_quat(xyz, rpy=False, degrees=False):
    """Euler angles (..., 3) -> quaternion; rpy=True: R = Rz Ry Rx (extrinsic x-y-z), else R = Rx Ry Rz."""
    angles = xyz * (math.pi / 180.0) if degrees else xyz
    qx, qy, qz = (_axis_quat(angles[..., k], k) for k in range(3))
    return _qmul(qz, _qmul(qy, qx)) if rpy else _qmul(qx, _qmul(qy, qz))


@_io
def quat_to_xyz(quat, rpy=False, degrees=False):
    """The inverse of xyz_to_quat with the same flags; the middle angle lies in [-90, 90] degrees."""
    R = quat_to_R(quat)
    if rpy:  # R = Rz(c) Ry(b) Rx(a)
        b = torch.asin(torch.clamp(-R[..., 2, 0], -1.0, 1.0))
        a = torch.atan2(R[..., 2, 1], R[..., 2, 2])
        c = torch.atan2(R[..., 1, 0], R[..., 0, 0])
    else:  # R = Rx(a) Ry(b) Rz(c)
        b = torch.asin(torch.clamp(R[..., 0, 2], -1.0, 1.0))
        a = torch.atan2(-R[..., 1, 2], R[..., 2, 2])
        c = torch.atan2(-R[..., 0, 1], R[..., 0, 0])
    out = torch.stack([a, b, c], -1)
    return out * (180.0 / math.pi) if degrees else out


@_io
def xyz_to_R(xyz, rpy=False, degrees=False):
    return quat_to_R(xyz_to_quat(xyz, rpy=rpy, degrees=degrees))


@_io
def R_to_xyz(R, rpy=False, degrees=False):  # noqa: N802
    return quat_to_xyz(R_to_quat(R), rpy=rpy, degrees=degrees)


@_io
def transform_by_R(pos, R):
    return (R @ pos[..., None])[..., 0]


@_io
def axis_angle_to_quat(angle, axis):
    """Rotation by `angle` (...) about the unit `axis` (..., 3)."""
    half = angle[..., None] / 2
    return torch.cat([torch.cos(half), torch.sin(half) * axis], -1)


@_io
def rotvec_to_quat(rotvec):
    """Rotation vector (axis * angle) -> quaternion."""
    angle = torch.linalg.vector_norm(rotvec, dim=-1, keepdim=True)
    small = angle < 1e-8
    scale = torch.where(small, 0.5 - angle * angle / 48, torch.sin(angle / 2) / torch.where(small, 1.0, angle))
    return torch.cat([torch.cos(angle / 2), rotvec * scale], -1)


@_io
def quat_to_rotvec(quat):
    """Quaternion -> rotation vector, angle in [0, pi]."""
    q = torch.where(quat[..., :1] < 0, -quat, quat)
    s = torch.linalg.vector_norm(q[..., 1:], dim=-1, keepdim=True)
    angle = 2 * torch.atan2(s, q[..., :1])
    small = s < 1e-8
    scale = torch.where(small, 2.0 / q[..., :1].clamp_min(1e-12), angle / torch.where(small, 1.0, s))
    return q[..., 1:] * scale


@_io
def trans_quat_to_T(trans, quat):  # noqa: N802
    """(..., 3), (..., 4) -> (..., 4, 4) homogeneous transforms."""
    R = quat_to_R(quat)
    T = torch.zeros((*R.shape[:-2], 4, 4), dtype=R.dtype, device=R.device)
    T[..., :3, :3], T[..., :3, 3], T[..., 3, 3] = R, trans, 1.0
    return T


@_io
def T_to_trans_quat(T):  # noqa: N802
    return T[..., :3, 3], R_to_quat(T[..., :3, :3])
