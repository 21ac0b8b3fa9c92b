"""Exact chunked pair search (audit/metrics/neighbours.py) against brute force on small arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audit.metrics import neighbours as nb
from audit.metrics import neighbours_bf16 as bf


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


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("block_rows, block_elements", [(1024, 2**24), (64, 64 * 100), (7, 7 * 13)])
def test_closest_pairs_is_brute_force_whatever_the_blocks(ties, block_rows, block_elements, fast):
    i, j, d = brute_pairs(ties)
    found = nb.closest_pairs(ties, 40, threshold=1.0, block_rows=block_rows, block_elements=block_elements,
                             fast=fast)
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


@pytest.mark.parametrize("fast", [False, True])
def test_nearest_is_brute_force_with_lowest_index_ties(ties, fast):
    q = np.concatenate([np.random.default_rng(2).normal(size=(60, 7)).astype(np.float32), ties[[20, 40]]])
    index, distance = nb.nearest(q, ties, 5, block_rows=16, block_elements=16 * 64, fast=fast)
    order, d = brute_nearest(q, ties, 5)
    np.testing.assert_array_equal(index, order)
    np.testing.assert_allclose(distance, d, rtol=1e-12, atol=1e-12)
    # the query equal to rows 10, 20 and 30 gets them in index order, all at distance 0
    np.testing.assert_array_equal(index[60, :3], [10, 20, 30])
    assert (distance[60, :3] == 0).all()
    one, one_d = nb.nearest(q, ties, 1, block_rows=16, block_elements=16 * 64, fast=fast)  # k = 1: min
    np.testing.assert_array_equal(one[:, 0], order[:, 0])
    np.testing.assert_allclose(one_d[:, 0], d[:, 0], rtol=1e-12, atol=1e-12)
    # k above the references is capped
    assert nb.nearest(q[:2], ties[:3], 10, fast=fast)[0].shape == (2, 3)


@pytest.mark.parametrize("fast", [False, True])
def test_uint8_images_are_compared_in_x_over_255(tmp_path, fast):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(120, 4, 4, 3), dtype=np.uint8)
    images[7] = images[3]
    np.save(tmp_path / "images.npy", images)
    stored = np.load(tmp_path / "images.npy", mmap_mode="r")  # a memmap, read chunk by chunk
    i, j, d = brute_pairs(images, 1 / 255)
    found = nb.closest_pairs(stored, 10, threshold=float(d[5]), block_rows=16, block_elements=16 * 40, fast=fast)
    np.testing.assert_array_equal(found.i, i[:10])
    np.testing.assert_array_equal(found.j, j[:10])
    np.testing.assert_allclose(found.distance, d[:10], rtol=1e-12)
    assert (found.i[0], found.j[0], found.distance[0]) == (3, 7, 0.0)
    assert found.count_below == 5  # strictly below the sixth smallest distance
    order, dn = brute_nearest(images[:30], images[30:], 2, 1 / 255)
    index, distance = nb.nearest(stored[:30], stored[30:], 2, block_rows=8, block_elements=8 * 16, fast=fast)
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


# --- the bf16 prefilter (audit/metrics/neighbours_bf16.py): exact, so both paths give one answer ---

def both_paths_pairs(x, k, **kwargs):
    """closest_pairs with fast=False and fast=True, asserted identical; returns (Pairs, bf16 STATS)."""
    slow = nb.closest_pairs(x, k, fast=False, **kwargs)
    fast = nb.closest_pairs(x, k, fast=True, **kwargs)
    stats = dict(bf.STATS)
    for name in ("i", "j", "distance"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name))
    assert fast.count_below == slow.count_below
    return fast, stats


def both_paths_nearest(q, r, k, same_index=True, **kwargs):
    """nearest with both paths: identical distances, and identical indices unless ``same_index``
    is False (float32 may pick another of several equidistant references: see the image test)."""
    slow = nb.nearest(q, r, k, fast=False, **kwargs)
    fast = nb.nearest(q, r, k, fast=True, **kwargs)
    stats = dict(bf.STATS)
    if same_index:
        np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])
    return fast, stats


def assert_pairs_are_brute(found, x, k, threshold=None, scale=1.0):
    i, j, d = brute_pairs(x, scale)
    np.testing.assert_array_equal(found.i, i[:k])
    np.testing.assert_array_equal(found.j, j[:k])
    np.testing.assert_allclose(found.distance, d[:k], rtol=1e-12, atol=1e-300)
    if threshold is not None:
        assert found.count_below == int((d < threshold).sum())


def test_the_bf16_error_bound_holds_entry_by_entry():
    """|d^2 - o| <= eps + u|o|/(1-u) for every entry of one bf16 GEMM, on unit rows, rows with a
    large offset and scale, and 0/255 images; and the bound is not vacuous: at most 5x the worst
    observed error (measured: 1.7x to 2.0x; the worst error reaches 56% to 65% of its bound)."""
    rng = np.random.default_rng(5)
    unit = rng.normal(size=(300, 64)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    offset = (1e6 + 1e3 * rng.normal(size=(300, 40))).astype(np.float32)
    images = (255 * rng.integers(0, 2, size=(60, 16, 16, 3))).astype(np.uint8)
    for x in (unit, offset, images):
        shift = nb.shift_of(x)
        q, r = bf.prepare(x, 0, x.shape[0] // 2, shift, "cpu"), bf.prepare(x, x.shape[0] // 2, x.shape[0], shift, "cpu")
        o = torch.mm(q.qside, r.rside.T).double()
        flat = np.asarray(x, dtype=np.float64).reshape(x.shape[0], -1)
        half = x.shape[0] // 2
        d2 = ((flat[:half, None] - flat[None, half:]) ** 2).sum(-1)
        bound = bf.epsilon(q, r)[:, None] + bf.U16 * o.abs() / (1 - bf.U16)
        error = (torch.from_numpy(d2) - o).abs()
        assert bool((error <= bound).all()), float((error / bound).max())
        assert float(bound.max()) < 5 * float(error.max())


@pytest.mark.parametrize("k", [1, 5, 40])
def test_near_duplicates_within_the_bound_fall_back_and_stay_exact(k, monkeypatch):
    """Three points 5 x N(0, 1) with 100 noisy copies each (squared distances 0.4 to 2, inside
    the bf16 bound of about 3 at |x| = 20; gaps far above float32's rounding), at most 8 extra
    candidates per row: blocks hold more candidates than they may rescore, so they are scored
    again in float32; the answer is still brute force, and the threshold count exact."""
    monkeypatch.setattr(bf, "CANDIDATES", 8)
    rng = np.random.default_rng(6)
    rng.normal(size=(3, 16))
    x = (np.repeat(5 * rng.normal(size=(3, 16)), 100, axis=0) + 0.3 * rng.normal(size=(300, 16))).astype(np.float32)
    threshold = float(brute_pairs(x)[2][500])
    found, stats = both_paths_pairs(x, k, threshold=threshold, block_rows=64, block_elements=64 * 128)
    assert_pairs_are_brute(found, x, k, threshold)
    assert stats["fallback_blocks"] > 0
    (index, distance), stats = both_paths_nearest(x[::7], x, k, block_rows=16, block_elements=16 * 128)
    order, d = brute_nearest(x[::7], x, k)
    np.testing.assert_array_equal(index, order)
    np.testing.assert_allclose(distance, d, rtol=1e-12)
    assert stats["fallback_blocks"] > 0


def test_binary_images_64x64x3_with_copies_one_pixel_apart():
    """0/255 images of 64x64x3: exact copies, copies differing in 1, 2 and 3 values (all inside
    the bf16 bound, about 9 values here), rescored exactly: n values apart is sqrt(n) in x / 255."""
    rng = np.random.default_rng(7)
    images = (255 * rng.integers(0, 2, size=(40, 64, 64, 3))).astype(np.uint8)
    for copy, flips in ((5, 0), (6, 1), (7, 2), (8, 3), (9, 0)):
        images[copy] = images[0]
        images[copy].reshape(-1)[:flips] = 255 - images[copy].reshape(-1)[:flips]
    found, stats = both_paths_pairs(images, 12, threshold=1.5, block_rows=16, block_elements=16 * 24)
    assert_pairs_are_brute(found, images, 12, 1.5, 1 / 255)
    assert list(zip(found.i[:4], found.j[:4])) == [(0, 5), (0, 9), (5, 9), (0, 6)]
    np.testing.assert_array_equal(found.distance[:4], [0, 0, 0, 1])  # one value 255 apart: 255 / 255
    assert stats.get("fallback_blocks", 0) == 0 and stats["rescored"] > 0
    # float32 cannot break these ties: |y|^2 ~ 2e8 > 2^24, so its scores of the references at
    # distance exactly 1 differ by rounding; the bf16 path rescores all of them in float64
    (index, distance), _ = both_paths_nearest(images[:10], images, 4, same_index=False, block_rows=4,
                                              block_elements=4 * 16)
    order, d = brute_nearest(images[:10], images, 4, 1 / 255)
    np.testing.assert_array_equal(index, order)
    np.testing.assert_allclose(distance, d, rtol=1e-12)


@pytest.mark.parametrize("scale, offset", [(1e6, 0.0), (1e-6, 0.0), (1.0, 300.0)])
def test_unnormalised_features_large_and_small(scale, offset):
    rng = np.random.default_rng(8)
    x = (offset + scale * rng.normal(size=(400, 24))).astype(np.float32)
    x[17] = x[3]
    found, _ = both_paths_pairs(x, 30, threshold=float(brute_pairs(x)[2][10]), block_rows=64, block_elements=64 * 100)
    assert_pairs_are_brute(found, x, 30, float(brute_pairs(x)[2][10]))
    (index, distance), _ = both_paths_nearest(x[:50], x, 3, block_rows=16, block_elements=16 * 64)
    order, d = brute_nearest(x[:50], x, 3)
    np.testing.assert_array_equal(index, order)
    np.testing.assert_allclose(distance, d, rtol=1e-12)


def test_k_above_the_candidate_list_one_row_and_thresholds(monkeypatch, ties):
    """k = 30 with at most 4 extra candidates per row; a single query, a single reference, a
    single row; thresholds at a tie (strict <), at 0 and above every pair."""
    monkeypatch.setattr(bf, "CANDIDATES", 4)
    (index, distance), _ = both_paths_nearest(ties[:40], ties, 30, block_rows=16, block_elements=16 * 64)
    order, d = brute_nearest(ties[:40], ties, 30)
    np.testing.assert_array_equal(index, order)
    np.testing.assert_allclose(distance, d, rtol=1e-12)
    found, _ = both_paths_pairs(ties, 60, block_rows=32, block_elements=32 * 64)
    assert_pairs_are_brute(found, ties, 60)
    assert both_paths_nearest(ties[5:6], ties, 3)[0][0].tolist() == [brute_nearest(ties[5:6], ties, 3)[0][0].tolist()]
    assert both_paths_nearest(ties, ties[7:8], 2)[0][0].shape == (300, 1)
    assert both_paths_pairs(ties[:1], 3)[0].i.size == 0
    d = brute_pairs(ties)[2]
    tie = float(np.sqrt(7.0))  # the (40, 41) and (50, 51) pairs, exactly sqrt(7) apart
    for threshold in (0.0, tie, float(d[100]), float(d[-1]) + 1):
        found, _ = both_paths_pairs(ties, 5, threshold=threshold, block_rows=64, block_elements=64 * 128)
        assert found.count_below == int((d < threshold).sum())


def test_fast_switch_and_values_outside_the_bound():
    """fast=None takes float32 below FAST_MIN_WORK; the module switch FAST forces a path; rows
    too large for the bound (|x| > 2^40) give the float32 answer."""
    x = np.random.default_rng(9).normal(size=(50, 4)).astype(np.float32)
    bf.STATS.clear()
    nb.closest_pairs(x, 3)
    assert bf.STATS == {}
    try:
        nb.FAST = True
        nb.closest_pairs(x, 3)
        assert bf.STATS["blocks"] > 0
    finally:
        nb.FAST = None
    huge = x * np.float32(2.0**45)
    a, b = nb.closest_pairs(huge, 3, fast=True), nb.closest_pairs(huge, 3, fast=False)
    np.testing.assert_array_equal(a.i, b.i)
    np.testing.assert_array_equal(a.distance, b.distance)


def test_the_prefilter_rescores_few_entries_on_embeddings():
    """Unit-length 512-d rows around 100 centres (the benchmark's kind of data, smaller): the bf16
    path rescores a few entries per query and never falls back (a bound twice too wide would
    rescore several times more; measured: 21 per query at 10,000 x 160,000)."""
    rng = np.random.default_rng(10)
    centres = rng.standard_normal((100, 512), dtype=np.float32)

    def rows(n):
        x = centres[rng.integers(0, 100, n)] + 0.8 * rng.standard_normal((n, 512), dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    q, r = rows(300), rows(6000)
    (index, distance), stats = both_paths_nearest(q, r, 1, block_rows=128, block_elements=128 * 2048)
    assert stats.get("fallback_blocks", 0) == 0 and stats["rescored"] < 15 * q.shape[0], stats  # measured 6.7
    found, stats = both_paths_pairs(r[:3000], 20, block_rows=256, block_elements=256 * 1024)
    assert stats.get("fallback_blocks", 0) == 0 and stats["rescored"] < 700, stats  # measured 279
