"""Pixel-covariance spectra of real vs GAN samples (Santurkar, Schmidt, Madry 2017, section 4).

The paper's observation: the covariance spectrum of GAN samples falls off far faster than that
of the real data, i.e. the generator keeps a handful of directions of variation and drops most.
This module measures it. Layout (torch-fidelity style): pure functions on arrays, then
:func:`spectrum_files` on files, then a thin CLI::

    python -m audit.metrics.spectrum --real REAL.npy --gan GAN.npy \\
        --out-json X.json --out-csv Y.csv --out-png Z.png [--threads N] [--max-samples M --seed S]

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

Accuracy of the streamed covariance
-----------------------------------
For uint8 input, :func:`streaming_covariance` multiplies the integer values x - 128 (in [-128,
127]) in float32, in chunks of at most 1,024 rows: every product (<= 2^14) and every partial sum
(<= 1024 * 2^14 = 2^24) is an integer that float32 represents exactly, whatever the summation
order of the BLAS, so each chunk's Gram matrix is exact; chunks are summed in float64 (exact for
integers below 2^53). The final centring S - s s^T / N is the only rounding step (relative error
~1e-16). A run-time check compares the Gram diagonal with an exact float64 sum of squares and
falls back to float64 matmuls if they differ (e.g. a reduced-precision matmul mode on a GPU).
Only the upper block triangle of the Gram matrix is multiplied: (b + 1) / (2 b) of the flops for
b column blocks (58% at d = 12,288 with 2,048-column blocks).
Float input uses float64 matmuls on data shifted by the first chunk's mean (shifted sums).

Exact spectra take the cheaper of two routes (:func:`exact_spectrum`): for N <= d the N x N
Gram matrix (:func:`gram_spectrum`: same nonzero eigenvalues, eigenvectors mapped back through
the data), for N > d the d x d covariance below. The 800 real test patches of 64x64 scenes are
then an 800 x 800 problem.

Memory, d = 12,288 (64x64x3), N = 50,000: the float64 covariance is 1.2 GB and eigvalsh copies
it once more (2.4 GB of matrices; ~3.5 GiB process RSS with torch and the memmap pages). The
variance ratio needs eigenvectors only for the significant real directions; they come from
:func:`top_eigenvectors` overwriting the covariance (at most 3 d^2 doubles = 3.6 GB of
matrices, ~4.5 GiB RSS), so the whole summary stays well inside 8 GiB (d^2 scaling of RSS
measured at d = 3,072 by ``benchmarks/spectrum.py``). Above ``MAX_FULL_D`` the summary switches to
:func:`top_eigenspectrum` (randomized subspace iteration on the streamed covariance, O(d k)
memory) and reports the k it used.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import math
from dataclasses import dataclass
from typing import Iterator, Mapping

import numpy as np
import pandas as pd

from audit.io import AuditInputError, atomic_path, load_images, run_cli, save_json, save_table

#: Largest d for which the full eigendecomposition is used (64 x 64 x 3 images).
MAX_FULL_D = 12_288
#: Rows per exact float32 Gram block for uint8 input: 1024 * 128^2 = 2^24.
_EXACT_ROWS = 1024
#: Variance of uniform rounding to one grey level, in [0, 1]^2 units: 1 / (12 * 255^2).
QUANTISATION_VARIANCE = 1.0 / (12.0 * 255.0**2)
#: Multiple of the Marchenko-Pastur edge of the rounding noise below which eigenvalues are noise.
NOISE_FLOOR_FACTOR = 4.0
#: Relative slack when comparing cumulative variance fractions (so 9 of 10 equal values = 90%).
_FRACTION_TOL = 1e-9


# --------------------------------------------------------------------------------------------
# streaming helpers


def _flat_shape(images) -> tuple[int, int]:
    shape = tuple(images.shape)
    if len(shape) < 2:
        raise AuditInputError(f"expected an array of shape (N, ...), got {shape}")
    return shape[0], int(np.prod(shape[1:], dtype=np.int64))


def _chunks(images, chunk_size: int) -> Iterator[np.ndarray]:
    """Yield (c, d) numpy chunks of ``images`` in order (memmap rows are read chunk by chunk)."""
    n, d = _flat_shape(images)
    chunk_size = max(1, int(chunk_size))
    for start in range(0, n, chunk_size):
        # writeable C-contiguous copy only when needed (torch.from_numpy wants writeable memory)
        yield np.require(images[start : start + chunk_size], requirements=["C", "W"]).reshape(-1, d)


def _to_unit(chunk: np.ndarray, torch, device: str, dtype):
    """(c, d) chunk -> torch tensor in [0, 1] units (uint8 / 255; float as is)."""
    t = torch.from_numpy(chunk).to(device=device, dtype=dtype)
    if chunk.dtype == np.uint8:
        t.mul_(1.0 / 255.0)
    return t


def _blocks(d: int, block_size: int) -> list[tuple[int, int]]:
    """Column blocks of at most ``block_size``, of (nearly) equal widths."""
    n_blocks = -(-d // max(1, int(block_size)))
    width = -(-d // n_blocks)
    return [(a, min(a + width, d)) for a in range(0, d, width)]


class _RowSubset:
    """A read-only view of some rows of an array (sorted indices), sliced chunk by chunk.

    Lets ``--max-samples`` subsample a memmap without loading the subset into RAM.
    """

    def __init__(self, images, rows: np.ndarray):
        self._images = images
        self._rows = np.sort(np.asarray(rows, dtype=np.int64))
        self.shape = (len(self._rows),) + tuple(images.shape[1:])
        self.dtype = images.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        return self._images[self._rows[key]]


def subsample(images, max_samples: int | None, rng: np.random.Generator):
    """``images`` itself, or a lazy view of ``max_samples`` rows drawn without replacement."""
    n = images.shape[0]
    if not max_samples or n <= max_samples:
        return images
    return _RowSubset(images, rng.choice(n, size=int(max_samples), replace=False))


# --------------------------------------------------------------------------------------------
# covariance and eigenvalues


def streaming_covariance(
    images,
    chunk_size: int = 1024,
    device: str = "cpu",
    block_size: int = 2048,
    return_mean: bool = False,
):
    """Pixel covariance of ``images`` (N, ...) -> (d, d) float64 array, d = prod(shape[1:]).

    Pixels are in [0, 1] (uint8 / 255); normalisation N - 1, i.e. equal to
    ``np.cov(images.reshape(N, -1) / 255, rowvar=False)``. Rows are read ``chunk_size`` at a time
    (uint8 chunks are capped at 1,024 rows, see the module docstring for why this makes the
    float32 matmuls exact), so a (50,000, 12,288) uint8 memmap needs the 1.2 GB result plus
    ~100 MB of chunk buffers. ``block_size`` is the column block of the upper-triangular Gram
    product. With ``return_mean`` also returns the (d,) pixel mean in [0, 1].
    """
    import torch

    n, d = _flat_shape(images)
    if n < 2:
        raise AuditInputError(f"covariance needs at least 2 samples, got {n}")
    is_uint8 = np.dtype(images.dtype) == np.uint8
    if is_uint8:
        cov, mean = _covariance_uint8(images, n, d, min(chunk_size, _EXACT_ROWS), device, block_size, torch.float32)
        if cov is None:  # the float32 Gram was not exact on this device: redo in float64
            cov, mean = _covariance_uint8(images, n, d, min(chunk_size, _EXACT_ROWS), device, block_size, torch.float64)
    else:
        cov, mean = _covariance_float(images, n, d, chunk_size, device, block_size)
    cov_np = cov.cpu().numpy()
    mean_np = mean.cpu().numpy()
    return (cov_np, mean_np) if return_mean else cov_np


def _gram_upper(S, X, blocks) -> None:
    """S[a, b] += X[:, a].T @ X[:, b] for column blocks a <= b (S is float64, X float32/64)."""
    for i, (a0, a1) in enumerate(blocks):
        for b0, b1 in blocks[i:]:
            S[a0:a1, b0:b1] += X[:, a0:a1].T @ X[:, b0:b1]


def _symmetrise(S, blocks) -> None:
    """Copy the upper block triangle onto the lower one (diagonal blocks are already full)."""
    for i, (a0, a1) in enumerate(blocks):
        for b0, b1 in blocks[i + 1 :]:
            S[b0:b1, a0:a1] = S[a0:a1, b0:b1].T


def _covariance_uint8(images, n, d, chunk_size, device, block_size, dtype):
    import torch

    blocks = _blocks(d, block_size)
    S = torch.zeros((d, d), dtype=torch.float64, device=device)
    s = torch.zeros(d, dtype=torch.float64, device=device)
    sumsq = torch.zeros(d, dtype=torch.float64, device=device)
    for chunk in _chunks(images, chunk_size):
        X = torch.from_numpy(chunk).to(device=device, dtype=dtype).sub_(128.0)  # integers in [-128, 127]
        X64 = X.to(torch.float64)
        s += X64.sum(0)
        sumsq += X64.square().sum(0)
        del X64
        _gram_upper(S, X, blocks)
    if dtype == torch.float32 and not torch.equal(torch.diagonal(S), sumsq):
        return None, None  # not exact: caller retries in float64
    _symmetrise(S, blocks)
    S.addr_(s, s, alpha=-1.0 / n)  # centred sums of squares, integer grey levels
    S.mul_(1.0 / ((n - 1) * 255.0**2))
    mean = s / n / 255.0 + 128.0 / 255.0
    return S, mean


def _covariance_float(images, n, d, chunk_size, device, block_size):
    import torch

    blocks = _blocks(d, block_size)
    S = torch.zeros((d, d), dtype=torch.float64, device=device)
    s = torch.zeros(d, dtype=torch.float64, device=device)
    shift = None
    for chunk in _chunks(images, chunk_size):
        X = _to_unit(chunk, torch, device, torch.float64)
        if shift is None:
            shift = X.mean(0)  # shifted sums: avoid cancellation when the mean is far from 0
        X -= shift
        s += X.sum(0)
        _gram_upper(S, X, blocks)
    _symmetrise(S, blocks)
    S.addr_(s, s, alpha=-1.0 / n)
    S.mul_(1.0 / (n - 1))
    return S, s / n + shift


def eigenspectrum(cov: np.ndarray, return_vectors: bool = False):
    """Eigenvalues of a symmetric (d, d) covariance, descending, float64 (d,).

    Full symmetric eigendecomposition (LAPACK syevd via ``torch.linalg``); intended for
    d <= ``MAX_FULL_D``. Tiny negative values from rounding are kept as computed. With
    ``return_vectors`` also returns (d, d) eigenvectors as columns, in the same order (a
    reversed view, no copy).
    """
    import torch

    cov = np.asarray(cov)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise AuditInputError(f"expected a square covariance matrix, got shape {cov.shape}")
    t = torch.from_numpy(np.ascontiguousarray(cov, dtype=np.float64))
    if not return_vectors:
        return torch.linalg.eigvalsh(t).numpy()[::-1].copy()
    values, vectors = torch.linalg.eigh(t)
    return values.numpy()[::-1].copy(), vectors.numpy()[:, ::-1]


def top_eigenvectors(cov: np.ndarray, m: int, overwrite: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The ``m`` largest eigenpairs of a symmetric (d, d) matrix: values (m,) descending and
    vectors (d, m) as columns in the same order.

    m <= d / 4: LAPACK syevr (MRRR) on the index subset, one tridiagonalisation plus the m
    vectors, O(d m) extra memory (3.6 s for m = 100 and 4.9 s for m = 500 at d = 3,072 on one
    thread, vs 12.7 s for a full ``torch.linalg.eigh``). Larger m: syevd (divide and conquer)
    for all vectors, which is faster when many vectors sit in the clustered noise bulk (syevr:
    16.8 s for m = 1,537; syevd: 10.9 s), 2 d^2 extra workspace. With ``overwrite`` the input is
    destroyed (saves a d x d copy). BLAS threads follow ``torch.get_num_threads()``.
    """
    import contextlib

    import scipy.linalg
    import torch

    cov = np.asarray(cov, dtype=np.float64)
    d = cov.shape[0]
    m = int(min(max(m, 0), d))
    if m == 0:
        return np.zeros(0), np.zeros((d, 0))
    try:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(torch.get_num_threads())
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        limits = contextlib.nullcontext()
    # symmetric: the transpose is the same matrix, and its Fortran order lets LAPACK work in place
    a = cov.T if cov.flags.c_contiguous else cov
    subset = m <= d // 4
    with limits:
        values, vectors = scipy.linalg.eigh(
            a,
            driver="evr" if subset else "evd",
            subset_by_index=[d - m, d - 1] if subset else None,
            overwrite_a=overwrite,
            check_finite=False,
        )
    return values[::-1][:m].copy(), np.ascontiguousarray(vectors[:, ::-1][:, :m])


