"""The bfloat16 prefilter of the exact searches in :mod:`audit.metrics.neighbours`.

Every pair is scored once by a bfloat16 GEMM (inputs rounded to bf16, products exact in fp32,
accumulation in fp32, output rounded to bf16: torch offers no fp32 output for a bf16 GEMM on the
CPU), whose error against the true squared distance is bounded rigorously per row; only the
entries whose lower bound can still beat the k-th best exact distance found so far are rescored
in float64. The answer is therefore the float64 answer, not an approximation of it.

**What the GEMM computes.** Rows are shifted by a common vector m (distances do not change;
m = 128 for uint8 images, whose shifted values -128..127 are exact in bf16; the mean of the
first rows for features) to y (fp32), rounded to b = bf16(y), and augmented:
left = [-2b, 1, 1, 1, 1, p1..p4] (queries), right = [b, p1..p4, 1, 1, 1, 1] (references), where
p1..p4 are bf16 pieces of |y|^2 (p1 = bf16(v), p2 = bf16(v - p1), ...; the remainder rho is
kept). One GEMM then gives o ~ |y_q|^2 + |y_r|^2 - 2 b_q.b_r ~ d^2 directly, n = D + 8 terms.

**The bound** (Q, R: the exact shifted rows; u = 2^-8 the unit roundoff of bf16's 8-bit
significand, u32 = 2^-24, gamma_n = n u32 / (1 - n u32)):

1. Inputs: Q.R - b_q.b_r = Q.(R - b_r) + (Q - b_q).b_r, so
   |Q.R - b_q.b_r| <= N_q Dl_r + Dl_q B_r with N >= |Q|, Dl >= |Q - b|, B >= |b| per row
   (norms computed in fp32 from y, inflated by g = 1 + 4 (D + 4) u32 for their own rounding; y is
   x - m rounded once to fp32 (float64 input is shifted in float64), |Q - y| <= 2^-24 |y| per
   row: eta = 2^-22 g |y|, added to N and Dl; eta = 0 and b = y exactly for uint8 images).
2. Norms: ||Q|^2 - sum p| <= E = eta (2 g |y| + eta) + 2 (g - 1) |y|^2 + |rho| (for uint8
   images |y|^2 is summed in float64, exactly: E = |rho| = 0).
3. Accumulation: the products of bf16 numbers are exact in fp32, and any order of fp32 sums of
   n terms errs by at most gamma_n sum |terms| <= gamma_n (2 B_q B_r + A_q + A_r), A = sum |p|.
4. Output: o = bf16(s) rounded to nearest, |o - s| <= u |s|, hence |o - s| <= u |o| / (1 - u).
5. Flushed subnormals (the bf16 dot instructions flush to zero): tau = 2^-100 n (1 + B_q)(1 + B_r),
   and the float64 recomputation of distances: sigma = 2^-40 (N_q + N_r)^2.

So |d^2 - o| <= eps + u |o| / (1 - u), eps = E_q + E_r + 2 (N_q Dl_r + Dl_q B_r) + gamma_n (...)
+ tau + sigma, taken per row against the maxima of a column chunk. The lower bound
L(o) = o - u|o|/(1-u) - eps is increasing in o, so "L(o) <= U" is "o <= theta" with one
threshold theta per row (rounded up to a bf16 number): one comparison pass over the block.

Assumed, as oneDNN and torch's CPU kernels do: fp32 accumulation, round-to-nearest output.
``tests/test_neighbours.py::test_the_bf16_error_bound_holds_entry_by_entry`` checks the bound on
every entry of GEMMs of unit rows, offset rows and 0/255 images.

**The search.** U is the k-th smallest exact squared distance among the rescored entries (per row
for :func:`nearest`, global for :func:`closest_pairs`), inflated by 2^-40 against float64
rounding. A row without k exact distances yet takes the upper bound of its k-th smallest o
(nearest), or the block's k smallest o are rescored first (pairs). Every entry with L(o) <= U is
rescored in float64; one never rescored has d^2 > U >= the true k-th, so it cannot be in the
answer. ``count_below``: entries whose upper bound is below the threshold are counted, those
whose interval straddles it are rescored. A block where more than ``CANDIDATES`` entries per row
(plus k) would be rescored (near-duplicates, a memoriser's copies) is scored by the float32 GEMM
instead, as in the float32 path (k best per row; the count exact by its own band).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from audit.metrics import neighbours as nb

U16 = 2.0**-8  # unit roundoff of bfloat16 (8-bit significand)
U32 = 2.0**-24
#: rescored entries per row of a block (beyond k) above which the block is scored in float32
CANDIDATES = 64
#: counters of the last search (blocks scored, blocks scored again in float32, entries rescored)
STATS: dict[str, int] = {}
_FASTER: dict[str, bool] = {}


class Unsafe(Exception):
    """Values outside the range the bound covers (inf, nan, |row| > 2^40): use float32."""


def bf16_is_faster(device) -> bool:
    """Whether bf16 GEMMs beat float32 on ``device``: CPU only (cuBLAS may reduce bf16 sums in
    reduced precision, which the bound does not cover); True when the CPU has bf16 dot-product
    instructions (avx512_bf16 / amx_bf16 in /proc/cpuinfo) and oneDNN is built in, else when a
    bf16 GEMM is timed (once, cached) at least 2x faster than float32."""
    if torch.device(device).type != "cpu":
        return False
    if "cpu" not in _FASTER:
        try:
            flags = Path("/proc/cpuinfo").read_text().split()
        except OSError:
            flags = []
        if torch.backends.mkldnn.is_available() and ("avx512_bf16" in flags or "amx_bf16" in flags):
            _FASTER["cpu"] = True
        else:
            _FASTER["cpu"] = 2 * _gemm_seconds(torch.bfloat16) < _gemm_seconds(torch.float32)
    return _FASTER["cpu"]


def _gemm_seconds(dtype) -> float:
    a, b = torch.ones(512, 512, dtype=dtype), torch.ones(4096, 512, dtype=dtype)
    torch.mm(a, b.T)  # warm-up
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        torch.mm(a, b.T)
        best = min(best, time.perf_counter() - start)
    return best


@dataclass
class Rows:
    """Rows [start, stop) ready for the bf16 GEMM, with their per-row bound terms (float64)."""

    qside: torch.Tensor | None  # [-2b, 1, 1, 1, 1, p1..p4]
    rside: torch.Tensor | None  # [b, p1..p4, 1, 1, 1, 1]
    n: torch.Tensor  # >= |Q|
    dl: torch.Tensor  # >= |Q - b|
    b: torch.Tensor  # >= |b|
    e: torch.Tensor  # >= ||Q|^2 - sum p|
    a: torch.Tensor  # sum |p|

    def __getitem__(self, s: slice) -> Rows:
        return Rows(*(None if v is None else v[s] for v in (getattr(self, f) for f in
                      ("qside", "rside", "n", "dl", "b", "e", "a"))))


def prepare(x, start: int, stop: int, shift, device, sides: str = "qr", work: dict | None = None) -> Rows:
    """Rows [start, stop) of ``x`` shifted, rounded to bf16 and augmented ("q": the left factor
    of the GEMM, "r": the right one), with their bound terms. ``work``: buffers reused from one
    call to the next (an "r" side only: it is overwritten by the next call)."""
    rows, dim = stop - start, nb._dim(x)
    if work is not None and "y" not in work:
        work.update(y=np.empty((rows, dim), np.float32), diff=torch.empty(rows, dim, device=device),
                    rside=torch.empty(rows, dim + 8, dtype=torch.bfloat16, device=device))
    y = nb._rows(x, start, stop, device, shift, None if work is None else work["y"])  # x - m, rounded once
    exact = x.dtype == np.uint8
    grow = 1 + 4 * (dim + 4) * U32  # fp32 norms' own rounding, generously
    rside = torch.empty(rows, dim + 8, dtype=torch.bfloat16, device=device) if work is None else work["rside"][:rows]
    b = rside[:, :dim].copy_(y)  # round to nearest even
    if exact:  # integers -128..127: b = y, |y|^2 exact in float64
        ysq = _squares(y.double())
        norm = ysq.sqrt()
        dl, e, big = torch.zeros_like(ysq), torch.zeros_like(ysq), norm
    else:
        ysq = _squares(y).double()
        norm = ysq.sqrt()
        diff = b.float() if work is None else work["diff"][:rows].copy_(b)
        _subtract(diff, y)  # exact: b is y rounded to 8 bits
        eta = 2.0**-22 * norm * grow  # float32 rounding of x - m: 2^-24 |y| per row, generously
        dl = _squares(diff).double().sqrt() * grow + eta
        e = eta * (2 * norm * grow + eta) + 2 * (grow - 1) * ysq
        big = norm * grow
        norm = big + eta
    if not bool(torch.isfinite(norm).all()) or float(norm.max()) > 2.0**40:
        raise Unsafe
    pieces, rest = [], ysq.clone()
    for _ in range(4):
        piece = rest.bfloat16()
        pieces.append(piece)
        rest -= piece.double()
    p = torch.stack(pieces, 1)
    rside[:, dim:dim + 4], rside[:, dim + 4:] = p, 1
    qside = None
    if "q" in sides:
        qside = torch.empty_like(rside)
        torch.mul(b, -2, out=qside[:, :dim])
        qside[:, dim:dim + 4], qside[:, dim + 4:] = 1, p
    return Rows(qside, rside if "r" in sides else None, norm, dl, big + dl, e + rest.abs(),
                p.double().abs().sum(1))


def _squares(t: torch.Tensor) -> torch.Tensor:
    """Row sums of squares (numpy's einsum on the CPU: a quarter of torch's time on 2 threads)."""
    if t.device.type != "cpu":
        return (t * t).sum(1)
    a = t.numpy()
    return torch.from_numpy(np.einsum("ij,ij->i", a, a))


def _subtract(t: torch.Tensor, y: torch.Tensor) -> None:
    """t -= y in place."""
    if t.device.type == "cpu":
        np.subtract(t.numpy(), y.numpy(), out=t.numpy())
    else:
        t.sub_(y)


class Prepared:
    """All rows of ``x`` prepared once when they fit ``budget`` bytes, else a block at a time."""

    def __init__(self, x, device, shift, sides: str, budget: int = 2**30):
        self.x, self.device, self.shift, self.sides = x, device, shift, sides
        whole = 2 * len(sides) * x.shape[0] * (nb._dim(x) + 8) <= budget
        self.all = prepare(x, 0, x.shape[0], shift, device, sides) if whole else None

    def __call__(self, start: int, stop: int) -> Rows:
        if self.all is not None:
            return self.all[start:stop]
        return prepare(self.x, start, stop, self.shift, self.device, self.sides)


def epsilon(q: Rows, r: Rows) -> torch.Tensor:
    """eps per row of ``q`` against every row of the chunk ``r`` (float64, squared input units)."""
    n = q.qside.shape[1]
    gamma = n * U32 / (1 - n * U32)
    r_n, r_dl, r_b, r_e, r_a = (float(t.max()) for t in (r.n, r.dl, r.b, r.e, r.a))
    return (q.e + r_e + 2 * (q.n * r_dl + q.dl * r_b) + gamma * (2 * q.b * r_b + q.a + r_a)
            + 2.0**-100 * n * (1 + q.b) * (1 + r_b) + 2.0**-40 * (q.n + r_n) ** 2)


def _to_bf16(theta: torch.Tensor, up: bool) -> torch.Tensor:
    """theta (float64) rounded outward to bf16 (up: a bf16 number >= theta), finite."""
    theta = theta.clamp(-3e38, 3e38)
    margin = theta.abs() * 2.0**-7 + 2.0**-110
    return (theta + margin if up else theta - margin).bfloat16()


def below(bound: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Per row theta (bf16, (B, 1)) with o <= theta for every o whose lower bound
    L(o) = o - u|o|/(1-u) - eps is <= ``bound`` (float64 (B,) or a number, squared units)."""
    v = bound + eps
    theta = torch.where(v >= 0, v * (1 - U16) / (1 - 2 * U16), v * (1 - U16))
    return _to_bf16(theta, up=True)[:, None]


