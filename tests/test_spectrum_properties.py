"""Property-based tests (hypothesis) of the spectrum definitions (audit.metrics.spectrum):
bounds, the invariances each definition claims, and exact limits.

* effective rank: in [1, rank] (0 for a zero spectrum), k equal eigenvalues give k, invariant
  to the order and the scale of the eigenvalues;
* n90 / n99: between 1 and the rank, non-decreasing in the fraction;
* the split (whitened spectra, rank ratios): invariant to a rotation and a shift of pixel space
  (given the split), every ratio scales by c^2 when the GAN is scaled by c about its mean,
  a GAN equal to half B keeps every direction at ratio 1, a constant GAN keeps none, and adding
  variance (Loewner order) never lowers a whitened eigenvalue;
* the whole analysis: 0 <= kept <= m <= min(N - 1, d) and m <= n_B - 1, and the same summary
  whatever the order of the real, GAN and null images (the split is keyed by image content).

The split itself depends on the bytes of each image (a seeded hash), so a rotation of pixel
space is claimed only given the split, not for :func:`analyse_spectra` as a whole.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.metrics import covariance as cv
from audit.metrics import spectrum as sp

SETTINGS = settings(max_examples=60, deadline=None)
spectra = st.lists(st.floats(0.0, 1e3, allow_nan=False, allow_infinity=False), min_size=1, max_size=40).map(np.array)


@SETTINGS
@given(spectra)
def test_effective_rank_bounds(eigs):
    rank = int(np.count_nonzero(eigs > 0))
    value = sp.effective_rank(eigs)
    if rank == 0:
        assert value == 0.0
    else:
        assert 1.0 - 1e-9 <= value <= rank + 1e-9


@SETTINGS
@given(st.integers(1, 300), st.floats(1e-6, 1e6), st.integers(0, 20))
def test_effective_rank_of_k_equal_eigenvalues_is_k(k, value, zeros):
    assert abs(sp.effective_rank(np.r_[np.full(k, value), np.zeros(zeros)]) - k) <= 1e-9 * k


@SETTINGS
@given(spectra, st.randoms(use_true_random=False), st.floats(1e-3, 1e3))
def test_effective_rank_ignores_order_and_scale(eigs, random, scale):
    shuffled = eigs.copy()
    random.shuffle(shuffled)
    expected = sp.effective_rank(eigs)
    assert abs(sp.effective_rank(shuffled) - expected) <= 1e-9 * max(expected, 1)
    assert abs(sp.effective_rank(scale * eigs) - expected) <= 1e-9 * max(expected, 1)


@SETTINGS
@given(spectra, st.floats(0.01, 1.0), st.floats(0.01, 1.0))
def test_components_for_variance_bounds_and_monotone(eigs, f1, f2):
    rank = int(np.count_nonzero(eigs > 0))
    low, high = sorted((f1, f2))
    n_low, n_high = sp.components_for_variance(eigs, low), sp.components_for_variance(eigs, high)
    if rank == 0:
        assert n_low == n_high == 0
    else:
        assert 1 <= n_low <= n_high <= rank


# --------------------------------------------------------------------------------------------
# the split, on float data (N, d) given by a seed and its shape


@st.composite
def split_data(draw):
    """(real (n, d), gan (g, d), n_a): real of rank <= r around a random mean; the GAN of its own rank."""
    seed = draw(st.integers(0, 2**31 - 1))
    d, n, g = draw(st.integers(2, 9)), draw(st.integers(6, 40)), draw(st.integers(3, 60))
    rank, gan_rank = draw(st.integers(1, d)), draw(st.integers(1, d))
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d)) * np.exp(-np.arange(d) / 3)[:, None]
    real = rng.normal(size=(n, rank)) @ mixing[:rank] + rng.uniform(0, 1, d)
    gan = rng.normal(size=(g, gan_rank)) @ mixing[:gan_rank] * draw(st.floats(0.1, 3.0)) + rng.uniform(0, 1, d)
    return real, gan, n - n // 2, rng


def _split_ratio(real, gan, n_a):
    """Rank ratios of ``gan`` against the split (first n_a rows, rest) of ``real``, through the
    library's own route; None when the real half A spans no direction."""
    gram, mean = cv.centred_gram(real)
    split = sp.fit_split(gram[:n_a, :n_a], gram[n_a:, :n_a])
    if split.m == 0:
        return None, split
    directions = cv.combine_rows(real[:n_a], split.coef, mean)
    return split.ratio(cv.projected_covariance(gan, directions)), split


def _close(a, b, rtol=1e-6):
    scale = np.maximum(np.abs(b), 1e-6 * max(float(np.abs(b).max(initial=0)), 1e-12))
    return np.all(np.abs(a - b) <= rtol * scale)


