"""Class-distribution skew of GAN samples (Santurkar, Schmidt, Madry 2017, section 3).

An annotator labels every GAN sample; the class distribution is estimated three ways:

``argmax``
    fraction of samples whose most probable class is k. Biased by annotator error.
``confident``
    the paper's protocol: only samples whose calibrated confidence is >= a threshold are
    counted. The filter keeps easy classes more often than hard ones, so it biases the counts
    in a class-dependent way; reported for comparison with the paper. Undefined (None) when no
    sample is confident.
``corrected``
    black-box shift estimation (Lipton, Wang, Smola 2018): with C[i, j] = P(predicted i | true j)
    measured on held-out real images, the argmax frequencies m satisfy m = C q for the true
    class distribution q; solve by least squares and project q onto the probability simplex.
    Assumes the annotator errs on GAN images as it does on real ones (label shift only).
    Not identified when C is singular (:func:`confusion_condition`).

Each estimate is tested against :data:`NULL_HYPOTHESIS` by a Monte Carlo test whose statistic
is its total variation (TV) to the real class mix (:func:`perfect_generator_null`), and its TV
gets a 95% interval whose construction was chosen by measured coverage (:func:`tv_interval`;
the rejected alternatives and the measurements are in ``SKEW.md``).

Everything is computed from counts. An annotator output is one of 2K *cells*: its predicted
class, and whether its confidence reaches the threshold (:func:`annotator_cells`); a set of
outputs is its (2K,) cell counts. Distributions are (K,) float arrays summing to 1; batched
functions take (..., K) arrays, where a row of NaN marks an estimate that is undefined in that
replicate (counted and reported, never averaged in). Divergences are in nats.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from audit.metrics.bootstrap import basic_interval
from audit.metrics.verdict import empirical_p_value

ESTIMATES = ("argmax", "confident", "corrected")

#: H0 of every Monte Carlo skew test, as printed in the JSON and the report
NULL_HYPOTHESIS = ("the GAN's class distribution equals the real class mix, and, given its class, each GAN image "
                   "gets from the annotator what a held-out real image of that class gets (its predicted class "
                   "and whether it reaches the confidence threshold)")

#: how the null is simulated (JSON ``null.method``); see :func:`perfect_generator_null`
NULL_METHOD = ("Monte Carlo: each draw resamples the real test split into a plausible population, draws a "
               "perfect generator from it (classes multinomial from the real mix, images from a finite source "
               "of half the test split's size per class) and, independently, a test split whose confusion "
               "matrix corrects it")

#: the null's generator draws from a source of this fraction of the test split's images per class
#: (see :func:`perfect_generator_null`)
NULL_SOURCE_FRACTION = 0.5

#: how the TV interval is built (JSON ``tv_ci.method``); see :func:`tv_interval`
TV_INTERVAL_METHOD = ("basic bootstrap interval clipped to [0, 1], extended down to 0 when the skew test does "
                      "not reject (test inversion at TV = 0)")

#: above this condition number the corrected estimate is flagged: errors in the measured argmax
#: frequencies may be amplified up to this many times (a display threshold, see SKEW.md)
ILL_CONDITIONED = 10.0


# --- counts -----------------------------------------------------------------------------------

def annotator_cells(predicted: np.ndarray, confidence: np.ndarray, threshold: float, n_classes: int) -> np.ndarray:
    """(N,) cell of each annotator output: ``predicted + K * (confidence >= threshold)``, in [0, 2K)."""
    predicted = np.asarray(predicted, dtype=np.int64)
    confident = np.asarray(confidence, dtype=np.float64) >= threshold
    return predicted + n_classes * confident.astype(np.int64)


def cell_counts(cells: np.ndarray, n_classes: int) -> np.ndarray:
    """(2K,) number of outputs in each cell."""
    return np.bincount(np.asarray(cells, dtype=np.int64), minlength=2 * n_classes).astype(np.int64)


def joint_cell_counts(true: np.ndarray, cells: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, 2K) counts of (true class, cell) pairs of labelled real images."""
    flat = np.asarray(true, dtype=np.int64) * 2 * n_classes + np.asarray(cells, dtype=np.int64)
    return np.bincount(flat, minlength=2 * n_classes * n_classes).reshape(n_classes, 2 * n_classes)


