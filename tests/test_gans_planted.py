"""Planted-truth generators (audit/gans/planted.py) against the truth they claim to plant."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from audit import sample as sample_stage
from audit.config import schema_error
from audit.gans import SamplerContext, make_sampler
from audit.gans.planted import quota_counts
from audit.io import AuditInputError
from tests.conftest import sample_args

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(digits_prepared):
    """Digits: 8x8 grayscale, prepared once per session (tests/conftest.py)."""
    return digits_prepared


@pytest.fixture(scope="module")
def pool(data):
    """(pool images as (P, 64) float, their labels)."""
    images, labels = data.subset("pool")
    return images.reshape(images.shape[0], -1).astype(np.float64), labels


def sampler(data, spec, name="planted"):
    return make_sampler(name, spec, SamplerContext(data=data))


def nearest_pool(samples: np.ndarray, pool_pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest pool image (L2) of each sample, and the distance's max |pixel| part."""
    x = samples.reshape(samples.shape[0], -1).astype(np.float64)
    d2 = (x ** 2).sum(1)[:, None] - 2 * x @ pool_pixels.T + (pool_pixels ** 2).sum(1)[None]
    nearest = d2.argmin(1)
    return nearest, np.abs(x - pool_pixels[nearest]).max(1)


def pool_lookup(pool_pixels, labels):
    return {p.astype(np.uint8).tobytes(): int(k) for p, k in zip(pool_pixels, labels)}


@pytest.mark.parametrize("spec", [
    {"type": "memoriser", "k": 20},
    {"type": "lowrank", "rank": 5},
    {"type": "dropmodes", "n_classes_kept": 3},
    {"type": "blank", "blank_fraction": 0.3},
    {"type": "resample", "dominant_prob": 0.5},
])
def test_every_planted_generator_is_deterministic(data, spec):
    s = sampler(data, spec)
    a, b, c = s.sample(200, 3), s.sample(200, 3), s.sample(200, 4)
    assert a.images.dtype == np.uint8 and a.images.shape == (200, 8, 8, 1)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.planted_labels, b.planted_labels)
    assert not np.array_equal(a.images, c.images)


def test_memoriser_emits_exactly_k_noisy_pool_images(data, pool):
    pool_pixels, pool_labels = pool
    s = sampler(data, {"type": "memoriser", "k": 50, "noise_std": 2})
    assert s.truth == {"support_size": 50, "noise_std": 2.0, "draw": "quota", "source_split": "pool"}
    batch = s.sample(500, seed=0)
    nearest, max_noise = nearest_pool(batch.images, pool_pixels)
    # 50 distinct source images, each emitted exactly 500 / 50 = 10 times (quota)
    sources, counts = np.unique(nearest, return_counts=True)
    assert sources.size == 50 and (counts == 10).all()
    # N(0, 2) noise rounded to uint8: 6 sigma + rounding bounds it over 32,000 pixels
    assert 0 < max_noise.max() <= 12.5
    np.testing.assert_array_equal(batch.planted_labels, pool_labels[nearest])
    # a different seed memorises a different set
    other, _ = nearest_pool(s.sample(500, seed=1).images, pool_pixels)
    assert set(other) != set(nearest)


def test_memoriser_without_noise_is_exact_copies(data, pool):
    lookup = pool_lookup(*pool)
    batch = sampler(data, {"type": "memoriser", "k": 7, "noise_std": 0}).sample(70, seed=2)
    keys = [img.tobytes() for img in batch.images]
    assert all(k in lookup for k in keys) and len(set(keys)) == 7


def test_memoriser_errors(data):
    with pytest.raises(AuditInputError, match=r"gans.planted.k: 1000 exceeds the 359 distinct images"):
        sampler(data, {"type": "memoriser", "k": 1000})
    with pytest.raises(AuditInputError, match="fewer than k=50"):
        sampler(data, {"type": "memoriser"}).sample(20, 0)
    with pytest.raises(AuditInputError, match=r"unknown option\(s\) noise_sd"):
        sampler(data, {"type": "memoriser", "noise_sd": 2})


