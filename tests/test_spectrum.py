"""Covariance spectra (audit.metrics.covariance, audit.metrics.spectrum, stage audit.spectrum):
hand-checked values, agreement with plain numpy, planted low-rank generators and the pool
resampler (CI-sized; benchmarks/spectrum_planted.py runs the same over 20+ seeds), and the stage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit import spectrum as stage
from audit.io import AuditInputError
from audit.metrics import covariance as cv
from audit.metrics import spectrum as sp
from audit.plots.spectrum import plot_spectra
from tests.conftest import assert_cli_error

#: CI-sized null: the smallest p-value is 1/51 < alpha = 0.05 (the pipeline default draws 200)
DRAWS = 50

# --------------------------------------------------------------------------------------------
# hand-checked values


def test_two_pixel_covariance_by_hand():
    # three 1x2 grey images, pixels in [0, 1]: (0, 0), (1, 1), (1, 0)
    images = np.array([[0, 0], [255, 255], [255, 0]], dtype=np.uint8).reshape(3, 1, 2, 1)
    # mean (2/3, 1/3); deviations x: (-2/3, 1/3, 1/3), y: (-1/3, 2/3, -1/3); divide by N - 1 = 2
    # var x = (4 + 1 + 1) / 9 / 2 = 1/3, var y = 1/3, cov = (2 + 2 - 1) / 9 / 2 = 1/6
    cov, mean = cv.streaming_covariance(images, chunk_size=2, return_mean=True)
    np.testing.assert_allclose(cov, [[1 / 3, 1 / 6], [1 / 6, 1 / 3]], atol=1e-15)
    np.testing.assert_allclose(mean, [2 / 3, 1 / 3], atol=1e-15)
    eigs = cv.eigenspectrum(cov)  # 1/3 +- 1/6
    np.testing.assert_allclose(eigs, [1 / 2, 1 / 6], atol=1e-15)
    # p = (3/4, 1/4): exp(-(3/4 ln 3/4 + 1/4 ln 1/4)) = 4 / 3^(3/4)
    assert sp.effective_rank(eigs) == pytest.approx(4 / 3**0.75, rel=1e-12)
    assert sp.components_for_variance(eigs, 0.75) == 1
    assert sp.components_for_variance(eigs, 0.90) == 2


def test_effective_rank_and_variance_counts():
    for k in (1, 3, 10, 257):
        assert sp.effective_rank(np.r_[np.full(k, 0.7), np.zeros(5)]) == pytest.approx(k, rel=1e-12)
    assert sp.effective_rank(np.zeros(4)) == 0.0
    eigs = np.array([5.0, 3.0, 1.0, 0.5, 0.5])  # cumulative fractions .5 .8 .9 .95 1
    assert sp.components_for_variance(eigs, 0.8) == 2
    assert sp.components_for_variance(eigs, 0.9) == 3
    assert sp.components_for_variance(eigs, 0.99) == 5
    assert sp.components_for_variance(np.full(10, 2.0), 0.9) == 9  # exactly 90%, despite rounding
    # truncated spectrum with the trace given: top 3 of total 20 never reach 90%
    assert sp.components_for_variance(eigs[:3], 0.9, total=20.0) is None
    assert sp.components_for_variance(eigs[:3], 0.4, total=20.0) == 2


def test_effective_sample_size_and_hash_order():
    a, b, c = (np.full((2, 2, 1), v, np.uint8) for v in (0, 1, 2))
    images = np.stack([a, b, a, c, a])  # counts 3, 1, 1: N^2 / sum c^2 = 25 / 11
    assert sp.effective_sample_size(images, chunk_size=2) == (3, pytest.approx(25 / 11))
    assert sp.effective_sample_size(np.stack([a, b, c])) == (3, pytest.approx(3.0))
    order = sp.hash_order(sp.image_digests(images), seed=0)
    assert sorted(order) == [0, 1, 2, 3, 4]
    positions = np.flatnonzero(np.isin(order, [0, 2, 4]))  # the three copies of a are adjacent
    assert positions.max() - positions.min() == 2
    rng = np.random.default_rng(0)
    many = rng.integers(0, 256, size=(30, 2, 2, 1), dtype=np.uint8)
    perm = rng.permutation(30)
    first = many[sp.hash_order(sp.image_digests(many), 5)]
    np.testing.assert_array_equal(first, many[perm][sp.hash_order(sp.image_digests(many[perm]), 5)])
    assert not np.array_equal(first, many[sp.hash_order(sp.image_digests(many), 6)])  # the seed matters


def test_whitened_spectrum_and_rank_ratios_by_hand():
    # variances 2 and 8 along directions whose reference variances are 8 and 2: 1/4 and 4
    np.testing.assert_allclose(sp.whitened_spectrum(np.diag([2.0, 8.0]), np.array([8.0, 2.0])), [4.0, 0.25])
    # a rotation inside the subspace changes nothing: [[5, 3], [3, 5]] has eigenvalues 8 and 2
    np.testing.assert_allclose(sp.whitened_spectrum(np.array([[5.0, 3.0], [3.0, 5.0]]), np.ones(2)), [8.0, 2.0])
    ratio = sp.rank_ratios(np.array([2.0, 0.1, 0.0]), np.array([4.0, 1.0, 0.0]))
    np.testing.assert_array_equal(ratio, [0.5, 0.1, np.inf])  # nothing real to drop at rank 3
    assert sp.kept_directions(ratio, 0.1) == 3  # >= threshold is kept
    assert sp.kept_directions(ratio, 0.11) == 2


def test_fit_split_by_hand():
    # half A in 2-D: variance 2/3 along x, 8/3 along y; half B: 8/3 along x, 2/3 along y
    A = np.array([[1.0, 0], [-1, 0], [0, 2], [0, -2]])
    B = np.array([[2.0, 0], [-2, 0], [0, 1], [0, -1]])
    split = sp.fit_split(A @ A.T, B @ A.T)
    np.testing.assert_allclose(split.lam, [8 / 3, 2 / 3])  # 80% + 20%: both needed for 99%
    directions = (A - A.mean(0)).T @ split.coef
    np.testing.assert_allclose(np.abs(directions), [[0, 1], [1, 0]], atol=1e-12)  # y, then x
    np.testing.assert_allclose(split.nu, [4.0, 0.25])  # B along y: (2/3)/(8/3); along x: (8/3)/(2/3)
    # a GAN varying along y only (variance 4/3): whitened (1/2, 0), compared rank by rank with B
    gan = np.array([[0.0, 1], [0, -1], [0, 1], [0, -1]])
    ratio = split.ratio(sp.covariance_of(split.project(gan @ A.T)))
    np.testing.assert_allclose(ratio, [0.5 / 4.0, 0.0], atol=1e-15)
    assert sp.kept_directions(ratio, 0.1) == 1 and sp.kept_directions(ratio, 0.2) == 0
    # significant directions stop at 99% of A's variance and at n_B - 1
    assert sp.fit_split(A @ A.T, B[:2] @ A.T).m == 1
    flat = np.array([[1.0, 0], [-1, 0], [0, 1e-3], [0, -1e-3]])  # y holds 1e-6 of the variance
    assert sp.fit_split(flat @ flat.T, B @ flat.T).m == 1


def test_split_matches_plain_numpy_pca():
    """The library's route (principal coordinates, inner products, streamed GAN covariance)
    against pixel-space PCA written with numpy alone."""
    rng = np.random.default_rng(11)
    mixing = rng.normal(size=(10, 10)) * np.linspace(3, 0.05, 10)[:, None]
    real = rng.normal(size=(61, 10)) @ mixing + 0.5
    gan = rng.normal(size=(300, 10)) @ (mixing * np.r_[np.ones(4), np.full(6, 0.2)][:, None]) + 0.4
    n_a = 31
    gram, mean = cv.centred_gram(real, chunk_size=7)
    split = sp.fit_split(gram[:n_a, :n_a], gram[n_a:, :n_a])
    directions = cv.combine_rows(real[:n_a], split.coef, mean, chunk_size=7)
    ratio = split.ratio(cv.projected_covariance(gan, directions, chunk_size=64))

    values, vectors = np.linalg.eigh(np.cov(real[:n_a], rowvar=False))
    values, vectors = values[::-1], vectors[:, ::-1]
    m = min(int(np.searchsorted(np.cumsum(values) / values.sum(), 0.99) + 1), 61 - n_a - 1)
    assert split.m == m
    w = 1 / np.sqrt(values[:m])
    V = vectors[:, :m]
    nu = np.linalg.eigvalsh(V.T @ np.cov(real[n_a:], rowvar=False) @ V * np.outer(w, w))[::-1]
    mu = np.linalg.eigvalsh(V.T @ np.cov(gan, rowvar=False) @ V * np.outer(w, w))[::-1]
    np.testing.assert_allclose(split.lam, values[:m], rtol=1e-10)
    np.testing.assert_allclose(split.nu, nu, rtol=1e-9)
    np.testing.assert_allclose(ratio, mu / nu, rtol=1e-9)
    assert 0 < sp.kept_directions(ratio, 0.1) < m  # the GAN shrinks 6 of 10 directions 25-fold


# --------------------------------------------------------------------------------------------
# streamed numerics against numpy


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 299, 5000])
@pytest.mark.parametrize("block_size", [5, 2048])
def test_streaming_covariance_matches_np_cov(chunk_size, block_size):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(299, 3, 4, 3), dtype=np.uint8)
    reference = np.cov(images.reshape(299, -1) / 255.0, rowvar=False)  # ddof=1: N - 1
    cov = cv.streaming_covariance(images, chunk_size=chunk_size, block_size=block_size)
    assert cov.shape == (36, 36)
    assert np.abs(cov - reference).max() < 1e-12  # the exact-integer float32 path
    floats = cv.streaming_covariance(images / 255.0, chunk_size=chunk_size, block_size=block_size)
    np.testing.assert_allclose(floats, reference, rtol=0, atol=1e-12)


def test_streaming_covariance_memmap_and_offset_data(tmp_path):
    # near-constant bright pixels: the case where naive float32 sums of squares cancel badly
    rng = np.random.default_rng(2)
    images = (250 + rng.integers(0, 6, size=(3000, 2, 2, 3))).astype(np.uint8)
    np.save(tmp_path / "x.npy", images)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    reference = np.cov(images.reshape(3000, -1).astype(np.float64) / 255.0, rowvar=False)
    np.testing.assert_allclose(cv.streaming_covariance(mm, chunk_size=1000), reference, rtol=0, atol=1e-14)


@pytest.mark.parametrize("n", [5, 40, 64, 150])  # N < d, N = d: the Gram route; N > d: the covariance
def test_gram_products_and_spectra_match_numpy(n):
    rng = np.random.default_rng(8)
    images = rng.integers(0, 256, size=(n, 8, 8, 1), dtype=np.uint8)
    others = rng.integers(0, 256, size=(33, 8, 8, 1), dtype=np.uint8)
    x, y = images.reshape(n, -1) / 255.0, others.reshape(33, -1) / 255.0
    cov = np.cov(x, rowvar=False)
    full = np.linalg.eigvalsh(cov)[::-1]
    gram, mean = cv.centred_gram(images, chunk_size=7)
    np.testing.assert_allclose(mean, x.mean(0), atol=1e-15)
    np.testing.assert_allclose(gram, (x - x.mean(0)) @ (x - x.mean(0)).T, atol=1e-12)
    np.testing.assert_allclose(cv.cross_products(others, images, mean, chunk_size=5),
                               (y - mean) @ (x - mean).T, atol=1e-12)
    coef = rng.normal(size=(n, 3))
    np.testing.assert_allclose(cv.combine_rows(images, coef, mean, chunk_size=7), (x - mean).T @ coef, atol=1e-12)
    np.testing.assert_allclose(cv.gram_eigenvalues(gram, 64), full, rtol=0, atol=1e-12)
    values, total, route = cv.exact_spectrum(images, chunk_size=7)
    assert route == ("gram" if n <= 64 else "covariance")
    np.testing.assert_allclose(values, full, rtol=0, atol=1e-12)
    assert total == pytest.approx(np.trace(cov), rel=1e-12)
    assert np.count_nonzero(values > 1e-12) == min(n - 1, 64) == cv.rank_of(values)


def test_float_input_is_left_untouched():
    """Chunks of a float64 array are views of it: the numerics centre copies, never the caller's data."""
    x = np.random.default_rng(4).normal(size=(40, 6)) + 3.0
    before = x.copy()
    cv.streaming_covariance(x, chunk_size=7)
    cv.centred_gram(x, chunk_size=7)
    cv.cross_products(x, x, x.mean(0), chunk_size=7)
    cv.combine_rows(x, np.ones((40, 2)), x.mean(0), chunk_size=7)
    cv.projected_covariance(x, np.eye(6)[:, :2], chunk_size=7)
    cv.top_eigenspectrum(x, 3, chunk_size=7)
    np.testing.assert_array_equal(x, before)


