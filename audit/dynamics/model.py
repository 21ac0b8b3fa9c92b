"""The two-Gaussian GAN of Li, Madry, Peebles and Schmidt (2017): exact loss, gradients, optimal D.

True distribution ``G_mu* = 1/2 N(mu*_1, 1) + 1/2 N(mu*_2, 1)``, generator ``G_mu`` of the same
form with parameters ``mu = (mu_1, mu_2)``; the discriminator is the indicator of two intervals
``[l1, r1] u [l2, r2]`` with ``l1 <= r1 <= l2 <= r2``, stored as ``ends = (l1, r1, l2, r2)``.

    L(mu, ends) = E_{x ~ G_mu*} D(x) + E_{x ~ G_mu} (1 - D(x))
                = 1 + sum_i [P*(l_i, r_i) - P_mu(l_i, r_i)],
    P_m(l, r)   = 1/2 sum_j [Phi(r - m_j) - Phi(l - m_j)].

The generator minimises L, the discriminator maximises it. Everything is exact (normal CDF and
density, no sampling). Arrays carry any leading batch shape ``(...)``: ``mu`` and ``mu_star``
are ``(..., 2)``, ``ends`` is ``(..., 4)``; positions are in units of the components' (unit)
standard deviation. Interval ends may be ``-inf``/``+inf`` (the optimal discriminator can be
unbounded); an empty interval has ``l == r``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

# Sign of each interval end in L: +Phi(r) - Phi(l).
END_SIGNS = np.array([-1.0, 1.0, -1.0, 1.0])

# Sign changes of p* - p_mu farther than this from every mean are dropped: the mass beyond is
# < Phi(-10) ~ 8e-24, invisible next to L ~ 1 in double precision.
ROOT_WINDOW = 10.0

_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


def normal_pdf(x: np.ndarray) -> np.ndarray:
    """Standard normal density; 0 at +-inf."""
    return np.exp(-0.5 * np.square(x) - _LOG_SQRT_2PI)


def mixture_pdf(x: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Density of 1/2 N(m_1, 1) + 1/2 N(m_2, 1) at ``x`` (..., K) for ``means`` (..., 2)."""
    means = np.asarray(means, float)
    return 0.5 * (normal_pdf(x - means[..., 0:1]) + normal_pdf(x - means[..., 1:2]))


def _interval_mass(ends: np.ndarray, means: np.ndarray) -> np.ndarray:
    """(...) probability that the mixture with ``means`` (..., 2) puts on the intervals ``ends``."""
    cdf = 0.5 * (ndtr(ends - means[..., 0:1]) + ndtr(ends - means[..., 1:2]))  # (..., 4)
    return (cdf[..., 1] - cdf[..., 0]) + (cdf[..., 3] - cdf[..., 2])


def loss(mu: np.ndarray, ends: np.ndarray, mu_star: np.ndarray) -> np.ndarray:
    """L(mu, ends) of the module docstring, shape (...); a value in [0, 2]."""
    mu, ends, mu_star = (np.asarray(a, float) for a in (mu, ends, mu_star))
    return 1.0 + _interval_mass(ends, mu_star) - _interval_mass(ends, mu)


