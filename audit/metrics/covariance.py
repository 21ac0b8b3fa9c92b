"""Streamed pixel covariances and their eigenvalues: the numerics under :mod:`audit.metrics.spectrum`.

Pure functions of image arrays. Input is uint8 (N, H, W, C) (``.npy`` memmaps are fine: rows are
read chunk by chunk), float (N, ...) already in [0, 1], or an (N, d) matrix. The units are those
of :mod:`audit.metrics.spectrum`: each image is a vector of d pixels x / 255 in [0, 1], the
covariance is normalised by N - 1, eigenvalues are descending, in [0, 1]^2 units.

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
Gram matrix (:func:`gram_spectrum`, same nonzero eigenvalues), for N > d the d x d streamed
covariance. The 800 real test patches of 64x64 scenes are then an 800 x 800 problem.
:func:`centred_gram`, :func:`cross_products` and :func:`combine_rows` give the inner products
that the cross-fitted splits of :mod:`audit.metrics.spectrum` and their null draws work on (so
they never go back to the d pixels), and the split's directions in pixels;
:func:`projected_covariance` streams V^T C V for a GAN set.

Memory, d = 12,288 (64x64x3), N = 50,000: the float64 covariance is 1.2 GB and eigvalsh copies
it once more (2.4 GB of matrices; ~3.5 GiB process RSS with torch and the memmap pages; d^2
scaling of RSS measured at d = 3,072 by ``benchmarks/spectrum.py``). Above ``MAX_FULL_D``
:func:`audit.metrics.spectrum.analyse_spectra` switches to :func:`top_eigenspectrum`
(randomized subspace iteration on the streamed covariance, O(d k) memory) and reports the k it
used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from audit.io import AuditInputError

#: Largest d for which the full eigendecomposition is used (64 x 64 x 3 images).
MAX_FULL_D = 12_288
#: Rows read per chunk unless a caller says otherwise (uint8 chunks are capped at _EXACT_ROWS).
CHUNK_SIZE = 1024
#: Rows per exact float32 Gram block for uint8 input: 1024 * 128^2 = 2^24.
_EXACT_ROWS = 1024
#: Variance ([0, 1]^2 units) below which an eigenvalue is round-off: centring pixels of order 1
#: leaves ~1e-32 per pixel, while one grey level in 10^5 images is ~1e-10.
ZERO_VARIANCE = 1e-20


def rank_of(values, rtol: float = 1e-10) -> int:
    """Number of eigenvalues (descending) above both ``rtol`` times the largest and
    :data:`ZERO_VARIANCE`: the rank, ignoring round-off (a constant set has rank 0)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return 0
    return int(np.count_nonzero(values > max(rtol * float(values[0]), ZERO_VARIANCE)))


# --------------------------------------------------------------------------------------------
# streaming helpers


def flat_shape(images) -> tuple[int, int]:
    shape = tuple(images.shape)
    if len(shape) < 2:
        raise AuditInputError(f"expected an array of shape (N, ...), got {shape}")
    return shape[0], int(np.prod(shape[1:], dtype=np.int64))


def iter_chunks(images, chunk_size: int) -> Iterator[np.ndarray]:
    """Yield (c, d) numpy chunks of ``images`` in order (memmap rows are read chunk by chunk)."""
    n, d = flat_shape(images)
    chunk_size = max(1, int(chunk_size))
    for start in range(0, n, chunk_size):
        # writeable C-contiguous copy only when needed (torch.from_numpy wants writeable memory)
        yield np.require(images[start : start + chunk_size], requirements=["C", "W"]).reshape(-1, d)


def _to_unit(chunk: np.ndarray, torch, device: str, dtype):
    """(c, d) chunk -> a new torch tensor in [0, 1] units (uint8 / 255; float as is). Always a
    copy: callers centre it in place, and a float64 chunk may be a view of the caller's array."""
    t = torch.from_numpy(chunk).to(device=device, dtype=dtype, copy=True)
    if chunk.dtype == np.uint8:
        t.mul_(1.0 / 255.0)
    return t