def test_projected_covariance_matches_numpy():
    rng = np.random.default_rng(9)
    images = rng.integers(0, 256, size=(257, 4, 4, 3), dtype=np.uint8)
    x = images.reshape(257, -1) / 255.0
    V = np.linalg.qr(rng.normal(size=(48, 5)))[0]
    for chunk_size in (1, 10, 1000):
        np.testing.assert_allclose(cv.projected_covariance(images, V, chunk_size), np.cov(x @ V, rowvar=False),
                                   rtol=0, atol=1e-13)
    reversed_column = V[:, ::-1][:, :1]  # negative strides: copied before torch sees it
    np.testing.assert_allclose(cv.projected_covariance(images, reversed_column),
                               np.cov(x @ V[:, 4:5], rowvar=False).reshape(1, 1), atol=1e-13)
    with pytest.raises(AuditInputError, match="48 pixels"):
        cv.projected_covariance(images, V[:10])


def test_top_eigenspectrum_matches_full():
    rng = np.random.default_rng(3)
    x = 128 + (rng.normal(size=(2000, 144)) * (40 * np.exp(-np.arange(144) / 12) + 2)) @ np.linalg.qr(
        rng.normal(size=(144, 144)))[0]
    images = np.clip(np.rint(x), 0, 255).astype(np.uint8).reshape(2000, 12, 12, 1)
    cov = cv.streaming_covariance(images)
    full = cv.eigenspectrum(cov)
    top = cv.top_eigenspectrum(images, 20, chunk_size=512, return_vectors=True)
    assert top.k == 20 and top.eigenvalues.shape == (20,) and top.eigenvectors.shape == (144, 20)
    assert "k=20" in top.method
    np.testing.assert_allclose(top.eigenvalues, full[:20], rtol=1e-3)
    assert top.total_variance == pytest.approx(np.trace(cov), rel=1e-12)