def gradients(mu: np.ndarray, ends: np.ndarray, mu_star: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form (dL/dmu (..., 2), dL/dends (..., 4)).

    dL/dmu_j  = 1/2 sum_i [phi(r_i - mu_j) - phi(l_i - mu_j)]
    dL/dr_i   = p*(r_i) - p_mu(r_i),   dL/dl_i = -(p*(l_i) - p_mu(l_i))

    with p the mixture densities. Infinite ends contribute 0 (phi(+-inf) = 0).
    """
    mu, ends, mu_star = (np.moveaxis(np.asarray(a, float), -1, 0) for a in (mu, ends, mu_star))
    grad_mu, grad_ends = gradient_columns(mu, ends, mu_star)
    return np.moveaxis(grad_mu, 0, -1), np.moveaxis(grad_ends, 0, -1)


def gradient_columns(mu: np.ndarray, ends: np.ndarray, mu_star: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`gradients` with the parameter axis first: mu (2, ...), ends (4, ...), mu_star (2, ...).

    The dynamics keep runs on the last axis so that every numpy loop runs over all runs (a
    last axis of length 4 made this 5x slower). Sums are written out, not matrix products, so
    each run's result is independent of the batch it is computed in.
    """
    pdf_true = normal_pdf(ends[None] - mu_star[:, None])  # (2, 4, ...)
    pdf_gen = normal_pdf(ends[None] - mu[:, None])
    grad_mu = 0.5 * ((pdf_gen[:, 1] - pdf_gen[:, 0]) + (pdf_gen[:, 3] - pdf_gen[:, 2]))
    density_gap = 0.5 * ((pdf_true[0] + pdf_true[1]) - (pdf_gen[0] + pdf_gen[1]))  # (4, ...)
    return grad_mu, END_SIGNS.reshape((4,) + (1,) * (density_gap.ndim - 1)) * density_gap


def generator_gradient_columns(mu: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """dL/dmu (2, ...) alone, for mu (2, ...) and ends (4, ...); needs no mu*."""
    pdf_gen = normal_pdf(ends[None] - mu[:, None])
    return 0.5 * ((pdf_gen[:, 1] - pdf_gen[:, 0]) + (pdf_gen[:, 3] - pdf_gen[:, 2]))


def optimal_discriminator(mu: np.ndarray, mu_star: np.ndarray, xtol: float = 1e-8) -> np.ndarray:
    """The discriminator maximising L for generator ``mu`` (..., 2): ends (..., 4), may be +-inf.

    L is maximised by D = 1{p* > p_mu}. Both densities are sums of unit-variance Gaussians, so
    e^{x^2/2} (p* - p_mu) is an exponential sum with 4 terms and has at most 3 real zeros
    counted with multiplicity (Descartes' rule of signs for exponential sums). The positive set
    is therefore a union of at most two intervals, and this function returns exactly that set.
    An unused second interval is empty at ``+inf``; when ``mu`` equals ``mu_star`` up to order
    both intervals are empty (every D then gives L = 1).

    The sign changes are found without a grid, so none can be missed. With the 4 means sorted,
    c_1 <= ... <= c_4, Rolle's theorem applied twice to e^{-c_1 x + x^2/2} (p* - p_mu) gives
    breakpoints that cut the line into pieces holding at most one sign change each:

    1. the closed-form root x_0 of a two-term sum splits the line into 2 pieces, each holding
       at most one sign change of g_1(x) = sum_k s_k (c_k - c_1) phi(x - c_k) (s_k = +1 for
       true, -1 for generator means);
    2. those (<= 2) sign changes split the line into 3 pieces, each holding at most one sign
       change of p* - p_mu.

    Each sign change is then located by bracketed Halley iteration on a log-ratio
    (:func:`_sign_changes`) to an estimated error below ``xtol``. Sign changes farther than
    :data:`ROOT_WINDOW` from every mean are dropped.
    """
    mu, mu_star = np.broadcast_arrays(np.asarray(mu, float), np.asarray(mu_star, float))
    ends, _ = solve_optimal_discriminator(mu.reshape(-1, 2).T, mu_star.reshape(-1, 2).T, xtol)
    return ends.T.reshape(*mu.shape[:-1], 4)


def solve_optimal_discriminator(gen: np.ndarray, true: np.ndarray, xtol: float = 1e-8,
                                guess: tuple[np.ndarray, np.ndarray] | None = None):
    """:func:`optimal_discriminator` for generator means ``gen`` (2, N) and true means ``true``
    (2, N) or (2, 1), runs on the last axis; warm-startable.

    Returns ``(ends (4, N), roots)``; ``roots`` holds the sign changes of both stages per piece
    ((2, N) and (3, N), NaN where a piece has none). Passing an earlier step's ``roots`` as
    ``guess`` starts the iteration from them when they lie in the new brackets: along a
    trajectory roots move little, so most need a single Halley step. Every root is still
    bracketed and solved to ``xtol``; the guess only changes the starting point.
    """
    true = np.broadcast_to(true, gen.shape)
    true_lo, true_hi = np.minimum(true[0], true[1]), np.maximum(true[0], true[1])
    gen_lo, gen_hi = np.minimum(gen[0], gen[1]), np.maximum(gen[0], gen[1])
    c1, c2, c3, c4, s3, s4 = _merge_sorted(true_lo, true_hi, gen_lo, gen_hi)
    lo, hi = c1 - ROOT_WINDOW, c4 + ROOT_WINDOW
    guess_1, guess_2 = (None, None) if guess is None else guess

    # Stage 0: the two-term sum sum_{k=3,4} s_k (c_k - c_1)(c_k - c_2) phi(x - c_k).
    v3 = s3 * (c3 - c1) * (c3 - c2)
    v4 = s4 * (c4 - c1) * (c4 - c2)
    has_split = (v3 * v4 < 0) & (c4 > c3)
    with np.errstate(divide="ignore", invalid="ignore"):
        x0 = 0.5 * (c3 + c4) + np.log(np.abs(v3 / v4)) / (c4 - c3)
    x0 = np.clip(np.where(has_split, x0, hi), lo, hi)

    # Stage 1: g_1 = sum_j (t_j - c_1) phi(x - t_j) - sum_j (g_j - c_1) phi(x - g_j). The larger
    # mean has the larger weight, so it leads each side (a zero weight then only trails).
    with np.errstate(divide="ignore"):
        stage1 = _ratio_params(true_hi, true_lo, np.log(true_hi - c1), np.log(true_lo - c1),
                               gen_hi, gen_lo, np.log(gen_hi - c1), np.log(gen_lo - c1))
    splits, _ = _sign_changes(np.stack([lo, x0, hi]), stage1, xtol, guess_1)

    # Stage 2: p* - p_mu itself; its equal mixture weights cancel in the log-ratio.
    zero = np.zeros_like(c1)
    stage2 = _ratio_params(true_hi, true_lo, zero, zero, gen_hi, gen_lo, zero, zero)
    s_lo, s_hi = np.fmin(splits[0], splits[1]), np.fmax(splits[0], splits[1])
    breaks = np.stack([lo, np.where(np.isnan(s_lo), hi, s_lo), np.where(np.isnan(s_hi), hi, s_hi), hi])
    found, positive_left = _sign_changes(breaks, stage2, xtol, guess_2)

    # The pieces are ordered and hold one change each, so the roots come out sorted; signs
    # alternate across them, and D = 1 left of the first root iff p* > p_mu at lo.
    roots = _push_nan_right(found)
    edge = np.full((1, c1.shape[0]), np.inf)
    edges = np.where(positive_left, np.concatenate([-edge, roots]), np.concatenate([roots, edge]))
    # p* == p_mu exactly: rounding noise in the log-ratio must not invent intervals.
    edges[:, (true_lo == gen_lo) & (true_hi == gen_hi)] = np.inf
    return edges, (splits, found)


def _merge_sorted(t_lo, t_hi, g_lo, g_hi):
    """Merge two sorted pairs: (c_1..c_4, s_3, s_4), s = +1 for a true mean, -1 for generator."""
    # Odd-even merge of two sorted pairs: compare (0, 2) and (1, 3), then (1, 2).
    first_true = t_lo <= g_lo
    c1, a = np.where(first_true, t_lo, g_lo), np.where(first_true, g_lo, t_lo)
    s_a = np.where(first_true, -1.0, 1.0)
    last_true = t_hi >= g_hi
    c4, b = np.where(last_true, t_hi, g_hi), np.where(last_true, g_hi, t_hi)
    s4 = np.where(last_true, 1.0, -1.0)
    s_b = -s4
    swap = b < a
    c2, c3 = np.where(swap, b, a), np.where(swap, a, b)
    s3 = np.where(swap, s_a, s_b)
    return c1, c2, c3, c4, s3, s4


def _push_nan_right(values: np.ndarray) -> np.ndarray:
    """(3, N) columns sorted along the first axis, NaN replaced by +inf (a 3-element sorting
    network: cheaper than ``np.sort`` on short columns)."""
    r0, r1, r2 = np.where(np.isnan(values), np.inf, values)
    r0, r1 = np.minimum(r0, r1), np.maximum(r0, r1)
    r1, r2 = np.minimum(r1, r2), np.maximum(r1, r2)
    r0, r1 = np.minimum(r0, r1), np.maximum(r0, r1)
    return np.stack([r0, r1, r2])


def _ratio_params(a0, a1, wa0, wa1, b0, b1, wb0, wb1) -> np.ndarray:
    """Constants (6, N) of log(sum_j e^{wa_j} phi(x - a_j)) - log(sum_j e^{wb_j} phi(x - b_j)).

    Inputs are (N,); term 0 must have the larger log-weight on each side (a weight of -inf
    drops a term). See :func:`_log_ratio`.
    """
    with np.errstate(invalid="ignore"):
        # log(term_0 / term_1) = alpha - beta * x on each side.
        beta_a, beta_b = a1 - a0, b1 - b0
        alpha_a = (wa0 - wa1) + 0.5 * beta_a * (a0 + a1)
        alpha_b = (wb0 - wb1) + 0.5 * beta_b * (b0 + b1)
        offset = wa0 - wb0 - 0.5 * (a0 * a0 - b0 * b0)
    return np.stack([offset, a0 - b0, alpha_a, beta_a, alpha_b, beta_b])


def _log_ratio(x: np.ndarray, params: np.ndarray) -> np.ndarray:
    """The log-ratio of :func:`_ratio_params` at ``x`` (N,) or (K, N) (``params`` (6, 1, N)).

    Written as  offset + slope * x + softplus(-d_a) - softplus(-d_b),  d = log(term_0/term_1)
    linear in x, so nothing overflows far from the means and a point costs two exp and two
    log1p. A side whose weights are all zero yields NaN, whose predicate ``> 0`` is False.
    """
    offset, slope, alpha_a, beta_a, alpha_b, beta_b = params
    with np.errstate(invalid="ignore", over="ignore"):
        d_a = alpha_a - beta_a * x
        d_b = alpha_b - beta_b * x
        e_a = np.exp(-np.abs(d_a))
        e_b = np.exp(-np.abs(d_b))
        # Two log1p, not log((1 + e_a) / (1 + e_b)): when both sides share a dominant term the
        # whole signal can sit in e_a, e_b < 1e-16.
        return (offset + slope * x + np.minimum(d_b, 0.0) - np.minimum(d_a, 0.0)
                + np.log1p(e_a) - np.log1p(e_b))


def _log_ratio_derivatives(x: np.ndarray, params: np.ndarray):
    """(value, first, second derivative) of the log-ratio at ``x`` (N,), ``params`` (6, N)."""
    offset, slope, alpha_a, beta_a, alpha_b, beta_b = params
    with np.errstate(invalid="ignore", over="ignore"):
        d_a = alpha_a - beta_a * x
        d_b = alpha_b - beta_b * x
        e_a = np.exp(-np.abs(d_a))
        e_b = np.exp(-np.abs(d_b))
        one_a, one_b = 1.0 + e_a, 1.0 + e_b
        value = offset + slope * x + np.minimum(d_b, 0.0) - np.minimum(d_a, 0.0) + np.log1p(e_a) - np.log1p(e_b)
        # sigmoid(-d) from the same exponential: e/(1+e) when d >= 0, 1/(1+e) otherwise.
        sig_a = np.where(d_a >= 0, e_a, 1.0) / one_a
        sig_b = np.where(d_b >= 0, e_b, 1.0) / one_b
        first = slope + beta_a * sig_a - beta_b * sig_b
        second = beta_a * beta_a * sig_a * (1.0 - sig_a) - beta_b * beta_b * sig_b * (1.0 - sig_b)
    return value, first, second


def _sign_changes(breaks: np.ndarray, params: np.ndarray, xtol: float, guess: np.ndarray | None = None,
                  max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Where ``log_ratio > 0`` switches inside each piece [breaks[p], breaks[p + 1]].

    ``breaks`` is (P + 1, N), non-decreasing along the first axis, and each piece must hold at
    most one switch; ``params`` (6, N) from :func:`_ratio_params`. Returns the (P, N) switch
    points (NaN where the predicate agrees at both ends of a piece) and the (N,) predicate at
    ``breaks[0]``. A switch exactly at a breakpoint belongs to exactly one piece, because the
    predicate is evaluated once per breakpoint. ``guess`` (P, N), e.g. an earlier step's
    result, seeds the iteration where it lies inside the bracket; otherwise it starts at the
    false-position point.

    A point is accepted as the switch when it lies in the bracket, its Newton step s is below
    sqrt(``xtol``) and the error left after that step, |f''/2f'| s^2, is below ``xtol`` (the
    bracket holds a single switch, so a root found inside it is the one). First every entry
    takes up to two plain Halley steps, which settles nearly all warm-started entries; the
    rest restart from their starting point with safeguarded Halley (a step leaving the current
    bracket is replaced by bisection) until accepted or the bracket is below ``xtol``. Each
    entry's result depends only on its own iterates, not on the other entries in the batch.
    """
    n_pieces, n = breaks.shape[0] - 1, breaks.shape[1]
    value = _log_ratio(breaks, params[:, None, :])
    positive = value > 0
    # Index piece * n + run: the same flat index finds the piece's left breakpoint in (P + 1, N).
    flat = np.flatnonzero(positive[:-1] != positive[1:])
    run = flat % n
    a, b = breaks.reshape(-1)[flat], breaks.reshape(-1)[flat + n]
    va, vb = value.reshape(-1)[flat], value.reshape(-1)[flat + n]
    with np.errstate(invalid="ignore", divide="ignore"):
        x = a + va / (va - vb) * (b - a)
    if guess is not None:
        seed = guess.reshape(-1)[flat]
        x = np.where((seed > a) & (seed < b), seed, x)
    x = np.where((x > a) & (x < b), x, 0.5 * (a + b))
    out = np.full(n_pieces * n, np.nan)

    # One row per quantity, one column per entry, so that dropping finished entries is a
    # single np.take (much faster than boolean indexing along columns).
    state = np.concatenate([np.stack([x, x, a, b, flat, positive.reshape(-1)[flat]]), np.take(params, run, axis=1)])
    start, iterate, low, high, slot, left_positive = range(6)
    # Up to two plain Halley steps from the start.
    for _ in range(2):
        step, curvature = _newton_step(state[iterate], state[6:])
        with np.errstate(invalid="ignore"):
            state[iterate] -= step / (1.0 - step * curvature)
        accept = (state[iterate] >= state[low]) & (state[iterate] <= state[high]) & _converged(step, curvature, xtol)
        out[state[slot, accept].astype(np.int64)] = state[iterate, accept]
        state = np.take(state, np.flatnonzero(~accept), axis=1)

    # The rest restart from their starting point with safeguarded Halley.
    state[iterate] = state[start]
    for _ in range(max_iter):
        if state.shape[1] == 0:
            return out.reshape(n_pieces, n), positive[0]
        x, a, b = state[iterate], state[low], state[high]
        step, curvature, value = _newton_step(x, state[6:], with_value=True)
        same_as_left = (value > 0) == (state[left_positive] > 0)
        a, b = np.where(same_as_left, x, a), np.where(same_as_left, b, x)
        with np.errstate(invalid="ignore"):
            halley = x - step / (1.0 - step * curvature)
        # A zero value is a root even when its Newton point sits on the bracket's edge.
        inside = (halley >= a) & (halley <= b)
        state[iterate], state[low], state[high] = np.where(inside, halley, 0.5 * (a + b)), a, b
        done = inside & _converged(step, curvature, xtol) | (b - a <= xtol)
        out[state[slot, done].astype(np.int64)] = state[iterate, done]
        state = np.take(state, np.flatnonzero(~done), axis=1)
    raise RuntimeError(f"root finding did not converge for {state.shape[1]} entries")


def _newton_step(x: np.ndarray, params: np.ndarray, with_value: bool = False):
    """Newton step f/f' and half relative curvature f''/(2 f') of the log-ratio at ``x``."""
    value, first, second = _log_ratio_derivatives(x, params)
    with np.errstate(divide="ignore", invalid="ignore"):
        step, curvature = value / first, 0.5 * second / first
    return (step, curvature, value) if with_value else (step, curvature)


def _converged(step: np.ndarray, curvature: np.ndarray, xtol: float) -> np.ndarray:
    """Newton step below sqrt(xtol) with |f''/2f'| step^2 below xtol.

    The error estimate only holds for small steps: far from the means the log-ratio is nearly
    linear over a long stretch, so a large step can look exact without being so.
    """
    with np.errstate(invalid="ignore"):
        return (np.abs(step) <= np.sqrt(xtol)) & (step * step * np.abs(curvature) <= xtol)
