"""Memorisation: are a GAN's samples closer to its training images than new real images are?

For every sample, the distance to its nearest training image; for real held-out (test) images,
the same distance (they were never trained on, so theirs is the distance of a new draw from the
data distribution). The real held-out images are split into seeded halves: on half A the
``quantile`` (1%) point of their distances is the **copy threshold**; a sample closer than it is
a *copy*. On half B, which did not set the threshold, the real copy fraction is measured: about
``quantile`` when the threshold generalises (measured, not true by construction).

Test (:func:`copy_test`): H0 "the GAN's samples are no closer to the training set than held-out
real images", i.e. P(copy) for a sample <= P(copy) for a real held-out image. Fisher's exact
test, one-sided, on the 2x2 table of copies / non-copies of the samples and of half B: exact
conditional size <= alpha for any threshold, since the threshold came from half A alone.
Two spaces (annotator features and pixels) are tested, and combined by Bonferroni
(:func:`memorisation_verdict`): p = min(1, 2 min(p_features, p_pixels)), so the verdict's
error rate stays <= alpha. Copy fractions come with 95% Wilson intervals.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from audit.metrics.birthday import wilson
from audit.metrics.neighbours import nearest
from audit.metrics.verdict import Verdict


def copy_threshold(real_distances: np.ndarray, quantile: float) -> float:
    """The ``quantile`` point (inverted CDF: an actual distance) of real held-out images'
    distances to their nearest training image; samples strictly closer are copies."""
    d = np.asarray(real_distances, dtype=np.float64)
    if d.size == 0 or not 0 < quantile < 1:
        raise ValueError("copy_threshold: need distances and a quantile in (0, 1)")
    return float(np.quantile(d, quantile, method="inverted_cdf"))


def copy_test(gan_distances: np.ndarray, real_distances: np.ndarray, threshold: float) -> dict:
    """Copies (distance < ``threshold``) among the samples and among the real held-out images
    that did not set the threshold, their fractions with Wilson intervals, and the one-sided
    Fisher exact p-value of "the samples copy more often"."""
    gan = np.asarray(gan_distances, dtype=np.float64)
    real = np.asarray(real_distances, dtype=np.float64)
    g, r = int(np.count_nonzero(gan < threshold)), int(np.count_nonzero(real < threshold))
    p = stats.fisher_exact([[g, gan.size - g], [r, real.size - r]], alternative="greater").pvalue
    return {"threshold": threshold, "gan_copies": g, "n_gan": int(gan.size), "copy_fraction": g / gan.size,
            "copy_fraction_ci": list(wilson(g, gan.size)), "real_copies": r, "n_real": int(real.size),
            "real_copy_fraction": r / real.size, "real_copy_fraction_ci": list(wilson(r, real.size)),
            "p_value": float(min(1.0, p)), "median_distance_gan": float(np.median(gan)),
            "median_distance_real": float(np.median(real))}


def nearest_training_test(gan: np.ndarray, train: np.ndarray, test: np.ndarray, part_a: np.ndarray,
                          part_b: np.ndarray, quantile: float, device: str = "cpu") -> tuple[dict, np.ndarray, np.ndarray]:
    """The copy test in one space: each GAN sample's nearest training vector against real
    held-out ones'. ``gan`` (N, ...), ``train`` (R, ...), ``test`` (T, ...): vectors of one space
    (float features or uint8 images, :mod:`audit.metrics.neighbours` units); ``part_a`` /
    ``part_b``: disjoint row indices of ``test`` (half A sets the threshold, half B measures the
    real copy fraction). Returns (:func:`copy_test` result, (N,) nearest training row, (N,)
    distance to it)."""
    index, distance = nearest(gan, train, 1, device=device)
    real_distance = nearest(test, train, 1, device=device)[1][:, 0]
    threshold = copy_threshold(real_distance[part_a], quantile)
    return copy_test(distance[:, 0], real_distance[part_b], threshold), index[:, 0], distance[:, 0]


def memorisation_verdict(tests: dict[str, dict], alpha: float) -> Verdict:
    """One verdict over the spaces of ``tests`` (space -> :func:`copy_test` result), Bonferroni
    combined; the key number is the copy fraction of the space with the smallest p-value."""
    space = min(tests, key=lambda s: tests[s]["p_value"])
    t = tests[space]
    p = min(1.0, len(tests) * t["p_value"])
    low, high = t["copy_fraction_ci"]
    return Verdict(
        test="memorisation.copies", title="memorisation",
        hypothesis="the GAN's samples are no closer to the training images than held-out real images",
        p_value=p, alpha=alpha, finding="copies training images", null_finding="no more copies than real",
        key_number=(f"{t['copy_fraction']:.2%} copies [{low:.2%}, {high:.2%}] ({space}; real "
                    f"{t['real_copy_fraction']:.2%})"),
        estimate=t["copy_fraction"], interval=(low, high),
        method=f"one-sided Fisher exact test per space ({', '.join(tests)}), Bonferroni over the {len(tests)} spaces",
        extra={"space": space, "p_values": {s: v["p_value"] for s, v in tests.items()}})
