"""Classifier two-sample tests: can a finite discriminator tell a GAN's samples from real images?

A discriminator is trained to separate real images (label 0) from a GAN's samples (label 1) and
scored on *held-out*, balanced sets: n real test images and n GAN samples it never trained on.
Every function here takes its per-image outputs, as float64 probabilities ``prob_fake`` (P(GAN
| x), the discriminator's calibrated belief that image x is a sample) with (N,) bool ``is_fake``.

* **Accuracy test** (Lopez-Paz & Oquab 2017): held-out accuracy t; under H0 (the GAN's
  distribution is the real one) no classifier fixed before the test set does better than
  chance, and n_test t ~ Binomial(n_test, 1/2) (for balanced sets at most that spread: the
  test is then conservative, see TWO_SAMPLE.md). One-sided exact p = P(Bin(n_test, 1/2) >= n_test t)
  (:func:`accuracy_test`).
* **JS lower bound**: for balanced classes the minimal expected cross-entropy over all
  discriminators is log 2 - JS(P_real, P_gan) (nats), attained by the optimal V(x) = P_real(x) /
  (P_real(x) + P_gan(x)); any discriminator's held-out cross-entropy CE therefore gives
  JS >= log 2 - CE (:func:`js_lower_bound`; derivation in TWO_SAMPLE.md). Reported clipped at 0,
  with a joint bootstrap interval over test images and training seeds of the unclipped value
  (:func:`bootstrap_ladder_rung`), so "the interval's lower end is above 0" is a real claim.
* **The ladder** of capacities is one family of tests: Holm's step-down adjustment
  (:func:`holm`) per capacity, and the global H0 "no discriminator on the ladder tells them
  apart" rejected when the smallest Holm-adjusted p-value, m min p (Bonferroni), is below alpha
  (:func:`ladder_verdict`): family-wise error <= alpha whatever the dependence between rungs.

Units: probabilities in [0, 1], cross-entropies and JS in nats (log 2 = 0.693 is the maximum JS).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from audit.metrics.bootstrap import percentile_interval
from audit.metrics.verdict import Verdict, holm

LOG2 = math.log(2.0)
#: probabilities are clipped to [EPS, 1 - EPS] before the logarithm (a confident mistake costs
#: at most -log(EPS) = 27.6 nats instead of infinity)
EPS = 1e-12
LEVEL = 0.95


def _check(prob_fake: np.ndarray, is_fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    prob = np.asarray(prob_fake, dtype=np.float64)
    label = np.asarray(is_fake, dtype=bool)
    if prob.shape[-1:] != label.shape or label.ndim != 1 or label.size == 0:
        raise ValueError(f"prob_fake {prob.shape} and is_fake {label.shape}: need (..., N) and (N,), N >= 1")
    if np.isnan(prob).any() or (prob < 0).any() or (prob > 1).any():
        raise ValueError("prob_fake must hold probabilities in [0, 1]")
    return prob, label


def per_image_cross_entropy(prob_fake: np.ndarray, is_fake: np.ndarray) -> np.ndarray:
    """(..., N) -log P(true label | x) in nats: -log prob_fake for a sample, -log(1 - prob_fake)
    for a real image."""
    prob, label = _check(prob_fake, is_fake)
    p_true = np.where(label, prob, 1.0 - prob)
    return -np.log(np.clip(p_true, EPS, 1.0))


def balanced_mean(values: np.ndarray, is_fake: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(...,) the mean of (..., N) ``values`` with the real and the GAN images weighted 1/2 each
    (the balanced mixture), whatever their counts; ``weights`` (N,) weight images within their
    class (quadrature weights in the analytic tests; None: equal)."""
    label = np.asarray(is_fake, dtype=bool)
    w = np.ones(label.size) if weights is None else np.asarray(weights, dtype=np.float64)
    if not label.any() or label.all():
        raise ValueError("balanced_mean: need both real (False) and GAN (True) images")
    fake = np.sum(values * (w * label), axis=-1) / np.sum(w[label])
    real = np.sum(values * (w * ~label), axis=-1) / np.sum(w[~label])
    return 0.5 * (fake + real)


