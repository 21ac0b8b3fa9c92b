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
Gram matrix (:func:`gram_spectrum`: same nonzero eigenvalues, eigenvectors mapped back through
the data), for N > d the d x d streamed covariance. The 800 real test patches of 64x64 scenes are
then an 800 x 800 problem.

Memory, d = 12,288 (64x64x3), N = 50,000: the float64 covariance is 1.2 GB and eigvalsh copies
it once more (2.4 GB of matrices; ~3.5 GiB process RSS with torch and the memmap pages). The
variance ratio needs eigenvectors only for the significant real directions; they come from
:func:`top_eigenvectors` overwriting the covariance (at most 3 d^2 doubles = 3.6 GB of
matrices, ~4.5 GiB RSS), so the whole summary stays well inside 8 GiB (d^2 scaling of RSS
measured at d = 3,072 by ``benchmarks/spectrum.py``). Above ``MAX_FULL_D``
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
    n, d = flat_shape(images)
    chunk = np.require(images[start:stop], requirements=["C", "W"]).reshape(-1, d)
    return _to_unit(chunk, torch, device, torch.float64).sub_(mean)


def gram_spectrum(images, n_vectors=0, chunk_size: int = CHUNK_SIZE, device: str = "cpu"):
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

    n, d = flat_shape(images)
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


def exact_spectrum(images, n_vectors=None, chunk_size: int = CHUNK_SIZE, device: str = "cpu"):
    """Full covariance spectrum of ``images`` (N, ...), by the cheaper of two exact routes.

    N <= d: :func:`gram_spectrum` (N x N problem). N > d: :func:`streaming_covariance` then
    :func:`eigenspectrum` and, for the vectors, :func:`top_eigenvectors` (d x d problem).
    ``n_vectors`` is None (values only) or a callable ``(eigenvalues, total) -> m`` deciding
    how many leading eigenvectors to return once the values are known.
    Returns ``(eigenvalues (d,) descending, total variance, vectors (d, m) or None, route)``.
    """
    n, d = flat_shape(images)
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
# variance along given directions


def quadratic_forms(cov: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """(k,) v_i^T C v_i for a (d, d) covariance C and (d, k) float64 columns v_i (cost 2 d^2 k);
    column blocks of 1,024 keep the d x k product small."""
    import torch

    C = torch.from_numpy(np.ascontiguousarray(cov, dtype=np.float64))
    values = np.empty(directions.shape[1])
    for a in range(0, directions.shape[1], 1024):
        Vb = torch.from_numpy(np.ascontiguousarray(directions[:, a : a + 1024]))
        values[a : a + Vb.shape[1]] = ((C @ Vb) * Vb).sum(0).numpy()
    return values


def projected_variance(images, directions: np.ndarray, chunk_size: int = CHUNK_SIZE, device: str = "cpu") -> np.ndarray:
    """(k,) variance (N - 1) of the projections X @ V of ``images`` (N, ...) onto (d, k) float64
    columns V, streamed in one pass (cost 2 N d k, O(d k) memory) and merged chunk by chunk
    (Chan et al. 1979)."""
    import torch

    n_total, d = flat_shape(images)
    if directions.shape[0] != d:
        raise AuditInputError(f"GAN images have {d} pixels but the directions have {directions.shape[0]}")
    if n_total < 2:
        raise AuditInputError(f"variance needs at least 2 samples, got {n_total}")
    Vt = torch.from_numpy(np.ascontiguousarray(directions)).to(device)
    n, mean, m2 = 0, None, None
    for chunk in iter_chunks(images, chunk_size):
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