# --------------------------------------------------------------------------------------------
# planted truth on digits, through the pipeline's own samplers


def _sample(data, spec: dict, n: int, seed: int) -> np.ndarray:
    from audit.gans import SamplerContext, make_sampler

    return make_sampler("planted", spec, SamplerContext(data=data)).sample(n, seed).images


def _analyse(data, images, seed: int = 0, **options) -> sp.SpectrumResult:
    real = cv.RowSubset(data.images, data.rows("test"))
    null = cv.RowSubset(data.images, data.rows("train"))
    return sp.analyse_spectra(real, images, null, null_draws=DRAWS, seed=seed, **options)


def _rounding_floor_count(images) -> int:
    """The rejected 'directions' count: GAN eigenvalues above 4 x the Marchenko-Pastur edge of
    uint8 rounding noise (q = 1 / (12 * 255^2)) at the set's effective sample size."""
    x = images.reshape(images.shape[0], -1) / 255.0
    _, n_eff = sp.effective_sample_size(images)
    floor = 4 / (12 * 255**2) * (1 + np.sqrt(x.shape[1] / n_eff)) ** 2
    return int(np.count_nonzero(np.linalg.eigvalsh(np.cov(x, rowvar=False)) > floor))


@pytest.mark.parametrize("mode", ["rescale", "clip"])
@pytest.mark.parametrize("r", [5, 10, 20])
def test_planted_lowrank_recovered_on_digits(digits_prepared, r, mode):
    images = _sample(digits_prepared, {"type": "lowrank", "rank": r, "out_of_range": mode}, 2000, 0)
    result = _analyse(digits_prepared, images)
    s, verdict = result.summary, result.verdict
    assert s["method"].startswith("full-eigh") and s["d"] == 64
    assert s["significant_real_directions"] >= r + 10  # room to drop directions
    assert abs(s["kept_directions"] - r) <= 0.1 * r  # the must-show tolerance, stated before running
    assert s["dropped_directions"] == s["significant_real_directions"] - s["kept_directions"]
    assert verdict.rejected and verdict.p_value == pytest.approx(1 / (DRAWS + 1))
    assert verdict.text == f"drops directions: keeps {s['kept_directions']} of {s['significant_real_directions']} " \
                           "real directions"
    assert s["verdicts"] == [verdict.to_json()]
    if mode == "clip":  # clipping leaks variance into many small directions: the rounding-floor count fails
        assert _rounding_floor_count(images) > 2 * r


