"""Diversity by classification (issue 5; Santurkar, Schmidt & Madry 2017).

A classifier trained on N GAN samples (labelled by the annotator) is tested on the real ``test``
split and compared with the same classifier trained on n real images: the GAN's samples are
"worth" ``n_equiv`` real images, the real sample size whose accuracy equals the GAN-trained
accuracy. Santurkar et al. found n_equiv far below N for the GANs of 2017.

The real-test accuracy of a GAN-trained classifier is the **Classification Accuracy Score**
(CAS; Ravuri & Vinyals 2019), called **GAN-train** by Shmelkov, Schmid & Alahari (2018).

This module holds the mathematics on accuracy curves and per-image correctness, pure functions
of arrays: :func:`isotonic_increasing`, :func:`equivalent_sample_size` (interpolation in log n
with censoring), :func:`joint_bootstrap` (one resample of the test images applied to every
classifier, real and GAN-trained, together with the seeds), :func:`resolved_range` (where the
real curve is flat within its own noise), :func:`n_equiv_analysis` (point, interval, censoring
and the test of H0 "n_equiv >= n_train"), :func:`describe_n`, :func:`interval_bounds` and
:func:`interval_text`. How the classifiers are trained is :mod:`audit.models.fitting`; the
subsets they train on, :mod:`audit.data.subsets`; the stages are :mod:`audit.real_curve` and
:mod:`audit.diversity`; the construction and its calibration, ``DIVERSITY.md``.

Units: sample sizes are numbers of images; accuracies are fractions in [0, 1]. Correctness
arrays are bool, True where a classifier predicted a test image's class.
Censored sample sizes are never invented numbers: ``-inf`` / ``+inf`` are "below / above the
grid", and a value where the real curve is flat within its noise is censored at the start of
the flat stretch (:func:`describe_n`).
"""

from __future__ import annotations

import numpy as np

from audit.metrics.bootstrap import percentile_interval
from audit.metrics.verdict import Verdict

#: accuracies closer than this are equal (a tie is "at or above" in the test of H0 n_equiv >= n_train)
TIE = 1e-12

#: the name every output gives the real-test accuracy of a GAN-trained classifier
CAS_ALIASES = ("accuracy on the real test split of the classifier trained on GAN samples = Classification "
               "Accuracy Score (CAS; Ravuri & Vinyals 2019) = GAN-train (Shmelkov, Schmid & Alahari 2018)")


# --------------------------------------------------------------------------------------------
# pure functions on curves


