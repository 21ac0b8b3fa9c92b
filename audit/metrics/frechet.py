"""Frechet distance between two feature sets (Heusel et al. 2017), in float64.

The Frechet (2-Wasserstein) distance between the Gaussians fitted to two feature sets,

    FD = ||mu_1 - mu_2||^2 + tr(S_1) + tr(S_2) - 2 tr((S_1 S_2)^(1/2)),

with S the unbiased covariance (divided by N - 1, as ``np.cov``, torchmetrics and clean-fid do).
``tr((S_1 S_2)^(1/2))`` is the sum of the square roots of the eigenvalues of S_1 S_2. They are
computed as the eigenvalues of the symmetric matrix ``W^T S_2 W`` with ``S_1 = W W^T``
(``W = V diag(sqrt(l))`` from ``eigh(S_1)``), which is similar to ``S_1 S_2``: same eigenvalues,
real and non-negative by construction, from two symmetric eigensolvers; no ``scipy.linalg.sqrtm``
(whose complex results plague users of clean-fid) and no general eigensolver (whose tiny
imaginary parts torchmetrics discards). ``FEATURE_METRICS.md`` records the alternatives.

Units: squared feature units (for the annotator's unit-length features, squared chord distance).
Every function takes (N, d) arrays of any float dtype; sums are accumulated in float64 in
row chunks, so a (50,000, 512) float32 memmap is never copied whole.

FD is biased upward at finite N (Chong & Forsyth 2020): compare two values only at the same
sample sizes, which is what :func:`permutation_null` and the stage's real-vs-real value do.
"""

from __future__ import annotations

import numpy as np

CHUNK = 8192  # rows per float64 block when accumulating moments