@pytest.mark.parametrize("seed", range(5))
def test_pool_resampler_drops_nothing_on_digits(digits_prepared, seed):
    images = _sample(digits_prepared, {"type": "resample", "class_probs": "real"}, 2000, seed)
    result = _analyse(digits_prepared, images, seed=seed)
    s = result.summary
    assert s["significant_real_directions"] >= 30
    assert s["dropped_directions"] == 0
    assert not result.verdict.rejected and result.verdict.state == "not flagged"
    assert s["stand_in_size"] == round(s["n_effective_gan"]) < s["n_distinct_gan"] <= 359  # the pool's size


def test_boundary_gan_scales_the_statistic_exactly(digits_prepared):
    """A real-like GAN shrunk by sqrt(t) towards its mean sits on the boundary of H0: every rank
    ratio, and the statistic, scale by exactly t (the basis of the p-value's boundary argument)."""
    images = _sample(digits_prepared, {"type": "resample", "class_probs": "real"}, 2000, 0)
    x = images.astype(np.float64) / 255.0
    shrunk = x.mean(0) + np.sqrt(0.1) * (x - x.mean(0))
    plain, boundary = _analyse(digits_prepared, x), _analyse(digits_prepared, shrunk)
    np.testing.assert_allclose(boundary.ratio, 0.1 * plain.ratio, rtol=1e-8)
    np.testing.assert_array_equal(boundary.null, plain.null)  # the null does not look at the GAN
    p = (1 + np.count_nonzero(plain.null <= plain.summary["worst_rank_ratio"])) / (1 + DRAWS)
    assert boundary.verdict.p_value == pytest.approx(p)


