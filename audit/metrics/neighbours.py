"""Exact nearest pairs and nearest neighbours by chunked matrix products, never a full distance matrix.

Two searches, both exact (every pair is scored; no index, no approximation), deterministic and
bounded in memory by one block of ``block_elements`` float32 distances (64 MiB by default):

:func:`closest_pairs`  the k closest pairs (i < j) within one set, and optionally the number of
                       pairs closer than a threshold (all pairs, not only the k);
:func:`nearest`        the k nearest references of every query between two sets.

Inputs are either float features (N, D) (any float dtype; computed in float32) or uint8 images
(N, H, W, C), read chunk by chunk (a memmap stays on disk) and flattened. Distances are
Euclidean, in the units of the input: for features, the feature units (for the annotator's
L2-normalised embeddings, chord distance in [0, 2]); for uint8 images, **pixel values scaled to
[0, 1]** (x / 255), so two images differing by one grey level in every one of d pixels are
sqrt(d) / 255 apart. Images are computed on their integer values less 128 (-128..127; every row
is shifted by one common vector, for features the mean of the first rows, which leaves distances
unchanged and shrinks the norms rounding scales with) and the distances divided by 255 at the
end, so for d <= 1024 values the float32 squared distances are exact integers.

Two paths give the same answers and differ in speed (``fast``: None picks, True / False force
one; the module switch ``FAST`` sets the default):

* float32 (``fast=False``): one GEMM per block, d^2 = |q|^2 + |r|^2 - 2 q.r (torch, so the
  caller's ``torch.set_num_threads`` sets the cores used); each block keeps its k best by the
  float32 score, and the returned distances are recomputed directly as ||q - r|| in float64, so
  rounding in the GEMM can reorder only pairs whose squared distances differ by less than about
  D 2^-24 (|q| + |r|)^2 (the one way the two paths can differ). The threshold count is exact:
  entries within that bound of the threshold are recomputed in float64 (:func:`count_below`).
* bfloat16 prefilter (``fast=True``; :mod:`audit.metrics.neighbours_bf16`, which holds the
  error bound and its derivation): every block scored by a bf16 GEMM (4x the float32 rate on a CPU
  with AVX512-BF16) with a rigorous per-row bound on its error; every entry that could beat the
  k-th best exact distance, or fall on either side of the threshold, is rescored in float64, so
  the answer is the float64 one. Blocks with too many such entries (near-duplicates) are scored
  by the float32 GEMM instead, with its caveat. The default (None) takes it for searches of at
  least 2^28 multiply-adds on a CPU with bf16 dot-product instructions (or where a timed bf16
  GEMM is 2x faster than float32); never on other devices.

Ties are broken deterministically: among equal distances the lower index wins (for pairs: lower
i, then lower j); results are sorted by (distance, index).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: float32 distances per block (rows x columns): 2^24 floats = 64 MiB
BLOCK_ELEMENTS = 2**24
#: rows of one block (queries, or the rows of a self search); columns fill the rest of the block
BLOCK_ROWS = 1024
#: rows recomputed exactly at a time (float64)
REFINE_ROWS = 1024
#: the default of ``fast`` (None: the faster path on this device, True: bf16 prefilter, False: float32)
FAST: bool | None = None
#: below this many multiply-adds the float32 path is taken when ``fast`` is None
FAST_MIN_WORK = 2**28


@dataclass(frozen=True)
class Pairs:
    """The closest pairs of one set: (k,) arrays ``i`` < ``j`` (int64 row indices) and
    ``distance`` (float64, input units), sorted by (distance, i, j); ``count_below``: the number
    of pairs (of all n(n-1)/2) with distance < the threshold, or None without a threshold."""

    i: np.ndarray
    j: np.ndarray
    distance: np.ndarray
    count_below: int | None = None


def input_scale(x: np.ndarray) -> float:
    """The factor from computed distances to reported ones: 1/255 for uint8 images, else 1."""
    return 1.0 / 255.0 if x.dtype == np.uint8 else 1.0


def check_vectors(x: np.ndarray, name: str = "x") -> None:
    """Raise ValueError unless ``x`` is float (N, D) or uint8 images (N, H, W, C) with N >= 1
    (an array, a memmap, or any row view with ``shape``, ``dtype`` and slicing)."""
    if x.dtype == np.uint8:
        if len(x.shape) != 4:
            raise ValueError(f"{name}: uint8 input must be images (N, H, W, C), got shape {x.shape}")
    elif not np.issubdtype(x.dtype, np.floating) or len(x.shape) != 2:
        raise ValueError(f"{name}: expected float features (N, D) or uint8 images (N, H, W, C), "
                         f"got {x.dtype} {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: no rows")


def _dim(x: np.ndarray) -> int:
    return int(np.prod(x.shape[1:]))


def shift_of(x) -> np.ndarray:
    """The vector subtracted from every row before a GEMM (distances do not change, the norms
    the rounding scales with do): 128 for uint8 images (values -128..127, exact in bf16), else
    the float32 mean of the first 4,096 rows."""
    if x.dtype == np.uint8:
        return np.full(_dim(x), 128, dtype=np.float32)
    first = np.asarray(x[:4096], dtype=np.float64).reshape(min(4096, x.shape[0]), -1)
    return first.mean(0).astype(np.float32)


def _rows(x: np.ndarray, start: int, stop: int, device: str, shift: np.ndarray,
          out: np.ndarray | None = None) -> torch.Tensor:
    """Rows [start, stop) less ``shift`` as a new float32 (n, D) tensor (or in ``out``, a float32
    buffer of at least (n, D)), flattened; rounded once: float64 input is shifted in float64."""
    block = np.asarray(x[start:stop])
    block = block.reshape(block.shape[0], -1)
    kind = np.float64 if block.dtype == np.float64 else np.float32
    if out is None:
        block = np.subtract(block, shift, dtype=kind).astype(np.float32, copy=False)
    else:
        block = np.subtract(block, shift, out=out[:block.shape[0]], dtype=kind, casting="same_kind")
    return torch.from_numpy(block).to(device)


def _view(buffer: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """A (rows, cols) view of the front of a flat preallocated buffer."""
    return buffer[: rows * cols].view(rows, cols)


def _squared_norms(rows: torch.Tensor) -> torch.Tensor:
    return (rows * rows).sum(1)


def smallest_per_row(values: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k smallest entries of every row of (B, W) ``values`` (k <= W): (values, column
    indices), each (B, k), sorted by (value, column); among equal values the lower column wins,
    also at the boundary of the selection (rows where the k-th and (k+1)-th values tie are
    resolved exactly)."""
    if k == 1:  # torch.min returns the first of equal minima: the lowest column
        return values.min(dim=1, keepdim=True)
    width = values.shape[1]
    take = min(k + 1, width)
    top_v, top_i = torch.topk(values, take, dim=1, largest=False, sorted=True)
    # a tie at +inf (masked entries) needs no resolving: every finite entry is already in
    tied = ((top_v[:, k] == top_v[:, k - 1]) & torch.isfinite(top_v[:, k - 1]) if take > k
            else torch.zeros(values.shape[0], dtype=torch.bool))
    top_v, top_i = top_v[:, :k], top_i[:, :k]
    # inside the selection: by column, then stably by value, gives (value, column) order
    order = torch.argsort(top_i, dim=1)
    top_v, top_i = top_v.gather(1, order), top_i.gather(1, order)
    order = torch.argsort(top_v, dim=1, stable=True)
    top_v, top_i = top_v.gather(1, order), top_i.gather(1, order)
    for row in torch.nonzero(tied.cpu()).flatten().tolist():
        line = values[row]
        candidates = torch.nonzero(line <= top_v[row, k - 1]).flatten()  # ascending columns
        order = torch.argsort(line[candidates], stable=True)[:k]
        top_v[row], top_i[row] = line[candidates[order]], candidates[order]
    return top_v, top_i