def centred_singular_values(images: np.ndarray) -> np.ndarray:
    x = images.reshape(images.shape[0], -1).astype(np.float64)
    return np.linalg.svd(x - x.mean(0), compute_uv=False)


@pytest.mark.parametrize("rank", [3, 10])
def test_lowrank_samples_have_numerical_rank_r(data, pool, rank):
    s = sampler(data, {"type": "lowrank", "rank": rank})
    assert s.truth["rank"] == rank and s.truth["pca_split"] == "pool" and s.truth["pca_images"] == 359
    n, d = 400, 64
    batch = s.sample(n, seed=0)
    sv = centred_singular_values(batch.images)
    # Tolerance, proved not tuned: before rounding the samples lie exactly on an r-dimensional
    # affine subspace; rounding to uint8 adds E with |E_ij| <= 0.5, and centring does not grow
    # it, so (Weyl) sigma_{r+1} <= ||E||_2 <= ||E||_F <= 0.5 * sqrt(n * d) = 80 grey levels.
    bound = 0.5 * np.sqrt(n * d)
    assert sv[rank] <= bound
    assert sv[rank - 1] >= 10 * bound
    assert sv[rank] / sv[rank - 1] < 0.02  # measured: 0.003 (r=3), 0.007 (r=10)
    # the real pool images are nowhere near rank r
    real = centred_singular_values(pool[0])
    assert real[rank] / real[rank - 1] > 0.5
    # sources drawn with the real class proportions, exactly
    counts = np.bincount(batch.planted_labels, minlength=10)
    np.testing.assert_array_equal(counts, quota_counts(data.class_distribution(), n))


def test_lowrank_clip_mode_and_errors(data):
    clipped = centred_singular_values(sampler(data, {"type": "lowrank", "out_of_range": "clip"}).sample(400, 0).images)
    assert clipped[10] / clipped[9] > 0.05  # why rescale is the default: clipping adds directions
    with pytest.raises(AuditInputError, match="gans.planted.rank: 64 must be below"):
        sampler(data, {"type": "lowrank", "rank": 64})


def test_dropmodes_keeps_only_the_kept_classes(data, pool):
    lookup = pool_lookup(*pool)
    s = sampler(data, {"type": "dropmodes", "keep_classes": [7, 1, 3, 5, 9], "draw": "quota"})
    kept = [1, 3, 5, 7, 9]
    assert s.truth["kept_classes"] == kept
    real = data.class_distribution()
    expected = np.where(np.isin(np.arange(10), kept), real, 0) / real[kept].sum()
    np.testing.assert_allclose(s.truth["class_distribution"], expected)
    batch = s.sample(1000, seed=0)
    # every sample is a pool image of a kept class, its planted label that class
    true_class = np.array([lookup[img.tobytes()] for img in batch.images])
    np.testing.assert_array_equal(true_class, batch.planted_labels)
    assert set(true_class) == set(kept)
    np.testing.assert_array_equal(np.bincount(true_class, minlength=10), quota_counts(expected, 1000))
    first = sampler(data, {"type": "dropmodes", "n_classes_kept": 5})
    assert first.truth["kept_classes"] == [0, 1, 2, 3, 4]
    assert set(first.sample(300, 0).planted_labels) == {0, 1, 2, 3, 4}


@pytest.mark.parametrize("spec, message", [
    ({"type": "dropmodes"}, "set exactly one of keep_classes"),
    ({"type": "dropmodes", "keep_classes": [1], "n_classes_kept": 2}, "set exactly one of keep_classes"),
    ({"type": "dropmodes", "keep_classes": [1, 10]}, r"gans.planted.keep_classes: expected distinct class indices in \[0, 10\)"),
    ({"type": "dropmodes", "keep_classes": [2, 2]}, "gans.planted.keep_classes"),
    ({"type": "dropmodes", "n_classes_kept": 11}, r"gans.planted.n_classes_kept: expected an integer in \[1, 10\]"),
    ({"type": "blank", "blank_fraction": 1.5}, r"gans.planted.blank_fraction: expected a number in \[0, 1\]"),
    ({"type": "blank", "blank_kind": "zeros"}, "gans.planted.blank_kind: expected one of noise, constant"),
    ({"type": "blank", "blank_level": 3}, "blank_level: only applies to blank_kind: constant"),
])
def test_option_errors(data, spec, message):
    with pytest.raises(AuditInputError, match=message):
        sampler(data, spec)


