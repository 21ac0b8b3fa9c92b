"""The birthday test (audit/metrics/birthday.py): hand-computed figures, planted supports on the
default config, and error rates measured by simulation and on real held-out digits."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from audit.gans import SamplerContext, make_sampler
from audit.metrics import birthday as bd
from tests.conftest import default_config


def mixture(n: int, rng: np.random.Generator) -> np.ndarray:
    """A continuous 'real' distribution: 10 Gaussian clusters of different scales in 8-d."""
    centres = np.random.default_rng(99).normal(scale=4.0, size=(10, 8))
    scales = np.linspace(0.5, 1.5, 10)
    which = rng.integers(0, 10, n)
    return (centres[which] + scales[which, None] * rng.normal(size=(n, 8))).astype(np.float32)


# --- hand-computed figures --------------------------------------------------------------------

def test_estimates_bounds_and_texts_by_hand():
    counts = {10: np.array([1, 1]), 20: np.array([0, 2])}
    pooled = bd.pooled_estimate(counts, 200, seed=0)
    assert pooled["estimate"] == pytest.approx((2 * 45 + 2 * 190) / 4)  # sum R C(S,2) / all duplicate pairs
    table = bd.per_size_table(counts, 200, seed=0)
    assert table["n_hat"].tolist() == pytest.approx([45 / 1, 190 / 1])  # C(S,2) / mean pairs
    assert table["p_duplicate"].tolist() == [1.0, 0.5]
    # 0 of 20 draws: Clopper-Pearson 95% upper bound 1 - 0.05^(1/20) = 0.139 < 1/2
    clean = pd.DataFrame({"size": [100, 3200], "draws": [20, 20], "draws_with_duplicate": [0, 0],
                          "p_duplicate": [0.0, 0.0]})
    bound = bd.birthday_bound(clean)
    assert bound["size"] == 3200 and bound["p_upper"] == pytest.approx(1 - 0.05 ** (1 / 20))
    assert bound["bound"] == pytest.approx(3200 * 3199 / (2 * math.log(2)))
    assert bd.birthday_bound(clean.assign(draws_with_duplicate=[20, 20])) is None
    assert bd.paper_rule(clean.assign(p_duplicate=[0.4, 0.5])) == {"size": 3200, "support": 3200 ** 2}
    assert bd.paper_rule(clean) is None
    assert [bd.format_count(v) for v in (3.2, 50.25, 1432, 20404, 160000, 7385000, np.inf)] == \
        ["3.2", "50", "1,430", "20,400", "160k", "7.38M", "inf"]
    assert bd.support_text({"kind": "estimate", "estimate": 2040, "low": 1400, "high": 3100}) == \
        "support ~2,040 [1,400, 3,100]"
    assert bd.support_text({"kind": "estimate", "estimate": 2040, "low": 1400, "high": np.inf}) == \
        "support ~2,040 [1,400, inf)"
    assert bd.support_text({"kind": "lower_bound", "bound": 7.385e6, "bound_size": 3200}).startswith("support > 7.38M")


def test_verdict_is_the_binomial_tail_of_the_pooled_draws():
    table = pd.DataFrame({"size": [25, 50, 100], "draws": [20, 20, 20], "draws_with_duplicate": [1, 3, 20]})
    v = bd.birthday_verdict(table, 0.01, 0.05, "k", n_samples=1000)  # S = 100: R S > N, left out
    assert v.p_value == pytest.approx(stats.binom.sf(3, 40, 0.01))  # P(Bin(40, 0.01) >= 4)
    assert v.rejected and v.extra["expected_under_h0"] == pytest.approx(0.4) and v.extra["sizes"] == [25, 50]
    assert bd.birthday_verdict(table.assign(draws_with_duplicate=[0, 0, 20]), 0.01, 0.05, "k", 1000).p_value == 1.0
    assert bd.birthday_verdict(table, 0.01, 0.05, "k", n_samples=400).p_value is None


def test_threshold_reads_the_pairs_or_the_fitted_tail():
    smallest = np.arange(1, 1001, dtype=np.float64) / 1000  # pair distances 0.001 .. 1.0
    cal = bd.Calibration(quantile=0.01, n_images=100, n_pairs=4950, smallest=smallest, zeros=0, tail_pairs=100,
                         dimension=2.0)
    # q / C(S,2) * pairs: S = 2 allows 49.5 pairs: below the tail fit -> power law from the 100th pair
    t, kind = cal.threshold(2)
    assert kind == "extrapolated" and t == pytest.approx(0.1 * (49.5 / 100) ** 0.5)
    wide = dataclasses.replace(cal, quantile=0.4)  # S = 2 allows 1980 pairs: past the kept pairs -> tail too
    assert wide.threshold(2)[1] == "extrapolated"
    mid = dataclasses.replace(cal, quantile=0.1)  # 495 pairs: strictly below the 496th smallest
    assert mid.threshold(2) == (pytest.approx(0.496), "empirical")
    zeros = dataclasses.replace(cal, zeros=60)  # identical real pairs at the target rate already
    assert zeros.threshold(2) == (0.0, "zero")


# --- calibration: error rates measured, never true by construction ----------------------------

def distance_matrix(x) -> torch.Tensor:
    """(n, n) distances of (n, d) points by brute force in float64, +inf on the diagonal."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float64))
    sq = (x * x).sum(1)
    d = (sq[:, None] + sq[None] - 2 * x @ x.T).clamp_(min=0).sqrt_()
    return d.fill_diagonal_(float("inf"))


def closest(x) -> float:
    return float(distance_matrix(x).min())


def count_below(x, t: float) -> int:
    return int((distance_matrix(x) < t).sum()) // 2  # each pair twice


