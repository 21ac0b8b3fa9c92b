"""Properties of the skew estimators (hypothesis): invariance to sample order, bounds, and known
limits. Each property is a claim about every input; hypothesis searches for a counterexample
(shrinking it to a minimal one), so a property fails on the first input that breaks it."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.metrics import skew as sk

K = 4
PROPERTY = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
#: the Monte Carlo ones run the null and the bootstrap: fewer examples
MONTE_CARLO = settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

weights = st.lists(st.floats(0, 1, allow_nan=False), min_size=K, max_size=K).filter(lambda w: sum(w) > 1e-3)
labels = st.lists(st.integers(0, K - 1), min_size=0, max_size=300)


def normalised(w) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    return w / w.sum()


@st.composite
def annotated(draw, min_size=0):
    """(predicted, confidence) of up to 300 samples."""
    predicted = np.asarray(draw(st.lists(st.integers(0, K - 1), min_size=min_size, max_size=300)), dtype=np.int64)
    confidence = np.asarray(draw(st.lists(st.floats(0, 1, allow_nan=False), min_size=predicted.size,
                                          max_size=predicted.size)))
    return predicted, confidence


@st.composite
def confusions(draw):
    """A (K, K) column-stochastic matrix; sometimes with two equal columns (singular)."""
    columns = [normalised(draw(weights)) for _ in range(K)]
    if draw(st.booleans()):
        columns[1] = columns[0]
    return np.stack(columns, axis=1)


def is_distribution(p) -> bool:
    return p.shape == (K,) and np.isfinite(p).all() and (p >= 0).all() and abs(p.sum() - 1) < 1e-9


@PROPERTY
@given(weights, weights, weights)
def test_tv_and_kl_bounds(a, b, c):
    p, q, r = normalised(a), normalised(b), normalised(c)
    tv = sk.total_variation(p, q)
    assert 0 <= tv <= 1 and tv == sk.total_variation(q, p) and sk.total_variation(p, p) == 0
    assert tv <= sk.total_variation(p, r) + sk.total_variation(r, q) + 1e-12  # a metric
    kl = sk.kl_divergence(p, q)
    assert not np.isnan(kl) and kl >= 0  # >= 0, or inf where q lacks mass p has
    assert sk.kl_divergence(p, p) == 0
    assert not np.isnan(sk.max_min_ratio(p)) and sk.max_min_ratio(p) >= 1


@PROPERTY
@given(annotated(), st.floats(0, 0.999), confusions(), st.randoms(use_true_random=False))
def test_estimates_are_distributions_or_none_and_ignore_sample_order(sample, threshold, confusion, random):
    predicted, confidence = sample
    estimates = sk.estimate_distributions(predicted, confidence, threshold, confusion)
    order = np.array(random.sample(range(predicted.size), predicted.size), dtype=np.int64)
    shuffled = sk.estimate_distributions(predicted[order], confidence[order], threshold, confusion)
    for name in sk.ESTIMATES:
        dist = estimates[name]
        # undefined exactly when there is nothing to count, never an all-zero or NaN vector
        empty = predicted.size == 0 or (name == "confident" and not (confidence >= threshold).any())
        assert (dist is None) == empty
        if dist is not None:
            assert is_distribution(dist)
            np.testing.assert_allclose(shuffled[name], dist, atol=1e-12)
            figures = sk.divergences(dist, np.full(K, 1 / K))
            assert 0 <= figures["tv"] <= 1 and figures["kl"] >= 0
        else:
            assert shuffled[name] is None and sk.divergences(dist, np.full(K, 1 / K))["tv"] is None


@PROPERTY
@given(annotated(min_size=1), st.floats(0, 0.999))
def test_perfect_annotator_estimates_are_the_empirical_frequencies(sample, threshold):
    """Known limit: an annotator that is always right (C = I measured on a test split it labels
    perfectly) gives argmax = corrected = the samples' class frequencies."""
    true, confidence = sample
    test_true = np.repeat(np.arange(K), 5)
    confusion = sk.confusion_matrix(test_true, test_true, K)
    np.testing.assert_array_equal(confusion, np.eye(K))
    estimates = sk.estimate_distributions(true, confidence, threshold, confusion)
    frequencies = np.bincount(true, minlength=K) / true.size
    np.testing.assert_allclose(estimates["argmax"], frequencies, atol=1e-12)
    np.testing.assert_allclose(estimates["corrected"], frequencies, atol=1e-12)
    if estimates["confident"] is not None:
        kept = true[confidence >= threshold]
        np.testing.assert_allclose(estimates["confident"], np.bincount(kept, minlength=K) / kept.size, atol=1e-12)