def isotonic_increasing(y: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Least-squares non-decreasing fit of ``y`` (pool-adjacent-violators).

    ``y``: (G,) values in grid order; ``weights``: (G,) positive weights (default 1).
    Returns the (G,) fitted values: every run of violating points is replaced by its weighted
    mean, so ``[0.5, 0.7, 0.6, 0.9]`` becomes ``[0.5, 0.65, 0.65, 0.9]``. Unlike a running
    maximum it does not ratchet up on a lucky (noisy) point.
    """
    y = np.asarray(y, dtype=np.float64)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64)
    blocks: list[list[float]] = []  # [mean, weight, length]
    for value, weight in zip(y, w):
        blocks.append([value, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m1, w1, l1), (m2, w2, l2) = blocks[-2], blocks.pop()
            blocks[-1] = [(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, l1 + l2]
    return np.concatenate([np.full(length, mean) for mean, _, length in blocks]) if blocks else y


def equivalent_sample_size(n_grid: np.ndarray, curve: np.ndarray, target: float) -> float:
    """The real sample size at which a non-decreasing accuracy curve reaches ``target``.

    ``n_grid``: (G,) increasing sample sizes; ``curve``: (G,) non-decreasing accuracies (make
    it so with :func:`isotonic_increasing` first). Between grid points the curve is linear in
    log n, so between n_i < n_{i+1} with c_i < target <= c_{i+1}:

        log n_equiv = log n_i + (target - c_i) / (c_{i+1} - c_i) * (log n_{i+1} - log n_i)

    i.e. the *smallest* n reaching ``target`` (on a flat stretch: its left end). Censored:
    ``-inf`` when ``target < c_0`` (fewer than n_min real images would do), ``+inf`` when
    ``target > c_{G-1}`` (more than n_max would be needed). ``target == c_0`` gives n_0.
    """
    n_grid = np.asarray(n_grid, dtype=np.float64)
    curve = np.asarray(curve, dtype=np.float64)
    if n_grid.ndim != 1 or n_grid.shape != curve.shape or n_grid.size == 0:
        raise ValueError("equivalent_sample_size: n_grid and curve must be equal-length 1-d arrays")
    if np.any(np.diff(n_grid) <= 0) or np.any(n_grid <= 0):
        raise ValueError("equivalent_sample_size: n_grid must be positive and increasing")
    if np.any(np.diff(curve) < -1e-12):
        raise ValueError("equivalent_sample_size: curve must be non-decreasing (use isotonic_increasing)")
    if not np.isfinite(target):
        raise ValueError("equivalent_sample_size: target must be finite")
    tol = 1e-12  # accuracies equal up to rounding (a mean over seeds) count as equal
    if target < curve[0] - tol:
        return -np.inf
    if target > curve[-1] + tol:
        return np.inf
    i = int(np.argmax(curve >= target - tol))  # first grid point reaching the target
    if i == 0:
        return float(n_grid[0])
    lo, hi = curve[i - 1], curve[i]
    fraction = min(1.0, (target - lo) / (hi - lo))
    log_n = np.log(n_grid[i - 1]) + fraction * (np.log(n_grid[i]) - np.log(n_grid[i - 1]))
    return float(np.exp(log_n))


def isotonic_rows(curves: np.ndarray) -> np.ndarray:
    """:func:`isotonic_increasing` (unit weights) of every row of (B, G) ``curves`` at once, by
    the max-min formula iso_i = max_{j<=i} min_{k>=i} mean(c_j..c_k)."""
    curves = np.atleast_2d(np.asarray(curves, dtype=np.float64))
    b, g = curves.shape
    sums = np.concatenate([np.zeros((b, 1)), np.cumsum(curves, axis=1)], axis=1)
    j, k = np.meshgrid(np.arange(g), np.arange(g), indexing="ij")
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (sums[:, k + 1] - sums[:, j]) / (k - j + 1)  # (B, G, G): mean of c_j..c_k where j <= k
    means = np.where(j <= k, means, np.nan)
    return np.stack([np.nanmax(np.nanmin(means[:, :i + 1, i:], axis=2), axis=1) for i in range(g)], axis=1)


def equivalent_sample_sizes(n_grid: np.ndarray, curves: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """:func:`equivalent_sample_size` of many replicates at once: (B,) sizes for (B, G) curves,
    each made isotonic first (:func:`isotonic_rows`), and (B,) targets."""
    n_grid = np.asarray(n_grid, dtype=np.float64)
    iso = isotonic_rows(curves)
    targets = np.asarray(targets, dtype=np.float64).ravel()
    b = iso.shape[0]
    tol = 1e-12
    reached = iso >= targets[:, None] - tol
    first = np.argmax(reached, axis=1)
    rows = np.arange(b)
    lo, hi = iso[rows, np.maximum(first - 1, 0)], iso[rows, first]
    below = np.log(n_grid[np.maximum(first - 1, 0)])
    with np.errstate(invalid="ignore", divide="ignore"):  # first == 0 (lo == hi) is replaced below
        log_n = below + np.minimum(1.0, (targets - lo) / (hi - lo)) * (np.log(n_grid[first]) - below)
    out = np.where(first == 0, n_grid[0], np.exp(np.where(first == 0, 0.0, log_n)))
    out[targets < iso[:, 0] - tol] = -np.inf
    out[~reached.any(axis=1)] = np.inf
    return out


def n_equiv_point(n_grid: np.ndarray, real_accuracy: np.ndarray, gan_accuracy: np.ndarray) -> float:
    """n_equiv of mean accuracies: the GAN's mean accuracy over its seeds ((S',) ``gan_accuracy``)
    read on the isotonic fit of the real curve's mean over seeds ((S, G) ``real_accuracy``), by
    :func:`equivalent_sample_size` (uncensored by flatness: ``-inf`` / ``+inf`` outside the grid)."""
    real = np.atleast_2d(np.asarray(real_accuracy, dtype=np.float64))
    return equivalent_sample_size(n_grid, isotonic_increasing(real.mean(axis=0)), float(np.mean(gan_accuracy)))


def describe_n(value: float, n_grid, i_low: int = 0, i_high: int | None = None) -> dict:
    """JSON-ready form of a (possibly censored) sample size read from a curve on ``n_grid``.

    ``i_low`` / ``i_high`` (:func:`resolved_range`; default: the whole grid) bound the stretch
    where the curve is resolved. A number there: ``{"value": 43.2, "censored": None, "text":
    "43"}``. Above the grid (``+inf``) or on the flat top beyond ``n_grid[i_high]``:
    ``{"value": None, "censored": "above", "bound": 500.0, "text": "> 500"}``; below the grid
    (``-inf``) or on a flat bottom before ``n_grid[i_low]``: ``"below"`` / ``"< 50"``.
    """
    n_grid = np.asarray(n_grid, dtype=np.float64)
    i_high = n_grid.size - 1 if i_high is None else i_high
    if value == np.inf or (np.isfinite(value) and value > n_grid[i_high] * (1 + 1e-12)):
        bound = n_grid[-1] if value == np.inf else n_grid[i_high]
        return {"value": None, "censored": "above", "bound": float(bound), "text": f"> {bound:g}"}
    if value == -np.inf or value < n_grid[i_low] * (1 - 1e-12):
        bound = n_grid[0] if value == -np.inf else n_grid[i_low]
        return {"value": None, "censored": "below", "bound": float(bound), "text": f"< {bound:g}"}
    return {"value": float(value), "censored": None, "text": f"{value:.0f}"}


def undefined_n(reason: str) -> dict:
    """The JSON form of an n_equiv that cannot be computed (no GAN classifier to score)."""
    return {"value": None, "censored": None, "undefined": reason, "text": "undefined"}


def interval_bounds(low: dict, high: dict) -> tuple[float, float]:
    """The numeric interval a (possibly censored) pair of :func:`describe_n` ends states.

    A censored end states a half-line: a lower end "< 50" is 0, "> 500" is 500; an upper end
    "> 500" is +inf, "< 50" is 50. Undefined ends give (nan, nan). Used to check coverage.
    """
    def end(d: dict, upper: bool) -> float:
        if d.get("undefined"):
            return np.nan
        if d["censored"] is None:
            return d["value"]
        if d["censored"] == "above":
            return np.inf if upper else d["bound"]
        return d["bound"] if upper else 0.0

    return end(low, False), end(high, True)


def states_at_most(described: dict, bound: float) -> bool:
    """Whether a :func:`describe_n` sample size states n <= ``bound``: a value, or "< b" with b <= bound."""
    return described["censored"] != "above" and (described["value"] if described["censored"] is None
                                                 else described["bound"]) <= bound


def states_at_least(described: dict, bound: float) -> bool:
    """Whether a :func:`describe_n` sample size states n >= ``bound``: a value, or "> b" with b >= bound."""
    return described["censored"] != "below" and (described["value"] if described["censored"] is None
                                                 else described["bound"]) >= bound


def interval_text(score: dict) -> str:
    """``"[lo, hi]"``: the n_equiv 95% interval of one classifier kind's score, censored bounds as
    "< n" / "> n" (the text every output prints)."""
    return f"[{score['n_equiv_ci_low']['text']}, {score['n_equiv_ci_high']['text']}]"


# --------------------------------------------------------------------------------------------
# the joint bootstrap over test images and seeds


def joint_bootstrap(real_correct: np.ndarray, gan_correct: np.ndarray, n_bootstrap: int, seed: int,
                    chunk: int = 250) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap replicates of the mean real curve and of the mean GAN-trained accuracy.

    ``real_correct``: bool (S, G, T), real classifier of seed s at size g right on test image
    t; ``gan_correct``: bool (S', T), GAN-trained classifier of seed s on the same T images.
    Replicate b draws ONE multiset of T test images (multinomial counts w_b) and applies it to
    every classifier, real and GAN-trained alike, so the images both sides find easy or hard
    move together; it also draws S real seeds (whole curves) and S' GAN seeds with
    replacement, independently (different classifiers). Returns (real curves (B, G): the mean
    over the drawn seeds of each size's accuracy on the drawn images; GAN accuracies (B,)).
    Deterministic for ``seed``.
    """
    real = np.asarray(real_correct, dtype=bool)
    gan = np.asarray(gan_correct, dtype=bool)
    if real.ndim != 3 or gan.ndim != 2 or real.shape[2] != gan.shape[1] or 0 in real.shape or 0 in gan.shape:
        raise ValueError("joint_bootstrap: real_correct must be (S, G, T) and gan_correct (S', T), T > 0")
    (s_real, g, t), s_gan = real.shape, gan.shape[0]
    flat_real = real.reshape(s_real * g, t).astype(np.float64)
    flat_gan = gan.astype(np.float64)
    rng = np.random.default_rng([seed, 5501])
    curves, accuracies = [], []
    for start in range(0, n_bootstrap, chunk):
        b = min(chunk, n_bootstrap - start)
        w = _draw_counts(rng, b, t).astype(np.float64)  # (b, T) times each test image is drawn
        u = _draw_counts(rng, b, s_real)                 # (b, S) times each real seed is drawn
        v = _draw_counts(rng, b, s_gan)                  # (b, S') times each GAN seed is drawn
        # integer counts of right answers (exact in float64), divided once: equal classifiers on
        # both sides give exactly equal replicates
        real_right = (flat_real @ w.T).reshape(s_real, g, b)
        curves.append(np.einsum("sgb,bs->bg", real_right, u) / (s_real * t))
        accuracies.append(np.einsum("sb,bs->b", flat_gan @ w.T, v) / (s_gan * t))
    return np.concatenate(curves), np.concatenate(accuracies)


