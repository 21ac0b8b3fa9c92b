"""Optimal-discriminator and first-order GAN dynamics, vectorised over runs; outcomes; the sweep.

Both dynamics take N independent runs at once: ``mu`` is (N, 2), ``ends`` (N, 4), and step
sizes are scalars or (N,) arrays (so one batch can mix step sizes). ``mu_star`` is (2,) or
(N, 2). There is no Python loop over runs; the only loop is over time steps. Internally the
state is transposed to (2, N) and (4, N), so that every numpy loop runs over all runs (see
:func:`audit.dynamics.model.gradient_columns`).

* Optimal-discriminator dynamics: ``D_t = argmax_D L(mu_t, D)`` exactly
  (:func:`audit.dynamics.model.optimal_discriminator`), then
  ``mu_{t+1} = mu_t - eta_g dL/dmu(mu_t, D_t)``.
* First-order dynamics: simultaneous gradient steps from the same state,
  ``mu_{t+1} = mu_t - eta_g dL/dmu`` and ``ends_{t+1} = P(ends_t + eta_d dL/dends)``, where P
  is the Euclidean projection onto ``l1 <= r1 <= l2 <= r2`` (:func:`project_ends`), i.e.
  projected gradient ascent for the discriminator.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from audit.dynamics.model import gradient_columns, generator_gradient_columns, solve_optimal_discriminator

OUTCOMES = ("converged", "mode_collapse", "discriminator_collapse", "vanishing_gradient", "other")
DYNAMICS = ("optimal", "first_order")

# Classification tolerances (keyword defaults of :func:`classify`). Distances are in units of
# the components' standard deviation. L is not smooth at mu* (|dL/dmu| stays ~0.2 next to it),
# so fixed-step dynamics keep hopping around mu* by up to ~0.2 eta_g (0.06 at eta_g = 0.3):
# CONV_TOL must exceed that; raise it for eta_g > 0.5.
# Two unit Gaussians MODE_TOL apart are within 0.04 in total variation: one mode. At
# |dL/dmu| <= GRAD_TOL a 1000-step run at eta_g <= 0.3 moves mu by < 0.03: stuck. A projected
# interval that has collapsed has width exactly 0; EMPTY_TOL only absorbs round-off.
CONV_TOL = 0.1
MODE_TOL = 0.1
GRAD_TOL = 1e-4
EMPTY_TOL = 1e-6

Z_95 = 1.959963984540054

# Initial states of the sweep (see :func:`sample_initial`): generator means within one standard
# deviation beyond the default true means +-2, so the optimal dynamics reach mu* within 1000
# steps; interval ends spread twice as wide, so some discriminators start in the tails where
# both densities are ~0 - the setting in which the paper reports vanishing gradients.
GEN_RANGE = 3.0
DISC_RANGE = 6.0

# Most runs simulated together in one batch of the sweep. Temporaries of this size stay in
# cache; one batch of 2-6 x 10^4 runs measured 1.3-2.5x slower, much of it page faults from
# re-mapping large temporaries every step.
CHUNK_RUNS = 8192


@dataclass
class Trajectory:
    """Final state of N runs, and the whole path when recorded.

    ``mu`` (N, 2) and ``ends`` (N, 4) after the last step; ``grad_norm`` (N,) is |dL/dmu| at
    that state (what the generator would feel next). With ``record``, ``mu_path``
    (steps + 1, N, 2) and ``ends_path`` (steps + 1, N, 4) hold every state; for the optimal
    dynamics ``ends`` is the optimal discriminator of the matching ``mu``.
    """

    mu: np.ndarray
    ends: np.ndarray
    grad_norm: np.ndarray
    mu_path: np.ndarray | None = None
    ends_path: np.ndarray | None = None


@dataclass(frozen=True)
class FigureSpec:
    """A hand-picked single run reproducing a figure of the paper (same eta for G and D)."""

    name: str
    mu_star: tuple[float, float]
    eta: float
    mu0: tuple[float, float]
    ends0: tuple[float, float, float, float]
    steps: int


# Figure 1: close true means, step 0.1. From this start the optimal dynamics converge in ~40
# steps while the first-order dynamics merge both generator means at ~0 (mode collapse).
FIGURE_1 = FigureSpec("figure1", (-0.5, 0.5), 0.1, (-0.8, -0.2), (-1.3, 1.0, 1.7, 1.8), 600)
# Figure 2: far true means, step 0.3. First-order: interval 2 collapses within a few steps,
# interval 1 shrinks to a point by step ~120 and the generator freezes at (-2.43, -0.90).
FIGURE_2 = FigureSpec("figure2", (-2.0, 2.0), 0.3, (0.2, 0.9), (-2.9, -0.6, 0.0, 0.6), 200)


def run_figure(spec: FigureSpec) -> dict[str, Trajectory]:
    """Recorded single-run trajectories of both dynamics from ``spec``'s start."""
    mu0, ends0 = np.array([spec.mu0]), np.array([spec.ends0])
    return {
        "optimal": optimal_dynamics(mu0, spec.mu_star, spec.eta, spec.steps, record=True),
        "first_order": first_order_dynamics(mu0, ends0, spec.mu_star, spec.eta, spec.eta, spec.steps, record=True),
    }


