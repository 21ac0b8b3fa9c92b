"""Pixel-covariance spectra of real vs GAN samples (Santurkar, Schmidt, Madry 2017, section 4).

The paper's observation: the covariance spectrum of GAN samples falls off far faster than that
of the real data, i.e. the generator keeps a handful of directions of variation and drops most.
This module defines what is measured: pure functions of arrays (images, spectra, inner products)
and :func:`analyse_spectra`, which computes everything for one real, one GAN and one null real
set. The streamed numerics are in :mod:`audit.metrics.covariance`, the stage in
:mod:`audit.spectrum`, the figure in :mod:`audit.plots.spectrum`; ``SPECTRUM.md`` records the
measured figures and the rejected alternatives.

Units and conventions
---------------------
* Images are uint8 (N, H, W, C) (memmaps are fine) or float in [0, 1]; each is a vector of
  d = H*W*C pixels x / 255. Covariances are normalised by **N - 1**; eigenvalues are variances in
  [0, 1]^2 units, sorted **descending**; a *normalised* spectrum is divided by the trace.

Descriptive figures (whole sets)
--------------------------------
``effective_rank``: exp(Shannon entropy, nats, of lambda / sum(lambda)); k equal eigenvalues give k.
``n90`` / ``n99``: the fewest leading directions holding >= 90% / 99% of the variance.

Kept directions (cross-fitted, rank by rank)
--------------------------------------------
The real set R (at most ``test_samples`` images, picked and ordered by a seeded hash of their
bytes, so nothing depends on the order of the files) is cut into halves A (ceil(n/2) images)
and B. For A's leading directions V (d, m) and eigenvalues lambda_A (m,):

``significant real directions`` m
    the fewest leading directions of A holding 99% of A's variance, at most n_B - 1.
``whitened spectrum`` of a set X
    eigenvalues, descending, of diag(lambda_A)^-1/2 V^T C_X V diag(lambda_A)^-1/2: the generalised
    eigenvalues of X's covariance against A's inside A's significant subspace (invariant to any
    change of basis of that subspace, and to rotations of pixel space). nu for B, an independent
    real sample (its *out-of-sample* variance: the sample PCA of A overfits, so nu < 1 at the tail),
    mu for the GAN. Both sides are out of sample, so the overfitting cancels.
``rank ratio`` r_k = mu_k / nu_k, k = 1..m
    the GAN's k-th largest whitened variance over an independent real sample's.
``kept directions`` = #{k : r_k >= threshold} (threshold: config ``spectrum.dropped_ratio``, 0.1);
``dropped directions`` = m - kept.

The test (one :class:`~audit.metrics.verdict.Verdict`)
------------------------------------------------------
H0: at every rank the GAN keeps at least ``threshold`` of the variance an independent real
sample of its size keeps. Statistic T = min_k r_k (small under the alternative). A GAN that is a
real sample shrunk by sqrt(threshold) towards its mean has T = threshold * T_real exactly, the
boundary of H0 (a GAN whose covariance is >= threshold times a real sample's, in the Loewner
order, has a larger T). Null: ``null_draws`` real-vs-real draws T*: R re-split at random into
halves of the same sizes, and a stand-in for the GAN drawn without replacement from the null real
set (the train split), of the GAN's effective size (at most half the null set: a smaller
stand-in is noisier, which makes the p-value conservative).
p = (1 + #{threshold * T* <= T}) / (1 + null_draws).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from audit.io import AuditInputError
from audit.metrics import covariance as cv
from audit.metrics.verdict import Verdict, empirical_p_value

#: Eigenvalues computed by the randomized route when d > :data:`audit.metrics.covariance.MAX_FULL_D`.
TOP_K = 1000
#: Share of A's variance its significant directions hold.
SIGNIFICANT_FRACTION = 0.99
#: Whitened variances (shares of a real variance) below this times max(1, the largest) are round-off.
WHITENED_ZERO = 1e-12
#: Relative slack when comparing cumulative variance fractions (so 9 of 10 equal values = 90%).
_FRACTION_TOL = 1e-9


# --------------------------------------------------------------------------------------------
# figures computed from spectra


def effective_rank(eigs: np.ndarray) -> float:
    """exp(spectral entropy) of the eigenvalues (d,): k equal positive values give k.

    Values <= 0 (zero-variance pixels, rounding) contribute nothing. Entropy in nats.
    Returns 0 for an all-zero spectrum.
    """
    lam = np.clip(np.asarray(eigs, dtype=np.float64), 0.0, None)
    total = lam.sum()
    if total <= 0:
        return 0.0
    p = lam / total
    p = p[p > 0]  # a tiny eigenvalue's share can underflow to 0
    return float(np.exp(-np.sum(p * np.log(p))))


def components_for_variance(eigs: np.ndarray, fraction: float, total: float | None = None) -> int | None:
    """Fewest leading eigenvalues (descending (d,)) whose sum reaches ``fraction`` of the total.

    ``total`` defaults to the sum of the (clipped at 0) eigenvalues; pass the trace when only the
    top k are known. Returns None if the given eigenvalues never reach the fraction (truncated
    spectrum). A relative slack of 1e-9 absorbs rounding, so 9 of 10 equal values give 90%.
    """
    if not 0 < fraction <= 1:
        raise AuditInputError(f"fraction must be in (0, 1], got {fraction}")
    lam = np.clip(np.sort(np.asarray(eigs, dtype=np.float64))[::-1], 0.0, None)
    total = float(lam.sum() if total is None else total)
    if total <= 0:
        return 0
    reached = np.flatnonzero(np.cumsum(lam) >= fraction * total * (1 - _FRACTION_TOL))
    return int(reached[0] + 1) if reached.size else None


# --------------------------------------------------------------------------------------------
# identical images: effective sample size and an order-free split


def image_digests(images, chunk_size: int = cv.CHUNK_SIZE) -> list[bytes]:
    """(N,) 16-byte BLAKE2b digests of the images' bytes: identical images, identical digests."""
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest()
            for chunk in cv.iter_chunks(images, chunk_size) for row in chunk]