def predicted_counts(cells: np.ndarray) -> np.ndarray:
    """(..., K) argmax counts from (..., 2K) cell counts (both halves of the cells)."""
    k = cells.shape[-1] // 2
    return cells[..., :k] + cells[..., k:]


# --- distributions and divergences -------------------------------------------------------------

def class_frequencies(labels: np.ndarray, n_classes: int) -> np.ndarray | None:
    """(K,) fraction of ``labels`` equal to each class; None when ``labels`` is empty (no
    distribution, rather than an all-zero vector that every divergence would score as perfect)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(float)
    total = counts.sum()
    return counts / total if total else None


def _distribution(p, name: str) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or not np.all(np.isfinite(p)) or (p < 0).any() or abs(p.sum() - 1) > 1e-9:
        raise ValueError(f"{name}: expected a finite, non-negative vector summing to 1, got {p}")
    return p


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """TV(p, q) = 1/2 sum_k |p_k - q_k|, in [0, 1]; both must be distributions."""
    p, q = _distribution(p, "p"), _distribution(q, "q")
    return min(1.0, 0.5 * float(np.abs(p - q).sum()))


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) = sum_k p_k log(p_k / q_k) in nats, >= 0; ``inf`` when p puts mass where q has none.

    Called as KL(gan || real): finite whenever the real data has every class, even when the GAN
    dropped some (KL(real || gan) would be infinite for any dropped class).
    """
    p, q = _distribution(p, "p"), _distribution(q, "q")
    support = p > 0
    if np.any(q[support] == 0):
        return float("inf")
    with np.errstate(over="ignore"):  # a ratio beyond the float range is inf, as the divergence is
        return max(0.0, float(np.sum(p[support] * np.log(p[support] / q[support]))))


def max_min_ratio(p: np.ndarray) -> float:
    """Most frequent / least frequent class frequency; ``inf`` when a class never appears."""
    p = _distribution(p, "p")
    with np.errstate(over="ignore"):
        return float("inf") if p.min() <= 0 else float(p.max() / p.min())


def divergences(estimate: np.ndarray | None, reference: np.ndarray) -> dict[str, float | None]:
    """Skew figures of one estimated distribution against the real one; all None when the
    estimate is undefined."""
    if estimate is None:
        return {"tv": None, "kl": None, "max_min_ratio": None}
    return {"tv": total_variation(estimate, reference), "kl": kl_divergence(estimate, reference),
            "max_min_ratio": max_min_ratio(estimate)}


