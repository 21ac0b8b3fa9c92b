"""Stacked MNIST's annotator: one digit classifier applied to each channel, and the 1,000-class
confusion matrix that follows, a Kronecker cube.

A Stacked MNIST image has class ``k = 100 d_R + 10 d_G + d_B`` (:func:`compose`). The annotator
labels each channel with the same digit classifier, independently, so

* its class probabilities are the product of the three channels' (p(k) = p_R(d_R) p_G(d_G)
  p_B(d_B)); the most probable class is the three most probable digits (:func:`triple_outputs`),
  its probability the product of theirs;
* its confusion matrix C[i, j] = P(predicted i | true j) = A[i_R, j_R] A[i_G, j_G] A[i_B, j_B],
  where A (10 x 10, column-stochastic) is the per-digit confusion measured on the real test
  digits: C = A (x) A (x) A, R most significant (:func:`kron_confusion`).

Nothing here builds the 1,000 x 1,000 matrix unless asked: C applied to a (..., 1000) vector is
three 10 x 10 products along the axes of the vector reshaped to (..., 10, 10, 10)
(:func:`kron_apply`), C's pseudo-inverse is the Kronecker cube of A's, and C's singular values are
the products of A's (:func:`kron_condition`). So the black-box shift estimate of
:mod:`audit.metrics.skew` (``corrected``) costs 3 x 10^4 operations per replicate, not 10^9, and
the skew stage's null and bootstrap (``skew_tests_stacked``) replay the experiment digit by
digit: they resample the held-out digits, never 1,000-class test cells (a test split of 10,000
triples has 10 per class). Distributions are (..., 1000) arrays as in :mod:`audit.metrics.skew`.
"""

from __future__ import annotations

import numpy as np

from audit.metrics import skew as sk

CHANNELS = 3
BASE_CLASSES = 10
N_CLASSES = BASE_CLASSES ** CHANNELS

#: the chi-square tests of the skew stage compare class labels of GAN samples and real test
#: images; the Stacked MNIST annotator's test table holds digits, not triples
NO_CHI_SQUARE = {"chi2": None, "dof": 0, "p_value": None,
                 "reason": "the annotator's test predictions are per digit (Stacked MNIST): no real triple labels to "
                           "compare with; the Monte Carlo tests above are the calibrated ones"}


def compose(digits: np.ndarray) -> np.ndarray:
    """(...) classes ``100 d_R + 10 d_G + d_B`` of (..., 3) digits."""
    digits = np.asarray(digits, dtype=np.int64)
    return (digits[..., 0] * BASE_CLASSES + digits[..., 1]) * BASE_CLASSES + digits[..., 2]


