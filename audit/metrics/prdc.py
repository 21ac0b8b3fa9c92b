"""Precision, recall, density and coverage (Naeem et al. 2020) with exact, chunked distances.

Real features R (N, d), fake features F (M, d), Euclidean distance, k nearest neighbours:

- ``r_i`` = distance from R_i to its k-th nearest *other* real point (a duplicate counts as a
  neighbour at distance 0), ``s_j`` the same within F;
- precision = share of fake points inside some real ball: ``mean_j [exists i: d(R_i, F_j) <= r_i]``;
- recall    = share of real points inside some fake ball: ``mean_i [exists j: d(R_i, F_j) <= s_j]``;
- density   = ``1/(k M) sum_j #{i: d(R_i, F_j) <= r_i}`` (about 1 for matching sets; unbounded);
- coverage  = share of real points whose own ball holds a fake point: ``mean_i [exists j: d(R_i, F_j) <= r_i]``.

Balls are closed (``<=``): a fake sample identical to a real image is inside that image's ball
even when the radius is 0 (an image repeated k + 1 times). prdc 0.2 uses a strict ``<``, so a
set of identical points scores density = coverage = 0 against itself (its issue #7); on data
without ties the two agree exactly (``tests/test_reference_agreement.py``). One consequence of
closed balls: a fake set equal to the real set (distinct points) has density (k + 1)/k, not 1,
because each real point's k-th neighbour lies on its ball's boundary and counts.

Nothing of size N x M is ever held. The radii are exact k-NN distances from
:func:`audit.metrics.neighbours.nearest` (chunked, float64 distances). The cross-set pass takes
``chunk`` fake rows at a time against every real row: memory O(chunk x N) (prdc holds three
dense matrices). Its squared distances come from one float32 product per block (``|a|^2 +
|b|^2 - 2 a.b``); every comparison that product cannot decide (within its worst-case rounding
error of the squared radius) is redone with the exact float64 distance, computed as the
neighbour search computes its distances, so a distance and a radius between the same two
vectors are the same float and identical vectors are at distance exactly 0.
"""

from __future__ import annotations

import numpy as np

from audit.metrics import neighbours as nn

CHUNK = 256  # rows per block: a block costs about chunk x (other set's rows) x 21 bytes


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5, chunk: int = CHUNK) -> dict:
    """``{"precision", "recall", "density", "coverage"}`` (floats; the first, second and fourth in
    [0, 1], density in [0, N/k]) of (N, d) ``real`` and (M, d) ``fake`` float features with ``k``
    nearest neighbours (1 <= k < min(N, M)); see the module docstring."""
    for name, a in (("real", real), ("fake", fake)):
        nn.check_vectors(a, name)
        if a.ndim != 2:
            raise ValueError(f"prdc: {name} must be (N, d) features, got shape {a.shape}")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"prdc: feature widths differ: {real.shape[1]} real, {fake.shape[1]} fake")
    if not 1 <= k < min(real.shape[0], fake.shape[0]):
        raise ValueError(f"prdc: k = {k} needs more than k points in each set "
                         f"(got {real.shape[0]} real, {fake.shape[0]} fake)")
    real_radius, fake_radius = kth_neighbour_distance(real, k), kth_neighbour_distance(fake, k)
    real_set, fake_set = PreparedSet(real), PreparedSet(fake)
    n, m = real.shape[0], fake.shape[0]
    fake_in_real_ball = np.zeros(m, dtype=bool)
    balls_holding = np.zeros(m, dtype=np.int64)
    real_covered = np.zeros(n, dtype=bool)
    real_recalled = np.zeros(n, dtype=bool)
    for start in range(0, m, chunk):
        rows = np.arange(start, min(start + chunk, m))
        block = DistanceBlock(fake_set, rows, real_set)
        inside_real = block.within(real_radius[None, :])       # (rows, N): F_j in the ball of R_i
        inside_fake = block.within(fake_radius[rows, None])    # (rows, N): R_i in the ball of F_j
        fake_in_real_ball[rows] = inside_real.any(axis=1)
        balls_holding[rows] = inside_real.sum(axis=1)
        real_covered |= inside_real.any(axis=0)
        real_recalled |= inside_fake.any(axis=0)
    return {"precision": float(fake_in_real_ball.mean()), "recall": float(real_recalled.mean()),
            "density": float(balls_holding.sum() / (k * m)), "coverage": float(real_covered.mean())}


