"""Inception-style score (Salimans et al. 2016) from a classifier's class probabilities.

    IS = exp( E_x KL( p(y|x) || p(y) ) ),  p(y) = E_x p(y|x),

for (N, K) rows ``p(y|x)``; here ``p(y|x)`` is the domain annotator's *calibrated* softmax (the
label stage's ``p_0 .. p_{K-1}``), not an ImageNet Inception network's, hence "inception-style".
Range [1, K]. It rewards confident predictions (low entropy of each row) and a uniform mix of
classes (high entropy of p(y)), so a generator emitting one fixed, confidently classified image
per class scores close to K while having learnt almost nothing: ``FEATURE_METRICS.md`` and the
``one_per_class`` control show it. Compare it only with the real data's own score.

``0 log 0 = 0`` (``scipy.special.rel_entr``), so one-hot rows are allowed. With ``splits``
> 1 the rows are cut into consecutive blocks ``[i N // s, (i + 1) N // s)`` (torch-fidelity's
cut) and the mean and the standard deviation (``ddof``) of the per-block scores are returned.
"""

from __future__ import annotations

import numpy as np
from scipy.special import rel_entr


def check_probabilities(probs: np.ndarray, where: str = "probabilities", atol: float = 1e-6) -> np.ndarray:
    """``probs`` as (N, K) float64, N >= 1, K >= 2, entries >= 0, rows summing to 1 within ``atol``;
    a ValueError naming ``where`` otherwise."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] < 1 or probs.shape[1] < 2:
        raise ValueError(f"{where}: expected (N, K) class probabilities with K >= 2, got shape {probs.shape}")
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise ValueError(f"{where}: probabilities must be finite and non-negative")
    worst = float(np.abs(probs.sum(axis=1) - 1.0).max())
    if worst > atol:
        raise ValueError(f"{where}: rows must sum to 1 (worst row off by {worst:.2e})")
    return probs


def kl_to_marginal(probs: np.ndarray) -> np.ndarray:
    """(N,) ``KL(p(y|x_i) || p(y))`` in nats, p(y) the mean row of the (N, K) ``probs``."""
    marginal = probs.mean(axis=0)
    return rel_entr(probs, marginal[None, :]).sum(axis=1)


def inception_score(probs: np.ndarray, splits: int = 1, ddof: int = 0) -> tuple[float, float]:
    """(score, std) of (N, K) class probabilities: ``exp(mean KL(p(y|x) || p(y)))`` on the whole
    set when ``splits`` is 1 (std 0.0), else the mean and standard deviation of the score of each
    of ``splits`` consecutive blocks (torch-fidelity: ``ddof=0``; torchmetrics: ``ddof=1``)."""
    probs = check_probabilities(probs)
    n = probs.shape[0]
    if not 1 <= splits <= n:
        raise ValueError(f"inception score: splits must be in [1, {n}], got {splits}")
    scores = np.array([np.exp(kl_to_marginal(probs[i * n // splits:(i + 1) * n // splits]).mean())
                       for i in range(splits)])
    return float(scores.mean()), float(scores.std(ddof=ddof)) if splits > 1 else 0.0


def bootstrap_replicates(probs: np.ndarray, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """(B,) whole-set scores of bootstrap resamples of the rows of (N, K) ``probs``."""
    probs = check_probabilities(probs)
    n = probs.shape[0]
    return np.array([np.exp(kl_to_marginal(probs[rng.integers(0, n, n)]).mean()) for _ in range(n_bootstrap)])
