"""The classifier two-sample statistics (audit.metrics.two_sample): the JS bound on analytic cases,
the exact binomial test, Holm's adjustment and the ladder verdict's error rate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from audit.metrics import two_sample as ts


def exact_js(distance: float) -> float:
    """JS(N(0, 1), N(distance, 1)) in nats by adaptive quadrature of its definition
    (independent of the module: 1/2 KL(P || M) + 1/2 KL(Q || M), M = (P + Q) / 2)."""
    p, q = stats.norm(0, 1).pdf, stats.norm(distance, 1).pdf

    def integrand(x):
        m = 0.5 * (p(x) + q(x))
        out = 0.0
        for f in (p(x), q(x)):
            if f > 0:
                out += 0.5 * f * math.log(f / m)
        return out

    value, _ = integrate.quad(integrand, -15, 15 + distance, limit=400, epsabs=1e-12)
    return value


def gaussian_grid(distance: float, optimal: bool = True):
    """The two classes as weighted quadrature nodes: real N(0, 1) (label False) and GAN
    N(distance, 1) (True), with the Bayes-optimal P(GAN | x) = q / (p + q) (or a blurred one)."""
    x = np.linspace(-15, 15 + distance, 20001)
    dx = x[1] - x[0]
    p, q = stats.norm(0, 1).pdf(x), stats.norm(distance, 1).pdf(x)
    prob = q / (p + q)
    if not optimal:  # a worse discriminator: the optimal log-odds halved
        prob = 1 / (1 + np.exp(-0.5 * np.log(q / p)))
    is_fake = np.repeat([False, True], x.size)
    return np.concatenate([prob, prob]), is_fake, np.concatenate([p * dx, q * dx])


@pytest.mark.parametrize("distance", [1.0, 3.0])
def test_js_bound_is_attained_by_the_bayes_optimal_discriminator(distance):
    js = exact_js(distance)
    prob, is_fake, weights = gaussian_grid(distance)
    bound = float(ts.js_lower_bound(prob, is_fake, weights))
    assert bound == pytest.approx(js, abs=1e-6)
    # and the closed forms' ballpark: 0 < JS < log 2, larger for the farther pair
    assert 0 < js < math.log(2)


def test_js_bound_of_a_worse_discriminator_is_strictly_below_js():
    js = exact_js(1.0)
    prob, is_fake, weights = gaussian_grid(1.0, optimal=False)
    bound = float(ts.js_lower_bound(prob, is_fake, weights))
    assert 0 < bound < js - 1e-3


def test_js_distances_are_ordered_and_match_a_monte_carlo_estimate():
    assert exact_js(1.0) < exact_js(3.0)
    # the bound on finite held-out samples of the optimal V is within Monte Carlo error of JS
    rng = np.random.default_rng(0)
    n, d = 40000, 1.0
    x = np.concatenate([rng.normal(0, 1, n), rng.normal(d, 1, n)])
    p, q = stats.norm(0, 1).pdf(x), stats.norm(d, 1).pdf(x)
    is_fake = np.repeat([False, True], n)
    per_image = ts.per_image_cross_entropy(q / (p + q), is_fake)
    se = per_image.std() / math.sqrt(2 * n)
    assert abs(float(ts.js_lower_bound(q / (p + q), is_fake)) - exact_js(d)) < 4 * se


def test_constant_half_gives_a_zero_bound_and_confident_mistakes_a_negative_one():
    is_fake = np.array([False, True, False, True])
    assert float(ts.js_lower_bound(np.full(4, 0.5), is_fake)) == pytest.approx(0.0, abs=1e-15)
    assert float(ts.js_lower_bound(np.array([0.9, 0.1, 0.9, 0.1]), is_fake)) < 0


def test_balanced_mean_weights_each_class_half_whatever_the_counts():
    values = np.array([1.0, 1.0, 1.0, 3.0])
    assert float(ts.balanced_mean(values, np.array([False, False, False, True]))) == pytest.approx(2.0)


def test_binomial_p_value_by_hand():
    # P(Bin(10, 1/2) >= 8) = (45 + 10 + 1) / 1024
    assert ts.binomial_p_value(8, 10) == pytest.approx(56 / 1024)
    assert ts.binomial_p_value(0, 10) == pytest.approx(1.0)
    assert ts.binomial_p_value(10, 10) == pytest.approx(1 / 1024)
    with pytest.raises(ValueError):
        ts.binomial_p_value(11, 10)


def test_accuracy_test_counts_decisions_above_one_half():
    prob = np.array([0.9, 0.2, 0.6, 0.4, 0.5])
    is_fake = np.array([True, False, False, True, False])
    out = ts.accuracy_test(prob, is_fake)
    # correct: 0.9 fake yes; 0.2 real yes; 0.6 real no; 0.4 fake no; 0.5 -> real yes
    assert (out["correct"], out["n_test"]) == (3, 5)
    assert out["p_value"] == pytest.approx(ts.binomial_p_value(3, 5))


def test_accuracy_test_error_rate_under_h0_is_at_most_alpha():
    rng = np.random.default_rng(1)
    n, alpha, runs = 60, 0.05, 4000
    is_fake = np.repeat([False, True], n // 2)
    rejections = sum(ts.accuracy_test(rng.random(n), is_fake)["p_value"] < alpha for _ in range(runs))
    # the exact test's size at n = 60 is P(Bin(60, 1/2) >= 38) = 0.026 (discreteness makes it conservative)
    size = ts.binomial_p_value(int(ts.critical_accuracy(n, alpha) * n), n)
    assert size <= alpha
    assert abs(rejections / runs - size) < 4 * math.sqrt(size * (1 - size) / runs)


def test_critical_accuracy_is_the_smallest_rejecting_accuracy():
    for n in (20, 224, 900):
        crit = round(ts.critical_accuracy(n, 0.05) * n)
        assert ts.binomial_p_value(crit, n) < 0.05 <= ts.binomial_p_value(crit - 1, n)


def rung(label, parameters, p, accuracy=0.6):
    return {"label": label, "parameters": parameters, "p_value": p, "accuracy": accuracy,
            "accuracy_interval": [accuracy - 0.05, accuracy + 0.05]}


def test_ladder_verdict_family_wise_error_rate_under_the_global_null():
    rng = np.random.default_rng(2)
    alpha, runs = 0.05, 4000
    for dependent in (False, True):
        rejected = 0
        for _ in range(runs):
            p = np.full(4, rng.random()) if dependent else rng.random(4)
            rejected += ts.ladder_verdict([rung(f"r{i}", 10 ** i, p[i]) for i in range(4)], alpha).rejected
        # Bonferroni: <= alpha for any dependence (equal to alpha / 4 when the rungs agree)
        assert rejected / runs < alpha + 4 * math.sqrt(alpha * (1 - alpha) / runs)
        if dependent:
            assert rejected / runs < alpha / 4 + 4 * math.sqrt(alpha / 4 / runs)


def test_ladder_verdict_names_the_smallest_rung_that_holm_rejects():
    rungs = [rung("logistic regression", 130, 0.4, 0.51), rung("CNN x0.25", 6010, 1e-6, 0.7),
             rung("CNN", 93154, 1e-9, 0.8)]
    verdict = ts.ladder_verdict(rungs, 0.05)
    assert verdict.rejected and verdict.state == "flagged"
    assert verdict.p_value == pytest.approx(3e-9)
    assert "6.0k-parameter CNN x0.25" in verdict.text and "0.70" in verdict.text
    assert verdict.extra["holm_adjusted"]["logistic regression"] == pytest.approx(0.4)


def test_ladder_verdict_not_rejected_and_undefined():
    verdict = ts.ladder_verdict([rung("a", 130, 0.3, 0.52), rung("b", 6010, 0.03, 0.56)], 0.05)
    assert verdict.rejected is False and verdict.text.startswith("not told apart: best held-out accuracy 0.56")
    undefined = ts.ladder_verdict([{"label": "a", "parameters": 130, "p_value": None, "reason": "too few"}], 0.05)
    assert undefined.p_value is None and undefined.state == "undefined" and "too few" in undefined.text


def test_bootstrap_interval_contains_zero_without_signal_and_excludes_it_with_signal():
    rng = np.random.default_rng(3)
    n = 400
    is_fake = np.repeat([False, True], n // 2)
    noise = np.clip(0.5 + 0.02 * rng.standard_normal((3, n)), 0, 1)
    null = ts.bootstrap_ladder_rung(noise, is_fake, 300, np.random.default_rng(0))
    assert null["js_interval"][0] < 0 < null["js_interval"][1]
    signal = np.clip(np.where(is_fake, 0.7, 0.3) + 0.05 * rng.standard_normal((3, n)), 0, 1)
    told = ts.bootstrap_ladder_rung(signal, is_fake, 300, np.random.default_rng(0))
    assert told["js_interval"][0] > 0 and told["accuracy_interval"][0] > 0.9


def test_format_parameters():
    assert [ts.format_parameters(n) for n in (130, 6010, 23538, 93154, 11_200_000)] == \
        ["130", "6.0k", "24k", "93k", "11M"]


def test_platt_fit_recovers_the_posterior_log_odds():
    # real scores N(-1, 1), GAN scores N(1, 1), equal counts: log-odds 2 s exactly
    rng = np.random.default_rng(4)
    n = 20000
    scores = np.concatenate([rng.normal(-1, 1, n), rng.normal(1, 1, n)])
    slope, intercept = ts.platt_fit(scores, np.repeat([False, True], n))
    assert slope == pytest.approx(2.0, abs=0.08) and intercept == pytest.approx(0.0, abs=0.05)


def test_platt_intercept_decides_indistinguishable_images_by_the_prior():
    """The blank case: 30% of the GAN's images are separable (large scores), the rest and every
    real image get scores that carry no information (an overfitted network's noise). Platt's
    intercept sends most uninformative ones to 'real' (a monotone map of noisy scores cannot send
    them all: its slope must stay positive for the separable ones), so accuracy rises from the
    raw sign's 0.5 + 0.3 / 4 = 0.575 (what temperature scaling keeps: digits decided at random)
    towards the Bayes limit 0.5 + 0.3 / 2 = 0.65, never above it."""
    rng = np.random.default_rng(5)
    n = 4000
    is_fake = np.repeat([False, True], n)
    blank = np.zeros(2 * n, dtype=bool)
    blank[n:n + int(0.3 * n)] = True
    scores = np.where(blank, 8.0, 0.0) + rng.normal(0, 1, 2 * n)
    half = np.arange(2 * n) % 2 == 0  # fit on one half, score the other
    slope, intercept = ts.platt_fit(scores[half], is_fake[half])
    platt = ts.accuracy_test(ts.platt_prob_fake(scores[~half], slope, intercept), is_fake[~half])["accuracy"]
    raw = ts.accuracy_test(ts.platt_prob_fake(scores[~half], 1.0, 0.0), is_fake[~half])["accuracy"]
    se = math.sqrt(0.65 * 0.35 / n)
    assert raw == pytest.approx(0.575, abs=3 * se)
    assert raw + 3 * se < platt <= 0.65 + 3 * se