def surely_below(bound: float, eps: torch.Tensor) -> torch.Tensor:
    """Per row theta (bf16, (B, 1)): o < theta implies the upper bound o + u|o|/(1-u) + eps < bound."""
    w = bound - eps
    theta = torch.where(w >= 0, w * (1 - U16), w * (1 - U16) / (1 - 2 * U16))
    return _to_bf16(theta, up=False)[:, None]


def select(o: torch.Tensor, theta: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """o <= theta for theta >= 0, into the bool buffer ``mask``: compared as int16 bit patterns
    (for theta >= 0 the same order as the numbers, negative o included; twice as fast), by numpy
    on the CPU (a quarter of torch's time on 2 threads)."""
    out = nb._view(mask, *o.shape)
    if o.device.type != "cpu":
        return torch.le(o.view(torch.int16), theta.view(torch.int16), out=out)
    np.less_equal(o.view(torch.int16).numpy(), theta.view(torch.int16).numpy(), out=out.numpy())
    return out


def entries(mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the True entries of a (B, W) mask, row-major."""
    flat = np.flatnonzero(mask.cpu().numpy())
    return flat // mask.shape[1], flat % mask.shape[1]


def squared(distance, scale: float):
    """A reported distance (input units) as an inflated squared computed distance."""
    return (np.asarray(distance, dtype=np.float64) / scale) ** 2 * (1 + 2.0**-40)


def _count(name: str, value: int = 1) -> None:
    STATS[name] = STATS.get(name, 0) + value


def nearest(queries, references, k: int, device, block_elements: int, block_rows: int,
            query_budget_bytes: int):
    """:func:`audit.metrics.neighbours.nearest` with the bf16 prefilter (see the module docstring)."""
    STATS.clear()
    candidates = CANDIDATES
    nq, nr = queries.shape[0], references.shape[0]
    scale, width = nb.input_scale(queries), max(block_rows, block_elements // block_rows)
    shift = nb.shift_of(references)
    q_rows = Prepared(queries, device, shift, "q", query_budget_bytes)
    best_d = np.full((nq, k), np.inf)
    best_i = np.full((nq, k), nr, dtype=np.int64)
    buffer = torch.empty(min(nq, block_rows) * min(nr, width), dtype=torch.bfloat16, device=device)
    mask = torch.empty(buffer.shape, dtype=torch.bool, device=device)
    work: dict = {}
    for c0 in range(0, nr, width):
        c1 = min(c0 + width, nr)
        r = prepare(references, c0, c1, shift, device, "r", work)
        for a in range(0, nq, block_rows):
            b = min(a + block_rows, nq)
            q = q_rows(a, b)
            o = torch.mm(q.qside, r.rside.T, out=nb._view(buffer, b - a, c1 - c0))
            eps = epsilon(q, r)
            _count("blocks")
            bound = torch.from_numpy(squared(best_d[a:b, k - 1], scale)).to(device)
            seed = torch.isinf(bound)
            if bool(seed.any()) and c1 - c0 >= k:  # rows without k exact distances yet: the
                # k-th smallest o's upper bound is >= their k-th distance; all below it is selected
                part = o if bool(seed.all()) else o[seed]
                v = (part.amin(1) if k == 1 else torch.topk(part, k, dim=1, largest=False).values[:, -1]).double()
                bound[seed] = v + U16 * v.abs() / (1 - U16) + eps[seed]
            selected = select(o, below(bound, eps), mask)
            if np.count_nonzero(selected.cpu().numpy()) <= (b - a) * (k + candidates):
                rows, cols = entries(selected)
            else:  # too many to rescore: float32 scores, k per row
                _count("fallback_blocks")
                score = nb.block_scores(queries, a, b, references, c0, c1, device, shift)[0]
                _, cols = nb.smallest_per_row(score, min(k, c1 - c0))
                rows, cols = np.repeat(np.arange(b - a), cols.shape[1]), cols.cpu().numpy().ravel()
            _merge_nearest(best_d, best_i, queries, references, rows + a, cols + c0)
    return best_i, best_d


def _merge_nearest(best_d, best_i, queries, references, rows, cols) -> None:
    """Rescore (rows, cols) in float64 and keep every row's k best by (distance, index)."""
    if rows.size == 0:
        return
    _count("rescored", rows.size)
    k, nr = best_d.shape[1], references.shape[0]
    d = nb._exact_distances(queries, rows, references, cols)
    touched = np.unique(rows)
    all_r = np.concatenate([np.repeat(touched, k), rows])
    all_c = np.concatenate([best_i[touched].ravel(), cols])
    all_d = np.concatenate([best_d[touched].ravel(), d])
    _, first = np.unique(all_r * (nr + 1) + all_c, return_index=True)  # each pair once
    all_r, all_c, all_d = all_r[first], all_c[first], all_d[first]
    keep = all_c < nr  # drop the empty slots
    all_r, all_c, all_d = all_r[keep], all_c[keep], all_d[keep]
    order = np.lexsort((all_c, all_d, all_r))
    all_r, all_c, all_d = all_r[order], all_c[order], all_d[order]
    rank = np.arange(all_r.size) - np.searchsorted(all_r, all_r)
    take = rank < k
    best_d[touched], best_i[touched] = np.inf, nr
    best_d[all_r[take], rank[take]], best_i[all_r[take], rank[take]] = all_d[take], all_c[take]


def closest_pairs(x, k: int, threshold, device, block_elements: int, block_rows: int):
    """:func:`audit.metrics.neighbours.closest_pairs` with the bf16 prefilter: (i, j, distance,
    count) with (i, j, distance) sorted by (distance, i, j)."""
    STATS.clear()
    candidates = CANDIDATES
    n, scale = x.shape[0], nb.input_scale(x)
    width = max(block_rows, block_elements // block_rows)
    rows_of = Prepared(x, device, nb.shift_of(x), "qr")
    best = [np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)]  # i, j, distance
    count = 0
    t2 = None if threshold is None else (max(float(threshold), 0.0) / scale) ** 2
    lower = torch.ones(min(n, block_rows), min(n, block_rows), dtype=torch.bool, device=device).tril_()
    buffer = torch.empty(min(n, block_rows) * min(n, width), dtype=torch.bfloat16, device=device)
    mask = torch.empty(buffer.shape, dtype=torch.bool, device=device)
    for a in range(0, n - 1, block_rows):
        b = min(a + block_rows, n)
        q = rows_of(a, b)
        for c0 in range(a, n, width):
            c1 = min(c0 + width, n)
            r = rows_of(c0, c1)
            o = torch.mm(q.qside, r.rside.T, out=nb._view(buffer, b - a, c1 - c0))
            if c0 == a:
                o[:, :b - a].masked_fill_(lower[:b - a, :b - a], float("inf"))
            eps = epsilon(q, r)
            _count("blocks")
            if best[2].size < k:  # seed U with the block's k best approximate entries
                v, cols = nb.smallest_per_row(o, min(k, c1 - c0))
                v, flat = torch.topk(v.float().ravel(), min(k, v.numel()), largest=False)
                flat = flat[torch.isfinite(v)].cpu().numpy()
                _merge_pairs(best, x, k, flat // cols.shape[1] + a, cols.cpu().numpy().ravel()[flat] + c0)
            bound = squared(best[2][k - 1], scale) if best[2].size == k else np.inf
            selected = select(o, below(bound, eps), mask)
            if t2 is not None:
                sure = surely_below(t2 * (1 - 2.0**-40), eps)
                band = (o >= sure) & (o <= below(t2 * (1 + 2.0**-40), eps))
                selected |= band
            if np.count_nonzero(selected.cpu().numpy()) > (b - a) * candidates + k:  # float32, k per row
                _count("fallback_blocks")
                score, q_sq, col_norm = nb.block_scores(x, a, b, x, c0, c1, device, rows_of.shift,
                                                           diagonal=c0 == a, lower=lower)
                if t2 is not None:
                    count += nb.count_below(score, q_sq, q_sq[:, 0], col_norm, threshold, x, a, c0)
                v, cols = nb.smallest_per_row(score, min(k, c1 - c0))
                keep = torch.isfinite(v).cpu().numpy().ravel()
                rows = np.repeat(np.arange(b - a), cols.shape[1])[keep]
                _merge_pairs(best, x, k, rows + a, cols.cpu().numpy().ravel()[keep] + c0)
                continue
            rows, cols = entries(selected)
            d = _merge_pairs(best, x, k, rows + a, cols + c0)
            if t2 is not None:  # sure ones counted, the straddling ones by their exact distance
                count += int(torch.count_nonzero(o < sure))
                count += int((d[band.cpu().numpy()[rows, cols]] < threshold).sum())
    return best[0], best[1], best[2], (None if threshold is None else count)


def _merge_pairs(best: list, x, k: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Rescore pairs (rows < cols) in float64, keep the k best by (distance, i, j) in ``best``;
    returns the rescored distances."""
    if rows.size == 0:
        return np.zeros(0)
    _count("rescored", rows.size)
    d = nb._exact_distances(x, rows, x, cols)
    i, j, dist = (np.concatenate([old, new]) for old, new in zip(best, (rows, cols, d)))
    _, first = np.unique(i * x.shape[0] + j, return_index=True)
    i, j, dist = i[first], j[first], dist[first]
    order = np.lexsort((j, i, dist))[:k]
    best[:] = [i[order], j[order], dist[order]]
    return d