def tv_rows(estimates: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(...,) TV of each (..., K) row to ``reference``; NaN where the row is undefined (NaN)."""
    return 0.5 * np.abs(np.asarray(estimates) - reference).sum(axis=-1)


def largest_deviation(estimate: np.ndarray, reference: np.ndarray, class_names) -> str:
    """The key number of a skew verdict in words: the classes estimated at 0 if any ("2 classes
    missing (5, 6)"), else the class furthest from its real share in ratio ("class 0 at 3.0x its
    real share (30.0% vs 10.0%)")."""
    estimate, reference = np.asarray(estimate, float), np.asarray(reference, float)
    names = [str(c) for c in class_names]
    missing = [k for k in range(reference.size) if estimate[k] <= 0 < reference[k]]
    if missing:  # at most 10 named (1,000-class datasets)
        listed = ", ".join(names[k] for k in missing[:10]) + (", ..." if len(missing) > 10 else "")
        return f"class {listed} missing" if len(missing) == 1 else f"{len(missing)} classes missing ({listed})"
    ratio = np.divide(estimate, reference, out=np.ones_like(estimate), where=reference > 0)
    k = int(np.argmax(np.abs(np.log(ratio))))
    return (f"class {names[k]} at {ratio[k]:.2f}x its real share "
            f"({estimate[k]:.1%} vs {reference[k]:.1%})")


# --- the confusion matrix and the corrected estimate ------------------------------------------

def confusion_from_joint(joint: np.ndarray) -> np.ndarray:
    """(..., K, K) column-stochastic C[..., i, j] = P(predicted i | true j) from (..., K, K)
    counts joint[..., true, predicted]. A class with no image has no measured errors: its column
    is the identity column (no correction for it)."""
    joint = np.asarray(joint, dtype=np.float64)
    k = joint.shape[-1]
    counts = np.swapaxes(joint, -1, -2)  # [..., predicted, true]
    totals = counts.sum(axis=-2, keepdims=True)
    identity = np.broadcast_to(np.eye(k), counts.shape)
    return np.divide(counts, totals, out=identity.copy(), where=totals > 0)


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, K) column-stochastic C[i, j] = P(predicted = i | true = j) of labelled images."""
    joint = np.zeros((n_classes, n_classes))
    np.add.at(joint, (np.asarray(true), np.asarray(predicted)), 1.0)
    return confusion_from_joint(joint)


def confusion_condition(confusion: np.ndarray) -> dict:
    """Condition number (2-norm) and numerical rank of C; ``singular`` when rank < K (the
    corrected estimate is then not identified); ``warning`` in words when singular or when the
    condition number exceeds :data:`ILL_CONDITIONED`, else None."""
    return condition_of(np.linalg.svd(np.asarray(confusion, float), compute_uv=False))


def condition_of(singular_values: np.ndarray) -> dict:
    """:func:`confusion_condition` from C's K singular values (any order; a Kronecker-structured
    C gives them without its SVD: :mod:`audit.metrics.kronecker`)."""
    singular_values = np.sort(np.asarray(singular_values, float))[::-1]
    k = singular_values.size
    tolerance = singular_values[0] * k * np.finfo(float).eps
    rank = int(np.count_nonzero(singular_values > tolerance))
    condition = float("inf") if rank < k else float(singular_values[0] / singular_values[-1])
    warning = None
    if rank < k:
        warning = (f"the annotator's confusion matrix is singular (rank {rank} of {k}): the corrected "
                   "estimate is not identified")
    elif condition > ILL_CONDITIONED:
        warning = (f"the annotator's confusion matrix is ill-conditioned (condition number {condition:.3g}): "
                   "the corrected estimate may amplify sampling errors that many times")
    return {"condition_number": condition, "rank": rank, "singular": rank < k, "warning": warning}


def project_to_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of each (..., K) row onto {q : q >= 0, sum q = 1} (Duchi et al. 2008);
    NaN rows stay NaN. Each row is first shifted so its largest entry is 0 (the projection does
    not change when a constant is added to every entry), so huge entries lose no precision."""
    v = np.asarray(v, dtype=np.float64)
    bad = np.isnan(v).any(axis=-1)
    w = np.where(bad[..., None], 0.0, v)
    w = w - w.max(axis=-1, keepdims=True)
    k = w.shape[-1]
    u = -np.sort(-w, axis=-1)
    cumulative = np.cumsum(u, axis=-1) - 1.0
    positive = u - cumulative / np.arange(1, k + 1) > 0  # true at index 0: u_0 - (u_0 - 1) = 1
    rho = k - 1 - np.argmax(positive[..., ::-1], axis=-1)
    theta = np.take_along_axis(cumulative, rho[..., None], axis=-1) / (rho[..., None] + 1.0)
    out = np.maximum(w - theta, 0.0)
    out[out < k * np.finfo(float).eps] = 0.0  # round-off, not mass: a dropped class stays at 0
    out /= out.sum(axis=-1, keepdims=True)
    return np.where(bad[..., None], np.nan, out)


