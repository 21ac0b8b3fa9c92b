"""Class-distribution skew of GAN samples (Santurkar, Schmidt, Madry 2017, section 3).

An annotator labels every GAN sample; the class distribution is estimated three ways:

``argmax``
    fraction of samples whose most probable class is k. Biased by annotator error.
``confident``
    the paper's protocol: only samples whose calibrated confidence is >= a threshold are
    counted. The filter keeps easy classes more often than hard ones, so it biases the counts
    in a class-dependent way; reported for comparison with the paper.
``corrected``
    black-box shift estimation (Lipton, Wang, Smola 2018): with C[i, j] = P(predicted i | true j)
    measured on held-out real images, the argmax frequencies m satisfy m = C q for the true
    class distribution q; solve by least squares and project q onto the probability simplex.
    Assumes the annotator errs on GAN images as it does on real ones (label shift only).

All distributions are (K,) float arrays summing to 1. Divergences are in nats.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

ESTIMATES = ("argmax", "confident", "corrected")


def class_frequencies(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(K,) fraction of ``labels`` equal to each class; all zeros when ``labels`` is empty."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(float)
    total = counts.sum()
    return counts / total if total else counts


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """TV(p, q) = 1/2 sum_k |p_k - q_k|, in [0, 1]."""
    return 0.5 * float(np.abs(np.asarray(p) - np.asarray(q)).sum())


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) = sum_k p_k log(p_k / q_k) in nats; ``inf`` when p puts mass where q has none.

    Called as KL(gan || real): finite whenever the real data has every class, even when the GAN
    dropped some (KL(real || gan) would be infinite for any dropped class).
    """
    p, q = np.asarray(p, float), np.asarray(q, float)
    support = p > 0
    if np.any(q[support] == 0):
        return float("inf")
    return float(np.sum(p[support] * np.log(p[support] / q[support])))


def max_min_ratio(p: np.ndarray) -> float:
    """Most frequent / least frequent class frequency; ``inf`` when a class never appears."""
    p = np.asarray(p, float)
    return float("inf") if p.min() <= 0 else float(p.max() / p.min())


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, K) column-stochastic C[i, j] = P(predicted = i | true = j).

    A class absent from ``true`` has no measured errors; its column is the identity column
    (no correction for it) so the matrix stays invertible.
    """
    joint = np.zeros((n_classes, n_classes))
    np.add.at(joint, (np.asarray(predicted), np.asarray(true)), 1.0)
    totals = joint.sum(axis=0)
    conditional = np.divide(joint, totals, out=np.eye(n_classes), where=totals > 0)
    return conditional


def project_to_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of ``v`` (K,) onto {q : q >= 0, sum q = 1} (Duchi et al. 2008)."""
    v = np.asarray(v, float)
    u = np.sort(v)[::-1]
    cumulative = np.cumsum(u) - 1.0
    rho = np.flatnonzero(u - cumulative / np.arange(1, v.shape[0] + 1) > 0)[-1]
    return np.maximum(v - cumulative[rho] / (rho + 1.0), 0.0)


def corrected_distribution(predicted_freq: np.ndarray, confusion: np.ndarray) -> np.ndarray:
    """Black-box shift estimate: q minimising ||C q - m||_2, projected onto the simplex."""
    q, *_ = np.linalg.lstsq(confusion, np.asarray(predicted_freq, float), rcond=None)
    return project_to_simplex(q)


def estimate_distributions(
    predicted: np.ndarray,
    confidence: np.ndarray,
    threshold: float,
    confusion: np.ndarray,
) -> dict[str, np.ndarray]:
    """The three class-distribution estimates of one set of annotated samples.

    Parameters
    ----------
    predicted : (N,) annotator argmax class of each sample.
    confidence : (N,) calibrated probability of that class, in [0, 1].
    threshold : minimum confidence for the ``confident`` estimate.
    confusion : (K, K) annotator confusion P(predicted | true) on held-out real images.
    """
    n_classes = confusion.shape[0]
    argmax = class_frequencies(predicted, n_classes)
    return {
        "argmax": argmax,
        "confident": class_frequencies(predicted[confidence >= threshold], n_classes),
        "corrected": corrected_distribution(argmax, confusion),
    }