def decompose(classes: np.ndarray) -> np.ndarray:
    """(..., 3) digits (R, G, B) of (...) classes in [0, 1000)."""
    classes = np.asarray(classes, dtype=np.int64)
    return np.stack([classes // BASE_CLASSES ** 2, classes // BASE_CLASSES % BASE_CLASSES, classes % BASE_CLASSES],
                    axis=-1)


def triple_outputs(channel_probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class (N,), its probability (N,)) of the 1,000-class product distribution of
    (N, 3, 10) per-channel probabilities: the three argmax digits, the product of their maxima."""
    p = np.asarray(channel_probabilities, dtype=np.float64)
    return compose(p.argmax(axis=-1)), p.max(axis=-1).prod(axis=-1)


def kron_confusion(per_channel: np.ndarray) -> np.ndarray:
    """The (1000, 1000) matrix A (x) A (x) A of a (10, 10) per-channel confusion A."""
    a = np.asarray(per_channel, dtype=np.float64)
    return np.kron(np.kron(a, a), a)


def kron_apply(matrices: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """(M (x) M (x) M) v for (..., 10, 10) ``matrices`` M and (..., 1000) ``vectors`` v, batched
    with broadcasting, without building the 1,000 x 1,000 matrix."""
    m = np.asarray(matrices, dtype=np.float64)
    v = np.asarray(vectors, dtype=np.float64)
    t = v.reshape(*v.shape[:-1], BASE_CLASSES, BASE_CLASSES, BASE_CLASSES)
    t = np.einsum("...ai,...ijk->...ajk", m, t)
    t = np.einsum("...bj,...ajk->...abk", m, t)
    t = np.einsum("...ck,...abk->...abc", m, t)
    return t.reshape(*t.shape[:-3], N_CLASSES)


def kron_solve(frequencies: np.ndarray, per_channel: np.ndarray) -> np.ndarray:
    """The minimum-norm least-squares q of (A (x) A (x) A) q = m, not projected: C's pseudo-inverse
    is the Kronecker cube of A's (exactly C^-1 m when A is invertible). (..., 1000) and
    (..., 10, 10), batched."""
    a = np.asarray(per_channel, dtype=np.float64)
    return kron_apply(np.linalg.pinv(a, rtol=BASE_CLASSES * np.finfo(float).eps), frequencies)


def kron_corrected(frequencies: np.ndarray, per_channel: np.ndarray) -> np.ndarray:
    """The corrected estimate of :mod:`audit.metrics.skew` with C = A (x) A (x) A: :func:`kron_solve`
    projected onto the simplex; rows of NaN stay NaN. The ``correct`` of
    :func:`audit.metrics.skew.estimates_from_counts` for Stacked MNIST."""
    m = np.asarray(frequencies, dtype=np.float64)
    bad = np.isnan(m).any(axis=-1)
    q = kron_solve(np.where(bad[..., None], 0.0, m), per_channel)
    return sk.project_to_simplex(np.where(bad[..., None], np.nan, q))


def kron_diagonal(per_channel: np.ndarray) -> np.ndarray:
    """(..., 1000) diagonal of A (x) A (x) A: the probability that each class is read right."""
    d = np.diagonal(np.asarray(per_channel, dtype=np.float64), axis1=-2, axis2=-1)
    return (d[..., :, None, None] * d[..., None, :, None] * d[..., None, None, :]).reshape(*d.shape[:-1], N_CLASSES)


def kron_condition(per_channel: np.ndarray) -> dict:
    """:func:`audit.metrics.skew.confusion_condition` of A (x) A (x) A, from A's singular values
    (C's are their triple products): condition number cond(A)^3, rank rank(A)^3."""
    s = np.linalg.svd(np.asarray(per_channel, dtype=np.float64), compute_uv=False)
    return sk.condition_of((s[:, None, None] * s[None, :, None] * s[None, None, :]).ravel())


def channel_confusion(true_digits: np.ndarray, predicted_digits: np.ndarray) -> np.ndarray:
    """(10, 10) column-stochastic per-digit confusion A[i, j] = P(predicted i | true j) of
    labelled real digits."""
    return sk.confusion_matrix(true_digits, predicted_digits, BASE_CLASSES)


# --- the skew stage's tests, replayed digit by digit ---------------------------------------------

def digit_groups(test_true: np.ndarray, test_predicted: np.ndarray, test_confidence: np.ndarray):
    """Per digit: (predicted digits, confidences) of its held-out test images."""
    test_true = np.asarray(test_true)
    return [(np.asarray(test_predicted)[test_true == d], np.asarray(test_confidence, float)[test_true == d])
            for d in range(BASE_CLASSES)]


def null_unavailable(test_true: np.ndarray) -> str | None:
    """Why the digit-level null cannot run, or None: a digit with fewer than 2 test images."""
    counts = np.bincount(np.asarray(test_true, dtype=np.int64), minlength=BASE_CLASSES)
    short = [d for d in range(BASE_CLASSES) if counts[d] < 2]
    return f"digit(s) {short} have fewer than 2 real test images" if short else None


def simulate_generator(rng: np.random.Generator, groups, reference: np.ndarray, n_samples: int,
                       source_fraction: float = sk.NULL_SOURCE_FRACTION) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One simulated perfect generator seen through the annotator, digit by digit, as
    :func:`audit.metrics.skew.perfect_generator_null` replays one draw: per digit a plausible
    population (a resample of its n_d test digits), a generator source of ``source_fraction`` *
    n_d of them and, independently, a fresh test split of n_d whose per-digit confusion corrects
    the generator. The generator draws ``n_samples`` classes from ``reference`` (1000,) and each
    channel's annotator output from its digit's source. Returns (predicted classes (N,), their
    probabilities (N,), the fresh test split's (10, 10) confusion)."""
    confusion = np.zeros((BASE_CLASSES, BASE_CLASSES))
    pred_parts, conf_parts, sizes = [], [], np.zeros(BASE_CLASSES, dtype=np.int64)
    for d, (predicted, confidence) in enumerate(groups):
        n_d = predicted.size
        population = rng.integers(0, n_d, size=n_d)
        source = population[rng.integers(0, n_d, size=max(1, round(source_fraction * n_d)))]
        test = population[rng.integers(0, n_d, size=n_d)]
        confusion[:, d] = np.bincount(predicted[test], minlength=BASE_CLASSES) / n_d
        pred_parts.append(predicted[source])
        conf_parts.append(confidence[source])
        sizes[d] = source.size
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    digits = decompose(np.repeat(np.arange(N_CLASSES), rng.multinomial(n_samples, reference)))
    position = offsets[digits] + (rng.random(digits.shape) * sizes[digits]).astype(np.int64)
    return compose(np.concatenate(pred_parts)[position]), np.concatenate(conf_parts)[position].prod(axis=-1), confusion


def perfect_generator_null(test_true, test_predicted, test_confidence, reference: np.ndarray, threshold: float,
                           n_samples: int, n_draws: int, seed) -> dict[str, np.ndarray]:
    """(n_draws,) TV to ``reference`` of each skew estimate for simulated perfect generators
    (:func:`simulate_generator`), NaN where undefined: the Stacked MNIST form of
    :func:`audit.metrics.skew.perfect_generator_null`, with the same H0 (the annotator labels each
    channel of a GAN image as it labels a held-out real digit)."""
    rng = np.random.default_rng(seed)
    groups = digit_groups(test_true, test_predicted, test_confidence)
    cells = np.zeros((n_draws, 2 * N_CLASSES), dtype=np.int64)
    confusion = np.zeros((n_draws, BASE_CLASSES, BASE_CLASSES))
    for b in range(n_draws):
        predicted, confidence, confusion[b] = simulate_generator(rng, groups, reference, n_samples)
        cells[b] = sk.cell_counts(sk.annotator_cells(predicted, confidence, threshold, N_CLASSES), N_CLASSES)
    estimates = sk.estimates_from_counts(cells, confusion, correct=kron_corrected)
    return {name: sk.tv_rows(dist, reference) for name, dist in estimates.items()}


def bootstrap_confusions(test_true, test_predicted, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(B, 10, 10) bootstrap per-digit confusions: per digit, n_d f / (1 + f) of its test outputs
    (f = :data:`audit.metrics.skew.NULL_SOURCE_FRACTION`, the size that gives the test split's
    noise plus that of a finite generator source; SKEW.md), drawn from its measured column."""
    confusion = np.zeros((n_resamples, BASE_CLASSES, BASE_CLASSES))
    fraction = sk.NULL_SOURCE_FRACTION / (1 + sk.NULL_SOURCE_FRACTION)
    test_true = np.asarray(test_true)
    for d in range(BASE_CLASSES):
        counts = np.bincount(np.asarray(test_predicted)[test_true == d], minlength=BASE_CLASSES)
        size = max(1, round(fraction * counts.sum()))
        confusion[:, :, d] = rng.multinomial(size, counts / counts.sum(), size=n_resamples) / size
    return confusion


def predictive_confusions(test_true, test_predicted, n_draws: int, rng: np.random.Generator,
                          source_fraction: float = sk.NULL_SOURCE_FRACTION, prior: float = 1.0) -> np.ndarray:
    """(R, 10, 10) per-digit confusions a generator's images may meet, given the test digits: per
    digit, population rates from the Dirichlet posterior of its test column (``prior``
    pseudo-counts per cell, so a confusion seen in none of the n_d test digits still has mass),
    then the realised rates of a finite source of ``source_fraction`` * n_d images
    drawn from them (the generators the skew tests allow for: SKEW.md)."""
    confusion = np.zeros((n_draws, BASE_CLASSES, BASE_CLASSES))
    test_true = np.asarray(test_true)
    for d in range(BASE_CLASSES):
        counts = np.bincount(np.asarray(test_predicted)[test_true == d], minlength=BASE_CLASSES)
        size = max(1, round(source_fraction * counts.sum()))
        confusion[:, :, d] = rng.multinomial(size, rng.dirichlet(counts + prior, size=n_draws)) / size
    return confusion


def skew_tests_stacked(gan_cells: np.ndarray, test_true: np.ndarray, test_predicted: np.ndarray,
                       test_confidence: np.ndarray, reference: np.ndarray, threshold: float, alpha: float,
                       n_null: int, n_bootstrap: int, seed: int, level: float = 0.95) -> dict:
    """:func:`audit.metrics.skew.skew_tests` for Stacked MNIST: the same estimates, tests and
    intervals, with C = A (x) A (x) A (``confusion`` is A, (10, 10)) and the null and bootstrap
    replayed digit by digit from the held-out digits (``test_true``, ``test_predicted`` (M,)
    digits, ``test_confidence`` (M,) the annotator's probability of its predicted digit)."""
    gan_cells = np.asarray(gan_cells, dtype=np.int64)
    confusion = channel_confusion(test_true, test_predicted)
    condition = kron_condition(confusion)
    estimates = sk.estimates_from_counts(gan_cells, confusion, correct=kron_corrected)
    null_seed, bootstrap_seed = np.random.SeedSequence(seed).spawn(2)
    unavailable = null_unavailable(test_true)
    null = {} if unavailable else perfect_generator_null(test_true, test_predicted, test_confidence, reference,
                                                         threshold, int(gan_cells.sum()), n_null, null_seed)
    rng = np.random.default_rng(bootstrap_seed)
    gan = rng.multinomial(int(gan_cells.sum()), gan_cells / gan_cells.sum(), size=n_bootstrap)
    replicates = sk.estimates_from_counts(gan, bootstrap_confusions(test_true, test_predicted, n_bootstrap, rng),
                                          correct=kron_corrected)
    return {"confusion": confusion, "condition": condition, "chi_square": {"argmax": NO_CHI_SQUARE,
                                                                           "confident": NO_CHI_SQUARE},
            "estimates": sk.estimate_results(estimates, condition, null, unavailable, replicates, reference, alpha,
                                             level)}


# --- the Kronecker confusion against real triples --------------------------------------------------

#: outcome patterns of a labelled triple, in the order of :func:`kronecker_check`'s counts
PATTERNS = ("all three digits right", "only R wrong", "only G wrong", "only B wrong", "two or three wrong")


def pattern_probabilities(true_classes: np.ndarray, per_channel: np.ndarray) -> np.ndarray:
    """(N, 5) probability of each :data:`PATTERNS` outcome for triples of the given true classes
    under C = A (x) A (x) A (channels err independently, each at its digit's rate)."""
    a = np.asarray(per_channel, dtype=np.float64)
    right = np.diagonal(a)[decompose(true_classes)]  # (N, 3): P(channel c right)
    wrong = 1.0 - right
    correct = right.prod(axis=1)
    only = np.stack([wrong[:, c] * np.delete(right, c, axis=1).prod(axis=1) for c in range(CHANNELS)], axis=1)
    return np.column_stack([correct, only, np.clip(1.0 - correct - only.sum(axis=1), 0.0, 1.0)])


def kronecker_check(true_classes: np.ndarray, predicted_classes: np.ndarray, per_channel: np.ndarray) -> dict:
    """Does C = A (x) A (x) A (A measured on the real test digits) describe the annotator on real
    test triples? Observed vs predicted counts of each outcome pattern (:data:`PATTERNS`) of the
    labelled triples, and Pearson's chi-square over them (patterns expected at least once).

    With triples composed of the test digits that measured A, the prediction holds in
    expectation by construction of a per-channel annotator; the check catches an annotator that
    is not applied channel by channel, or class codes that disagree between the dataset and the
    annotator (a swapped channel order moves errors between the "only c wrong" patterns)."""
    from scipy import stats

    true_classes, predicted_classes = np.asarray(true_classes), np.asarray(predicted_classes)
    wrong = decompose(true_classes) != decompose(predicted_classes)
    n_wrong = wrong.sum(axis=1)
    observed = np.array([(n_wrong == 0).sum(), *[((n_wrong == 1) & wrong[:, c]).sum() for c in range(CHANNELS)],
                         (n_wrong >= 2).sum()], dtype=float)
    expected = pattern_probabilities(true_classes, per_channel).sum(axis=0)
    used = expected >= 1.0
    chi2 = float((((observed - expected) ** 2)[used] / expected[used]).sum())
    dof = int(used.sum() - 1)
    return {"patterns": list(PATTERNS), "observed": observed.astype(int).tolist(), "expected": expected.tolist(),
            "triple_accuracy": float(observed[0] / true_classes.size),
            "triple_accuracy_kronecker": float(expected[0] / true_classes.size), "n_triples": int(true_classes.size),
            "chi2": chi2, "dof": dof, "p_value": float(stats.chi2.sf(chi2, dof)) if dof > 0 else None}