def corrected_distribution(predicted_freq: np.ndarray, confusion: np.ndarray) -> np.ndarray:
    """Black-box shift estimate: q minimising ||C q - m||_2, projected onto the simplex. Batched:
    (..., K) and (..., K, K).

    q = C^-1 m by LU; where C is numerically singular (LU fails, or returns entries beyond
    1/sqrt(eps) ~ 7e7, an error amplification no invertible confusion matrix of a usable
    annotator reaches), the minimum-norm least-squares solution through the pseudo-inverse. The
    two agree wherever C is well-conditioned; the pseudo-inverse is ~100x slower in batches.
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    m = np.asarray(predicted_freq, np.float64)
    bad = np.isnan(m).any(axis=-1)
    m = np.where(bad[..., None], 0.0, m)
    k = confusion.shape[-1]
    batch = np.broadcast_shapes(m.shape[:-1], confusion.shape[:-2])
    m, confusion = np.broadcast_to(m, batch + (k,)), np.broadcast_to(confusion, batch + (k, k))
    try:
        q = np.linalg.solve(confusion, m[..., None])[..., 0]
        singular = ~np.isfinite(q).all(axis=-1) | (np.abs(q).max(axis=-1) > 1 / np.sqrt(np.finfo(float).eps))
    except np.linalg.LinAlgError:
        q, singular = np.zeros_like(m), np.ones(m.shape[:-1], dtype=bool)
    if singular.any():
        pinv = np.linalg.pinv(confusion[singular], rtol=k * np.finfo(float).eps)
        q[singular] = np.einsum("...ij,...j->...i", pinv, m[singular])
    return project_to_simplex(np.where(bad[..., None], np.nan, q))


def estimates_from_counts(gan_cells: np.ndarray, confusion: np.ndarray,
                          correct=None) -> dict[str, np.ndarray]:
    """The three estimates of (..., 2K) GAN cell counts with (..., K, K) confusion matrices, as
    (..., K) arrays; ``confident`` rows are NaN where no sample is confident. ``correct(argmax,
    confusion)``: the corrected estimate (default :func:`corrected_distribution`; a structured
    confusion passes its own, e.g. :func:`audit.metrics.kronecker.kron_corrected` with (..., 10,
    10) per-channel matrices)."""
    correct = corrected_distribution if correct is None else correct
    gan_cells = np.asarray(gan_cells, dtype=np.float64)
    k = gan_cells.shape[-1] // 2
    predicted = predicted_counts(gan_cells)
    n = predicted.sum(axis=-1, keepdims=True)
    argmax = np.divide(predicted, n, out=np.full(predicted.shape, np.nan), where=n > 0)
    confident_counts = gan_cells[..., k:]
    total = confident_counts.sum(axis=-1, keepdims=True)
    confident = np.divide(confident_counts, total, out=np.full(confident_counts.shape, np.nan), where=total > 0)
    return {"argmax": argmax, "confident": confident, "corrected": correct(argmax, confusion)}


def estimate_distributions(predicted: np.ndarray, confidence: np.ndarray, threshold: float,
                           confusion: np.ndarray) -> dict[str, np.ndarray | None]:
    """The three class-distribution estimates of one set of N annotated samples.

    ``predicted`` (N,) annotator argmax class; ``confidence`` (N,) its calibrated probability;
    ``threshold`` the minimum confidence of the ``confident`` estimate; ``confusion`` (K, K)
    P(predicted | true) on held-out real images. An undefined estimate is None.
    """
    n_classes = confusion.shape[0]
    cells = cell_counts(annotator_cells(predicted, confidence, threshold, n_classes), n_classes)
    estimates = estimates_from_counts(cells, confusion)
    return {name: (None if np.isnan(dist).any() else dist) for name, dist in estimates.items()}


# --- the null, the bootstrap and the interval ----------------------------------------------------

def null_unavailable(test_true: np.ndarray, reference: np.ndarray) -> str | None:
    """Why the null cannot be simulated, or None: a class of the real mix with fewer than 2 test
    images (its resampled population would be one image, with no error rate to speak of)."""
    counts = np.bincount(np.asarray(test_true, dtype=np.int64), minlength=reference.shape[0])
    short = [k for k in range(reference.shape[0]) if reference[k] > 0 and counts[k] < 2]
    return f"class(es) {short} have fewer than 2 real test images" if short else None


def _class_cells(test_true: np.ndarray, test_cells: np.ndarray, n_classes: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per class: (the cells its test images occupy, their counts); empty arrays for a class
    without test images. Only occupied cells are resampled, which keeps the multinomials cheap."""
    joint = joint_cell_counts(test_true, test_cells, n_classes)
    return [(np.flatnonzero(row), row[row > 0]) for row in joint]