@SETTINGS
@given(split_data())
def test_split_is_invariant_to_rotating_and_shifting_pixel_space(data):
    real, gan, n_a, rng = data
    ratio, split = _split_ratio(real, gan, n_a)
    if ratio is None:
        return
    d = real.shape[1]
    Q = np.linalg.qr(rng.normal(size=(d, d)))[0]
    shift = rng.normal(size=d)
    rotated, rotated_split = _split_ratio(real @ Q + shift, gan @ Q + shift, n_a)
    assert rotated_split.m == split.m
    assert _close(rotated_split.nu, split.nu) and _close(rotated, ratio)


@SETTINGS
@given(split_data(), st.floats(0.05, 5.0))
def test_scaling_the_gan_scales_every_ratio(data, c):
    real, gan, n_a, _ = data
    ratio, _ = _split_ratio(real, gan, n_a)
    if ratio is None:
        return
    scaled, _ = _split_ratio(real, gan.mean(0) + c * (gan - gan.mean(0)), n_a)
    assert _close(scaled, c**2 * ratio, rtol=1e-6)


@SETTINGS
@given(split_data())
def test_known_limits_half_b_keeps_everything_a_constant_gan_nothing(data):
    real, _, n_a, _ = data
    ratio, split = _split_ratio(real, real[n_a:], n_a)
    if ratio is None:
        return
    assert _close(ratio, np.ones(split.m), rtol=1e-6)
    assert sp.kept_directions(ratio, 0.1) == split.m
    constant, _ = _split_ratio(real, np.repeat(real[:1], 5, axis=0), n_a)
    assert np.all(np.abs(constant) <= 1e-9) and sp.kept_directions(constant, 0.1) == 0


@SETTINGS
@given(st.integers(1, 8), st.integers(0, 2**31 - 1))
def test_more_variance_never_lowers_a_whitened_eigenvalue(m, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(m, m + 2)), rng.normal(size=(m, 3))
    lam = rng.uniform(0.1, 10, m)
    base = sp.whitened_spectrum(a @ a.T, lam)
    more = sp.whitened_spectrum(a @ a.T + b @ b.T, lam)
    assert np.all(more >= base - 1e-9 * np.abs(base).max())


# --------------------------------------------------------------------------------------------
# the whole analysis on small uint8 image sets


@st.composite
def image_sets(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    d, n, g, k = draw(st.integers(2, 12)), draw(st.integers(4, 40)), draw(st.integers(2, 50)), draw(st.integers(2, 40))
    rng = np.random.default_rng(seed)

    def images(count, rank, spread):
        x = 128 + rng.normal(size=(count, rank)) @ rng.normal(size=(rank, d)) * spread
        return np.clip(np.rint(x), 0, 255).astype(np.uint8).reshape(count, d, 1, 1)

    real = images(n, draw(st.integers(1, d)), draw(st.floats(0.0, 40.0)))
    return real, images(g, draw(st.integers(1, d)), 20.0), images(k, d, 30.0), rng


@SETTINGS
@given(image_sets())
def test_analysis_bounds(sets):
    real, gan, null, _ = sets
    s = sp.analyse_spectra(real, gan, null, null_draws=5, seed=1).summary
    n_t, d = s["split_real_images"], s["d"]
    m, kept = s["significant_real_directions"], s["kept_directions"]
    assert 0 <= kept <= m <= min(n_t - 1, d) and m <= max(s["split_sizes"][1] - 1, 0)
    assert kept + s["dropped_directions"] == m
    for name, images in (("real", real), ("gan", gan)):
        x = images.reshape(len(images), d).astype(np.float64)
        rank = int(np.linalg.matrix_rank(x - x[0]))  # integer differences: an exact rank
        value = s[f"effective_rank_{name}"]
        assert (value == 0) if rank == 0 else (1 - 1e-9 <= value <= rank + 1e-6), (name, value, rank)
    (verdict,) = s["verdicts"]
    assert (verdict["p_value"] is None) == bool(verdict["reason"])
    assert verdict["p_value"] is None or 1 / 6 - 1e-12 <= verdict["p_value"] <= 1


@SETTINGS
@given(image_sets())
def test_analysis_ignores_the_order_of_every_set(sets):
    real, gan, null, rng = sets
    first = sp.analyse_spectra(real, gan, null, null_draws=5, seed=2).summary
    again = sp.analyse_spectra(real[rng.permutation(len(real))], gan[rng.permutation(len(gan))],
                               null[rng.permutation(len(null))], null_draws=5, seed=2).summary
    for key in ("significant_real_directions", "kept_directions", "split_sizes", "stand_in_size", "n_distinct_gan"):
        assert first[key] == again[key], key
    for key in ("worst_rank_ratio", "effective_rank_real", "effective_rank_gan", "total_variance_gan"):
        if first[key] is None or again[key] is None:  # None: no finite ratio
            assert first[key] is again[key] is None, key
        else:
            assert abs(first[key] - again[key]) <= 1e-7 * max(1.0, abs(first[key])), key
    assert first["verdicts"][0]["p_value"] == again["verdicts"][0]["p_value"]