def _merge_rows(best_v, best_i, new_v, new_i, k):
    """Merge two (B, *) (value, index)-sorted candidate lists whose indices in ``best`` are all
    lower than in ``new``: a stable sort by value keeps (value, index) order."""
    v, i = torch.cat([best_v, new_v], dim=1), torch.cat([best_i, new_i], dim=1)
    order = torch.argsort(v, dim=1, stable=True)[:, :k]
    return v.gather(1, order), i.gather(1, order)


def block_scores(x, a: int, b: int, y, c0: int, c1: int, device: str, shift, *, diagonal: bool = False,
                 lower: torch.Tensor | None = None):
    """One block of the float32 path (for the bf16 path's fallback): (|r|^2 - 2 q.r (B, W), |q|^2
    (B, 1), the largest |r|) for rows [a, b) of ``x`` and rows [c0, c1) of ``y``, float32;
    ``diagonal``: +inf where j <= i in the leading square (``lower``: its lower-triangle mask)."""
    q, r = _rows(x, a, b, device, shift), _rows(y, c0, c1, device, shift)
    score = torch.addmm(_squared_norms(r)[None, :], q, r.T, alpha=-2)
    if diagonal:
        score[:, :b - a].masked_fill_(lower[:b - a, :b - a], float("inf"))
    return score, _squared_norms(q)[:, None], float(_squared_norms(r).max()) ** 0.5