@pytest.mark.parametrize("kind", ["noise", "constant"])
def test_blank_fraction_is_exact(data, pool, kind):
    lookup = pool_lookup(*pool)
    spec = {"type": "blank", "blank_fraction": 0.2, "blank_kind": kind}
    if kind == "constant":
        spec["blank_level"] = 40
    s = sampler(data, spec)
    assert s.truth["blank_fraction"] == 0.2 and s.truth["blank_kind"] == kind
    batch = s.sample(500, seed=0)
    blank = batch.planted_labels == -1
    assert blank.sum() == 100  # exactly 0.2 * 500
    if kind == "constant":
        assert (batch.images[blank] == 40).all()
    # the others are real pool images (the noise blanks are not), labelled with their class
    real_keys = [lookup.get(img.tobytes()) for img in batch.images]
    assert all(real_keys[i] == batch.planted_labels[i] for i in np.flatnonzero(~blank))
    assert all(real_keys[i] is None for i in np.flatnonzero(blank))
    # real images with the real proportions (quota over the 400)
    np.testing.assert_array_equal(np.bincount(batch.planted_labels[~blank], minlength=10),
                                  quota_counts(data.class_distribution(), 400))
    # blanks are spread through the batch, not stacked in front
    assert 0 < blank[:250].sum() < 100


def test_blank_extremes(data):
    assert (sampler(data, {"type": "blank", "blank_fraction": 1}).sample(30, 0).planted_labels == -1).all()
    assert (sampler(data, {"type": "blank", "blank_fraction": 0}).sample(30, 0).planted_labels >= 0).all()


def test_sample_stage_writes_planted_truth(data, tmp_path):
    out = tmp_path / "samples"
    sample_stage.main(sample_args("mem", {"type": "memoriser", "k": 5}, data.path, out, 40))
    truth = json.loads((out / "truth.json").read_text())
    assert truth["support_size"] == 5 and truth["type"] == "memoriser" and truth["n"] == 40
    assert np.load(out / "samples.npy").shape == (40, 8, 8, 1)
    assert (np.load(out / "planted_labels.npy") >= 0).all()
    out = tmp_path / "blank"
    sample_stage.main(sample_args("b", {"type": "blank", "blank_fraction": 0.25}, data.path, out, 40))
    assert (np.load(out / "planted_labels.npy") == -1).sum() == 10