def _centred_rows(images, mean, start: int, stop: int, torch, device):
    """Rows start:stop of ``images`` as a centred float64 (c, d) tensor in [0, 1] units."""
    n, d = _flat_shape(images)
    chunk = np.require(images[start:stop], requirements=["C", "W"]).reshape(-1, d)
    return _to_unit(chunk, torch, device, torch.float64).sub_(mean)


def gram_spectrum(images, n_vectors=0, chunk_size: int = 1024, device: str = "cpu"):
    """Covariance eigenvalues of ``images`` (N, ...) from the N x N centred Gram matrix.

    For N <= d the covariance C = X_c^T X_c / (N - 1) (d x d) and the Gram matrix
    G = X_c X_c^T / (N - 1) (N x N) share their nonzero eigenvalues, and an eigenvector u of G
    gives the unit eigenvector v = X_c^T u / sqrt((N - 1) lambda) of C. With N = 800 real
    images of 64 x 64 x 3 pixels this is an 800 x 800 problem instead of 12,288 x 12,288.
    Returns eigenvalues (d,) descending, padded with the d - N exact zeros (the centred data
    span at most N - 1 directions), the total variance (trace), and with ``n_vectors`` > 0
    the (d, n_vectors) leading eigenvectors of C (columns; only for positive eigenvalues);
    ``n_vectors`` may be a callable ``(eigenvalues, total) -> m``, decided once the values are known.
    Blocks of ``chunk_size`` rows are centred in float64; the Gram matrix costs
    (N / chunk_size)^2 / 2 chunk reads and N^2 d flops.
    """
    import torch

    n, d = _flat_shape(images)
    if n < 2:
        raise AuditInputError(f"covariance needs at least 2 samples, got {n}")
    mean, _ = _mean_and_trace(images, chunk_size, torch, device)
    starts = list(range(0, n, max(1, int(chunk_size))))
    G = torch.zeros((n, n), dtype=torch.float64, device=device)
    for i, a in enumerate(starts):
        a1 = min(a + chunk_size, n)
        Xa = _centred_rows(images, mean, a, a1, torch, device)
        for b in starts[i:]:
            b1 = min(b + chunk_size, n)
            Xb = Xa if b == a else _centred_rows(images, mean, b, b1, torch, device)
            block = Xa @ Xb.T
            G[a:a1, b:b1] = block
            if b != a:
                G[b:b1, a:a1] = block.T
    G /= n - 1
    total = float(torch.trace(G))
    values, U = torch.linalg.eigh(G)
    values, U = values.flip(0), U.flip(1)
    eigs = np.zeros(d)
    m = min(n, d)
    eigs[:m] = values[:m].cpu().numpy()
    if callable(n_vectors):
        n_vectors = n_vectors(eigs, total)
    n_vectors = int(min(max(n_vectors, 0), m))
    if n_vectors == 0:
        return eigs, total, None
    if float(values[n_vectors - 1]) <= 0:
        raise AuditInputError(f"asked for {n_vectors} eigenvectors but the data span fewer directions")
    # v_j = X_c^T u_j / sqrt((N - 1) lambda_j), accumulated over row chunks
    W = U[:, :n_vectors] / torch.sqrt((n - 1) * values[:n_vectors])
    V = torch.zeros((d, n_vectors), dtype=torch.float64, device=device)
    for a in starts:
        a1 = min(a + chunk_size, n)
        V += _centred_rows(images, mean, a, a1, torch, device).T @ W[a:a1]
    return eigs, total, V.cpu().numpy()