def mean_and_covariance(features: np.ndarray, chunk: int = CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """(d,) float64 mean and (d, d) float64 unbiased covariance (divided by N - 1) of (N, d)
    ``features``, N >= 2. Two passes over row chunks (mean, then centred sums of squares), so
    the covariance is as accurate as ``np.cov`` on a float64 copy without making one."""
    features = _as_matrix(features, "features", minimum_rows=2)
    n, d = features.shape
    total = np.zeros(d)
    for start in range(0, n, chunk):
        total += features[start:start + chunk].sum(axis=0, dtype=np.float64)
    mean = total / n
    scatter = np.zeros((d, d))
    for start in range(0, n, chunk):
        centred = np.asarray(features[start:start + chunk], dtype=np.float64) - mean
        scatter += centred.T @ centred
    return mean, (scatter + scatter.T) / (2 * (n - 1))


def sqrt_factor(covariance: np.ndarray) -> np.ndarray:
    """(d, d) ``W = V diag(sqrt(max(l, 0)))`` with ``covariance = W W^T`` (``eigh``; eigenvalues
    below zero by rounding are clipped)."""
    values, vectors = np.linalg.eigh(np.asarray(covariance, dtype=np.float64))
    return vectors * np.sqrt(np.clip(values, 0.0, None))


def trace_sqrt_product(factor_1: np.ndarray, covariance_2: np.ndarray) -> float:
    """``tr((S_1 S_2)^(1/2))`` = sum of sqrt(eigenvalues of S_1 S_2), with ``factor_1`` the
    :func:`sqrt_factor` of S_1 (the eigenvalues of ``W^T S_2 W``, clipped at 0)."""
    inner = factor_1.T @ covariance_2 @ factor_1
    values = np.linalg.eigvalsh((inner + inner.T) / 2)
    return float(np.sqrt(np.clip(values, 0.0, None)).sum())


def frechet_distance_from_moments(mean_1: np.ndarray, cov_1: np.ndarray, mean_2: np.ndarray, cov_2: np.ndarray,
                                  factor_2: np.ndarray | None = None) -> float:
    """FD between N(mean_1, cov_1) and N(mean_2, cov_2): (d,) means, (d, d) covariances.
    ``factor_2``: :func:`sqrt_factor` of ``cov_2`` when it is reused (a fixed reference set)."""
    mean_1, mean_2 = np.asarray(mean_1, np.float64), np.asarray(mean_2, np.float64)
    if mean_1.shape != mean_2.shape or cov_1.shape != cov_2.shape or cov_1.shape != mean_1.shape * 2:
        raise ValueError(f"frechet distance: means {mean_1.shape}, {mean_2.shape} and covariances "
                         f"{cov_1.shape}, {cov_2.shape} do not match")
    factor_2 = sqrt_factor(cov_2) if factor_2 is None else factor_2
    diff = mean_1 - mean_2
    value = diff @ diff + np.trace(cov_1) + np.trace(cov_2) - 2.0 * trace_sqrt_product(factor_2, cov_1)
    return float(max(value, 0.0))


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """FD between the (N, d) and (M, d) feature sets ``x`` and ``y`` (N, M >= 2)."""
    _same_width(x, y)
    return frechet_distance_from_moments(*mean_and_covariance(x), *mean_and_covariance(y))


def bootstrap_replicates(x: np.ndarray, y: np.ndarray, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """(B,) FD between bootstrap resamples of both sets (rows drawn with replacement, each set
    at its own size). The replicates measure the spread of FD at these sample sizes."""
    x, y = _as_matrix(x, "x", 2), _as_matrix(y, "y", 2)
    _same_width(x, y)
    out = np.empty(n_bootstrap)
    for b in range(n_bootstrap):
        xs = x[np.sort(rng.integers(0, x.shape[0], x.shape[0]))]
        ys = y[np.sort(rng.integers(0, y.shape[0], y.shape[0]))]
        out[b] = frechet_distance(xs, ys)
    return out


def permutation_null(candidate: np.ndarray, real_a: np.ndarray, real_b: np.ndarray, n_permutations: int,
                     rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """The observed ``FD(candidate, real_b)`` and (B,) draws of ``FD(X, real_b)``, X a random
    subset of ``candidate`` + ``real_a`` (pooled) of the size of ``candidate``.

    Under H0 "the candidate rows are drawn from the real distribution, independently of the real
    sets", ``candidate`` and ``real_a`` are exchangeable given ``real_b``, so the observed value
    is exchangeable with the draws and ``empirical_p_value(observed, draws)`` is an exact-level
    test (its rejection rate under H0 is measured in ``FEATURE_METRICS.md``). ``X = real_a`` at
    equal sizes is the real-vs-real value, one of the possible draws.
    """
    candidate, real_a, real_b = (_as_matrix(a, name, 2) for a, name in
                                 ((candidate, "candidate"), (real_a, "real_a"), (real_b, "real_b")))
    _same_width(candidate, real_a)
    _same_width(candidate, real_b)
    mean_b, cov_b = mean_and_covariance(real_b)
    factor_b = sqrt_factor(cov_b)

    def against_b(rows: np.ndarray) -> float:
        return frechet_distance_from_moments(*mean_and_covariance(rows), mean_b, cov_b, factor_b)

    pooled = np.concatenate([np.asarray(candidate, np.float64), np.asarray(real_a, np.float64)])
    m = candidate.shape[0]
    null = np.array([against_b(pooled[np.sort(rng.permutation(pooled.shape[0])[:m])])
                     for _ in range(n_permutations)])
    return against_b(candidate), null


def _as_matrix(a: np.ndarray, name: str, minimum_rows: int = 1) -> np.ndarray:
    if a.ndim != 2 or a.shape[0] < minimum_rows or a.shape[1] < 1:
        raise ValueError(f"{name}: expected an (N, d) array with N >= {minimum_rows}, got shape {a.shape}")
    return a


def _same_width(x: np.ndarray, y: np.ndarray) -> None:
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature sets of different widths: {x.shape[1]} and {y.shape[1]}")