def perfect_generator_null(test_true: np.ndarray, test_cells: np.ndarray, reference: np.ndarray,
                           n_samples: int, n_draws: int, seed: int | np.random.SeedSequence) -> dict[str, np.ndarray]:
    """TV to ``reference`` that each estimate reports for a simulated perfect generator: (n_draws,)
    per estimate, NaN where the estimate is undefined in a draw.

    Each draw replays the whole experiment in a bootstrap world built from the labelled test
    images (``test_true`` (M,) classes, ``test_cells`` (M,) cells), class by class:

    1. a plausible population: the cell mix of a resample (with replacement) of the n_k test
       images of class k; so the test split's own deviation from the population, which the
       argmax and confident estimates' TV depends on, is part of the null;
    2. a generator: ``n_samples`` classes drawn multinomially from ``reference``, each image's
       annotator output drawn from a finite source of :data:`NULL_SOURCE_FRACTION` * n_k images
       sampled from that population; so the test holds its level for a generator whose images
       are a random sample of real images of at least that size (a pool-drawn planted control)
       and is conservative for one with unlimited distinct images;
    3. a test split: n_k fresh draws from the same population, whose confusion matrix corrects
       the generator's argmax frequencies; so the confusion matrix never measured the images the
       generator emits, and its sampling noise is in the null.

    Rejected schemes and their measured error rates: ``SKEW.md``.
    """
    rng = np.random.default_rng(seed)
    n_classes = reference.shape[0]
    if null_unavailable(test_true, reference):
        raise ValueError(f"perfect_generator_null: {null_unavailable(test_true, reference)}")
    joint = np.zeros((n_draws, n_classes, n_classes))
    gan_cells = np.zeros((n_draws, 2 * n_classes), dtype=np.int64)
    classes = rng.multinomial(n_samples, reference, size=n_draws)
    for k, (occupied, counts) in enumerate(_class_cells(test_true, test_cells, n_classes)):
        if occupied.size == 0:
            continue  # absent from the real mix (null_unavailable checked): never drawn
        n_k = int(counts.sum())
        population = rng.multinomial(n_k, counts / n_k, size=n_draws) / n_k
        source_size = max(1, round(NULL_SOURCE_FRACTION * n_k))
        source = rng.multinomial(source_size, population) / source_size
        gan_cells[:, occupied] += rng.multinomial(classes[:, k], source)
        test = np.zeros((n_draws, 2 * n_classes))
        test[:, occupied] = rng.multinomial(n_k, population)
        joint[:, k, :] = predicted_counts(test)
    estimates = estimates_from_counts(gan_cells, confusion_from_joint(joint))
    return {name: tv_rows(dist, reference) for name, dist in estimates.items()}


def bootstrap_distributions(gan_cells: np.ndarray, test_true: np.ndarray, test_cells: np.ndarray,
                            n_resamples: int, seed: int | np.random.SeedSequence) -> dict[str, np.ndarray]:
    """(B, K) bootstrap replicates of each estimate (NaN rows where undefined).

    Each replicate resamples the N GAN outputs (``gan_cells`` (2K,) counts) and, independently
    and within each class (the test split is stratified), the labelled test images that give the
    confusion matrix: n_k * f / (1 + f) of them for a class of n_k test images, f =
    :data:`NULL_SOURCE_FRACTION`. That sample size gives the confusion matrix the variance of
    the test split's own noise plus that of a generator whose images are a finite sample of
    f * n_k real images, the generators the null allows for; with all n_k the corrected
    estimate's intervals undercovered pool-drawn controls (SKEW.md).
    """
    rng = np.random.default_rng(seed)
    gan_cells = np.asarray(gan_cells, dtype=np.int64)
    n_classes = gan_cells.shape[0] // 2
    gan = rng.multinomial(int(gan_cells.sum()), gan_cells / gan_cells.sum(), size=n_resamples)
    joint = np.zeros((n_resamples, n_classes, n_classes))
    fraction = NULL_SOURCE_FRACTION / (1 + NULL_SOURCE_FRACTION)
    for k, (occupied, counts) in enumerate(_class_cells(test_true, test_cells, n_classes)):
        if occupied.size:
            cells = np.zeros((n_resamples, 2 * n_classes))
            cells[:, occupied] = rng.multinomial(max(1, round(fraction * counts.sum())), counts / counts.sum(),
                                                 size=n_resamples)
            joint[:, k, :] = predicted_counts(cells)
    return estimates_from_counts(gan, confusion_from_joint(joint))