def exact_spectrum(images, n_vectors=None, chunk_size: int = 1024, device: str = "cpu"):
    """Full covariance spectrum of ``images`` (N, ...), by the cheaper of two exact routes.

    N <= d: :func:`gram_spectrum` (N x N problem). N > d: :func:`streaming_covariance` then
    :func:`eigenspectrum` and, for the vectors, :func:`top_eigenvectors` (d x d problem).
    ``n_vectors`` is None (values only) or a callable ``(eigenvalues, total) -> m`` deciding
    how many leading eigenvectors to return once the values are known.
    Returns ``(eigenvalues (d,) descending, total variance, vectors (d, m) or None, route)``.
    """
    n, d = _flat_shape(images)
    if n <= d:
        return (*gram_spectrum(images, n_vectors or 0, chunk_size, device), "gram")
    cov = streaming_covariance(images, chunk_size=chunk_size, device=device)
    total = float(np.trace(cov))
    eigs = eigenspectrum(cov)
    m = 0 if n_vectors is None else int(n_vectors(eigs, total))
    vectors = top_eigenvectors(cov, m, overwrite=True)[1] if m else None
    return eigs, total, vectors, "covariance"


@dataclass(frozen=True)
class TopSpectrum:
    """Result of :func:`top_eigenspectrum`.

    eigenvalues (k,) descending, [0, 1]^2 units; eigenvectors (d, k) or None; k; total_variance
    = trace of the covariance (exact, streamed), so normalised values and n90/n99 stay correct
    even though only k eigenvalues are known; method describes the algorithm and its settings.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray | None
    k: int
    total_variance: float
    mean: np.ndarray
    method: str


def _mean_and_trace(images, chunk_size, torch, device):
    n, d = _flat_shape(images)
    s = torch.zeros(d, dtype=torch.float64, device=device)
    sq = torch.zeros(d, dtype=torch.float64, device=device)
    shift = None
    for chunk in _chunks(images, chunk_size):
        X = _to_unit(chunk, torch, device, torch.float64)
        if shift is None:
            shift = X.mean(0)
        X -= shift
        s += X.sum(0)
        sq += X.square().sum(0)
    total = float(((sq - s * s / n) / (n - 1)).sum())
    return s / n + shift, total


def _covariance_times(images, mean, Q, chunk_size, torch, device):
    """C @ Q for the streamed covariance C (N - 1 normalisation), Q (d, l) float64."""
    n, _ = _flat_shape(images)
    Y = torch.zeros_like(Q)
    for chunk in _chunks(images, chunk_size):
        X = _to_unit(chunk, torch, device, torch.float64)
        X -= mean
        Y += X.T @ (X @ Q)
    return Y / (n - 1)


def top_eigenspectrum(
    images,
    k: int,
    oversample: int = 10,
    n_iter: int = 4,
    chunk_size: int = 1024,
    device: str = "cpu",
    seed: int = 0,
    return_vectors: bool = False,
) -> TopSpectrum:
    """Top-``k`` covariance eigenvalues of ``images`` (N, ...) by randomized subspace iteration.

    Randomized range finder (Halko, Martinsson, Tropp 2011, alg. 4.4) applied to the covariance
    without forming it: every product C @ Q streams the data once (X_c^T (X_c Q) / (N - 1), float64),
    so memory is O(d (k + oversample)). Passes over the data: 1 (mean, trace) + ``n_iter`` + 1.
    Eigenvalues are Rayleigh-Ritz values, descending, same units as :func:`streaming_covariance`.
    """
    import torch

    n, d = _flat_shape(images)
    if n < 2:
        raise AuditInputError(f"covariance needs at least 2 samples, got {n}")
    k = int(min(k, d))
    width = int(min(d, k + oversample))
    mean, total = _mean_and_trace(images, chunk_size, torch, device)
    generator = torch.Generator().manual_seed(int(seed))
    Q = torch.randn((d, width), generator=generator, dtype=torch.float64).to(device)
    Q, _ = torch.linalg.qr(Q)
    for _ in range(n_iter):
        Q, _ = torch.linalg.qr(_covariance_times(images, mean, Q, chunk_size, torch, device))
    Y = _covariance_times(images, mean, Q, chunk_size, torch, device)
    B = Q.T @ Y
    values, U = torch.linalg.eigh((B + B.T) / 2)
    order = torch.argsort(values, descending=True)[:k]
    vectors = (Q @ U[:, order]).cpu().numpy() if return_vectors else None
    return TopSpectrum(
        eigenvalues=values[order].cpu().numpy(),
        eigenvectors=vectors,
        k=k,
        total_variance=total,
        mean=mean.cpu().numpy(),
        method=f"randomized subspace iteration (k={k}, oversample={oversample}, n_iter={n_iter})",
    )


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


def effective_sample_size(images, chunk_size: int = 1024) -> tuple[int, float]:
    """(distinct images, effective sample size) of ``images`` (N, ...) for the rounding noise.

    Rounding to uint8 is a function of the image, so duplicate images carry the *same* rounding
    error: a resampler that draws 2,000 samples from 640 pool images has 640 independent
    rounding errors, not 2,000, and its noise eigenvalues reach far above the Marchenko-Pastur
    edge for N = 2,000. The effective size is Kish's N^2 / sum_i c_i^2 over the counts c_i of
    identical images (= N when all differ). Identity is exact (a hash of each image's bytes).
    """
    import hashlib

    n, _ = _flat_shape(images)
    counts: dict[bytes, int] = {}
    for chunk in _chunks(images, chunk_size):
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
    chunk_size: int = 1024,
    device: str = "cpu",
) -> np.ndarray:
    """(k,) GAN variance along each real principal direction / real variance along it.

    ``real_eigvecs`` (d, k) unit columns, ``real_eigs`` (k,) the matching real eigenvalues.
    GAN variance along v_i is v_i^T C_gan v_i with the same N - 1 normalisation; it is taken from
    ``gan_cov`` (d, d) when given (cost 2 d^2 k), otherwise streamed from ``gan_images`` (N, ...)
    by projecting chunks onto the directions (one pass, cost 2 N d k, O(d k) memory).
    Directions with real eigenvalue <= 0 give NaN.
    """
    import torch

    V = np.asarray(real_eigvecs, dtype=np.float64)
    lam = np.asarray(real_eigs, dtype=np.float64)
    if V.ndim != 2 or V.shape[1] != lam.shape[0]:
        raise AuditInputError(f"eigenvectors {V.shape} do not match {lam.shape[0]} eigenvalues")
    if gan_cov is not None:
        C = torch.from_numpy(np.ascontiguousarray(gan_cov, dtype=np.float64))
        gan_var = np.empty(V.shape[1])
        for a in range(0, V.shape[1], 1024):  # column blocks keep the d x k product small
            Vb = torch.from_numpy(np.ascontiguousarray(V[:, a : a + 1024]))
            gan_var[a : a + Vb.shape[1]] = ((C @ Vb) * Vb).sum(0).numpy()
    else:
        gan_var = _projected_variance(gan_images, V, chunk_size, torch, device)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(lam > 0, gan_var / np.where(lam > 0, lam, 1.0), np.nan)


def _projected_variance(images, V, chunk_size, torch, device) -> np.ndarray:
    """Variance (N - 1) of the projections X @ V, merged chunk by chunk (Chan et al. 1979)."""
    n_total, d = _flat_shape(images)
    if V.shape[0] != d:
        raise AuditInputError(f"GAN images have {d} pixels but the directions have {V.shape[0]}")
    if n_total < 2:
        raise AuditInputError(f"variance needs at least 2 samples, got {n_total}")
    Vt = torch.from_numpy(np.ascontiguousarray(V)).to(device)
    n, mean, m2 = 0, None, None
    for chunk in _chunks(images, chunk_size):
        P = _to_unit(chunk, torch, device, torch.float64) @ Vt
        nb, mb = P.shape[0], P.mean(0)
        m2b = (P - mb).square().sum(0)
        if mean is None:
            n, mean, m2 = nb, mb, m2b
            continue
        delta = mb - mean
        m2 = m2 + m2b + delta.square() * (n * nb / (n + nb))
        mean = mean + delta * (nb / (n + nb))
        n += nb
    return (m2 / (n - 1)).cpu().numpy()


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
# summary, table, plot


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
    chunk_size: int = 1024,
    device: str = "cpu",
    max_full_d: int = MAX_FULL_D,
    k: int = 1000,
    seed: int = 0,
    noise_floor_factor: float = NOISE_FLOOR_FACTOR,
) -> SpectrumResult:
    """All spectrum figures for real vs GAN images (both (N, H, W, C) uint8, same image shape).

    d <= ``max_full_d``: exact covariances and full eigendecompositions (method ``full-eigh``,
    k = d). Larger d: top-``k`` spectra by :func:`top_eigenspectrum` (method ``randomized``);
    effective ranks are then those of the truncated spectra (flagged ``truncated``) and
    n90/n99 are None when the top k do not reach the fraction.
    """
    n_real, d = _flat_shape(real_images)
    n_gan, _ = _flat_shape(gan_images)
    if tuple(real_images.shape[1:]) != tuple(gan_images.shape[1:]):
        raise AuditInputError(
            f"real images {tuple(real_images.shape[1:])} and GAN images {tuple(gan_images.shape[1:])} differ in shape"
        )
    n_real_distinct, n_real_eff = effective_sample_size(real_images, chunk_size)
    n_gan_distinct, n_gan_eff = effective_sample_size(gan_images, chunk_size)
    if d <= max_full_d:
        k_used, truncated = d, False
        real_eigs, real_total, real_vecs, real_route = exact_spectrum(
            real_images,
            lambda eigs, total: _significant(eigs, total, n_real_eff, d, noise_floor_factor),
            chunk_size,
            device,
        )
        n_sig = 0 if real_vecs is None else real_vecs.shape[1]
        ratio = directional_variance_ratio(gan_images, real_vecs[:, :n_sig] if n_sig else np.zeros((d, 0)),
                                           real_eigs[:n_sig], chunk_size=chunk_size, device=device)
        del real_vecs
        gan_eigs, gan_total, _, gan_route = exact_spectrum(gan_images, None, chunk_size, device)
        method = f"full-eigh (real: {real_route}, gan: {gan_route})"
    else:
        k_used, truncated = int(min(k, d)), True
        real_top = top_eigenspectrum(real_images, k_used, chunk_size=chunk_size, device=device, seed=seed, return_vectors=True)
        real_eigs, real_total = real_top.eigenvalues, real_top.total_variance
        n_sig = _significant(real_eigs, real_total, n_real_eff, d, noise_floor_factor)
        ratio = directional_variance_ratio(
            gan_images, real_top.eigenvectors[:, :n_sig], real_eigs[:n_sig], chunk_size=chunk_size, device=device
        )
        gan_top = top_eigenspectrum(gan_images, k_used, chunk_size=chunk_size, device=device, seed=seed + 1)
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


def plot_spectra(table: pd.DataFrame, path, title: str | None = None, floors: Mapping[str, float] | None = None) -> None:
    """Save normalised spectra (a :func:`spectrum_table`) on a log y-axis, one line per column.

    ``floors`` maps a column name to its normalised noise floor, drawn as a dotted line in the
    same colour; the y-axis then starts at 1/30 of the lowest floor. Non-positive values are not
    drawn (log axis). Written atomically to ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    names = [c for c in table.columns if c != "index"]
    palette = dict(zip(names, sns.color_palette("colorblind", len(names))))
    with sns.axes_style("whitegrid"):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for name in names:
            values = table[name].to_numpy(dtype=float)
            ax.plot(table["index"], np.where(values > 0, values, np.nan), label=name, color=palette[name], lw=1.4)
            if floors and name in floors:
                ax.axhline(floors[name], color=palette[name], ls=":", lw=1)
        ax.set_yscale("log")
        # below the rounding floor is noise; do not let 1e-20 round-off set the scale
        bottom = min(floors.values()) / 30 if floors else 0.0
        if floors:
            ax.set_ylim(bottom=bottom)
        # spectra of fewer images than pixels end in zeros and round-off: stop the x-axis there
        shown = np.flatnonzero((table[names].to_numpy(dtype=float) > bottom).any(axis=1))
        if shown.size:
            ax.set_xlim(0, 1.03 * float(table["index"].iloc[shown[-1]]))
        ax.set_xlabel("principal direction (descending)")
        ax.set_ylabel("eigenvalue / total variance")
        ax.set_title(title or "Pixel-covariance spectrum")
        ax.legend(frameon=False)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120)
        plt.close(fig)


