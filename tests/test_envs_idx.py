import numpy as np
import pytest
import torch

from sim.envs_idx import normalize_envs_idx

N = 8


@pytest.mark.parametrize("form", [
    [0, 2, 5], (0, 2, 5), np.array([0, 2, 5]), np.array([0, 2, 5], dtype=np.int32),
    torch.tensor([0, 2, 5]), torch.tensor([0, 2, 5], dtype=torch.int32), range(0, 6, 2 + 3),
])
def test_integer_forms(form):
    expected = [0, 5] if isinstance(form, range) else [0, 2, 5]
    out = normalize_envs_idx(form, N)
    assert out.dtype == np.int32 and out.tolist() == expected


@pytest.mark.parametrize("mask", [
    np.array([True, False, True, False, False, True, False, False]),
    torch.tensor([True, False, True, False, False, True, False, False]),
    [True, False, True, False, False, True, False, False],
])
def test_boolean_mask(mask):
    assert normalize_envs_idx(mask, N).tolist() == [0, 2, 5]


def test_order_is_kept_and_single_int_accepted():
    assert normalize_envs_idx([5, 1, 3], N).tolist() == [5, 1, 3]
    assert normalize_envs_idx(np.int64(4), N).tolist() == [4]


@pytest.mark.parametrize("bad, exc, words", [
    ([0, 8], ValueError, "out of range"),
    ([-1, 2], ValueError, "negative"),
    ([1, 1, 2], ValueError, "duplicates"),
    ([0.0, 1.0], TypeError, "integers"),
    (np.array([0.5, 1.0]), TypeError, "dtype float64"),
    (torch.tensor([0.0, 1.0]), TypeError, "dtype float32"),
    (np.ones(N - 1, dtype=bool), ValueError, "mask has shape"),
    (torch.ones(N + 1, dtype=torch.bool), ValueError, "mask has shape"),
    (np.array([], dtype=np.float64), TypeError, "dtype float64"),
    (np.zeros(N - 1, dtype=bool), ValueError, "mask has shape"),
    ([True, 1], TypeError, "mixes"),
    (np.array([[0, 1]]), ValueError, "one-dimensional"),
    ("0,1", TypeError, "got str"),
    (None.__class__, TypeError, "got type"),
])
def test_bad_forms_raise_naming_the_problem(bad, exc, words):
    with pytest.raises(exc, match=words):
        normalize_envs_idx(bad, N)


def test_unbatched_scene_takes_no_envs_idx():
    with pytest.raises(ValueError, match="unbatched"):
        normalize_envs_idx([0], 0)


@pytest.mark.parametrize("empty", [[], (), np.array([], dtype=np.int64), torch.tensor([], dtype=torch.int64),
                                   np.zeros(N, dtype=bool), torch.zeros(N, dtype=torch.bool), range(0)])
def test_empty_selection_is_valid_and_selects_nothing(empty):
    out = normalize_envs_idx(empty, N)
    assert out.dtype == np.int32 and out.shape == (0,)