def tv_interval(observed: float, replicates: np.ndarray, p_value: float | None, alpha: float,
                level: float = 0.95) -> tuple[float, float]:
    """95% interval of the TV between the GAN's class distribution and the real mix.

    The basic (reverse-percentile) bootstrap interval ``[2 t - t*_(97.5%), 2 t - t*_(2.5%)]``,
    clipped to [0, 1], corrects TV's upward bias once; it is then extended down to 0 when the skew test
    does not reject H0 (TV = 0) at ``alpha``: test inversion at 0, so a perfect generator's
    interval contains 0 whenever the test calls it consistent with real, and "consistent with
    real" and "the interval reaches 0" never disagree. Chosen over the percentile and the
    bias-corrected percentile intervals by measured coverage (SKEW.md).
    """
    low, high = basic_interval(observed, replicates, level, minimum=0.0, maximum=1.0)
    if p_value is not None and p_value >= alpha:
        low = 0.0
    return low, max(high, low)


def chi_square_counts(gan_counts: np.ndarray, real_counts: np.ndarray) -> dict:
    """Chi-square test of homogeneity of two (K,) label count vectors: do GAN and held-out real
    images get the same label mix?

    Both label sets come from the same annotator, so annotator error affects both alike and
    the test needs no correction; the real sample's own noise is part of the test (the test
    split is stratified, so its class counts vary less than the test assumes: conservative).
    Classes absent from both are dropped. ``p_value`` None with a ``reason`` when the test cannot
    run (an empty side, or fewer than two classes seen).
    """
    table = np.stack([np.asarray(gan_counts), np.asarray(real_counts)]).astype(np.int64)
    table = table[:, table.sum(axis=0) > 0]
    if (table.sum(axis=1) == 0).any():
        return {"chi2": None, "dof": 0, "p_value": None, "reason": "no labels on one side"}
    if table.shape[1] < 2:
        return {"chi2": None, "dof": 0, "p_value": None, "reason": "fewer than two classes seen"}
    result = stats.chi2_contingency(table, correction=False)
    return {"chi2": float(result.statistic), "dof": int(result.dof), "p_value": float(result.pvalue)}


def chi_square_two_sample(gan_labels: np.ndarray, real_labels: np.ndarray, n_classes: int) -> dict:
    """:func:`chi_square_counts` of two (N,) label arrays."""
    return chi_square_counts(np.bincount(np.asarray(gan_labels, np.int64), minlength=n_classes),
                             np.bincount(np.asarray(real_labels, np.int64), minlength=n_classes))


def chi_square_tests(gan_cells: np.ndarray, test_cells: np.ndarray) -> dict[str, dict]:
    """Both chi-square tests from (2K,) cell counts: every label (``argmax``), and the labels of
    the confident outputs only (``confident``)."""
    k = gan_cells.shape[0] // 2
    return {"argmax": chi_square_counts(predicted_counts(gan_cells), predicted_counts(test_cells)),
            "confident": chi_square_counts(gan_cells[k:], test_cells[k:])}


