"""Skew metrics against values computed by hand, and the estimators against planted truth."""

import math

import numpy as np
import pytest

from audit.metrics import skew as sk


def test_total_variation_by_hand():
    # |0.5-0.25| + |0.5-0.25| + |0-0.5| = 1.0, halved
    assert sk.total_variation([0.5, 0.5, 0.0], [0.25, 0.25, 0.5]) == pytest.approx(0.5)
    assert sk.total_variation([0.2, 0.8], [0.2, 0.8]) == 0.0


def test_kl_divergence_by_hand():
    # 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75)
    expected = 0.5 * math.log(2) + 0.5 * math.log(2 / 3)
    assert sk.kl_divergence([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected)
    # a dropped class in p costs nothing; mass where q has none is infinite
    assert sk.kl_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(math.log(2))
    assert sk.kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf


def test_max_min_ratio_by_hand():
    assert sk.max_min_ratio([0.3, 0.6, 0.1]) == pytest.approx(6.0)
    assert sk.max_min_ratio([0.5, 0.5, 0.0]) == math.inf


def test_class_frequencies():
    np.testing.assert_allclose(sk.class_frequencies(np.array([0, 0, 2, 2, 2, 1]), 4), [2 / 6, 1 / 6, 3 / 6, 0])


def test_confusion_matrix_is_p_predicted_given_true():
    true = np.array([0, 0, 0, 0, 1, 1])
    pred = np.array([0, 0, 0, 1, 1, 1])
    c = sk.confusion_matrix(true, pred, 3)
    # class 0: 3 of 4 right, 1 predicted as 1; class 1 always right; class 2 unseen -> identity column
    np.testing.assert_allclose(c, [[0.75, 0, 0], [0.25, 1, 0], [0, 0, 1]])
    np.testing.assert_allclose(c.sum(axis=0), 1)


def test_project_to_simplex():
    np.testing.assert_allclose(sk.project_to_simplex(np.array([0.2, 0.3, 0.5])), [0.2, 0.3, 0.5])
    # (1.2, -0.2): clipping the negative coordinate and shifting gives (1, 0)
    np.testing.assert_allclose(sk.project_to_simplex(np.array([1.2, -0.2])), [1.0, 0.0])
    # (0.6, 0.6, -0.5): drop the last, split the excess 0.2 equally
    np.testing.assert_allclose(sk.project_to_simplex(np.array([0.6, 0.6, -0.5])), [0.5, 0.5, 0.0])


def test_corrected_distribution_inverts_known_confusion():
    confusion = np.array([[0.9, 0.2], [0.1, 0.8]])
    truth = np.array([0.3, 0.7])
    observed = confusion @ truth  # (0.41, 0.59)
    np.testing.assert_allclose(sk.corrected_distribution(observed, confusion), truth, atol=1e-12)


def test_confident_filter_biases_and_correction_does_not():
    """Planted truth: class 1 is hard for the annotator (often unconfident, sometimes wrong)."""
    rng = np.random.default_rng(0)
    truth = np.array([0.3, 0.5, 0.2])
    n = 200_000
    labels = rng.choice(3, n, p=truth)
    wrong = rng.random(n) < np.array([0.02, 0.15, 0.02])[labels]
    predicted = np.where(wrong, (labels + 1) % 3, labels)
    confidence = np.where(rng.random(n) < np.array([0.95, 0.5, 0.95])[labels], 0.99, 0.6)
    test_true = rng.choice(3, 50_000, p=[1 / 3] * 3)
    test_wrong = rng.random(50_000) < np.array([0.02, 0.15, 0.02])[test_true]
    test_pred = np.where(test_wrong, (test_true + 1) % 3, test_true)
    confusion = sk.confusion_matrix(test_true, test_pred, 3)
    estimates = sk.estimate_distributions(predicted, confidence, 0.9, confusion)
    assert sk.total_variation(estimates["corrected"], truth) < 0.01
    assert sk.total_variation(estimates["argmax"], truth) > 0.05
    assert sk.total_variation(estimates["confident"], truth) > 0.1


def test_chi_square_two_sample_matches_hand_computation():
    gan = np.array([0] * 30 + [1] * 10)
    real = np.array([0] * 20 + [1] * 20)
    # table [[30, 10], [20, 20]], expected [[25, 15], [25, 15]]
    expected_stat = 25 / 25 + 25 / 15 + 25 / 25 + 25 / 15
    result = sk.chi_square_two_sample(gan, real, 2)
    assert result["chi2"] == pytest.approx(expected_stat)
    assert result["dof"] == 1


def test_bootstrap_interval_covers_planted_value():
    rng = np.random.default_rng(1)
    truth = np.array([0.5, 0.25, 0.25])
    predicted = rng.choice(3, 5000, p=truth)
    test_true = np.repeat(np.arange(3), 200)
    replicates = sk.bootstrap_estimates(predicted, np.ones(5000), test_true, test_true.copy(), 0.9, truth, 300, 0)
    low = np.percentile(replicates["argmax"], 2.5, axis=0)
    high = np.percentile(replicates["argmax"], 97.5, axis=0)
    assert np.all((low <= truth) & (truth <= high))
    # binomial standard error of p=0.5 at n=5000 is 0.0071: the interval is about +-1.96 of it
    assert (high[0] - low[0]) == pytest.approx(2 * 1.96 * 0.00707, rel=0.2)


def test_perfect_generator_null_is_finite_sample_tv():
    """With a perfect annotator the null TV is the multinomial TV: E ~ sum sqrt(2 p(1-p) / (pi n)) / 2."""
    reference = np.array([0.25, 0.25, 0.5])
    test_true = np.repeat(np.arange(3), 100)
    null = sk.perfect_generator_null(test_true, test_true.copy(), np.ones(300), 0.9, reference, 2000, 400, 0)
    expected = 0.5 * sum(math.sqrt(2 * p * (1 - p) / (math.pi * 2000)) for p in reference)
    assert null["argmax"].mean() == pytest.approx(expected, rel=0.15)
