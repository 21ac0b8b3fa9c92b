"""Diversity by classification (issue 5; Santurkar, Schmidt & Madry 2017).

A classifier trained on N GAN samples (labelled by the annotator) is tested on the real ``test``
split and compared with the same classifier trained on n real images: the GAN's samples are
"worth" ``n_equiv`` real images, the real sample size whose accuracy equals the GAN-trained
accuracy. Santurkar et al. found n_equiv far below N for the GANs of 2017.

The real-test accuracy of a GAN-trained classifier is the **Classification Accuracy Score**
(CAS; Ravuri & Vinyals 2019), called **GAN-train** by Shmelkov, Schmid & Alahari (2018).

This module holds the mathematics on accuracy curves, pure functions of arrays:
:func:`isotonic_increasing`, :func:`mean_curve`, :func:`equivalent_sample_size` (interpolation
in log n with censoring), :func:`n_equiv_summary` (point, per-seed pairings, bootstrap over
seeds), :func:`describe_n` and :func:`interval_text`. How the classifiers are trained is
:mod:`audit.models.fitting`; the subsets they train on, :mod:`audit.data.subsets`; the stages
are :mod:`audit.real_curve` and :mod:`audit.diversity`.

Units: sample sizes are numbers of images; accuracies are fractions in [0, 1].
Censored sample sizes are floats ``-inf`` ("< n_min": below the smallest real n of the curve)
and ``+inf`` ("> n_max": above the largest), never invented numbers; :func:`describe_n` turns
them into JSON-ready dicts.
"""

from __future__ import annotations

import numpy as np

from audit.metrics.bootstrap import percentile_interval

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


def mean_curve(n: np.ndarray, accuracy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean accuracy per sample size: (sorted unique n (G,), mean accuracy at each (G,)).

    ``n`` and ``accuracy`` are (R,) one entry per trained classifier (e.g. sizes x seeds).
    """
    n = np.asarray(n, dtype=np.float64)
    accuracy = np.asarray(accuracy, dtype=np.float64)
    grid = np.unique(n)
    return grid, np.array([accuracy[n == g].mean() for g in grid])


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


def describe_n(value: float, n_min: float, n_max: float) -> dict:
    """JSON-ready form of a (possibly censored) sample size.

    ``{"value": 43.2, "censored": None, "text": "43"}``, or
    ``{"value": None, "censored": "below", "bound": n_min, "text": "< 20"}`` /
    ``{"value": None, "censored": "above", "bound": n_max, "text": "> 809"}``.
    """
    if value == -np.inf:
        return {"value": None, "censored": "below", "bound": float(n_min), "text": f"< {n_min:g}"}
    if value == np.inf:
        return {"value": None, "censored": "above", "bound": float(n_max), "text": f"> {n_max:g}"}
    return {"value": float(value), "censored": None, "text": f"{value:.0f}"}


def interval_text(score: dict) -> str:
    """``"[lo, hi]"``: the n_equiv 95% interval of one classifier kind's score, censored bounds as
    "< n" / "> n" (the text every output prints)."""
    return f"[{score['n_equiv_ci_low']['text']}, {score['n_equiv_ci_high']['text']}]"


def n_equiv_summary(n_grid: np.ndarray, real_accuracy: np.ndarray, gan_accuracy: np.ndarray,
                    n_bootstrap: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """n_equiv with a confidence interval over training seeds.

    Parameters
    ----------
    n_grid : (G,) increasing real sample sizes.
    real_accuracy : (S, G) real-test accuracy of the real-trained classifier, seed s, size g.
    gan_accuracy : (S',) real-test accuracy of the GAN-trained classifier, one per seed.
    n_bootstrap, seed : bootstrap replicates over seeds and their RNG seed.
    level : coverage of the percentile interval.

    Returns
    -------
    dict with ``point`` (n_equiv of the mean GAN accuracy on the isotonic fit of the mean real
    curve), ``per_seed`` (seed s of the GAN paired with seed s of the real curve, each curve
    made isotonic; only when S == S'), ``ci_low`` / ``ci_high`` (percentile bootstrap over
    seeds: the S real seeds and the S' GAN seeds are resampled with replacement, independently,
    and the point estimate recomputed) and the curve used, each sample size as
    :func:`describe_n`. With few seeds (3 by default) the interval only covers training
    randomness and is coarse; the test split is the same for every classifier.
    """
    n_grid = np.asarray(n_grid, dtype=np.float64)
    real = np.atleast_2d(np.asarray(real_accuracy, dtype=np.float64))
    gan = np.asarray(gan_accuracy, dtype=np.float64).ravel()
    if real.shape[1] != n_grid.size or gan.size == 0:
        raise ValueError("n_equiv_summary: real_accuracy must be (S, G) and gan_accuracy non-empty")
    n_min, n_max = float(n_grid[0]), float(n_grid[-1])

    def estimate(real_rows: np.ndarray, gan_values: np.ndarray) -> float:
        return equivalent_sample_size(n_grid, isotonic_increasing(real_rows.mean(axis=0)), float(gan_values.mean()))

    point = estimate(real, gan)
    rng = np.random.default_rng(seed)
    replicates = np.array([
        estimate(real[rng.integers(0, real.shape[0], real.shape[0])], gan[rng.integers(0, gan.size, gan.size)])
        for _ in range(n_bootstrap)
    ])
    ci_low, ci_high = percentile_interval(replicates, level)
    result = {
        "point": describe_n(point, n_min, n_max),
        "ci_low": describe_n(ci_low, n_min, n_max),
        "ci_high": describe_n(ci_high, n_min, n_max),
        "ci_level": level,
        "ci_method": f"percentile bootstrap over seeds ({n_bootstrap} replicates; real and GAN seeds "
                     "resampled independently)",
        "fraction_censored_below": float(np.mean(replicates == -np.inf)),
        "fraction_censored_above": float(np.mean(replicates == np.inf)),
        "gan_accuracy_mean": float(gan.mean()),
        "real_curve_n": n_grid.tolist(),
        "real_curve_isotonic": isotonic_increasing(real.mean(axis=0)).tolist(),
    }
    if real.shape[0] == gan.size:
        result["per_seed"] = [describe_n(equivalent_sample_size(n_grid, isotonic_increasing(real[s]), gan[s]),
                                         n_min, n_max) for s in range(gan.size)]
    return result