def test_randomized_route_changes_only_the_whole_set_spectra(digits_prepared):
    images = _sample(digits_prepared, {"type": "lowrank", "rank": 8}, 1500, 0)
    full, rand = _analyse(digits_prepared, images), _analyse(digits_prepared, images, max_full_d=50, k=30)
    s = rand.summary
    assert s["method"].startswith("randomized") and s["k"] == 30 and s["truncated"]
    np.testing.assert_allclose(rand.real_eigs[:20], full.real_eigs[:20], rtol=1e-3)
    np.testing.assert_allclose(rand.gan_eigs[:8], full.gan_eigs[:8], rtol=1e-6)
    # the split works on the exact Gram matrix whatever the route
    np.testing.assert_array_equal(rand.ratio, full.ratio)
    assert s["kept_directions"] == full.summary["kept_directions"] == 8
    assert s["verdicts"] == full.summary["verdicts"]


def test_undefined_verdicts_say_why(digits_prepared):
    gan = _sample(digits_prepared, {"type": "resample", "class_probs": "real"}, 500, 0)
    flat = np.full((40, 8, 8, 1), 7, np.uint8)
    result = sp.analyse_spectra(flat, gan, flat, null_draws=DRAWS)
    assert result.verdict.state == "undefined" and "no direction" in result.verdict.reason
    assert result.summary["significant_real_directions"] == 0 and result.summary["worst_rank_ratio"] is None
    real = np.asarray(digits_prepared.images[digits_prepared.rows("test")])
    result = sp.analyse_spectra(real, gan, real[:10], null_draws=DRAWS)
    assert result.verdict.p_value is None and "null split has 10 images" in result.verdict.reason


# --------------------------------------------------------------------------------------------
# planted truth on the 64x64 RGB scenes (d = 12,288)