def effective_sample_size(images, chunk_size: int = cv.CHUNK_SIZE,
                          digests: list[bytes] | None = None) -> tuple[int, float]:
    """(distinct images, Kish's effective sample size N^2 / sum_i c_i^2) of ``images`` (N, ...),
    over the counts c_i of identical images (= N when all differ).

    A resampler that draws 2,000 samples from 640 pool images has at most 640 distinct ones: its
    covariance is as noisy as that of a few hundred independent images, and the null stand-in of
    the spectrum test has this size. Identity is exact (a hash of each image's bytes).
    """
    digests = image_digests(images, chunk_size) if digests is None else digests
    counts: dict[bytes, int] = {}
    for key in digests:
        counts[key] = counts.get(key, 0) + 1
    squares = sum(c * c for c in counts.values())
    return len(counts), (len(digests) ** 2 / squares if squares else 0.0)


def hash_order(digests: list[bytes], seed: int) -> np.ndarray:
    """(N,) row indices sorted by a seeded hash of each image's digest: a random order that does
    not depend on the order of the rows (identical images are adjacent, and interchangeable)."""
    key = int(seed).to_bytes(8, "little", signed=True)
    keys = [hashlib.blake2b(digest, digest_size=16, key=key).digest() for digest in digests]
    return np.asarray(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)


# --------------------------------------------------------------------------------------------
# cross-fitted whitened spectra, on inner products (see covariance.centred_gram)


def covariance_of(scores: np.ndarray) -> np.ndarray:
    """(k, k) covariance (N - 1) of the rows of ``scores`` (N, k)."""
    centred = scores - scores.mean(axis=0)
    return centred.T @ centred / (scores.shape[0] - 1)


