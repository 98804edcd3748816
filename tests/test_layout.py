"""genesis_dist.layout: balanced contiguous split, index mapping, split / merge (property-tested)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genesis_dist.layout import Layout

pairs = st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n)))


@settings(max_examples=300, deadline=None)
@given(pairs)
def test_sizes_are_contiguous_and_balanced(pair):
    n_envs, n_shards = pair
    layout = Layout(n_envs, n_shards)
    sizes = layout.sizes
    assert len(sizes) == n_shards and sum(sizes) == n_envs
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    assert sizes == sorted(sizes, reverse=True)
    assert [layout.range(s) for s in range(n_shards)] == [
        (sum(sizes[:s]), sum(sizes[:s + 1])) for s in range(n_shards)]


@settings(max_examples=200, deadline=None)
@given(pairs)
def test_locate_is_inverse_of_ranges(pair):
    n_envs, n_shards = pair
    layout = Layout(n_envs, n_shards)
    shard, local = layout.locate(np.arange(n_envs))
    expected = [(s, i) for s in range(n_shards) for i in range(layout.sizes[s])]
    assert list(zip(shard.tolist(), local.tolist())) == expected


@settings(max_examples=200, deadline=None)
@given(pairs.flatmap(lambda p: st.tuples(st.just(p), st.permutations(range(p[0])), st.integers(1, p[0]))))
def test_group_covers_each_index_once(args):
    (n_envs, n_shards), perm, k = args
    layout = Layout(n_envs, n_shards)
    idx = np.asarray(perm[:k])
    groups = layout.group(idx)
    assert [g[0] for g in groups] == sorted({g[0] for g in groups})
    positions = np.concatenate([g[2] for g in groups])
    assert sorted(positions.tolist()) == list(range(k))
    for shard, local, pos in groups:
        assert len(local) > 0
        assert (layout.starts[shard] + local).tolist() == idx[pos].tolist()
        assert list(pos) == sorted(pos)  # order within a shard follows the input


@settings(max_examples=100, deadline=None)
@given(pairs, st.sampled_from([np.float32, np.float64, np.int32]), st.integers(0, 2))
def test_split_merge_roundtrip(pair, dtype, extra_dims):
    n_envs, n_shards = pair
    layout = Layout(n_envs, n_shards)
    array = np.arange(n_envs * 3 ** extra_dims).astype(dtype).reshape((n_envs,) + (3,) * extra_dims)
    parts = layout.split(array)
    assert [len(p) for p in parts] == layout.sizes
    assert all(np.shares_memory(p, array) for p in parts)
    out = np.empty_like(array)
    merged = layout.merge(parts, out=out)
    assert merged is out and np.array_equal(merged, array) and merged.dtype == array.dtype


def test_bad_layouts_and_parts():
    with pytest.raises(ValueError, match="at least one environment"):
        Layout(2, 3)
    with pytest.raises(ValueError, match="n_shards must be >= 1"):
        Layout(4, 0)
    with pytest.raises(TypeError, match="n_envs must be an int"):
        Layout(4.0, 2)
    layout = Layout(5, 2)
    with pytest.raises(ValueError, match="expected 5 rows"):
        layout.split(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="shard 1 part has shape"):
        layout.merge([np.zeros(3), np.zeros(3)])
    with pytest.raises(ValueError, match="2 shards"):
        layout.merge([np.zeros(5)])