@PROPERTY
@given(weights, st.floats(0.02, 0.3), weights)
def test_corrected_inverts_an_invertible_confusion(q_weights, error, noise_weights):
    """Known limit: for exact argmax frequencies m = C q, the corrected estimate is q (C
    diagonally dominant: each class right with probability 1 - error >= 0.7)."""
    q = normalised(q_weights)
    confusion = (1 - error) * np.eye(K) + error * normalised(noise_weights)[:, None]
    np.testing.assert_allclose(sk.corrected_distribution(confusion @ q, confusion), q, atol=1e-9)


@PROPERTY
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=K, max_size=K), weights)
def test_projection_is_the_nearest_point_of_the_simplex(v, w):
    v = np.asarray(v)
    projected = sk.project_to_simplex(v)
    assert is_distribution(projected)
    np.testing.assert_allclose(sk.project_to_simplex(projected), projected, atol=1e-9)  # idempotent
    other = normalised(w)  # any point of the simplex is at least as far from v
    assert np.linalg.norm(v - projected) <= np.linalg.norm(v - other) * (1 + 1e-12) + 1e-9


@MONTE_CARLO
@given(st.lists(weights, min_size=1, max_size=1), st.integers(20, 400), st.floats(0, 0.999),
       st.integers(0, 2**31 - 1), st.randoms(use_true_random=False))
def test_tests_and_intervals_are_bounded_and_ignore_sample_order(mix, n, threshold, seed, random):
    """Every p-value is in (0, 1] or None with a reason; every interval in [0, 1]; the same
    counts in another order give the same numbers (the tests see counts, and draw from a seed)."""
    rng = np.random.default_rng(seed)
    reference = np.full(K, 1 / K)
    gan_true = rng.choice(K, n, p=normalised(mix[0]))
    wrong = rng.random(n) < 0.1
    predicted = np.where(wrong, (gan_true + 1) % K, gan_true)
    confidence = rng.random(n)
    test_true = np.repeat(np.arange(K), 12)
    test_predicted = np.where(rng.random(test_true.size) < 0.1, (test_true + 1) % K, test_true)
    test_confidence = rng.random(test_true.size)

    def run(gan_order, test_order):
        gan_cells = sk.cell_counts(sk.annotator_cells(predicted[gan_order], confidence[gan_order], threshold, K), K)
        test_cells = sk.annotator_cells(test_predicted[test_order], test_confidence[test_order], threshold, K)
        return sk.skew_tests(gan_cells, test_true[test_order], test_cells, reference, 0.05, 40, 40, 7)

    first = run(np.arange(n), np.arange(test_true.size))
    second = run(np.array(random.sample(range(n), n)), np.array(random.sample(range(test_true.size), test_true.size)))
    for name in sk.ESTIMATES:
        a, b = first["estimates"][name], second["estimates"][name]
        assert a["p_value"] == b["p_value"] and a["tv_interval"] == b["tv_interval"]
        if a["p_value"] is None:
            assert a["reason"]
        else:
            assert 0 < a["p_value"] <= 1 and not np.isnan(a["tv"])
            low, high = a["tv_interval"]
            assert 0 <= low <= high <= 1
            low_k, high_k = a["distribution_interval"]
            assert ((0 <= low_k) & (low_k <= high_k) & (high_k <= 1)).all()