def skew_tests(gan_cells: np.ndarray, test_true: np.ndarray, test_cells: np.ndarray, reference: np.ndarray,
               alpha: float, n_null: int, n_bootstrap: int, seed: int, level: float = 0.95) -> dict:
    """Every estimate, its Monte Carlo test of :data:`NULL_HYPOTHESIS` and its intervals.

    ``gan_cells`` (2K,) cell counts of the GAN's N samples; ``test_true`` (M,) classes and
    ``test_cells`` (M,) cells of the labelled real test images; ``reference`` (K,) the real mix.
    Returns ``{"confusion": (K, K), "condition": confusion_condition(...), "chi_square": ...,
    "estimates": {name: {...}}}`` where each estimate has ``distribution`` ((K,) or None),
    ``tv``, ``p_value`` (None with ``reason`` when the test cannot run), ``null_tv`` (the
    defined null draws), ``tv_replicates`` (the defined bootstrap TVs), ``tv_interval`` ((low,
    high) or None; its extension to 0 inverts the test at ``alpha``), ``distribution_interval``
    (((K,), (K,)) percentile bounds, or None) and the numbers of undefined null and bootstrap
    replicates.
    """
    n_classes = reference.shape[0]
    gan_cells = np.asarray(gan_cells, dtype=np.int64)
    joint = joint_cell_counts(test_true, test_cells, n_classes)
    confusion = confusion_from_joint(predicted_counts(joint))
    condition = confusion_condition(confusion)
    estimates = estimates_from_counts(gan_cells, confusion)
    null_seed, bootstrap_seed = np.random.SeedSequence(seed).spawn(2)
    unavailable = null_unavailable(test_true, reference)
    null = {} if unavailable else perfect_generator_null(test_true, test_cells, reference, int(gan_cells.sum()),
                                                         n_null, null_seed)
    replicates = bootstrap_distributions(gan_cells, test_true, test_cells, n_bootstrap, bootstrap_seed)
    return {"confusion": confusion, "condition": condition, "chi_square": chi_square_tests(gan_cells, joint.sum(axis=0)),
            "estimates": estimate_results(estimates, condition, null, unavailable, replicates, reference, alpha, level)}


def estimate_results(estimates: dict, condition: dict, null: dict, unavailable: str | None, replicates: dict,
                     reference: np.ndarray, alpha: float, level: float = 0.95) -> dict:
    """``skew_tests``'s ``estimates`` entry from the point estimates, the confusion matrix's
    condition, the null TVs (empty when ``unavailable`` says why) and the bootstrap replicates;
    shared by every confusion structure (:mod:`audit.metrics.kronecker`)."""
    out = {}
    for name in ESTIMATES:
        dist = estimates[name]
        reason = None
        if np.isnan(dist).any():
            reason = "no GAN sample reaches the confidence threshold"
        elif name == "corrected" and condition["singular"]:
            reason = condition["warning"]
        if reason:
            out[name] = {"distribution": None, "tv": None, "p_value": None, "reason": reason, "null_tv": np.zeros(0),
                         "tv_replicates": np.zeros(0), "tv_interval": None, "distribution_interval": None,
                         "null_undefined": 0, "bootstrap_undefined": 0}
            continue
        tv = total_variation(dist, reference)
        null_tv = null.get(name, np.zeros(0))
        defined = null_tv[~np.isnan(null_tv)]
        p_value = empirical_p_value(tv, defined) if defined.size else None
        if p_value is None:
            reason = unavailable or "the estimate is undefined in every null draw"
        boot = replicates[name][~np.isnan(replicates[name]).any(axis=1)]
        boot_tv = tv_rows(boot, reference)
        out[name] = {
            "distribution": dist, "tv": tv, "p_value": p_value, "reason": reason, "null_tv": defined,
            "tv_replicates": boot_tv,
            "tv_interval": tv_interval(tv, boot_tv, p_value, alpha, level) if boot.size else None,
            "distribution_interval": (tuple(np.quantile(boot, [(1 - level) / 2, (1 + level) / 2], axis=0,
                                                        method="inverted_cdf")) if boot.size else None),
            "null_undefined": int(null_tv.size - defined.size),
            "bootstrap_undefined": int(replicates[name].shape[0] - boot.shape[0]),
        }
    return out
