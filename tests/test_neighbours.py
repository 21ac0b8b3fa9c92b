"""Exact chunked pair search (audit/metrics/neighbours.py) against brute force on small arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audit.metrics import neighbours as nb


def brute_pairs(x: np.ndarray, scale: float = 1.0):
    """(i, j, distance) of every pair i < j, sorted by (distance, i, j), float64."""
    flat = np.asarray(x, dtype=np.float64).reshape(x.shape[0], -1)
    d = np.sqrt(((flat[:, None] - flat[None]) ** 2).sum(-1)) * scale
    i, j = np.triu_indices(x.shape[0], 1)
    order = np.lexsort((j, i, d[i, j]))
    return i[order], j[order], d[i, j][order]


def brute_nearest(q: np.ndarray, r: np.ndarray, k: int, scale: float = 1.0):
    fq = np.asarray(q, dtype=np.float64).reshape(q.shape[0], -1)
    fr = np.asarray(r, dtype=np.float64).reshape(r.shape[0], -1)
    d = np.sqrt(((fq[:, None] - fr[None]) ** 2).sum(-1)) * scale
    order = np.lexsort((np.broadcast_to(np.arange(r.shape[0]), d.shape), d), axis=1)[:, :k]
    return order, np.take_along_axis(d, order, 1)


@pytest.fixture
def ties():
    """Gaussian points with exact duplicates (0-distance ties) and a repeated distance."""
    x = np.random.default_rng(0).normal(size=(300, 7)).astype(np.float32)
    x[10] = x[20]
    x[30] = x[20]
    x[41] = x[40] + 1
    x[51] = x[50] + 1  # (40, 41) and (50, 51) at exactly the same distance
    return x


@pytest.mark.parametrize("block_rows, block_elements", [(1024, 2**24), (64, 64 * 100), (7, 7 * 13)])
def test_closest_pairs_is_brute_force_whatever_the_blocks(ties, block_rows, block_elements):
    i, j, d = brute_pairs(ties)
    found = nb.closest_pairs(ties, 40, threshold=1.0, block_rows=block_rows, block_elements=block_elements)
    np.testing.assert_array_equal(found.i, i[:40])
    np.testing.assert_array_equal(found.j, j[:40])
    np.testing.assert_allclose(found.distance, d[:40], rtol=1e-12, atol=1e-12)
    # the three copies of row 20 come first, in (i, j) order, at distance exactly 0
    assert list(zip(found.i[:3], found.j[:3])) == [(10, 20), (10, 30), (20, 30)] and (found.distance[:3] == 0).all()
    assert found.count_below == int((d < 1.0).sum())


def test_closest_pairs_never_builds_a_full_matrix(monkeypatch):
    x = np.random.default_rng(1).normal(size=(500, 5)).astype(np.float32)
    sizes = []
    real_addmm = torch.addmm

    def spy(*args, **kwargs):
        out = real_addmm(*args, **kwargs)
        sizes.append(out.numel())
        return out

    monkeypatch.setattr(nb.torch, "addmm", spy)
    found = nb.closest_pairs(x, 5, block_rows=50, block_elements=50 * 60)
    assert sizes and max(sizes) <= 50 * 60 < 500 * 500
    i, j, _ = brute_pairs(x)
    np.testing.assert_array_equal(found.i, i[:5])
    sizes.clear()
    nb.nearest(x[:100], x, 3, block_rows=20, block_elements=20 * 50)
    assert max(sizes) <= 20 * 50


def test_nearest_is_brute_force_with_lowest_index_ties(ties):
    q = np.concatenate([np.random.default_rng(2).normal(size=(60, 7)).astype(np.float32), ties[[20, 40]]])
    index, distance = nb.nearest(q, ties, 5, block_rows=16, block_elements=16 * 64)
    order, d = brute_nearest(q, ties, 5)
    np.testing.assert_array_equal(index, order)
    np.testing.assert_allclose(distance, d, rtol=1e-12, atol=1e-12)
    # the query equal to rows 10, 20 and 30 gets them in index order, all at distance 0
    np.testing.assert_array_equal(index[60, :3], [10, 20, 30])
    assert (distance[60, :3] == 0).all()
    one, one_d = nb.nearest(q, ties, 1, block_rows=16, block_elements=16 * 64)  # k = 1: its own fast path
    np.testing.assert_array_equal(one[:, 0], order[:, 0])
    np.testing.assert_allclose(one_d[:, 0], d[:, 0], rtol=1e-12, atol=1e-12)
    # k above the references is capped
    assert nb.nearest(q[:2], ties[:3], 10)[0].shape == (2, 3)


def test_uint8_images_are_compared_in_x_over_255(tmp_path):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(120, 4, 4, 3), dtype=np.uint8)
    images[7] = images[3]
    np.save(tmp_path / "images.npy", images)
    stored = np.load(tmp_path / "images.npy", mmap_mode="r")  # a memmap, read chunk by chunk
    i, j, d = brute_pairs(images, 1 / 255)
    found = nb.closest_pairs(stored, 10, threshold=float(d[5]), block_rows=16, block_elements=16 * 40)
    np.testing.assert_array_equal(found.i, i[:10])
    np.testing.assert_array_equal(found.j, j[:10])
    np.testing.assert_allclose(found.distance, d[:10], rtol=1e-12)
    assert (found.i[0], found.j[0], found.distance[0]) == (3, 7, 0.0)
    assert found.count_below == 5  # strictly below the sixth smallest distance
    order, dn = brute_nearest(images[:30], images[30:], 2, 1 / 255)
    index, distance = nb.nearest(stored[:30], stored[30:], 2, block_rows=8, block_elements=8 * 16)
    np.testing.assert_array_equal(index, order)
    np.testing.assert_allclose(distance, dn, rtol=1e-12)


def test_searches_are_deterministic_and_refuse_bad_input():
    x = np.random.default_rng(4).normal(size=(200, 16))  # float64 is computed in float32
    a, b = nb.closest_pairs(x, 20), nb.closest_pairs(x, 20)
    np.testing.assert_array_equal(a.i, b.i)
    np.testing.assert_array_equal(a.distance, b.distance)
    assert nb.closest_pairs(x[:1], 3).i.size == 0  # one row: no pair
    assert nb.closest_pairs(x[:4], 10).i.size == 6  # fewer pairs than asked
    with pytest.raises(ValueError, match="float features"):
        nb.closest_pairs(np.zeros((5, 3), dtype=np.int32), 2)
    with pytest.raises(ValueError, match="images"):
        nb.closest_pairs(np.zeros((5, 3), dtype=np.uint8), 2)
    with pytest.raises(ValueError, match="not comparable"):
        nb.nearest(x, x[:, :8], 1)
    with pytest.raises(ValueError, match="k must be"):
        nb.nearest(x, x, 0)