@pytest.fixture(scope="module")
def scenes_results(scenes_prepared):
    """The rank-10 projections (rescaled, clipped) and the pool resampler against the 800 test
    patches, 1,000 samples each."""
    specs = {"rescale": {"type": "lowrank", "rank": 10},
             "clip": {"type": "lowrank", "rank": 10, "out_of_range": "clip"},
             "resample": {"type": "resample", "class_probs": "real"}}
    return {name: _analyse(scenes_prepared, _sample(scenes_prepared, spec, 1000, 0)) for name, spec in specs.items()}


@pytest.mark.parametrize("mode", ["rescale", "clip"])
def test_planted_lowrank_recovered_on_scenes(scenes_results, mode):
    s = scenes_results[mode].summary
    assert s["d"] == 64 * 64 * 3 and s["split_real_images"] == 800 and s["split_sizes"] == [400, 400]
    assert s["method"] == "full-eigh (real: gram, gan: gram)"
    assert s["significant_real_directions"] > 100
    assert abs(s["kept_directions"] - 10) <= 1
    assert scenes_results[mode].verdict.rejected


def test_pool_resampler_drops_nothing_on_scenes(scenes_results):
    result = scenes_results["resample"]
    assert result.summary["dropped_directions"] == 0
    assert not result.verdict.rejected


# --------------------------------------------------------------------------------------------
# table, plot and the stage


def test_table_and_plot(tmp_path):
    table = sp.spectrum_table(np.array([3.0, 1.0]), {"a": np.array([1.0, 1.0]), "b": np.array([2.0])})
    assert list(table.columns) == ["index", "real", "a", "b"]
    np.testing.assert_allclose(table["real"], [0.75, 0.25])
    assert table["b"].iloc[0] == 1.0 and np.isnan(table["b"].iloc[1])
    plot_spectra(table, tmp_path / "s.png", ratio=np.array([1.0, 0.5, 0.0, np.inf]), threshold=0.1, title="t")
    assert (tmp_path / "s.png").stat().st_size > 1000
    assert not list(tmp_path.glob(".*part*"))


def _stage_argv(real_path, gan_path, out_dir, **options) -> list[str]:
    """Every option of ``python -m audit.spectrum``; ``options`` (flag -> value, None to omit)
    replace the values the rule would pass."""
    null_path = real_path if Path(real_path).is_dir() else Path(real_path).with_name("null.npy")
    values = {"--real": str(real_path), "--real-split": "test", "--null-real": str(null_path), "--null-split": "train",
              "--gan": str(gan_path), "--label": "gan", "--max-samples": "500", "--threshold": "0.1", "--alpha": "0.05",
              "--null-draws": str(DRAWS), "--test-samples": "1000", "--seed": "3", "--threads": "1",
              "--device": "cpu", "--out-json": str(out_dir / "spectrum.json"),
              "--out-csv": str(out_dir / "spectrum.csv"), "--out-png": str(out_dir / "spectrum.png")}  # fmt: skip
    values.update({f"--{k.replace('_', '-')}": v for k, v in options.items()})
    return [part for flag, value in values.items() if value is not None for part in (flag, value)]