def count_below(score: torch.Tensor, offset: torch.Tensor, norms: torch.Tensor, col_norm: float,
                threshold: float, x, a: int, c0: int) -> int:
    """Pairs of one float32 block of ``x`` (rows from ``a``, columns from ``c0``) whose float64
    distance is < ``threshold``, exactly: ``score`` + ``offset`` (B, 1) approximates d^2 (+inf
    where excluded) within eps = ((D + 8) 2^-24 + 2^-22) 1.1 (|q| + |r|)^2 + 2^-23 t^2 (the float32
    GEMM's accumulation, the norms' sums, float64 input rounded to float32, the float64
    recomputation); entries below t^2 - eps are counted, those within eps of t^2 rescored.
    ``norms``: (B,) float32 squared row norms; ``col_norm``: the largest column norm."""
    t2 = (max(threshold, 0.0) / input_scale(x)) ** 2
    reach = (norms.double().sqrt()[:, None] * 1.01 + col_norm * 1.01) ** 2
    eps = ((_dim(x) + 8) * 2.0**-24 + 2.0**-22) * 1.1 * reach + 2.0**-23 * t2
    centre = t2 - offset.double()
    low = torch.nextafter((centre - eps).float(), torch.tensor(-float("inf")))
    high = torch.nextafter((centre + eps).float(), torch.tensor(float("inf")))
    sure = int(torch.count_nonzero(score < low))
    rows, cols = np.nonzero(((score >= low) & (score <= high)).cpu().numpy())
    if rows.size == 0:
        return sure
    return sure + int((_exact_distances(x, rows + a, x, cols + c0) < threshold).sum())


def _use_fast(fast: bool | None, device, work: float) -> bool:
    """Whether to take the bf16 prefilter: ``fast`` (or the module's FAST) when set, else on a
    CPU where bf16 GEMMs are timed 2x faster than float32 and the search is large."""
    fast = FAST if fast is None else fast
    if fast is not None:
        return bool(fast)
    from audit.metrics import neighbours_bf16

    return work >= FAST_MIN_WORK and neighbours_bf16.bf16_is_faster(device)


