"""Vendi score (Friedman & Dieng 2022) with the cosine-similarity kernel on features.

    VS(x_1 .. x_n) = exp( - sum_i l_i log l_i ),  l = eigenvalues of K / n,  K_ij = cos(x_i, x_j),

the exponential of the Shannon entropy of the similarity matrix's spectrum: the effective
number of distinct items (1 for n copies of one vector, n for n orthogonal vectors). With unit
rows X (n, d), K = X X^T has the same non-zero eigenvalues as the d x d matrix X^T X, so the
score is computed on that dual when d < n (and on K when n <= d): O(n d^2) time, O(d^2)
memory. ``0 log 0 = 0``; eigenvalues below 0 by rounding are clipped.

An all-zero feature row (the annotator's embedding of an image that no unit activates, e.g. a
blank image) has no direction: all such rows count as one item, identical to each other and
orthogonal to every other row (an extra coordinate that only they have), so k(x, x) = 1 holds.

VS grows with n (more items can only add directions up to rank d): compare a GAN's value only
with the real data's at the same n. At most min(n, d) for this kernel.
"""

from __future__ import annotations

import numpy as np
from scipy.special import entr

CHUNK = 8192  # rows per float64 block when accumulating X^T X


def similarity_spectrum(features: np.ndarray, chunk: int = CHUNK) -> np.ndarray:
    """The non-negative eigenvalues of K / n (descending; min(n, d + 1) of them, summing to 1)
    for (n, d) float ``features``; every row is scaled to unit norm (cosine similarity), all-zero
    rows become one shared extra direction (module docstring)."""
    if features.ndim != 2 or features.shape[0] < 1 or features.shape[1] < 1:
        raise ValueError(f"vendi: expected an (n, d) feature array, got shape {features.shape}")
    n, d = features.shape
    if n <= d + 1:
        unit = _unit_rows(features)
        gram = unit @ unit.T
    else:
        gram = np.zeros((d + 1, d + 1))
        for start in range(0, n, chunk):
            unit = _unit_rows(features[start:start + chunk])
            gram += unit.T @ unit
    values = np.linalg.eigvalsh((gram + gram.T) / (2 * n))[::-1]
    return np.clip(values, 0.0, None)


def vendi_score(features: np.ndarray) -> float:
    """Vendi score of (n, d) ``features`` (module docstring), in [1, min(n, d + 1)]."""
    values = similarity_spectrum(features)
    return float(np.exp(entr(values / values.sum()).sum()))


def _unit_rows(block: np.ndarray) -> np.ndarray:
    """(b, d + 1) float64: the rows of ``block`` at unit norm, then a column that is 1 exactly
    on the all-zero rows."""
    block = np.asarray(block, dtype=np.float64)
    norms = np.linalg.norm(block, axis=1, keepdims=True)
    if not np.isfinite(norms).all():
        raise ValueError("vendi: feature vectors must be finite")
    zero = norms == 0
    return np.hstack([block / np.where(zero, 1.0, norms), zero.astype(np.float64)])
