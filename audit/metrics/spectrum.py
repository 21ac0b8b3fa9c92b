"""Pixel-covariance spectra of real vs GAN samples (Santurkar, Schmidt, Madry 2017, section 4).

The paper's observation: the covariance spectrum of GAN samples falls off far faster than that
of the real data, i.e. the generator keeps a handful of directions of variation and drops most.
This module defines what is measured: pure functions of arrays (images or spectra), the figures
below and :func:`analyse_spectra`, which computes all of them for one real and one GAN set. The
streamed covariances and eigen routes they use (exactness, memory, the randomized route for
large d) are in :mod:`audit.metrics.covariance`; the stage that reads and writes the files is
:mod:`audit.spectrum`, its figure :mod:`audit.plots.spectrum`.

Units and conventions (used everywhere below)
---------------------------------------------
* Images are uint8 arrays of shape (N, H, W, C) (``.npy`` memmaps are fine); each image is
  flattened to a vector of d = H*W*C pixels and scaled to [0, 1] (x / 255). Float input is taken
  to be in [0, 1] already. Arrays of shape (N, d) are accepted as well.
* Covariance is the unbiased sample covariance, normalised by **N - 1** (``np.cov(X, rowvar=False)``
  with the default ``ddof=1``); eigenvalues are variances in [0, 1]^2 units.
* Spectra are eigenvalues sorted **descending**. A *normalised* spectrum divides by the total
  variance (the trace of the covariance), so it sums to 1.

Definitions
-----------
``effective_rank``
    exp(H(p)) with p_i = lambda_i / sum(lambda) and H the Shannon entropy in nats (Roy & Vetterli
    2007). k equal eigenvalues give exactly k.
``n90`` / ``n99`` (:func:`components_for_variance`)
    the fewest leading directions whose eigenvalues sum to >= 90% / 99% of the total variance.
noise floor (:func:`quantisation_noise_floor`)
    Writing samples as uint8 rounds every pixel by up to half a grey level; that rounding error
    is close to independent uniform noise of variance q = 1 / (12 * 255^2) ~= 1.28e-6 per pixel.
    Its sample covariance (N samples, d pixels) has eigenvalues up to the Marchenko-Pastur edge
    q * (1 + sqrt(d / N))^2. The floor used here is ``factor`` (default 4) times that edge: an
    eigenvalue below it is indistinguishable from rounding and is not counted as a direction.
``directions`` (:func:`directions_above_noise_floor`)
    number of eigenvalues above the noise floor: the *effective number of directions* of a
    sample set. The floor uses the set's effective sample size (:func:`effective_sample_size`),
    since repeated images share their rounding error. Unlike n99 it does not depend on how the
    variance is shared among the kept directions (a GAN that keeps r directions with unequal
    variances has n99 < r), and the floor makes it immune to the isotropic rounding noise that
    re-quantisation adds to every direction.
``variance ratio`` (:func:`directional_variance_ratio`)
    for each real principal direction v_i: (v_i^T C_gan v_i) / lambda_i^real, the GAN's variance
    along that direction relative to the real data's. 1 = kept, ~0 = dropped.
``significant real directions``
    the first ``min(n99_real, directions_real)`` real principal directions: needed for 99% of
    the real variance *and* above the real noise floor (so that a ratio is not rounding over
    rounding).
``dropped directions`` (:func:`dropped_directions`)
    number of significant real directions whose variance ratio is below ``threshold``
    (default 0.1: the GAN has less than a tenth of the real variance along it), and at least
    significant - directions_gan: a GAN that varies along m directions keeps at most m.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from audit.io import AuditInputError
from audit.metrics import covariance as cv

#: Variance of uniform rounding to one grey level, in [0, 1]^2 units: 1 / (12 * 255^2).
QUANTISATION_VARIANCE = 1.0 / (12.0 * 255.0**2)
#: Multiple of the Marchenko-Pastur edge of the rounding noise below which eigenvalues are noise.
NOISE_FLOOR_FACTOR = 4.0
#: Eigenvalues computed by the randomized route when d > :data:`audit.metrics.covariance.MAX_FULL_D`.
TOP_K = 1000
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
    p = lam[lam > 0] / total
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


def effective_sample_size(images, chunk_size: int = cv.CHUNK_SIZE) -> tuple[int, float]:
    """(distinct images, effective sample size) of ``images`` (N, ...) for the rounding noise.

    Rounding to uint8 is a function of the image, so duplicate images carry the *same* rounding
    error: a resampler that draws 2,000 samples from 640 pool images has 640 independent
    rounding errors, not 2,000, and its noise eigenvalues reach far above the Marchenko-Pastur
    edge for N = 2,000. The effective size is Kish's N^2 / sum_i c_i^2 over the counts c_i of
    identical images (= N when all differ). Identity is exact (a hash of each image's bytes).
    """
    n, _ = cv.flat_shape(images)
    counts: dict[bytes, int] = {}
    for chunk in cv.iter_chunks(images, chunk_size):
        for row in chunk:
            key = hashlib.blake2b(row.tobytes(), digest_size=16).digest()
            counts[key] = counts.get(key, 0) + 1
    squares = sum(c * c for c in counts.values())
    return len(counts), (n * n / squares if squares else 0.0)


def quantisation_noise_floor(n_samples: float, d: int, factor: float = NOISE_FLOOR_FACTOR) -> float:
    """Eigenvalue (in [0, 1]^2 units) below which a direction is uint8 rounding noise.

    ``factor * q * (1 + sqrt(d / n_samples))^2`` with q = 1 / (12 * 255^2): the largest sample
    eigenvalue of iid uniform rounding noise (Marchenko-Pastur edge) times a safety factor.
    ``n_samples`` should be the effective sample size (:func:`effective_sample_size`) when the
    set repeats images.
    """
    return float(factor * QUANTISATION_VARIANCE * (1.0 + math.sqrt(d / n_samples)) ** 2)


def directions_above_noise_floor(
    eigs: np.ndarray, n_samples: float, d: int | None = None, factor: float = NOISE_FLOOR_FACTOR
) -> int:
    """Effective number of directions: eigenvalues above :func:`quantisation_noise_floor`."""
    lam = np.asarray(eigs, dtype=np.float64)
    d = lam.shape[0] if d is None else d
    return int(np.count_nonzero(lam > quantisation_noise_floor(n_samples, d, factor)))


def directional_variance_ratio(
    gan_images,
    real_eigvecs: np.ndarray,
    real_eigs: np.ndarray,
    gan_cov: np.ndarray | None = None,
    chunk_size: int = cv.CHUNK_SIZE,
    device: str = "cpu",
) -> np.ndarray:
    """(k,) GAN variance along each real principal direction / real variance along it.

    ``real_eigvecs`` (d, k) unit columns, ``real_eigs`` (k,) the matching real eigenvalues.
    GAN variance along v_i is v_i^T C_gan v_i with the same N - 1 normalisation; it is taken from
    ``gan_cov`` (d, d) when given (:func:`~audit.metrics.covariance.quadratic_forms`, cost
    2 d^2 k), otherwise streamed from ``gan_images`` (N, ...) by projecting chunks onto the
    directions (:func:`~audit.metrics.covariance.projected_variance`: one pass, cost 2 N d k,
    O(d k) memory). Directions with real eigenvalue <= 0 give NaN.
    """
    V = np.asarray(real_eigvecs, dtype=np.float64)
    lam = np.asarray(real_eigs, dtype=np.float64)
    if V.ndim != 2 or V.shape[1] != lam.shape[0]:
        raise AuditInputError(f"eigenvectors {V.shape} do not match {lam.shape[0]} eigenvalues")
    if gan_cov is not None:
        gan_var = cv.quadratic_forms(gan_cov, V)
    else:
        gan_var = cv.projected_variance(gan_images, V, chunk_size, device)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(lam > 0, gan_var / np.where(lam > 0, lam, 1.0), np.nan)


def dropped_directions(
    ratio: np.ndarray, threshold: float = 0.1, significant: int | None = None, gan_directions: int | None = None
) -> int:
    """Real principal directions the GAN drops, among the first ``significant``.

    ``ratio`` (k,) from :func:`directional_variance_ratio`, ordered like the real spectrum
    (descending). ``significant`` defaults to all k; :func:`spectrum_summary` passes
    min(n99_real, directions above the real noise floor). A direction is dropped when its ratio
    is below ``threshold`` (NaN ratios are not counted).

    ``gan_directions`` = m, the GAN's own number of directions above its noise floor, caps the
    kept directions at m: a GAN whose samples vary along m directions cannot keep more than m
    real ones. Without the cap a rank-r GAN can be credited with more than r, because where real
    eigenvalues are nearly equal the sample principal directions of two finite sets are mixed,
    and the GAN's r-dimensional subspace straddles several real directions with a ratio above
    the threshold on each (64 x 64 scenes, r = 10: 1 to 3 extra "kept" directions).
    """
    r = np.asarray(ratio, dtype=np.float64)
    if significant is not None:
        r = r[: int(significant)]
    low = int(np.count_nonzero(r < threshold))
    if gan_directions is None:
        return low
    return max(low, int(r.size) - int(gan_directions))


# --------------------------------------------------------------------------------------------
# summary and table


@dataclass(frozen=True)
class SpectrumResult:
    """``summary`` (JSON-able dict), ``real_eigs``/``gan_eigs`` (descending), ``ratio`` (k_sig,)."""

    summary: dict
    real_eigs: np.ndarray
    gan_eigs: np.ndarray
    ratio: np.ndarray


def analyse_spectra(
    real_images,
    gan_images,
    threshold: float = 0.1,
    chunk_size: int = cv.CHUNK_SIZE,
    device: str = "cpu",
    max_full_d: int = cv.MAX_FULL_D,
    k: int = TOP_K,
    seed: int = 0,
    noise_floor_factor: float = NOISE_FLOOR_FACTOR,
) -> SpectrumResult:
    """All spectrum figures for real vs GAN images (both (N, H, W, C) uint8, same image shape).

    d <= ``max_full_d``: exact covariances and full eigendecompositions (method ``full-eigh``,
    k = d). Larger d: top-``k`` spectra by :func:`~audit.metrics.covariance.top_eigenspectrum`
    (method ``randomized``); effective ranks are then those of the truncated spectra (flagged
    ``truncated``) and n90/n99 are None when the top k do not reach the fraction.
    """
    n_real, d = cv.flat_shape(real_images)
    n_gan, _ = cv.flat_shape(gan_images)
    if tuple(real_images.shape[1:]) != tuple(gan_images.shape[1:]):
        raise AuditInputError(
            f"real images {tuple(real_images.shape[1:])} and GAN images {tuple(gan_images.shape[1:])} differ in shape"
        )
    n_real_distinct, n_real_eff = effective_sample_size(real_images, chunk_size)
    n_gan_distinct, n_gan_eff = effective_sample_size(gan_images, chunk_size)
    if d <= max_full_d:
        k_used, truncated = d, False
        real_eigs, real_total, real_vecs, real_route = cv.exact_spectrum(
            real_images,
            lambda eigs, total: _significant(eigs, total, n_real_eff, d, noise_floor_factor),
            chunk_size,
            device,
        )
        n_sig = 0 if real_vecs is None else real_vecs.shape[1]
        ratio = directional_variance_ratio(gan_images, real_vecs[:, :n_sig] if n_sig else np.zeros((d, 0)),
                                           real_eigs[:n_sig], chunk_size=chunk_size, device=device)
        del real_vecs
        gan_eigs, gan_total, _, gan_route = cv.exact_spectrum(gan_images, None, chunk_size, device)
        method = f"full-eigh (real: {real_route}, gan: {gan_route})"
    else:
        k_used, truncated = int(min(k, d)), True
        real_top = cv.top_eigenspectrum(real_images, k_used, chunk_size=chunk_size, device=device, seed=seed,
                                        return_vectors=True)
        real_eigs, real_total = real_top.eigenvalues, real_top.total_variance
        n_sig = _significant(real_eigs, real_total, n_real_eff, d, noise_floor_factor)
        ratio = directional_variance_ratio(
            gan_images, real_top.eigenvectors[:, :n_sig], real_eigs[:n_sig], chunk_size=chunk_size, device=device
        )
        gan_top = cv.top_eigenspectrum(gan_images, k_used, chunk_size=chunk_size, device=device, seed=seed + 1)
        gan_eigs, gan_total = gan_top.eigenvalues, gan_top.total_variance
        method = f"randomized: {real_top.method}"

    directions_gan = directions_above_noise_floor(gan_eigs, n_gan_eff, d, noise_floor_factor)
    valid = ratio[np.isfinite(ratio)]
    dropped = dropped_directions(ratio, threshold, n_sig, gan_directions=directions_gan)
    summary = {
        "method": method,
        "k": k_used,
        "truncated": truncated,
        "d": d,
        "image_shape": list(real_images.shape[1:]),
        "n_real": n_real,
        "n_gan": n_gan,
        "n_distinct_real": n_real_distinct,
        "n_distinct_gan": n_gan_distinct,
        "n_effective_real": n_real_eff,
        "n_effective_gan": n_gan_eff,
        "normalisation": "sample covariance / (N - 1), pixels in [0, 1]",
        "total_variance_real": real_total,
        "total_variance_gan": gan_total,
        "effective_rank_real": effective_rank(real_eigs),
        "effective_rank_gan": effective_rank(gan_eigs),
        "n90_real": components_for_variance(real_eigs, 0.90, real_total),
        "n99_real": components_for_variance(real_eigs, 0.99, real_total),
        "n90_gan": components_for_variance(gan_eigs, 0.90, gan_total),
        "n99_gan": components_for_variance(gan_eigs, 0.99, gan_total),
        "noise_floor_factor": noise_floor_factor,
        "noise_floor_real": quantisation_noise_floor(n_real_eff, d, noise_floor_factor),
        "noise_floor_gan": quantisation_noise_floor(n_gan_eff, d, noise_floor_factor),
        "directions_real": directions_above_noise_floor(real_eigs, n_real_eff, d, noise_floor_factor),
        "directions_gan": directions_gan,
        "significant_real_directions": n_sig,
        "significant_definition": "first min(n99_real, directions_real) real principal directions",
        "dropped_threshold": threshold,
        "low_ratio_directions": dropped_directions(ratio, threshold, n_sig),
        "dropped_directions": dropped,
        "dropped_definition": "significant real directions with variance ratio < threshold, "
        "at least significant - directions_gan (a GAN cannot keep more directions than it has)",
        "dropped_fraction": dropped / n_sig if n_sig else 0.0,
        "median_variance_ratio": float(np.median(valid)) if valid.size else None,
    }
    return SpectrumResult(summary=summary, real_eigs=real_eigs, gan_eigs=gan_eigs, ratio=ratio)


def _significant(real_eigs, real_total, n_real, d, factor) -> int:
    n99 = components_for_variance(real_eigs, 0.99, real_total)
    n99 = len(real_eigs) if n99 is None else n99
    return int(min(n99, directions_above_noise_floor(real_eigs, n_real, d, factor)))


def spectrum_summary(real_images, gan_images, **kwargs) -> dict:
    """The JSON-able figures of :func:`analyse_spectra` (same arguments)."""
    return analyse_spectra(real_images, gan_images, **kwargs).summary


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