def _draw_counts(rng: np.random.Generator, b: int, m: int) -> np.ndarray:
    """(b, m) int counts: row i counts how often each of m items is drawn in m draws with
    replacement (a multinomial(m, 1/m) vector, drawn as indices and counted)."""
    drawn = rng.integers(0, m, (b, m)) + m * np.arange(b)[:, None]
    return np.bincount(drawn.ravel(), minlength=b * m).reshape(b, m)


def resolved_range(real_curves: np.ndarray, level: float = 0.95) -> tuple[int, int]:
    """(i_low, i_high): where the real curve rises beyond its own noise.

    ``real_curves``: (B, G) bootstrap replicates of the mean real curve (:func:`joint_bootstrap`),
    each made isotonic here (:func:`isotonic_rows`), as n_equiv reads them. The rise from grid
    point i to j > i is *resolved* when the (1 - level)/2 quantile of its replicates
    ``iso[:, j] - iso[:, i]`` is above 0 (these rises are >= 0, and shrink as i nears j, so the
    resolved starts i of a rise to the top are 0 .. i_high - 1, without gaps). ``i_high``: the
    first i whose rise to the top (G - 1) is not resolved (G - 1 if all are): from ``n[i_high]``
    on, the curve is flat within its noise, so a sample size read there is only "> n[i_high]".
    ``i_low``: one before the first j whose rise from the bottom (0) is resolved (G - 1 if
    none): below ``n[i_low]`` a sample size is only "< n[i_low]". A dip (a point below a later
    one by noise) does not hide a flat top, as raw differences would: a rise from the dip to the
    top would look resolved while the rise from before it is not.
    """
    curves = isotonic_rows(real_curves)
    q = (1 - level) / 2
    g = curves.shape[1]
    top = np.flatnonzero(np.quantile(curves[:, -1:] - curves[:, :-1], q, axis=0) > 0)     # starts i < G - 1
    bottom = 1 + np.flatnonzero(np.quantile(curves[:, 1:] - curves[:, :1], q, axis=0) > 0)  # ends j > 0
    return (int(bottom[0]) - 1 if bottom.size else g - 1), (int(top[-1]) + 1 if top.size else 0)