def test_readme_config_entries_pass_the_schema():
    """The entries audit/gans/README.md proposes for config.yaml are valid."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config = copy.deepcopy(config)
    config["gans"].update({
        "memoriser": {"type": "memoriser", "k": 50, "noise_std": 2},
        "dropmodes": {"type": "dropmodes", "n_classes_kept": 5},
    })
    assert schema_error(config, ROOT / "rules" / "config.schema.yaml") is None
    config["gans"]["dropmodes"]["n_classes_kept"] = 0
    assert schema_error(config, ROOT / "rules" / "config.schema.yaml").startswith("gans.dropmodes.n_classes_kept")


# --- draw: multinomial | quota (issue 12) -------------------------------------------------------

@pytest.mark.parametrize("spec, default", [
    ({"type": "resample"}, "multinomial"),
    ({"type": "dropmodes", "n_classes_kept": 3}, "multinomial"),
    ({"type": "memoriser", "k": 20}, "quota"),
    ({"type": "lowrank", "rank": 5}, "quota"),
    ({"type": "blank"}, "quota"),
])
def test_draw_default_is_in_the_truth(data, spec, default):
    assert sampler(data, spec).truth["draw"] == default
    other = "quota" if default == "multinomial" else "multinomial"
    assert sampler(data, {**spec, "draw": other}).truth["draw"] == other


def pearson_dispersion(counts: np.ndarray, probs: np.ndarray) -> float:
    """z-score of the summed Pearson statistic of (S, K) count vectors against S independent
    multinomial(n, probs) draws: sum ~ chi2 with S (K' - 1) dof, K' classes with probs > 0."""
    kept = probs > 0
    n = counts.sum(axis=1, keepdims=True)
    expected = n * probs[kept]
    statistic = (((counts[:, kept] - expected) ** 2) / expected).sum()
    dof = counts.shape[0] * (kept.sum() - 1)
    return float((statistic - dof) / np.sqrt(2 * dof))


@pytest.mark.parametrize("spec", [{"type": "resample", "dominant_prob": 0.3},
                                  {"type": "dropmodes", "n_classes_kept": 4}])
def test_multinomial_draw_varies_as_a_multinomial_and_quota_does_not(data, spec):
    """Over 300 seeds the class counts of the default (multinomial) draw have the multinomial
    dispersion: the summed Pearson statistic is chi-square with 300 (K - 1) dof, so its z-score is
    within 4 (a 1-in-30,000 bound, set before running). Quota counts are the same every seed
    (z far below -4): a sampler that still used quotas, or drew counts twice as noisy, fails."""
    probs = np.asarray(sampler(data, spec).truth["class_distribution"])
    counts = np.array([np.bincount(sampler(data, spec).sample(200, seed).planted_labels, minlength=10)
                       for seed in range(300)])
    assert abs(pearson_dispersion(counts, probs)) < 4
    quota = np.array([np.bincount(sampler(data, {**spec, "draw": "quota"}).sample(200, seed).planted_labels,
                                  minlength=10) for seed in range(20)])
    assert (quota == quota_counts(probs, 200)).all()
    assert pearson_dispersion(quota, probs) < -4


def test_blank_multinomial_draw_makes_the_blank_count_binomial(data):
    spec = {"type": "blank", "blank_fraction": 0.2, "draw": "multinomial"}
    blanks = np.array([(sampler(data, spec).sample(100, seed).planted_labels == -1).sum() for seed in range(300)])
    # binomial(100, 0.2): mean 20, sd 4; the mean of 300 draws is within 4 standard errors (0.92)
    assert abs(blanks.mean() - 20) < 4 * 4 / np.sqrt(300)
    assert 0.7 < blanks.std() / 4 < 1.3  # sd of the sd ratio ~ 1/sqrt(2 * 299) = 0.04
    quota = sampler(data, {**spec, "draw": "quota"})
    assert {int((quota.sample(100, seed).planted_labels == -1).sum()) for seed in range(10)} == {20}


def test_memoriser_multinomial_draw_picks_images_independently(data, pool):
    pool_pixels, _ = pool
    batch = sampler(data, {"type": "memoriser", "k": 10, "noise_std": 0, "draw": "multinomial"}).sample(1000, 0)
    _, counts = np.unique(nearest_pool(batch.images, pool_pixels)[0], return_counts=True)
    # 10 images, 1000 draws: counts binomial(1000, 0.1) (sd 9.5), not all exactly 100 as with quota
    assert counts.size == 10 and counts.sum() == 1000 and len(set(counts)) > 1
    assert np.abs(counts - 100).max() < 5 * 9.5


def test_draw_option_errors(data):
    with pytest.raises(AuditInputError, match="gans.planted.draw: expected one of multinomial, quota, got 'poisson'"):
        sampler(data, {"type": "resample", "draw": "poisson"})
    config = copy.deepcopy(yaml.safe_load((ROOT / "config.yaml").read_text()))
    config["gans"]["uniform"]["draw"] = "poisson"
    assert schema_error(config, ROOT / "rules" / "config.schema.yaml").startswith("gans.uniform.draw")
    config["gans"]["uniform"]["draw"] = "quota"
    assert schema_error(config, ROOT / "rules" / "config.schema.yaml") is None


def test_config_planted_controls_use_the_default_draw():
    """The controls that play a generator with a class distribution draw multinomially: no
    `draw: quota` in config.yaml (the uniform control's chi-square p was 1.00 by construction)."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for name, spec in config["gans"].items():
        if spec["type"] in ("resample", "dropmodes"):
            assert spec.get("draw", "multinomial") == "multinomial", name