# --------------------------------------------------------------------------------------------
# files and CLI


def spectrum_files(
    real_path,
    gan_path,
    out_json,
    out_csv,
    out_png,
    max_samples: int | None = None,
    seed: int = 0,
    gan_label: str = "gan",
    real_split: str = "test",
    **kwargs,
) -> dict:
    """Read two uint8 (N, H, W, C) image sets, write summary JSON, spectra CSV and plot.

    ``real_path`` is a ``.npy`` file or a prepared dataset directory, of which ``real_split``
    is used (read lazily from the memmap).
    """
    if Path(real_path).is_dir():
        from audit.data.store import PreparedDataset

        dataset = PreparedDataset.open(real_path)
        real = _RowSubset(dataset.images, dataset.rows(real_split))
        real_path = f"{real_path} ({real_split} split)"
    else:
        real = load_images(real_path)
    gan = load_images(gan_path)
    if real.shape[1:] != gan.shape[1:]:
        raise AuditInputError(
            f"{real_path} has images of shape {real.shape[1:]} but {gan_path} has {gan.shape[1:]}"
        )
    for images, path in ((real, real_path), (gan, gan_path)):
        if images.shape[0] < 2:
            raise AuditInputError(f"{path}: need at least 2 images for a covariance, got {images.shape[0]}")
    rng = np.random.default_rng(seed)
    real_s, gan_s = subsample(real, max_samples, rng), subsample(gan, max_samples, rng)
    result = analyse_spectra(real_s, gan_s, seed=seed, **kwargs)
    summary = {
        "real": str(real_path),
        "gan": str(gan_path),
        "max_samples": max_samples,
        "seed": seed,
        **result.summary,
    }
    s = result.summary
    table = spectrum_table(result.real_eigs, {gan_label: result.gan_eigs}, s["total_variance_real"], {gan_label: s["total_variance_gan"]})
    save_json(out_json, summary)
    save_table(out_csv, table)
    floors = {"real": s["noise_floor_real"] / s["total_variance_real"]}
    if s["total_variance_gan"] > 0:
        floors[gan_label] = s["noise_floor_gan"] / s["total_variance_gan"]
    plot_spectra(
        table,
        out_png,
        title=f"Covariance spectrum: {s['dropped_directions']} of {s['significant_real_directions']} "
        f"real directions dropped",
        floors=floors,
    )
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m audit.metrics.spectrum",
        description="Pixel-covariance spectra of real vs GAN samples; counts dropped real directions.",
    )
    parser.add_argument("--real", required=True,
                        help="real images: uint8 (N, H, W, C) .npy, or a prepared dataset directory")
    parser.add_argument("--real-split", default="test", help="split of a prepared dataset directory")
    parser.add_argument("--gan", required=True, help="GAN samples, uint8 (N, H, W, C) .npy")
    parser.add_argument("--out-json", required=True)
    parser.add_argument("--out-csv", required=True)
    parser.add_argument("--out-png", required=True)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--max-samples", type=int, default=None, help="subsample each set to at most M")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=float, default=0.1, help="variance ratio below which a direction is dropped")
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--k", type=int, default=1000, help=f"top-k eigenvalues when d > {MAX_FULL_D}")
    parser.add_argument("--label", default="gan", help="GAN column name in the CSV and plot")
    args = parser.parse_args(argv)
    if args.max_samples is not None and args.max_samples < 2:
        raise AuditInputError(f"--max-samples must be >= 2, got {args.max_samples}")
    if not 0 < args.threshold <= 1:
        raise AuditInputError(f"--threshold must be in (0, 1], got {args.threshold}")

    from audit.runtime import configure_torch, resolve_device

    configure_torch(args.threads, args.seed)
    spectrum_files(
        args.real,
        args.gan,
        args.out_json,
        args.out_csv,
        args.out_png,
        max_samples=args.max_samples,
        seed=args.seed,
        gan_label=args.label,
        real_split=args.real_split,
        threshold=args.threshold,
        chunk_size=args.chunk_size,
        device=resolve_device(args.device),
        k=args.k,
    )


if __name__ == "__main__":
    run_cli(main)