def n_equiv_analysis(n_grid: np.ndarray, real_correct: np.ndarray, gan_correct: np.ndarray, *,
                     n_bootstrap: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """n_equiv of one classifier kind, its interval and the test of H0 "n_equiv >= n_max".

    Parameters
    ----------
    n_grid : (G,) increasing real sample sizes; the last is the real train split, n_train.
    real_correct : bool (S, G, T) per-image correctness of the real-trained classifiers.
    gan_correct : bool (S', T) per-image correctness of the GAN-trained classifiers.
    n_bootstrap, seed : joint bootstrap replicates (:func:`joint_bootstrap`) and their seed.
    level : coverage of the two-sided percentile interval.

    Returns
    -------
    dict with ``point`` (n_equiv of the mean GAN accuracy on the isotonic fit of the mean real
    curve, :func:`equivalent_sample_size`), ``ci_low`` / ``ci_high`` (percentile interval of
    the replicates' n_equiv, each recomputed: mean curve -> isotonic -> interpolate), all three
    censored where the curve is flat within its noise (:func:`resolved_range`,
    :func:`describe_n`); ``per_seed`` (seed s with seed s, when S == S'); ``test``: the
    one-sided test of H0 "CAS >= the real accuracy at n_train" (equivalently n_equiv >=
    n_train on the true, monotone curve): ``delta`` = real mean accuracy at n_train - CAS, and
    ``p_value`` = (1 + #{replicates with delta* <= 0}) / (1 + B), the share of replicates
    whose GAN accuracy is at or above the real one at n_train (percentile-bootstrap p-value).
    """
    n_grid = np.asarray(n_grid, dtype=np.float64)
    real = np.asarray(real_correct, dtype=bool)
    gan = np.asarray(gan_correct, dtype=bool)
    if real.ndim != 3 or real.shape[1] != n_grid.size:
        raise ValueError("n_equiv_analysis: real_correct must be (S, G, T) with G = len(n_grid)")
    real_mean = real.mean(axis=(0, 2))
    cas = float(gan.mean())
    curve = isotonic_increasing(real_mean)
    point = n_equiv_point(n_grid, real.mean(axis=2), gan.mean(axis=1))
    curves, gans = joint_bootstrap(real, gan, n_bootstrap, seed)
    replicates = equivalent_sample_sizes(n_grid, curves, gans)
    i_low, i_high = resolved_range(curves, level)
    ci_low, ci_high = percentile_interval(replicates, level)
    described = [describe_n(v, n_grid, i_low, i_high) for v in replicates]
    delta = curves[:, -1] - gans
    result = {
        "point": describe_n(point, n_grid, i_low, i_high),
        "ci_low": describe_n(ci_low, n_grid, i_low, i_high),
        "ci_high": describe_n(ci_high, n_grid, i_low, i_high),
        "ci_level": level,
        "ci_method": f"percentile bootstrap, {n_bootstrap} replicates drawing the test images (one draw for real "
                     "and GAN-trained classifiers alike), the real seeds and the GAN seeds with replacement",
        "resolved_from": float(n_grid[i_low]),
        "resolved_to": float(n_grid[i_high]),
        "fraction_censored_below": float(np.mean([d["censored"] == "below" for d in described])),
        "fraction_censored_above": float(np.mean([d["censored"] == "above" for d in described])),
        "classification_accuracy_score": cas,
        "real_curve_n": n_grid.tolist(),
        "real_curve_mean": real_mean.tolist(),
        "real_curve_isotonic": curve.tolist(),
        "test": {"delta": float(real_mean[-1] - cas), "delta_ci": list(percentile_interval(delta, level)),
                 "p_value": float((1 + np.count_nonzero(delta <= TIE)) / (1 + delta.size)), "n_bootstrap": n_bootstrap},
    }
    if real.shape[0] == gan.shape[0]:
        result["per_seed"] = [describe_n(equivalent_sample_size(n_grid, isotonic_increasing(real[s].mean(axis=1)),
                                                                 float(gan[s].mean())), n_grid, i_low, i_high)
                              for s in range(gan.shape[0])]
    return result


def low_diversity_verdict(kind: str, analysis: dict | None, n_train: int, alpha: float, reason: str = "") -> Verdict:
    """The verdict of one classifier kind: H0 "the GAN's samples are worth at least as many real
    images as the n_train of the real train split" (n_equiv >= n_train), rejected ("low
    diversity") when the joint-bootstrap p-value of :func:`n_equiv_analysis` is below
    ``alpha``. ``analysis`` None: the test could not run, ``reason`` says why."""
    common = dict(test=f"diversity.{kind}", title=f"diversity ({kind} classifier)", alpha=alpha,
                  hypothesis=f"a {kind} classifier trained on the GAN's samples is at least as accurate on real "
                             f"test images as one trained on the {n_train} real train images (n_equiv >= {n_train})",
                  finding="low diversity", null_finding="consistent with the train split's diversity")
    if analysis is None:
        return Verdict(p_value=None, reason=reason, **common)
    point = analysis["point"]
    interval = (analysis["ci_low"]["value"], analysis["ci_high"]["value"])
    return Verdict(p_value=analysis["test"]["p_value"],
                   key_number=f"worth {'' if point['censored'] else '~'}{point['text']} real images "
                              f"[{analysis['ci_low']['text']}, {analysis['ci_high']['text']}] of {n_train}",
                   estimate=point["value"], interval=None if None in interval else interval,
                   method="one-sided percentile bootstrap: p = (1 + #{replicates with CAS* >= real accuracy* at "
                          f"n_train}}) / (1 + B), B = {analysis['test']['n_bootstrap']}, test images and seeds drawn "
                          "jointly (audit.metrics.diversity.n_equiv_analysis; false-positive rate in DIVERSITY.md)",
                   extra={"delta_accuracy": analysis["test"]["delta"], "delta_ci": analysis["test"]["delta_ci"],
                          "classification_accuracy_score": analysis["classification_accuracy_score"]},
                   **common)