def _exact_distances(x: np.ndarray, rows_a: np.ndarray, y: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    """||x[rows_a] - y[rows_b]|| in float64, input units, computed REFINE_ROWS pairs at a time."""
    out = np.empty(rows_a.shape[0], dtype=np.float64)
    for start in range(0, rows_a.shape[0], REFINE_ROWS):
        a = np.asarray(x[rows_a[start:start + REFINE_ROWS]], dtype=np.float64).reshape(-1, _dim(x))
        b = np.asarray(y[rows_b[start:start + REFINE_ROWS]], dtype=np.float64).reshape(-1, _dim(y))
        out[start:start + REFINE_ROWS] = np.sqrt(((a - b) ** 2).sum(axis=1))
    return out * input_scale(x)


def closest_pairs(x: np.ndarray, k: int, *, threshold: float | None = None, device: str = "cpu",
                  block_elements: int = BLOCK_ELEMENTS, block_rows: int = BLOCK_ROWS,
                  fast: bool | None = None) -> Pairs:
    """The ``k`` closest pairs (i < j) among the N rows of ``x`` (fewer if N(N-1)/2 < k).

    ``x``: float (N, D) features or uint8 (N, H, W, C) images (see the module docstring for
    units). ``threshold``: also count every pair with distance < threshold (input units).
    Row blocks of ``block_rows`` are scored against the columns after their first row only (the
    upper triangle), column chunks sized so a block holds at most ``block_elements`` distances;
    each block keeps its rows' k smallest, and a running list keeps the k smallest overall.
    Cost: N^2 D / 2 multiply-adds; memory: one block plus O(k * block_rows). ``fast``: the path
    (module docstring); both give the same answer.
    """
    check_vectors(x)
    if k < 1:
        raise ValueError(f"closest_pairs: k must be >= 1, got {k}")
    n, scale = x.shape[0], input_scale(x)
    if n > 1 and _use_fast(fast, device, n * n * _dim(x) / 2):
        from audit.metrics import neighbours_bf16

        try:
            i, j, distance, count = neighbours_bf16.closest_pairs(x, k, threshold, device, block_elements, block_rows)
            return Pairs(i, j, distance, count)
        except neighbours_bf16.Unsafe:  # values the bound does not cover: float32
            pass
    t2 = None if threshold is None else (float(threshold) / scale) ** 2
    width = max(block_rows, block_elements // block_rows)
    best_v = np.zeros(0, np.float64)
    best_i = best_j = np.zeros(0, np.int64)
    count = 0
    shift = shift_of(x)
    sq = torch.cat([_squared_norms(_rows(x, s, min(s + width, n), device, shift)) for s in range(0, n, width)])
    # within the diagonal square of a block, keep j > i only
    lower = torch.ones(min(n, block_rows), min(n, block_rows), dtype=torch.bool, device=device).tril_()
    buffer = torch.empty(min(n, block_rows) * min(n, width), device=device)  # reused: no page faults per block
    for a in range(0, n - 1, block_rows):
        b = min(a + block_rows, n)
        q = _rows(x, a, b, device, shift)
        q_sq = sq[a:b, None]
        row_ids = torch.arange(a, b, device=device)[:, None]
        for c0 in range(a, n, width):
            c1 = min(c0 + width, n)
            r = _rows(x, c0, c1, device, shift)
            # |r|^2 - 2 q.r: d^2 less the row constant |q|^2, which no per-row choice needs
            score = torch.addmm(sq[None, c0:c1], q, r.T, alpha=-2, out=_view(buffer, b - a, c1 - c0))
            if c0 == a:  # the chunk starts on the diagonal
                score[:, :b - a].masked_fill_(lower[:b - a, :b - a], float("inf"))
            if t2 is not None:
                count += count_below(score, q_sq, q_sq[:, 0], float(sq[c0:c1].max()) ** 0.5, threshold, x, a, c0)
            v, jj = smallest_per_row(score, min(k, c1 - c0))
            finite = torch.isfinite(v)
            ii = row_ids.expand_as(jj)[finite].cpu().numpy()
            v = (v + q_sq).clamp_(min=0)[finite].double().cpu().numpy()
            jj = (jj[finite] + c0).cpu().numpy()
            order = np.lexsort((np.concatenate([best_j, jj]), np.concatenate([best_i, ii]),
                                np.concatenate([best_v, v])))[:k]
            best_v = np.concatenate([best_v, v])[order]
            best_i, best_j = np.concatenate([best_i, ii])[order], np.concatenate([best_j, jj])[order]
    distance = _exact_distances(x, best_i, x, best_j)
    order = np.lexsort((best_j, best_i, distance))
    return Pairs(best_i[order], best_j[order], distance[order], None if threshold is None else count)


def nearest(queries: np.ndarray, references: np.ndarray, k: int = 1, *, device: str = "cpu",
            block_elements: int = BLOCK_ELEMENTS, block_rows: int = BLOCK_ROWS,
            query_budget_bytes: int = 2**30, fast: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest references of every query: (indices int64 (Nq, k), distances float64
    (Nq, k)), each row sorted by (distance, reference index); k is capped at the references.

    ``queries`` and ``references``: both float (N, D) features or both uint8 images of one
    shape (see the module docstring for units). References are read once, a chunk at a time
    (a memmap of 160k images stays on disk); queries are converted to float32 once when they
    fit ``query_budget_bytes``, else block by block. Each (query block x reference chunk)
    GEMM scores |r|^2 - 2 q.r (|q|^2 is constant along a row); a running (Nq, k) list keeps
    the best. Cost: Nq Nr D multiply-adds; memory: one block plus the queries. ``fast``: the
    path (module docstring); both give the same answer.
    """
    check_vectors(queries, "queries")
    check_vectors(references, "references")
    if (queries.dtype == np.uint8) != (references.dtype == np.uint8) or _dim(queries) != _dim(references):
        raise ValueError(f"nearest: queries {queries.dtype} {queries.shape[1:]} and references "
                         f"{references.dtype} {references.shape[1:]} are not comparable")
    if k < 1:
        raise ValueError(f"nearest: k must be >= 1, got {k}")
    nq, nr = queries.shape[0], references.shape[0]
    k = min(k, nr)
    if _use_fast(fast, device, nq * nr * _dim(queries)):
        from audit.metrics import neighbours_bf16

        try:
            return neighbours_bf16.nearest(queries, references, k, device, block_elements, block_rows,
                                           query_budget_bytes)
        except neighbours_bf16.Unsafe:  # values the bound does not cover: float32
            pass
    width = max(block_rows, block_elements // block_rows)
    whole = 4 * nq * _dim(queries) <= query_budget_bytes
    shift = shift_of(references)
    q_all = _rows(queries, 0, nq, device, shift) if whole else None
    buffer = torch.empty(min(nq, block_rows) * min(nr, width), device=device)
    best_v = torch.full((nq, k), float("inf"), device=device)
    best_i = torch.full((nq, k), -1, dtype=torch.int64, device=device)
    for c0 in range(0, nr, width):
        c1 = min(c0 + width, nr)
        r = _rows(references, c0, c1, device, shift)
        r_sq = _squared_norms(r)[None, :]
        for a in range(0, nq, block_rows):
            b = min(a + block_rows, nq)
            q = q_all[a:b] if whole else _rows(queries, a, b, device, shift)
            score = torch.addmm(r_sq, q, r.T, alpha=-2, out=_view(buffer, b - a, c1 - c0))
            v, i = smallest_per_row(score, min(k, c1 - c0))
            best_v[a:b], best_i[a:b] = _merge_rows(best_v[a:b], best_i[a:b], v, i + c0, k)
    index = best_i.cpu().numpy()
    distance = _exact_distances(queries, np.repeat(np.arange(nq), k), references, index.ravel()).reshape(nq, k)
    order = np.lexsort((index, distance), axis=1)
    return np.take_along_axis(index, order, 1), np.take_along_axis(distance, order, 1)
