"""Memorisation (audit/metrics/memorisation.py): the copy test by hand, its error rate by
simulation, and planted copiers on digits (pixel space; features in test_support_pipeline.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from audit.gans import SamplerContext, make_sampler
from audit.metrics import memorisation as mm
from audit.metrics.birthday import halves
from audit.metrics.neighbours import nearest


def test_copy_test_by_hand():
    real = np.arange(1, 101, dtype=float)  # distances 1..100
    assert mm.copy_threshold(real, 0.01) == 1.0 and mm.copy_threshold(real, 0.05) == 5.0  # inverted CDF
    result = mm.copy_test(np.array([0.5, 0.5, 3, 4]), np.array([0.1, 9, 9, 9, 9, 9, 9, 9]), threshold=1.0)
    assert result["gan_copies"] == 2 and result["copy_fraction"] == 0.5 and result["real_copy_fraction"] == 1 / 8
    expected = stats.fisher_exact([[2, 2], [1, 7]], alternative="greater").pvalue
    assert result["p_value"] == pytest.approx(expected)
    low, high = result["copy_fraction_ci"]
    assert low < 0.5 < high
    verdict = mm.memorisation_verdict({"features": result, "pixels": {**result, "p_value": 0.9}}, 0.05)
    assert verdict.p_value == pytest.approx(min(1, 2 * expected))  # Bonferroni over the two spaces
    assert verdict.extra["space"] == "features" and "50.00% copies" in verdict.key_number


def test_copy_test_error_rate_under_h0_by_simulation():
    """Samples and held-out images with one distance distribution: the two-space verdict
    (thresholds from 225 held-out distances, measured on the other 224, 2,000 samples)
    rejects at most alpha of the time over 2,000 simulated audits (Fisher is conservative)."""
    rng = np.random.default_rng(0)
    alpha, runs, rejected = 0.05, 2000, 0
    for _ in range(runs):
        tests = {}
        for space in ("features", "pixels"):
            held_out = rng.gamma(4.0, size=449)
            threshold = mm.copy_threshold(held_out[:225], 0.01)
            tests[space] = mm.copy_test(rng.gamma(4.0, size=2000), held_out[225:], threshold)
        rejected += bool(mm.memorisation_verdict(tests, alpha).rejected)
    assert rejected / runs <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / runs), rejected


def pixel_copy_test(data, images, seed=0):
    """The memorisation stage's pixel-space figures for uint8 samples ``images``."""
    train = data.images[data.rows("train")]
    test = data.images[data.rows("test")]
    part_a, part_b = halves(test.shape[0], seed)
    _, d_gan = nearest(images, train, 1)
    _, d_real = nearest(test, train, 1)
    threshold = mm.copy_threshold(d_real[part_a, 0], 0.01)
    return mm.copy_test(d_gan[:, 0], d_real[part_b, 0], threshold)


def test_a_memoriser_of_training_images_is_caught(digits_prepared):
    """Must-show: the planted memoriser (k = 50, N(0, 2 levels) noise) with ``source_split:
    train`` copies training images: over 90% of its samples are copies and the test rejects.
    The same memoriser of pool images (the default) is the negative control: pool images are
    not training images, so it must not be flagged."""
    spec = {"type": "memoriser", "k": 50, "noise_std": 2}
    copier = make_sampler("copier", {**spec, "source_split": "train"}, SamplerContext(data=digits_prepared))
    assert copier.truth["source_split"] == "train"
    result = pixel_copy_test(digits_prepared, copier.sample(2000, 0).images)
    assert result["copy_fraction"] > 0.9 and result["p_value"] < 1e-6, result
    pool = make_sampler("memoriser", spec, SamplerContext(data=digits_prepared))
    assert pool.truth["source_split"] == "pool"
    assert pixel_copy_test(digits_prepared, pool.sample(2000, 0).images)["p_value"] >= 0.05
    with pytest.raises(Exception, match=r"gans.bad.source_split: expected one of pool, train, got 'test'"):
        make_sampler("bad", {**spec, "source_split": "test"}, SamplerContext(data=digits_prepared))


def test_the_pool_resampler_copies_no_more_than_real_images(digits_prepared):
    """Pool images are not training images: the uniform resampler's copy fraction stays near the
    real one. 'Near', fixed before running: within 0.02 of the real held-out fraction, and the
    one-sided test (alpha 0.05) does not reject."""
    sampler = make_sampler("uniform", {"type": "resample", "class_probs": "real"}, SamplerContext(data=digits_prepared))
    result = pixel_copy_test(digits_prepared, sampler.sample(10000, 0).images)
    assert abs(result["copy_fraction"] - result["real_copy_fraction"]) <= 0.02, result
    assert result["p_value"] >= 0.05, result