def test_stage_writes_outputs(digits_prepared, tmp_path):
    np.save(tmp_path / "gan.npy", _sample(digits_prepared, {"type": "lowrank", "rank": 6}, 800, 0))
    out = tmp_path / "out"
    stage.main(_stage_argv(digits_prepared.path, tmp_path / "gan.npy", out, label="lowrank"))
    summary = json.loads((out / "spectrum.json").read_text())
    n_test, n_train = digits_prepared.rows("test").size, digits_prepared.rows("train").size
    assert summary["real"] == f"{digits_prepared.path} (test split)" and summary["n_real"] == 450 == n_test
    assert summary["null_real"] == f"{digits_prepared.path} (train split)" and summary["null_real_images"] == n_train
    assert summary["n_gan"] == 500 and summary["max_samples"] == 500 and summary["seed"] == 3 and summary["d"] == 64
    assert summary["kept_directions"] == 6 and summary["dropped_threshold"] == 0.1
    (verdict,) = summary["verdicts"]
    assert verdict["title"] == "spectrum" and verdict["alpha"] == 0.05 and verdict["state"] == "flagged"
    assert verdict["key_number"] == f"keeps 6 of {summary['significant_real_directions']} real directions"
    table = pd.read_csv(out / "spectrum.csv")
    assert list(table.columns) == ["index", "real", "lowrank"] and len(table) == 64
    assert table["real"].sum() == pytest.approx(1.0)
    assert (out / "spectrum.png").stat().st_size > 1000
    assert not list(out.glob(".*part*"))
    again = tmp_path / "again"  # same seed, same bytes (no wall-clock time in the results)
    stage.main(_stage_argv(digits_prepared.path, tmp_path / "gan.npy", again, label="lowrank"))
    for name in ("spectrum.json", "spectrum.csv"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


@pytest.mark.parametrize("option", ["max_samples", "threshold", "alpha", "null_draws", "test_samples", "null_real",
                                    "null_split", "seed", "threads", "device"])
def test_stage_options_from_config_have_no_default(tmp_path, capsys, option):
    images = np.random.default_rng(0).integers(0, 256, size=(40, 8, 8, 1), dtype=np.uint8)
    np.save(tmp_path / "real.npy", images[:20])
    np.save(tmp_path / "null.npy", images[20:])
    with pytest.raises(SystemExit) as exit_info:
        stage.main(_stage_argv(tmp_path / "real.npy", tmp_path / "real.npy", tmp_path, **{option: None}))
    assert exit_info.value.code == 2
    assert f"--{option.replace('_', '-')}" in capsys.readouterr().err
    assert not (tmp_path / "spectrum.json").exists()


@pytest.mark.parametrize("option, value, key", [("alpha", "1.5", "spectrum.alpha"),
                                                ("threshold", "0", "spectrum.dropped_ratio"),
                                                ("null_draws", "0", "spectrum.null_draws"),
                                                ("test_samples", "3", "spectrum.test_samples"),
                                                ("max_samples", "1", "spectrum.max_samples")])
def test_stage_rejects_bad_config_values(tmp_path, capsys, option, value, key):
    np.save(tmp_path / "real.npy", np.zeros((5, 8, 8, 1), np.uint8))
    np.save(tmp_path / "null.npy", np.zeros((5, 8, 8, 1), np.uint8))
    argv = _stage_argv(tmp_path / "real.npy", tmp_path / "real.npy", tmp_path, **{option: value})
    assert_cli_error(stage.main, argv, capsys, key)
    assert not (tmp_path / "spectrum.json").exists()


def test_stage_computes_on_the_cpu_when_the_device_is_mps(tmp_path, monkeypatch, capsys):
    # MPS has no float64: the stage must not hand it the covariance numerics
    import audit.runtime

    monkeypatch.setattr(audit.runtime, "resolve_device", lambda device: "mps")
    images = np.random.default_rng(1).integers(0, 256, size=(120, 8, 8, 1), dtype=np.uint8)
    np.save(tmp_path / "real.npy", images[:60])
    np.save(tmp_path / "null.npy", images[60:])
    stage.main(_stage_argv(tmp_path / "real.npy", tmp_path / "real.npy", tmp_path, device="auto"))
    assert "on the CPU" in capsys.readouterr().out
    assert json.loads((tmp_path / "spectrum.json").read_text())["verdicts"][0]["state"] != "undefined"


def test_stage_refuses_the_real_images_as_their_own_null(digits_prepared, tmp_path, capsys):
    np.save(tmp_path / "gan.npy", np.zeros((5, 8, 8, 1), np.uint8))
    argv = _stage_argv(digits_prepared.path, tmp_path / "gan.npy", tmp_path, null_split="test")
    assert_cli_error(stage.main, argv, capsys, "--null-real", "independent")
    assert not (tmp_path / "spectrum.json").exists()


@pytest.mark.parametrize("which", ["gan", "null_real"])
def test_stage_rejects_shape_mismatch(tmp_path, capsys, which):
    np.save(tmp_path / "real.npy", np.zeros((5, 8, 8, 1), np.uint8))
    np.save(tmp_path / "null.npy", np.zeros((5, 8, 8, 1), np.uint8))
    np.save(tmp_path / "other.npy", np.zeros((5, 8, 8, 3), np.uint8))
    argv = _stage_argv(tmp_path / "real.npy", tmp_path / "real.npy", tmp_path, **{which: str(tmp_path / "other.npy")})
    assert_cli_error(stage.main, argv, capsys, "real.npy", "other.npy")
    assert not (tmp_path / "spectrum.json").exists()