def divergences(estimate: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Skew figures of one estimated distribution against the real one."""
    return {
        "tv": total_variation(estimate, reference),
        "kl": kl_divergence(estimate, reference),
        "max_min_ratio": max_min_ratio(estimate),
    }


def chi_square_two_sample(gan_labels: np.ndarray, real_labels: np.ndarray, n_classes: int) -> dict:
    """Chi-square test of homogeneity: do GAN and held-out real images get the same label mix?

    Both label sets come from the same annotator, so annotator error affects both alike and
    the test needs no correction; the real sample's own noise is part of the test. Classes
    absent from both are dropped (they carry no information).
    """
    table = np.stack([np.bincount(gan_labels, minlength=n_classes), np.bincount(real_labels, minlength=n_classes)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return {"chi2": float("nan"), "dof": 0, "p_value": float("nan")}
    result = stats.chi2_contingency(table, correction=False)
    return {"chi2": float(result.statistic), "dof": int(result.dof), "p_value": float(result.pvalue)}


def bootstrap_estimates(
    predicted: np.ndarray,
    confidence: np.ndarray,
    real_true: np.ndarray,
    real_predicted: np.ndarray,
    threshold: float,
    reference: np.ndarray,
    n_resamples: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Bootstrap replicates of each estimate and its divergences from ``reference``.

    Each replicate resamples the GAN samples and, independently, the held-out real images
    that give the confusion matrix, so the corrected estimate's CI includes the uncertainty
    of the annotator's measured error rates.

    Returns ``{estimate: (B, K) distributions}`` and ``{estimate + "_" + figure: (B,)}``.
    """
    rng = np.random.default_rng(seed)
    n_classes = reference.shape[0]
    n_gan, n_real = predicted.shape[0], real_true.shape[0]
    out: dict[str, list] = {}
    for _ in range(n_resamples):
        g = rng.integers(0, n_gan, n_gan)
        r = rng.integers(0, n_real, n_real)
        confusion = confusion_matrix(real_true[r], real_predicted[r], n_classes)
        for name, dist in estimate_distributions(predicted[g], confidence[g], threshold, confusion).items():
            out.setdefault(name, []).append(dist)
            for figure, value in divergences(dist, reference).items():
                out.setdefault(f"{name}_{figure}", []).append(value)
    return {key: np.asarray(values) for key, values in out.items()}


def perfect_generator_null(
    real_true: np.ndarray,
    real_predicted: np.ndarray,
    real_confidence: np.ndarray,
    threshold: float,
    reference: np.ndarray,
    n_samples: int,
    n_repeats: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """TV to ``reference`` that each estimate reports for a generator with no skew at all.

    A perfect generator's samples are simulated by drawing ``n_samples`` classes from
    ``reference`` and, for each, the annotator's output on a random held-out real image of that
    class (its prediction and confidence). The confusion matrix is re-estimated from a bootstrap
    of the held-out images each time. The returned (n_repeats,) TVs per estimate are the
    finite-sample baseline: a GAN whose TV lies inside them is indistinguishable from real.
    """
    rng = np.random.default_rng(seed)
    n_classes = reference.shape[0]
    members = [np.flatnonzero(real_true == k) for k in range(n_classes)]
    if any(m.size == 0 for m in members):
        missing = [k for k, m in enumerate(members) if m.size == 0]
        raise ValueError(f"held-out real images lack classes {missing}: cannot simulate a perfect generator")
    out: dict[str, list] = {name: [] for name in ESTIMATES}
    n_real = real_true.shape[0]
    for _ in range(n_repeats):
        counts = rng.multinomial(n_samples, reference)
        rows = np.concatenate([rng.choice(members[k], c) for k, c in enumerate(counts)])
        r = rng.integers(0, n_real, n_real)
        confusion = confusion_matrix(real_true[r], real_predicted[r], n_classes)
        estimates = estimate_distributions(real_predicted[rows], real_confidence[rows], threshold, confusion)
        for name, dist in estimates.items():
            out[name].append(total_variation(dist, reference))
    return {name: np.asarray(values) for name, values in out.items()}