def whitened_spectrum(cov_along: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """(m,) eigenvalues, descending, of diag(lam)^-1/2 ``cov_along`` diag(lam)^-1/2, for a (m, m)
    covariance along m directions whose reference variances are ``lam`` (m,) > 0. Values below
    :data:`WHITENED_ZERO` times max(1, the largest) are round-off and returned as exactly 0, so a
    rank-deficient set drops a direction deterministically, whatever the order of its rows."""
    w = 1.0 / np.sqrt(np.asarray(lam, dtype=np.float64))
    values = np.linalg.eigvalsh(cov_along * np.outer(w, w))[::-1]
    zero = WHITENED_ZERO * max(1.0, float(values[0])) if values.size else 0.0
    return np.where(values > zero, values, 0.0)


def rank_ratios(mu: np.ndarray, nu: np.ndarray) -> np.ndarray:
    """(m,) mu_k / nu_k; +inf where the real reference nu_k is 0 (nothing there to drop)."""
    mu, nu = np.asarray(mu, dtype=np.float64), np.asarray(nu, dtype=np.float64)
    positive = nu > 0
    return np.where(positive, mu / np.where(positive, nu, 1.0), np.inf)


def kept_directions(ratio: np.ndarray, threshold: float) -> int:
    """Ranks at which the GAN keeps at least ``threshold`` of a real sample's variance."""
    return int(np.count_nonzero(np.asarray(ratio) >= threshold))


def double_centred(gram: np.ndarray) -> np.ndarray:
    """J K J for J = I - 11^T/n: inner products of the rows about their own mean, from inner
    products (n, n) about any common origin."""
    return gram - gram.mean(axis=0) - gram.mean(axis=1, keepdims=True) + gram.mean()


@dataclass(frozen=True)
class Split:
    """One cross-fitted split, fitted on inner products (:func:`fit_split`).

    ``lam`` (m,): half A's significant eigenvalues; ``coef`` (n_A, m): its principal directions
    are A_c^T coef (A_c: A's rows about their mean), unit and orthogonal; ``nu`` (m,): half B's
    whitened spectrum along them.
    """

    lam: np.ndarray
    coef: np.ndarray
    nu: np.ndarray

    @property
    def m(self) -> int:
        return int(self.lam.shape[0])

    def project(self, cross: np.ndarray) -> np.ndarray:
        """(k, m) coordinates along the directions of k rows, from their inner products (k, n_A)
        with A's rows (the same origin as the fit; a constant shift of every row does not matter
        to a covariance)."""
        return (cross - cross.mean(axis=1, keepdims=True)) @ self.coef

    def ratio(self, cov_along: np.ndarray) -> np.ndarray:
        """Rank ratios of a set whose (m, m) covariance along the directions is ``cov_along``."""
        return rank_ratios(whitened_spectrum(cov_along, self.lam), self.nu)


def fit_split(gram_aa: np.ndarray, cross_ba: np.ndarray) -> Split:
    """Half A's significant directions (the fewest holding 99% of A's variance, at most
    n_B - 1) and half B's whitened spectrum along them, from inner products only: ``gram_aa``
    (n_A, n_A) among A's rows and ``cross_ba`` (n_B, n_A) of B's rows with A's (one common
    origin). Cost: one n_A x n_A eigendecomposition and O(n_A^2 m)."""
    n_a, n_b = gram_aa.shape[0], cross_ba.shape[0]
    values, U = np.linalg.eigh(double_centred(gram_aa) / (n_a - 1))
    values, U = values[::-1], U[:, ::-1]
    q = cv.rank_of(values)
    n99 = components_for_variance(values[:q], SIGNIFICANT_FRACTION) if q else 0
    m = int(min(n99 or 0, n_b - 1))
    lam = values[:m].copy()
    coef = U[:, :m] / np.sqrt((n_a - 1) * lam)
    split = Split(lam, coef, np.zeros(0))
    nu = whitened_spectrum(covariance_of(split.project(cross_ba)), lam) if m else np.zeros(0)
    return Split(lam, coef, nu)


def null_statistics(gram: np.ndarray, cross_null: np.ndarray, n_a: int, n_stand_in: int, draws: int,
                    rng: np.random.Generator) -> np.ndarray:
    """(draws,) worst rank ratios T* of independent real samples. ``gram`` (n, n): inner products
    of the real rows; ``cross_null`` (n_null, n): of the null real rows with them (one origin).
    Each draw re-splits the real rows at random into n_a and n - n_a and draws ``n_stand_in``
    null rows without replacement to stand in for the GAN."""
    out = np.empty(int(draws))
    for s in range(int(draws)):
        perm = rng.permutation(gram.shape[0])
        a, b = perm[:n_a], perm[n_a:]
        split = fit_split(gram[np.ix_(a, a)], gram[np.ix_(b, a)])
        c = rng.choice(cross_null.shape[0], n_stand_in, replace=False)
        ratio = split.ratio(covariance_of(split.project(cross_null[np.ix_(c, a)]))) if split.m else np.zeros(0)
        out[s] = float(ratio.min()) if ratio.size else np.inf
    return out


def spectrum_verdict(worst: float | None, null: np.ndarray | None, threshold: float, alpha: float, kept: int,
                     m: int, reason: str = "", extra: dict | None = None) -> Verdict:
    """The spectrum test as a :class:`Verdict`: p = (1 + #{threshold * T* <= T}) / (1 + B) for the
    observed worst rank ratio ``worst`` = T and the (B,) null draws T*; p None with ``reason``."""
    p_value = None
    if not reason:
        p_value = empirical_p_value(-float(worst), -threshold * np.asarray(null, dtype=np.float64))
    return Verdict(
        test="spectrum.dropped_directions", title="spectrum",
        hypothesis=(f"at every one of the {m} significant real directions (rank by rank) the GAN keeps at least "
                    f"{threshold:g} of the variance an independent real sample of its size keeps"),
        p_value=p_value, alpha=alpha, finding="drops directions",
        null_finding="consistent with keeping every direction",
        key_number=f"keeps {kept} of {m} real directions", estimate=float(kept),
        method=("cross-fitted whitened covariance spectra compared rank by rank with a real half; null from "
                "real-vs-real re-splits with a stand-in of the GAN's effective size from the null split"),
        reason=reason, extra={"headline": True, **(extra or {})})


# --------------------------------------------------------------------------------------------
# summary and table


@dataclass(frozen=True)
class SpectrumResult:
    """``summary`` (JSON-able dict, with ``verdicts``), ``real_eigs``/``gan_eigs`` (descending),
    ``ratio`` (m,) rank ratios, ``verdict``, ``null`` (null_draws,) the null draws T* (None when
    the test could not run)."""

    summary: dict
    real_eigs: np.ndarray
    gan_eigs: np.ndarray
    ratio: np.ndarray
    verdict: Verdict
    null: np.ndarray | None = None


def _full_spectrum(images, d, max_full_d, k, chunk_size, device, seed):
    if d <= max_full_d:
        eigs, total, route = cv.exact_spectrum(images, chunk_size, device)
        return eigs, total, route
    top = cv.top_eigenspectrum(images, int(min(k, d)), chunk_size=chunk_size, device=device, seed=seed)
    return top.eigenvalues, top.total_variance, top.method


def analyse_spectra(real_images, gan_images, null_images, threshold: float = 0.1, alpha: float = 0.05,
                    null_draws: int = 200, test_samples: int = 1000, chunk_size: int = cv.CHUNK_SIZE,
                    device: str = "cpu", max_full_d: int = cv.MAX_FULL_D, k: int = TOP_K,
                    seed: int = 0) -> SpectrumResult:
    """All spectrum figures and the test for real vs GAN images, with ``null_images`` (real, not
    used otherwise: the train split) for the null stand-ins. All (N, H, W, C) of one image shape.

    Whole-set spectra: exact for d <= ``max_full_d`` (method ``full-eigh``), else the top ``k``
    (``randomized``; effective ranks of the truncated spectra, n90/n99 None if not reached). The
    split test always works on the exact inner products (Gram matrix) of at most
    ``test_samples`` real images (see the module docstring).
    """
    with _blas_threads():
        return _analyse(real_images, gan_images, null_images, threshold, alpha, null_draws, test_samples,
                        chunk_size, device, max_full_d, k, seed)


def _blas_threads():
    """numpy's BLAS limited to torch's thread count (Snakemake's ``threads:``): the null draws
    are many small eigenproblems, which extra BLAS threads on a busy machine only slow down."""
    import contextlib

    import torch

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(torch.get_num_threads())


def _analyse(real_images, gan_images, null_images, threshold, alpha, null_draws, test_samples, chunk_size, device,
             max_full_d, k, seed) -> SpectrumResult:
    sets = {"real": real_images, "GAN": gan_images, "null real": null_images}
    for name, images in sets.items():
        if tuple(images.shape[1:]) != tuple(real_images.shape[1:]):
            raise AuditInputError(f"{name} images {tuple(images.shape[1:])} and real images "
                                  f"{tuple(real_images.shape[1:])} differ in shape")
        if images.shape[0] < 2:
            raise AuditInputError(f"{name} images: need at least 2, got {images.shape[0]}")
    n_real, d = cv.flat_shape(real_images)
    n_gan, _ = cv.flat_shape(gan_images)
    real_digests = image_digests(real_images, chunk_size)
    null_digests = image_digests(null_images, chunk_size)
    n_real_distinct, n_real_eff = effective_sample_size(real_images, digests=real_digests)
    n_gan_distinct, n_gan_eff = effective_sample_size(gan_images, chunk_size)

    order = hash_order(real_digests, seed)[:test_samples]
    rows = np.sort(order)  # read in file order (memmaps), then put in hash order
    gram, real_mean = cv.centred_gram(cv.RowSubset(real_images, rows), chunk_size, device)
    position = np.searchsorted(rows, order)
    gram = gram[np.ix_(position, position)]
    if order.size == n_real and d <= max_full_d:  # the Gram matrix holds the whole real spectrum
        real_eigs = cv.gram_eigenvalues(gram, d)
        real_total, real_route = float(np.trace(gram)) / (n_real - 1), "gram"
    else:
        real_eigs, real_total, real_route = _full_spectrum(real_images, d, max_full_d, k, chunk_size, device, seed)
    gan_eigs, gan_total, gan_route = _full_spectrum(gan_images, d, max_full_d, k, chunk_size, device, seed + 1)

    n_t = order.size
    n_a = n_t - n_t // 2
    no_split = Split(np.zeros(0), np.zeros((0, 0)), np.zeros(0))
    split = fit_split(gram[:n_a, :n_a], gram[n_a:, :n_a]) if n_t >= 4 else no_split
    m = split.m
    ratio = np.zeros(0)
    if m:  # half A's directions in pixels, then the GAN's covariance along them
        half_a = cv.RowSubset(real_images, order[:n_a])
        coef = split.coef[np.argsort(order[:n_a])]  # RowSubset reads A in file order
        # coef is orthogonal to the ones vector (an eigenvector of the double-centred Gram
        # matrix), so centring A about the real mean instead of its own changes nothing
        directions = cv.combine_rows(half_a, coef, real_mean, chunk_size, device)
        ratio = split.ratio(cv.projected_covariance(gan_images, directions, chunk_size, device))
    kept = kept_directions(ratio, threshold)
    worst = float(ratio.min()) if m else None

    null_order = hash_order(null_digests, seed)[:test_samples]
    n_stand_in = int(min(max(round(n_gan_eff), 2), null_order.size // 2))
    reason = ("fewer than 4 real images for the split" if n_t < 4 else
              "the real images vary along no direction" if m == 0 else
              f"the null split has {null_order.size} images: a stand-in for the GAN needs more than {2 * m}"
              if n_stand_in < 2 or n_stand_in <= m < round(n_gan_eff) else "")
    null = None
    if not reason:
        null_rows = np.sort(null_order)
        cross = cv.cross_products(cv.RowSubset(null_images, null_rows), cv.RowSubset(real_images, rows), real_mean,
                                  chunk_size, device)
        cross = cross[np.ix_(np.searchsorted(null_rows, null_order), position)]  # both in hash order
        null = null_statistics(gram, cross, n_a, n_stand_in, null_draws, np.random.default_rng(seed))
    verdict = spectrum_verdict(worst, null, threshold, alpha, kept, m, reason, extra={
        "statistic": _finite(worst), "statistic_definition": "worst rank ratio min_k mu_k / nu_k (null: none finite)",
        "null_draws": int(null_draws), "stand_in_size": n_stand_in,
        "null_quantile_alpha": None if null is None else _finite(np.quantile(null, alpha, method="lower")),
    })
    truncated = d > max_full_d
    summary = {
        "method": f"{'randomized' if truncated else 'full-eigh'} (real: {real_route}, gan: {gan_route})",
        "k": int(min(k, d)) if truncated else d, "truncated": truncated, "d": d,
        "image_shape": list(real_images.shape[1:]), "n_real": n_real, "n_gan": n_gan,
        "n_distinct_real": n_real_distinct, "n_distinct_gan": n_gan_distinct,
        "n_effective_real": n_real_eff, "n_effective_gan": n_gan_eff,
        "normalisation": "sample covariance / (N - 1), pixels in [0, 1]",
        "total_variance_real": real_total, "total_variance_gan": gan_total,
        "effective_rank_real": effective_rank(real_eigs), "effective_rank_gan": effective_rank(gan_eigs),
        "n90_real": components_for_variance(real_eigs, 0.90, real_total),
        "n99_real": components_for_variance(real_eigs, 0.99, real_total),
        "n90_gan": components_for_variance(gan_eigs, 0.90, gan_total),
        "n99_gan": components_for_variance(gan_eigs, 0.99, gan_total),
        "split_real_images": int(n_t), "split_sizes": [int(n_a), int(n_t - n_a)],
        "null_real_images": int(null_order.size), "stand_in_size": n_stand_in,
        "significant_real_directions": m,
        "significant_definition": "fewest leading directions of real half A holding 99% of its variance, "
                                  "at most n_B - 1",
        "dropped_threshold": threshold, "kept_directions": kept, "dropped_directions": m - kept,
        "dropped_fraction": (m - kept) / m if m else 0.0,
        "kept_definition": "ranks k with mu_k / nu_k >= threshold: GAN vs real half B, whitened by half A",
        "worst_rank_ratio": _finite(worst), "rank_ratio": [_finite(r) for r in ratio],
        "verdicts": [verdict.to_json()],
    }
    return SpectrumResult(summary=summary, real_eigs=real_eigs, gan_eigs=gan_eigs, ratio=ratio, verdict=verdict,
                          null=null)


def _finite(value) -> float | None:
    """A JSON-safe float: None for None, inf (a rank with no real variance to drop) or NaN."""
    return float(value) if value is not None and np.isfinite(value) else None


def spectrum_table(
    real_eigs: np.ndarray,
    gan_eigs: np.ndarray | Mapping[str, np.ndarray],
    real_total: float | None = None,
    gan_totals: float | Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Normalised spectra for plotting: columns ``index`` (1-based), ``real``, ``gan`` (or one
    column per name when ``gan_eigs`` is a mapping). Each spectrum is divided by its total
    variance (its own sum unless ``real_total``/``gan_totals`` give the trace, for truncated
    spectra). Shorter spectra are padded with NaN.
    """
    gans = dict(gan_eigs) if isinstance(gan_eigs, Mapping) else {"gan": gan_eigs}
    if gan_totals is None or not isinstance(gan_totals, Mapping):
        gan_totals = {name: gan_totals for name in gans}
    columns = {"real": _normalise(real_eigs, real_total)}
    columns.update({name: _normalise(e, gan_totals.get(name)) for name, e in gans.items()})
    length = max(len(c) for c in columns.values())
    table = pd.DataFrame({"index": np.arange(1, length + 1)})
    for name, values in columns.items():
        padded = np.full(length, np.nan)
        padded[: len(values)] = values
        table[name] = padded
    return table


def _normalise(eigs, total=None) -> np.ndarray:
    lam = np.asarray(eigs, dtype=np.float64)
    total = float(np.clip(lam, 0, None).sum() if total is None else total)
    return lam / total if total > 0 else lam