def test_rule_holds_its_rate_on_fresh_draws_beyond_the_calibration_set():
    """Calibrated on 225 draws of a continuous distribution, the rule flags fresh draws of S
    points (up to 4x the calibration set) at most q + 1% of the time (6 calibrations x 100
    draws per S; the closest pair by brute force)."""
    q, sizes = 0.01, [25, 100, 400, 900]
    flagged = {s: 0 for s in sizes}
    for c in range(6):
        rng = np.random.default_rng(c)
        cal = bd.calibrate(mixture(225, rng), q, sizes)
        for s in sizes:
            t, _ = cal.threshold(s)
            flagged[s] += sum(closest(mixture(s, rng)) < t for _ in range(100))
    rates = {s: n / 600 for s, n in flagged.items()}
    assert all(r <= q + 0.01 for r in rates.values()), rates


def test_false_duplicate_rate_on_real_held_out_digits(digits_prepared):
    """Must-show: calibrated on one half of the real test split, measured on the other, at every
    S the half holds (and S = its size), pixel space: at most q + 1%."""
    settings = default_config()["support"]
    test = digits_prepared.images[digits_prepared.rows("test")]
    rule, rows, table = bd.false_duplicate_rates(test, settings["quantile"], settings["grid"],
                                                 settings["validation_halvings"], settings["validation_draws"], 0)
    half = test.shape[0] // 2
    assert rows.size == test.shape[0] - half and table["size"].max() == half  # the largest real S
    assert table["size"].tolist() == [s for s in settings["grid"] if s <= half] + [half]
    assert (table["rate"] <= settings["quantile"] + 0.01).all(), table
    assert rule.n_images == rows.size


def test_verdict_error_rate_under_h0_by_simulation():
    """A GAN that is the real distribution: the verdict (grid 25..400, 20 draws each from the
    GAN's 8,000 samples as the stage draws, q = 1%, calibrated on 225 real images) rejects at
    most alpha + 3 standard errors of the time over 100 simulated audits (duplicate pairs
    counted by brute force). SUPPORT.md has the larger simulation."""
    alpha, q, grid, runs, n = 0.05, 0.01, [25, 50, 100, 200, 400], 100, 8000
    rejected = 0
    for run in range(runs):
        rng = np.random.default_rng(1000 + run)
        cal = bd.calibrate(mixture(225, rng), q, grid)
        samples = mixture(n, rng)
        counts = {s: np.array([count_below(samples[bd.draw_rows(n, s, run, r)], cal.threshold(s)[0])
                               for r in range(20)]) for s in grid}
        rejected += bool(bd.birthday_verdict(bd.per_size_table(counts, 10, run), q, alpha, "", n).rejected)
    assert rejected / runs <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / runs), rejected


# --- planted truth ------------------------------------------------------------------------------

def audit_support(images, real, settings, seed=0):
    """The support stages' library calls on uint8 images (pixel space)."""
    rule, _, _ = bd.false_duplicate_rates(real, settings["quantile"], settings["grid"], 1, 1, seed)
    thresholds = {s: rule.threshold(s)[0] for s in settings["grid"] if s <= images.shape[0]}
    counts, listed = bd.search_draws(images, thresholds, settings["repeats"], settings["pairs"], seed)
    table = bd.per_size_table(counts, settings["bootstrap"], seed)
    verdict = bd.birthday_verdict(table, settings["quantile"], settings["alpha"], "", images.shape[0])
    summary = bd.summarise(counts, table, bool(verdict.rejected), settings["bootstrap"], seed, images.shape[0])
    return summary, verdict, listed


@pytest.mark.parametrize("spec, planted", [({"type": "memoriser", "k": 50, "noise_std": 2}, 50),
                                           ({"type": "resample", "class_probs": "real"}, None)])
def test_planted_supports_on_the_default_config(digits_prepared, spec, planted):
    """Must-show (pixel space; the feature space is tests/test_support_pipeline.py): the
    memoriser's N_hat within a factor 2 of k = 50, the pool resampler's within a factor 2 of
    the P pool images, both flagged."""
    config = default_config()
    settings = config["support"]
    planted = planted or digits_prepared.rows("pool").size  # P = 359 on digits
    sampler = make_sampler("planted", spec, SamplerContext(data=digits_prepared))
    images = sampler.sample(config["samples"]["n"], 0).images
    real = digits_prepared.images[digits_prepared.rows("test")]
    summary, verdict, listed = audit_support(images, real, settings)
    assert verdict.rejected and summary["kind"] == "estimate"
    assert planted / 2 <= summary["estimate"] <= 2 * planted, summary
    assert summary["low"] <= summary["estimate"] <= summary["high"]
    assert set(listed.columns) >= {"size", "repeat", "rank", "sample_i", "sample_j", "distance", "rule_duplicate"}
    assert (listed["sample_i"] < listed["sample_j"]).all()


def test_a_generator_without_repeats_gets_a_bound_not_a_number():
    """Samples of the real distribution itself (continuous, no repeated point): no estimate
    is printed, only the birthday lower bound at the largest S the draws support."""
    rng = np.random.default_rng(5)
    grid = [25, 100, 400, 1600]
    cal = bd.calibrate(mixture(225, rng), 0.01, grid)
    counts, _ = bd.search_draws(mixture(5000, rng), {s: cal.threshold(s)[0] for s in grid}, 20, 1, seed=0)
    table = bd.per_size_table(counts, 100, 0)
    verdict = bd.birthday_verdict(table, 0.01, 0.05, "", 5000)
    summary = bd.summarise(counts, table, bool(verdict.rejected), 100, 0, 5000)
    assert not verdict.rejected and summary["kind"] == "lower_bound" and summary["estimate"] is None
    assert summary["bound_size"] == 1600 and summary["text"].startswith("support > 1.85M")
