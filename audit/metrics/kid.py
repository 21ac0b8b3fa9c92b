"""Kernel distance (KID; Binkowski et al. 2018): unbiased MMD^2 with a cubic polynomial kernel.

    k(x, y) = (gamma x.y + coef)^degree,  gamma = 1/d, coef = 1, degree = 3 by default,

    MMD^2_u = 1/(m(m-1)) sum_{i != j} [k(x_i, x_j) + k(y_i, y_j)] - 2/m^2 sum_{i, j} k(x_i, y_j),

averaged over ``subsets`` pairs of random subsets of ``subset_size`` rows of each set (drawn
without replacement within a subset, independently between subsets), as torch-fidelity,
clean-fid and torchmetrics do; the reported spread is the population standard deviation of the
subset values (``ddof=0``, as torchmetrics' ``kid_std`` and torch-fidelity). Inputs are (N, d)
arrays of any float dtype; every kernel is evaluated in float64. Unbiased: its expectation is
0 when both sets come from one distribution, so values below 0 are possible and kept.

Units: squared kernel units. The annotator's features are L2-normalised, so ``x.y/d`` lies in
[-1/d, 1/d] and KID values are far smaller than those printed on Inception features (d = 2048,
unnormalised): compare KID only with KID on the same features.
"""

from __future__ import annotations

import numpy as np


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                      coef: float = 1.0) -> np.ndarray:
    """(N, M) float64 ``(gamma x.y + coef)^degree`` of (N, d) ``x`` and (M, d) ``y``; gamma None: 1/d."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (np.asarray(x, np.float64) @ np.asarray(y, np.float64).T * gamma + coef) ** degree


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                  coef: float = 1.0) -> float:
    """Unbiased MMD^2 between (m, d) ``x`` and (m, d) ``y`` (equal sizes, m >= 2) with the
    polynomial kernel (the formula in the module docstring)."""
    m = x.shape[0]
    if y.shape != x.shape or m < 2:
        raise ValueError(f"mmd2_unbiased: expected two (m, d) arrays with m >= 2, got {x.shape} and {y.shape}")
    k_xx, k_yy = polynomial_kernel(x, x, degree, gamma, coef), polynomial_kernel(y, y, degree, gamma, coef)
    k_xy = polynomial_kernel(x, y, degree, gamma, coef)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / m**2)


def draw_subsets(n_x: int, n_y: int, subsets: int, subset_size: int,
                 rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """``subsets`` pairs of row indices: ``subset_size`` distinct rows of each set, per pair."""
    if not 2 <= subset_size <= min(n_x, n_y):
        raise ValueError(f"KID subset size {subset_size} must be in [2, {min(n_x, n_y)}] (the smaller set)")
    return [(rng.permutation(n_x)[:subset_size], rng.permutation(n_y)[:subset_size]) for _ in range(subsets)]


def kernel_distance_on_subsets(x: np.ndarray, y: np.ndarray, index_pairs, degree: int = 3,
                               gamma: float | None = None, coef: float = 1.0) -> np.ndarray:
    """(S,) unbiased MMD^2 of ``x[ix]`` and ``y[iy]`` for each ``(ix, iy)`` of ``index_pairs``."""
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"KID: expected (N, d) and (M, d) feature arrays, got {x.shape} and {y.shape}")
    return np.array([mmd2_unbiased(x[np.asarray(ix)], y[np.asarray(iy)], degree, gamma, coef)
                     for ix, iy in index_pairs])


def kernel_distance(x: np.ndarray, y: np.ndarray, subsets: int = 100, subset_size: int = 1000,
                    rng: np.random.Generator | None = None, degree: int = 3, gamma: float | None = None,
                    coef: float = 1.0) -> dict:
    """KID of (N, d) ``x`` and (M, d) ``y``: ``{"kid": mean, "kid_std": population std, "values":
    (S,) per-subset MMD^2, "subset_size": s}``, with s = min(subset_size, N, M) so that small sets
    are used whole (the peers raise an error instead)."""
    rng = np.random.default_rng(0) if rng is None else rng
    size = min(subset_size, x.shape[0], y.shape[0])
    values = kernel_distance_on_subsets(x, y, draw_subsets(x.shape[0], y.shape[0], subsets, size, rng),
                                        degree, gamma, coef)
    return {"kid": float(values.mean()), "kid_std": float(values.std()), "values": values, "subset_size": size}
