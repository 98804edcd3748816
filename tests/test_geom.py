"""sim.utils.geom against scipy's Rotation: Genesis's names and (w, x, y, z) conventions,
torch and numpy, batched."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from sim.utils import geom as gu

RNG = np.random.default_rng(0)
QUATS = Rotation.random(16, random_state=1).as_quat(scalar_first=True)
VECS = RNG.normal(size=(16, 3))


def _same_rotation(q1, q2):
    return np.allclose(np.abs(np.sum(np.asarray(q1) * np.asarray(q2), axis=-1)), 1.0, atol=1e-9)


@pytest.mark.parametrize("kind", [np.asarray, torch.as_tensor])
def test_rotations_match_scipy(kind):
    q, v = kind(QUATS), kind(VECS)
    rot = Rotation.from_quat(QUATS, scalar_first=True)
    out = gu.transform_by_quat(v, q)
    assert isinstance(out, type(q)) and out.shape == (16, 3)
    assert np.allclose(np.asarray(out), rot.apply(VECS))
    assert np.allclose(np.asarray(gu.inv_transform_by_quat(v, q)), rot.inv().apply(VECS))
    assert np.allclose(np.asarray(gu.quat_to_R(q)), rot.as_matrix())
    assert _same_rotation(gu.R_to_quat(kind(rot.as_matrix())), QUATS)
    assert _same_rotation(gu.inv_quat(q), rot.inv().as_quat(scalar_first=True))
    other = Rotation.random(16, random_state=2)
    composed = gu.transform_quat_by_quat(q, kind(other.as_quat(scalar_first=True)))  # q first, then other
    assert _same_rotation(composed, (other * rot).as_quat(scalar_first=True))
    assert np.allclose(np.asarray(gu.quat_to_rotvec(q)), rot.as_rotvec())
    assert _same_rotation(gu.rotvec_to_quat(kind(rot.as_rotvec())), QUATS)


@pytest.mark.parametrize("rpy, seq", [(True, "xyz"), (False, "XYZ")])
@pytest.mark.parametrize("degrees", [True, False])
def test_euler_conventions_match_scipy(rpy, seq, degrees):
    angles = RNG.uniform(-80, 80, size=(10, 3)) * (1.0 if degrees else np.pi / 180)
    expected = Rotation.from_euler(seq, angles, degrees=degrees)
    q = gu.xyz_to_quat(angles, rpy=rpy, degrees=degrees)
    assert _same_rotation(q, expected.as_quat(scalar_first=True))
    back = gu.quat_to_xyz(torch.as_tensor(q), rpy=rpy, degrees=degrees)
    assert isinstance(back, torch.Tensor) and np.allclose(back.numpy(), angles)
    assert np.allclose(gu.xyz_to_R(angles, rpy=rpy, degrees=degrees), expected.as_matrix())


def test_poses_and_near_identity_edge_cases():
    trans = RNG.normal(size=(16, 3))
    pts = gu.transform_by_trans_quat(VECS, trans, QUATS)
    assert np.allclose(gu.inv_transform_by_trans_quat(pts, trans, QUATS), VECS)
    T = gu.trans_quat_to_T(trans, QUATS)
    t2, q2 = gu.T_to_trans_quat(T)
    assert np.allclose(t2, trans) and _same_rotation(q2, QUATS)
    tiny = np.array([[1e-12, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert np.all(np.isfinite(gu.rotvec_to_quat(tiny))) and np.allclose(gu.quat_to_rotvec(gu.rotvec_to_quat(tiny)), tiny)
    flips = Rotation.from_euler("x", [[180.0], [179.9]], degrees=True).as_matrix()  # trace near -1
    assert _same_rotation(gu.R_to_quat(flips), Rotation.from_matrix(flips).as_quat(scalar_first=True))