def generator_gradient(mu: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """dL/dmu (N, 2) = 1/2 sum_i [phi(r_i - mu_j) - phi(l_i - mu_j)] for mu (N, 2), ends (N, 4)."""
    return generator_gradient_columns(np.asarray(mu, float).T, np.asarray(ends, float).T).T


def optimal_dynamics(mu0: np.ndarray, mu_star: np.ndarray, eta_g, steps: int,
                     record: bool = False) -> Trajectory:
    """Gradient descent on mu against the exact optimal discriminator, ``steps`` steps."""
    mu = _columns(mu0)
    true = np.asarray(mu_star, float).reshape(-1, 2).T  # (2, 1) or (2, N)
    eta_g = np.asarray(eta_g, float)
    history = []  # (mu, roots) of the last two steps, newest first
    mu_path, ends_path = [], []
    for _ in range(steps):
        ends, roots = solve_optimal_discriminator(mu, true, guess=_nearest_roots(mu, history))
        history = [(mu, roots)] + history[:1]
        if record:
            mu_path.append(mu)
            ends_path.append(ends)
        mu = mu - eta_g * generator_gradient_columns(mu, ends)
    ends, _ = solve_optimal_discriminator(mu, true, guess=_nearest_roots(mu, history))
    return _finish(mu, ends, record, mu_path, ends_path)


def _nearest_roots(mu: np.ndarray, history: list) -> tuple[np.ndarray, np.ndarray] | None:
    """Per run, the recorded roots of whichever of the last two states is closest to ``mu``.

    Once converged, the optimal dynamics hop between two points around mu* (L has a kink
    there), so the discriminator flips every step and the roots of two steps ago are the ones
    that match; while mu still travels, last step's are closer.
    """
    if len(history) < 2:
        return history[0][1] if history else None
    (mu_1, roots_1), (mu_2, roots_2) = history
    older = np.max(np.abs(mu - mu_2), axis=0) < np.max(np.abs(mu - mu_1), axis=0)
    return tuple(np.where(older, r2, r1) for r1, r2 in zip(roots_1, roots_2))


def first_order_dynamics(mu0: np.ndarray, ends0: np.ndarray, mu_star: np.ndarray, eta_g, eta_d,
                         steps: int, record: bool = False) -> Trajectory:
    """Simultaneous gradient descent (mu) / projected ascent (ends), ``steps`` steps."""
    mu, ends = _columns(mu0), _project_columns(_columns(ends0))
    true = np.asarray(mu_star, float).reshape(-1, 2).T
    eta_g, eta_d = np.asarray(eta_g, float), np.asarray(eta_d, float)
    mu_path, ends_path = [], []
    for _ in range(steps):
        if record:
            mu_path.append(mu)
            ends_path.append(ends)
        grad_mu, grad_ends = gradient_columns(mu, ends, true)
        mu = mu - eta_g * grad_mu
        ends = _project_columns(ends + eta_d * grad_ends)
    return _finish(mu, ends, record, mu_path, ends_path)


def _columns(array) -> np.ndarray:
    """(N, k) -> contiguous (k, N) float copy."""
    return np.ascontiguousarray(np.asarray(array, float).T)


def _finish(mu, ends, record, mu_path, ends_path) -> Trajectory:
    """Trajectory (runs first) from the transposed final state and recorded path."""
    grad_mu = generator_gradient_columns(mu, ends)
    final = (_columns(mu), _columns(ends), np.hypot(grad_mu[0], grad_mu[1]))
    if not record:
        return Trajectory(*final)
    paths = (np.stack(mu_path + [mu]), np.stack(ends_path + [ends]))
    return Trajectory(*final, *(np.ascontiguousarray(path.transpose(0, 2, 1)) for path in paths))


def project_ends(ends: np.ndarray) -> np.ndarray:
    """Euclidean projection of (N, 4) interval ends onto l1 <= r1 <= l2 <= r2.

    This is isotonic regression of 4 values; crossing ends are pooled to their mean, so an
    interval pushed inside out becomes empty (l == r) rather than flipped.
    """
    return _project_columns(np.asarray(ends, float).T).T


def _project_columns(ends: np.ndarray) -> np.ndarray:
    """:func:`project_ends` on (4, N). Uses the max-min formula
    y_i = max_{j <= i} min_{k >= i} mean(x_j..x_k), only on the runs that violate the order."""
    bad = np.flatnonzero((ends[1] < ends[0]) | (ends[2] < ends[1]) | (ends[3] < ends[2]))
    if bad.size == 0:
        return ends
    x = np.take(ends, bad, axis=1)
    prefix = np.concatenate([np.zeros((1, bad.size)), np.cumsum(x, axis=0)])
    mean = {(j, k): (prefix[k + 1] - prefix[j]) / (k - j + 1) for j in range(4) for k in range(j, 4)}
    out = ends.copy()
    out[:, bad] = [np.max([np.min([mean[j, k] for k in range(i, 4)], axis=0) for j in range(i + 1)], axis=0)
                   for i in range(4)]
    return out


def classify(mu: np.ndarray, mu_star: np.ndarray, grad_norm: np.ndarray, ends: np.ndarray | None = None, *,
             conv_tol: float = CONV_TOL, mode_tol: float = MODE_TOL, grad_tol: float = GRAD_TOL,
             empty_tol: float = EMPTY_TOL) -> np.ndarray:
    """Outcome of each run from its final state: (N,) indices into :data:`OUTCOMES`.

    The first matching rule wins:

    ``converged``
        max_j |mu_j - mu*_pi(j)| <= ``conv_tol`` for the better of the two matchings pi.
    ``mode_collapse``
        |mu_1 - mu_2| <= ``mode_tol`` (and not converged): the generator has merged its two
        components into one, so it misses at least one true mode - whether the merged mean
        sits between the true means or on one of them.
    ``discriminator_collapse``
        (only when ``ends`` is given, i.e. first-order dynamics) some interval has width
        r_i - l_i <= ``empty_tol``: it has shrunk to a point and gives no signal.
    ``vanishing_gradient``
        |dL/dmu| <= ``grad_tol`` away from mu*: the generator is stuck.
    ``other``
        anything else (still moving, oscillating, diverged).
    """
    mu = np.asarray(mu, float)
    mu_star = np.broadcast_to(np.asarray(mu_star, float), mu.shape)
    direct = np.max(np.abs(mu - mu_star), axis=1)
    swapped = np.max(np.abs(mu - mu_star[:, ::-1]), axis=1)
    converged = np.minimum(direct, swapped) <= conv_tol
    mode_collapse = np.abs(mu[:, 0] - mu[:, 1]) <= mode_tol
    if ends is None:
        empty = np.zeros(mu.shape[0], dtype=bool)
    else:
        empty = np.min(ends[:, 1::2] - ends[:, 0::2], axis=1) <= empty_tol
    vanishing = np.asarray(grad_norm) <= grad_tol
    rules = [converged, mode_collapse, empty, vanishing, np.ones_like(converged)]
    return np.argmax(np.stack(rules, axis=1), axis=1)


def wilson_interval(count, total, z: float = Z_95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion count/total (95% for the default z)."""
    count, total = np.asarray(count, float), np.asarray(total, float)
    p = count / total
    denom = 1.0 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    # The bounds are exactly 0 and 1 at the extremes; the formula leaves round-off there.
    return np.where(count == 0, 0.0, centre - half), np.where(count == total, 1.0, centre + half)


def sample_initial(seed: int, runs: int, gen_range: float, disc_range: float) -> tuple[np.ndarray, np.ndarray]:
    """Seeded initial states: mu0 (runs, 2) ~ U[-gen_range, gen_range]^2 and sorted interval
    ends (runs, 4) ~ U[-disc_range, disc_range]."""
    rng = np.random.default_rng(seed)
    mu0 = rng.uniform(-gen_range, gen_range, size=(runs, 2))
    ends0 = np.sort(rng.uniform(-disc_range, disc_range, size=(runs, 4)), axis=1)
    return mu0, ends0


def sweep(mu_star, eta_g, eta_d, runs: int, steps: int, seed: int = 0, threads: int = 1,
          gen_range: float = GEN_RANGE, disc_range: float = DISC_RANGE, dynamics: tuple[str, ...] = DYNAMICS,
          **tolerances) -> pd.DataFrame:
    """Outcome fractions of the ``dynamics`` over ``runs`` seeded initialisations per step size.

    Every cell reuses the same ``runs`` initial states (common random numbers, so cells differ
    only by dynamics and step size). Cells: optimal dynamics for each ``eta_g`` (it has no
    discriminator step size) and first-order dynamics for each (``eta_g``, ``eta_d``). The runs
    of all cells of a dynamics are simulated in chunks of at most :data:`CHUNK_RUNS`, on
    ``threads`` worker processes; each run's result is independent of the chunking.

    Returns one row per cell: ``dynamics, eta_g, eta_d`` (NaN for optimal), ``runs, steps``,
    then per outcome ``<outcome>`` (fraction), ``<outcome>_count`` and the 95% Wilson interval
    ``<outcome>_ci_low``, ``<outcome>_ci_high``. ``tolerances`` go to :func:`classify`.
    """
    mu_star = np.asarray(mu_star, float)
    mu0, ends0 = sample_initial(seed, runs, gen_range, disc_range)
    eta_g, eta_d = [float(v) for v in eta_g], [float(v) for v in eta_d]
    cells = ([("optimal", g, np.nan) for g in eta_g if "optimal" in dynamics]
             + [("first_order", g, d) for g in eta_g for d in eta_d if "first_order" in dynamics])
    fixed = {"mu_star": mu_star, "steps": steps, "tolerances": tolerances}
    codes = []
    if "optimal" in dynamics:
        batch = (np.tile(mu0, (len(eta_g), 1)), np.repeat(eta_g, runs))
        codes.append(_in_chunks(_optimal_outcomes, batch, threads, fixed))
    if "first_order" in dynamics:
        n_cells = len(eta_g) * len(eta_d)
        grid_g, grid_d = (np.repeat(v, runs) for v in np.meshgrid(eta_g, eta_d, indexing="ij"))
        batch = (np.tile(mu0, (n_cells, 1)), np.tile(ends0, (n_cells, 1)), grid_g, grid_d)
        codes.append(_in_chunks(_first_order_outcomes, batch, threads, fixed))
    codes = np.concatenate(codes).reshape(len(cells), runs)
    rows = []
    for (kind, g, d), cell_codes in zip(cells, codes):
        row = {"dynamics": kind, "eta_g": g, "eta_d": d, "runs": runs, "steps": steps}
        counts = np.bincount(cell_codes, minlength=len(OUTCOMES))
        low, high = wilson_interval(counts, runs)
        for k, outcome in enumerate(OUTCOMES):
            row.update({outcome: counts[k] / runs, f"{outcome}_count": int(counts[k]),
                        f"{outcome}_ci_low": low[k], f"{outcome}_ci_high": high[k]})
        rows.append(row)
    return pd.DataFrame(rows)


def _optimal_outcomes(mu0, eta_g, mu_star, steps, tolerances) -> np.ndarray:
    result = optimal_dynamics(mu0, mu_star, eta_g, steps)
    return classify(result.mu, mu_star, result.grad_norm, **tolerances)


def _first_order_outcomes(mu0, ends0, eta_g, eta_d, mu_star, steps, tolerances) -> np.ndarray:
    result = first_order_dynamics(mu0, ends0, mu_star, eta_g, eta_d, steps)
    return classify(result.mu, mu_star, result.grad_norm, result.ends, **tolerances)


def _in_chunks(fn, batch: tuple[np.ndarray, ...], workers: int, fixed: dict) -> np.ndarray:
    """``fn(*chunk, **fixed)`` over equal chunks of the runs in ``batch`` (arrays with runs
    first), of at most :data:`CHUNK_RUNS` runs and a multiple of ``workers`` in number; the
    outcome codes concatenated in run order.

    Several workers run as forked processes: the iteration is many numpy calls on arrays of a
    few thousand runs, and threads would wait on the GIL for a good part of them.
    """
    n = batch[0].shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    n_chunks = workers * -(-n // (CHUNK_RUNS * workers))
    chunks = [[array[rows] for array in batch] for rows in np.array_split(np.arange(n), n_chunks) if rows.size]
    if workers == 1 or len(chunks) == 1:
        return np.concatenate([fn(*chunk, **fixed) for chunk in chunks])
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return np.concatenate(list(pool.map(partial(fn, **fixed), *zip(*chunks))))