def kth_neighbour_distance(points: np.ndarray, k: int) -> np.ndarray:
    """(n,) distance from each row of (n, d) ``points`` to its k-th nearest *other* row (a
    duplicate is a neighbour at distance 0): the (k + 1)-th smallest distance, the row itself
    being the first, from :func:`audit.metrics.neighbours.nearest` (exact float64 distances)."""
    return nn.nearest(points, points, k + 1)[1][:, k]


def exact_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise float64 ``||a_i - b_i||``, computed exactly as :mod:`audit.metrics.neighbours`
    reports its distances, so a distance and a k-NN radius between the same two vectors are
    the same float (``<=`` then decides ties consistently)."""
    return np.sqrt(((a - b) ** 2).sum(axis=1))


#: unit roundoff of float32: the error bound of a float32 dot product of length d is ~d * U32 * |a||b|
U32 = 2.0 ** -24


class PreparedSet:
    """(n, d) features (kept as given, e.g. a float32 memmap, for exact float64 distances of
    selected rows), a float32 copy of their transpose for the block products, and their
    squared norms."""

    def __init__(self, features: np.ndarray):
        self.source = features
        self.fast_t = np.ascontiguousarray(np.asarray(features, dtype=np.float32).T)
        self.sq_norms = np.concatenate([np.einsum("ij,ij->i", block, block) for block in
                                        (np.asarray(features[s:s + 8192], np.float64)
                                         for s in range(0, features.shape[0], 8192))])
        self.fast_sq_norms = self.sq_norms.astype(np.float32)
        self.max_norm = float(np.sqrt(self.sq_norms.max()))
        self.d = features.shape[1]

    def rows(self, index: np.ndarray) -> np.ndarray:
        """(len(index), d) float64 copies of the given rows."""
        return np.asarray(self.source[index], dtype=np.float64)


class DistanceBlock:
    """Distances between rows ``rows`` of set ``a`` and every row of set ``b``: one float32
    product ``|a|^2 + |b|^2 - 2 a.b`` of squared distances (``sq``, (rows, n_b) float32) with a
    bound ``tol`` of its rounding error, and exact distances wherever a comparison needs them."""

    def __init__(self, a: PreparedSet, rows: np.ndarray, b: PreparedSet):
        self.a, self.rows, self.b = a, rows, b
        sq = a.fast_t[:, rows].T @ b.fast_t
        sq *= -2.0
        sq += a.fast_sq_norms[rows, None]
        sq += b.fast_sq_norms[None, :]
        self.sq = sq
        # float32 dot product: |error| <= gamma_d |a||b| (Higham 2002, eq. 3.5); the norms, the
        # two sums and a threshold's rounding to float32 add a few units of roundoff of
        # (|a| + |b|)^2, which bounds every squared distance. Doubled for safety.
        gamma = a.d * U32 / (1 - a.d * U32)
        self.tol = 2.0 * (2.0 * gamma * a.max_norm * b.max_norm + 8.0 * U32 * (a.max_norm + b.max_norm) ** 2)

    def within(self, radius: np.ndarray) -> np.ndarray:
        """(rows, n_b) bool: exact distance <= ``radius`` (a (1, n_b) or (rows, 1) float64 array).
        Decided by the float32 product where it is farther than ``tol`` from the squared
        radius, by :func:`exact_distances` elsewhere."""
        radius = np.asarray(radius, dtype=np.float64)
        result = self.sq <= (radius ** 2 - self.tol).astype(np.float32)
        unsure = self.sq <= (radius ** 2 + self.tol).astype(np.float32)
        unsure &= ~result
        i, j = np.nonzero(unsure)
        if i.size:
            exact = exact_distances(self.a.rows(self.rows[i]), self.b.rows(j))
            result[i, j] = exact <= np.broadcast_to(radius, self.sq.shape)[i, j]
        return result