def _blocks(d: int, block_size: int) -> list[tuple[int, int]]:
    """Column blocks of at most ``block_size``, of (nearly) equal widths."""
    n_blocks = -(-d // max(1, int(block_size)))
    width = -(-d // n_blocks)
    return [(a, min(a + width, d)) for a in range(0, d, width)]


class RowSubset:
    """A read-only view of some rows of an array (sorted indices), sliced chunk by chunk.

    Lets :func:`subsample` (or a stage, for one split of a prepared dataset) take rows of a
    memmap without loading them into RAM.
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
    return RowSubset(images, rng.choice(n, size=int(max_samples), replace=False))


# --------------------------------------------------------------------------------------------
# covariance and eigenvalues


def streaming_covariance(
    images,
    chunk_size: int = CHUNK_SIZE,
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

    n, d = flat_shape(images)
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
    for chunk in iter_chunks(images, chunk_size):
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
    for chunk in iter_chunks(images, chunk_size):
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


def _centred_rows(images, mean, start: int, stop: int, torch, device):
    """Rows start:stop of ``images`` as a centred float64 (c, d) tensor in [0, 1] units."""
    n, d = flat_shape(images)
    chunk = np.require(images[start:stop], requirements=["C", "W"]).reshape(-1, d)
    return _to_unit(chunk, torch, device, torch.float64).sub_(mean)


def _row_blocks(n: int, chunk_size: int) -> list[tuple[int, int]]:
    size = max(1, int(chunk_size))
    return [(a, min(a + size, n)) for a in range(0, n, size)]


def _products(images, others, mean, chunk_size, torch, device):
    """(N, M) torch float64 inner products (x_i - mean) . (y_j - mean); ``others`` None: the
    symmetric N x N Gram matrix of ``images`` (upper block triangle multiplied, then mirrored)."""
    n, _ = flat_shape(images)
    rows = _row_blocks(n, chunk_size)
    cols = rows if others is None else _row_blocks(flat_shape(others)[0], chunk_size)
    G = torch.zeros((n, cols[-1][1]), dtype=torch.float64, device=device)
    for i, (a, a1) in enumerate(rows):
        Xa = _centred_rows(images, mean, a, a1, torch, device)
        for b, b1 in cols[i:] if others is None else cols:
            Yb = Xa if others is None and b == a else _centred_rows(images if others is None else others, mean, b, b1,
                                                                    torch, device)
            G[a:a1, b:b1] = Xa @ Yb.T
            if others is None and b != a:
                G[b:b1, a:a1] = G[a:a1, b:b1].T
    return G


def centred_gram(images, chunk_size: int = CHUNK_SIZE, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """(K, mean): K (N, N) float64 the inner products of the images about their mean
    (X_c X_c^T, not normalised; cost N^2 d), mean (d,) in [0, 1]. Every covariance of a subset
    of the rows, along any direction their span holds, follows from K alone."""
    import torch

    n, _ = flat_shape(images)
    if n < 2:
        raise AuditInputError(f"covariance needs at least 2 samples, got {n}")
    mean, _ = _mean_and_trace(images, chunk_size, torch, device)
    return _products(images, None, mean, chunk_size, torch, device).cpu().numpy(), mean.cpu().numpy()


def cross_products(images, others, mean, chunk_size: int = CHUNK_SIZE, device: str = "cpu") -> np.ndarray:
    """(N, M) float64 inner products (x_i - mean) . (y_j - mean) of ``images`` (N, ...) with
    ``others`` (M, ...), about a given (d,) ``mean`` in [0, 1]; cost N M d."""
    import torch

    if flat_shape(images)[1] != flat_shape(others)[1]:
        raise AuditInputError(f"images have {flat_shape(images)[1]} pixels but the others {flat_shape(others)[1]}")
    mean = torch.as_tensor(np.asarray(mean, dtype=np.float64), device=device)
    return _products(images, others, mean, chunk_size, torch, device).cpu().numpy()


def combine_rows(images, coef: np.ndarray, mean, chunk_size: int = CHUNK_SIZE, device: str = "cpu") -> np.ndarray:
    """(d, k) float64 sum_i (x_i - mean) coef[i] for ``images`` (N, ...) and ``coef`` (N, k):
    directions spanned by the centred rows, in pixels (an eigenvector u of the Gram matrix gives
    the unit covariance eigenvector X_c^T u / sqrt((N - 1) lambda)); cost N d k."""
    import torch

    n, d = flat_shape(images)
    W = torch.from_numpy(np.array(coef, dtype=np.float64, order="C")).to(device)
    mean = torch.as_tensor(np.asarray(mean, dtype=np.float64), device=device)
    V = torch.zeros((d, W.shape[1]), dtype=torch.float64, device=device)
    for a, a1 in _row_blocks(n, chunk_size):
        V += _centred_rows(images, mean, a, a1, torch, device).T @ W[a:a1]
    return V.cpu().numpy()


def gram_spectrum(images, chunk_size: int = CHUNK_SIZE, device: str = "cpu") -> tuple[np.ndarray, float]:
    """Covariance eigenvalues of ``images`` (N, ...) from the N x N centred Gram matrix.

    For N <= d the covariance C = X_c^T X_c / (N - 1) (d x d) and the Gram matrix
    G = X_c X_c^T / (N - 1) (N x N) share their nonzero eigenvalues (and an eigenvector u of G
    gives the unit eigenvector X_c^T u / sqrt((N - 1) lambda) of C: :func:`combine_rows`).
    With N = 800 images of 64 x 64 x 3 pixels this is an 800 x 800 problem instead of
    12,288 x 12,288. Returns eigenvalues (d,) descending, padded with the d - N exact zeros (the
    centred data span at most N - 1 directions), and the total variance (trace). Blocks of
    ``chunk_size`` rows are centred in float64; cost N^2 d flops.
    """
    n, d = flat_shape(images)
    gram, _ = centred_gram(images, chunk_size, device)
    return gram_eigenvalues(gram, d), float(np.trace(gram)) / (n - 1)


def gram_eigenvalues(gram: np.ndarray, d: int) -> np.ndarray:
    """(d,) covariance eigenvalues, descending, from a centred Gram matrix (N, N) of N images of
    d pixels: its eigenvalues / (N - 1), padded with zeros (or cut) to d."""
    import torch

    n = gram.shape[0]
    values = torch.linalg.eigvalsh(torch.from_numpy(np.ascontiguousarray(gram))).flip(0).numpy() / (n - 1)
    eigs = np.zeros(d)
    eigs[: min(n, d)] = values[: min(n, d)]
    return eigs


def exact_spectrum(images, chunk_size: int = CHUNK_SIZE, device: str = "cpu"):
    """Full covariance spectrum of ``images`` (N, ...), by the cheaper of two exact routes:
    N <= d :func:`gram_spectrum` (N x N problem), N > d :func:`streaming_covariance` then
    :func:`eigenspectrum` (d x d). Returns ``(eigenvalues (d,) descending, total variance, route)``.
    """
    n, d = flat_shape(images)
    if n <= d:
        return (*gram_spectrum(images, chunk_size, device), "gram")
    cov = streaming_covariance(images, chunk_size=chunk_size, device=device)
    return eigenspectrum(cov), float(np.trace(cov)), "covariance"


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
    n, d = flat_shape(images)
    s = torch.zeros(d, dtype=torch.float64, device=device)
    sq = torch.zeros(d, dtype=torch.float64, device=device)
    shift = None
    for chunk in iter_chunks(images, chunk_size):
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
    n, _ = flat_shape(images)
    Y = torch.zeros_like(Q)
    for chunk in iter_chunks(images, chunk_size):
        X = _to_unit(chunk, torch, device, torch.float64)
        X -= mean
        Y += X.T @ (X @ Q)
    return Y / (n - 1)


def top_eigenspectrum(
    images,
    k: int,
    oversample: int = 10,
    n_iter: int = 4,
    chunk_size: int = CHUNK_SIZE,
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

    n, d = flat_shape(images)
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
# images along given directions


def projected_covariance(images, directions: np.ndarray, chunk_size: int = CHUNK_SIZE,
                         device: str = "cpu") -> np.ndarray:
    """(k, k) covariance (N - 1) of the projections X @ V of ``images`` (N, ...) onto (d, k)
    float64 columns V, i.e. V^T C V, in one streamed pass (cost 2 N d k + N k^2, O(d k + k^2)
    memory), chunks merged with the pairwise update of Chan, Golub and LeVeque (1979)."""
    import torch

    n_total, d = flat_shape(images)
    if directions.shape[0] != d:
        raise AuditInputError(f"images have {d} pixels but the directions have {directions.shape[0]}")
    if n_total < 2:
        raise AuditInputError(f"covariance needs at least 2 samples, got {n_total}")
    Vt = torch.from_numpy(np.array(directions, dtype=np.float64, order="C")).to(device)
    n, mean, m2 = 0, None, None
    for chunk in iter_chunks(images, chunk_size):
        P = _to_unit(chunk, torch, device, torch.float64) @ Vt
        nb, mb = P.shape[0], P.mean(0)
        Pc = P - mb
        m2b = Pc.T @ Pc
        if mean is None:
            n, mean, m2 = nb, mb, m2b
            continue
        delta = mb - mean
        m2 = m2 + m2b + torch.outer(delta, delta) * (n * nb / (n + nb))
        mean = mean + delta * (nb / (n + nb))
        n += nb
    return (m2 / (n - 1)).cpu().numpy()