def cross_entropy(prob_fake: np.ndarray, is_fake: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(...,) balanced held-out cross-entropy (nats) of the discriminator's probabilities."""
    return balanced_mean(per_image_cross_entropy(prob_fake, is_fake), is_fake, weights)


def js_lower_bound(prob_fake: np.ndarray, is_fake: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(...,) log 2 - CE, unclipped (negative when the discriminator does worse than the constant
    1/2): a lower bound on JS(P_real, P_gan) in nats when the probabilities were fixed before
    these images were seen. Equality for the optimal discriminator on the exact mixture."""
    return LOG2 - cross_entropy(prob_fake, is_fake, weights)


def platt_fit(scores: np.ndarray, is_fake: np.ndarray, ridge: float = 1.0) -> tuple[float, float]:
    """(slope a, intercept b) of P(GAN | x) = sigmoid(a s + b) fitted by balanced maximum
    likelihood to (N,) scores ``s`` (the discriminator's logit of GAN minus real) of held-out
    calibration images (Platt 1999), with a ridge ``ridge`` a'^2 / 2N on the slope a' of the
    standardised scores (a N(0, 1/ridge) prior: finite when the scores separate, negligible
    for large N). The intercept matters: temperature scaling alone keeps the sign of an overfitted
    discriminator's logits, so on images it cannot tell apart it decides at random instead of
    by the class prior it learned (TWO_SAMPLE.md, "calibration")."""
    from scipy.optimize import minimize

    z = np.asarray(scores, dtype=np.float64)
    label = np.asarray(is_fake, dtype=bool)
    scale = max(float(np.std(z)), 1e-12)

    def loss(theta):
        logit = theta[0] * z / scale + theta[1]
        # -log sigmoid(logit) for a sample, -log sigmoid(-logit) for a real image, stable
        ce = np.logaddexp(0.0, np.where(label, -logit, logit))
        return float(balanced_mean(ce, label)) + ridge * theta[0] ** 2 / (2 * z.size)

    fit = minimize(loss, np.zeros(2), method="L-BFGS-B", options={"gtol": 1e-10, "ftol": 1e-14})
    return float(fit.x[0] / scale), float(fit.x[1])


def platt_prob_fake(scores: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """(N,) sigmoid(slope s + intercept), computed stably."""
    logit = slope * np.asarray(scores, dtype=np.float64) + intercept
    return np.exp(-np.logaddexp(0.0, -logit))


def isotonic_prob_fake(scores: np.ndarray, is_fake: np.ndarray, new_scores: np.ndarray) -> np.ndarray:
    """(M,) P(GAN | x) of ``new_scores`` by isotonic regression (pool-adjacent-violators, Zadrozny
    & Elkan 2002) of the (N,) calibration images' labels on their scores, balanced (each class
    weighted 1/2), clipped to [1/(N + 2), 1 - 1/(N + 2)] so no held-out image costs infinite
    cross-entropy. Unlike Platt's sigmoid it can be flat over a range of scores: where a
    discriminator's scores carry no information (the blank case's digits) it returns their
    class share instead of a slope through 1/2 (TWO_SAMPLE.md, "Calibration")."""
    from sklearn.isotonic import IsotonicRegression

    z = np.asarray(scores, dtype=np.float64)
    label = np.asarray(is_fake, dtype=bool)
    weights = np.where(label, 0.5 / max(1, label.sum()), 0.5 / max(1, (~label).sum()))
    floor = 1.0 / (z.size + 2)
    fit = IsotonicRegression(y_min=floor, y_max=1.0 - floor, out_of_bounds="clip").fit(z, label.astype(float), weights)
    return fit.predict(np.asarray(new_scores, dtype=np.float64))


def accuracy_test(prob_fake: np.ndarray, is_fake: np.ndarray) -> dict:
    """Held-out accuracy of the decisions ``prob_fake > 1/2`` and the one-sided exact binomial
    p-value P(Binomial(N, 1/2) >= correct) of H0 "the discriminator does no better than chance"."""
    prob, label = _check(prob_fake, is_fake)
    if prob.ndim != 1:
        raise ValueError("accuracy_test: one (N,) set of probabilities")
    correct = int(np.count_nonzero((prob > 0.5) == label))
    n = int(label.size)
    return {"correct": correct, "n_test": n, "accuracy": correct / n, "p_value": binomial_p_value(correct, n)}


def binomial_p_value(correct: int, n: int) -> float:
    """P(Binomial(n, 1/2) >= correct): exact, one-sided."""
    if not 0 <= correct <= n or n < 1:
        raise ValueError(f"binomial_p_value: need 0 <= correct <= n, n >= 1; got {correct}, {n}")
    return float(min(1.0, stats.binom.sf(correct - 1, n, 0.5)))


def critical_accuracy(n: int, alpha: float) -> float:
    """The smallest accuracy whose binomial p-value is below ``alpha`` on n test images."""
    correct = int(stats.binom.isf(alpha, n, 0.5))  # P(X > correct) <= alpha
    while correct > 0 and binomial_p_value(correct, n) < alpha:
        correct -= 1
    while binomial_p_value(correct, n) >= alpha and correct < n:
        correct += 1
    return correct / n


def bootstrap_ladder_rung(seed_probs: np.ndarray, is_fake: np.ndarray, n_boot: int,
                          rng: np.random.Generator, seed_decision_probs: np.ndarray | None = None) -> dict:
    """Joint bootstrap of one discriminator over its training seeds and the test images.

    ``seed_probs``: (S, N) calibrated P(GAN | x) of the S seeds' discriminators on the N test
    images. The headline discriminator is their average (an ensemble, itself a classifier fixed
    before the test set). A replicate draws S seeds with replacement and, within each class, the
    test images with replacement, and recomputes the ensemble's accuracy and log 2 - CE. Returns
    the 95% percentile intervals ``accuracy_interval`` and ``js_interval`` (unclipped bound),
    and ``js_replicates_above_zero`` (share of replicates with a positive bound).
    ``seed_decision_probs`` (S, N), if given: the probabilities whose ensemble decides (> 1/2)
    for the accuracy (the ladder decides by isotonic calibration and bounds JS by Platt's; both
    resampled with the same seeds and images).
    """
    probs, label = _check(seed_probs, is_fake)
    decide = probs if seed_decision_probs is None else _check(seed_decision_probs, is_fake)[0]
    if probs.ndim != 2 or n_boot < 1 or decide.shape != probs.shape:
        raise ValueError("bootstrap_ladder_rung: need (S, N) probabilities (both alike) and n_boot >= 1")
    n_seeds = probs.shape[0]
    fake_rows, real_rows = np.flatnonzero(label), np.flatnonzero(~label)
    acc, js = np.empty(n_boot), np.empty(n_boot)
    for b in range(n_boot):
        seeds = rng.integers(0, n_seeds, n_seeds)
        rows = np.concatenate([rng.choice(real_rows, real_rows.size), rng.choice(fake_rows, fake_rows.size)])
        ensemble = probs[seeds][:, rows].mean(axis=0)
        decided = decide[seeds][:, rows].mean(axis=0) > 0.5
        acc[b] = balanced_mean((decided == label[rows]).astype(np.float64), label[rows])
        js[b] = js_lower_bound(ensemble, label[rows])
    return {"accuracy_interval": percentile_interval(acc, LEVEL), "js_interval": percentile_interval(js, LEVEL),
            "js_replicates_above_zero": float(np.mean(js > 0))}


def format_parameters(n: int) -> str:
    """130, 6.0k, 93k, 11M: parameter counts as the report prints them."""
    if n < 1000:
        return f"{n}"
    if n < 1_000_000:
        return f"{n / 1000:.1f}k" if n < 10_000 else f"{n / 1000:.0f}k"
    return f"{n / 1e6:.2g}M"


def ladder_verdict(rungs: list[dict], alpha: float) -> Verdict:
    """The verdict "finite discriminators" from the ladder's rungs.

    Each rung: ``label`` (e.g. "CNN x0.25"), ``parameters``, ``accuracy``, ``p_value`` (its
    accuracy test) and optionally ``accuracy_interval``. H0: no discriminator on the ladder tells
    the samples from real images; p = m min_i p_i (Bonferroni, equal to the smallest Holm-adjusted
    p-value), so the verdict's error rate is <= alpha. The finding names the smallest-capacity
    rung that Holm's procedure rejects."""
    common = dict(test="discriminators.ladder", title="finite discriminators",
                  hypothesis="no discriminator on the ladder tells the GAN's samples from real images",
                  alpha=alpha, finding="told apart", null_finding="not told apart")
    usable = [r for r in rungs if r.get("p_value") is not None]
    if not usable:
        reasons = "; ".join(sorted({r.get("reason", "no test ran") for r in rungs})) or "empty ladder"
        return Verdict(p_value=None, reason=reasons, **common)
    adjusted = holm([r["p_value"] for r in usable])
    p = float(adjusted.min())
    m = len(usable)
    method = (f"classifier two-sample test (Lopez-Paz & Oquab 2017): exact one-sided binomial test of each held-out "
              f"accuracy; {m} capacities combined by Holm's step-down procedure (the global p-value is its smallest "
              "adjusted p, m min p, i.e. Bonferroni)")
    rejected = [(r, a) for r, a in zip(usable, adjusted) if a < alpha]
    if rejected:
        rung, _ = min(rejected, key=lambda ra: ra[0]["parameters"])
        key = (f"by a {format_parameters(rung['parameters'])}-parameter {rung['label']} (accuracy "
               f"{rung['accuracy']:.2f}), the smallest that does")
    else:
        rung = max(usable, key=lambda r: r["accuracy"])
        key = (f"best held-out accuracy {rung['accuracy']:.2f} ({format_parameters(rung['parameters'])}-parameter "
               f"{rung['label']})")
    interval = rung.get("accuracy_interval")
    return Verdict(p_value=p, key_number=key, estimate=float(rung["accuracy"]),
                   interval=None if interval is None else tuple(interval), method=method,
                   extra={"holm_adjusted": {r["label"]: float(a) for r, a in zip(usable, adjusted)},
                          "capacities": m, "estimate_is": f"held-out accuracy of the {rung['label']}"},
                   **common)
