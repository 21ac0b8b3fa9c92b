"""Covariance spectra (audit.metrics.covariance, audit.metrics.spectrum, stage audit.spectrum):
hand-checked values and a planted low-rank GAN."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from audit import spectrum as stage
from audit.io import AuditInputError, run_cli
from audit.metrics import covariance as cv
from audit.metrics import spectrum as sp
from audit.plots.spectrum import plot_spectra


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


def test_noise_floor_and_dropped_counts():
    q = 1 / (12 * 255**2)
    assert sp.quantisation_noise_floor(100, 100, factor=1.0) == pytest.approx(4 * q)  # (1 + 1)^2
    floor = sp.quantisation_noise_floor(400, 100)  # 4 q (1 + 1/2)^2 = 9 q
    assert floor == pytest.approx(9 * q)
    assert sp.directions_above_noise_floor(np.array([1.0, 10 * q, 8 * q, q, 0.0]), 400, 100) == 2
    ratio = np.array([1.0, 0.5, 0.09, 0.2, 0.0, np.nan, 0.01])
    assert sp.dropped_directions(ratio) == 3
    assert sp.dropped_directions(ratio, significant=4) == 1
    assert sp.dropped_directions(ratio, threshold=0.6, significant=3) == 2


def test_effective_sample_size_by_hand():
    a, b, c = (np.full((2, 2, 1), v, np.uint8) for v in (0, 1, 2))
    images = np.stack([a, b, a, c, a])  # counts 3, 1, 1: N^2 / sum c^2 = 25 / 11
    assert sp.effective_sample_size(images, chunk_size=2) == (3, pytest.approx(25 / 11))
    assert sp.effective_sample_size(np.stack([a, b, c])) == (3, pytest.approx(3.0))


def test_dropped_directions_capped_by_the_gans_own_directions():
    ratio = np.array([0.9, 0.5, 0.3, 0.2, 0.05, 0.01])  # 4 of 6 above 0.1
    assert sp.dropped_directions(ratio) == 2
    assert sp.dropped_directions(ratio, gan_directions=3) == 3  # 3 directions cannot keep 4
    assert sp.dropped_directions(ratio, gan_directions=10) == 2
    assert sp.dropped_directions(ratio, significant=3, gan_directions=1) == 2


# --------------------------------------------------------------------------------------------
# streamed covariance and spectra against numpy


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 299, 5000])
@pytest.mark.parametrize("block_size", [5, 2048])
def test_streaming_covariance_matches_np_cov(chunk_size, block_size):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(299, 3, 4, 3), dtype=np.uint8)
    reference = np.cov(images.reshape(299, -1) / 255.0, rowvar=False)  # ddof=1: N - 1
    cov = cv.streaming_covariance(images, chunk_size=chunk_size, block_size=block_size)
    assert cov.shape == (36, 36)
    np.testing.assert_allclose(cov, reference, rtol=0, atol=1e-6)
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


@pytest.mark.parametrize("n", [5, 40, 64])  # N < d, N = d: the Gram route
def test_gram_route_matches_covariance(n):
    rng = np.random.default_rng(8)
    images = rng.integers(0, 256, size=(n, 8, 8, 1), dtype=np.uint8)
    cov = cv.streaming_covariance(images)
    full_values, full_vectors = cv.eigenspectrum(cov, return_vectors=True)
    values, total, vectors = cv.gram_spectrum(images, n_vectors=3, chunk_size=7)
    assert values.shape == (64,) and vectors.shape == (64, 3)
    np.testing.assert_allclose(values, full_values, rtol=0, atol=1e-12)
    assert total == pytest.approx(np.trace(cov), rel=1e-12)
    np.testing.assert_allclose(np.abs(np.sum(vectors * full_vectors[:, :3], axis=0)), 1.0, atol=1e-9)
    assert np.count_nonzero(values > 1e-12) == n - 1  # centred data span N - 1 directions
    route = cv.exact_spectrum(images, lambda eigs, total: 2)
    assert route[3] == "gram" and route[2].shape == (64, 2)
    assert cv.exact_spectrum(np.concatenate([images] * 2), None)[3] == ("gram" if 2 * n <= 64 else "covariance")


def test_top_eigenspectrum_matches_full():
    images, _ = _correlated_uint8(n=2000, side=12, seed=3)
    cov = cv.streaming_covariance(images)
    full = cv.eigenspectrum(cov)
    top = cv.top_eigenspectrum(images, 20, chunk_size=512, return_vectors=True)
    assert top.k == 20 and top.eigenvalues.shape == (20,) and top.eigenvectors.shape == (144, 20)
    assert "k=20" in top.method
    np.testing.assert_allclose(top.eigenvalues, full[:20], rtol=1e-3)
    assert top.total_variance == pytest.approx(np.trace(cov), rel=1e-12)


@pytest.mark.parametrize("m", [7, 25])  # subset (syevr) and all-vectors (syevd) paths
def test_top_eigenvectors_match_full_eigh(m):
    rng = np.random.default_rng(7)
    a = rng.normal(size=(300, 40)) * np.linspace(3, 0.1, 40)
    cov = np.cov(a, rowvar=False)
    full_values, full_vectors = cv.eigenspectrum(cov, return_vectors=True)
    values, vectors = cv.top_eigenvectors(cov.copy(), m, overwrite=True)
    assert values.shape == (m,) and vectors.shape == (40, m)
    np.testing.assert_allclose(values, full_values[:m], rtol=1e-12)
    np.testing.assert_allclose(np.abs(np.sum(vectors * full_vectors[:, :m], axis=0)), 1.0, atol=1e-10)


def test_directional_variance_ratio_streamed_and_from_cov():
    rng = np.random.default_rng(4)
    real = rng.normal(size=(500, 12)) @ rng.normal(size=(12, 12))
    gan = 0.5 * real + 3.0  # half the spread in every direction: ratio 1/4
    cov = cv.streaming_covariance(real)
    eigs, vecs = cv.eigenspectrum(cov, return_vectors=True)
    streamed = sp.directional_variance_ratio(gan, vecs, eigs, chunk_size=37)
    from_cov = sp.directional_variance_ratio(None, vecs, eigs, gan_cov=cv.streaming_covariance(gan))
    np.testing.assert_allclose(streamed, 0.25, rtol=1e-9)
    np.testing.assert_allclose(from_cov, 0.25, rtol=1e-9)


# --------------------------------------------------------------------------------------------
# planted truth: a GAN that keeps exactly r real principal directions


def _correlated_uint8(n: int, side: int, seed: int):
    """Smooth random images: Gaussian with a decaying spectrum around mid-grey, quantised."""
    rng = np.random.default_rng(seed)
    d = side * side
    basis, _ = np.linalg.qr(rng.normal(size=(d, d)))
    scales = 40.0 * np.exp(-np.arange(d) / 12.0) + 2.0  # grey levels
    x = 128.0 + (rng.normal(size=(n, d)) * scales) @ basis.T
    return np.clip(np.rint(x), 0, 255).astype(np.uint8).reshape(n, side, side, 1), d


def _digits_uint8():
    from sklearn.datasets import load_digits

    return np.rint(load_digits().images * (255.0 / 16.0)).astype(np.uint8)[..., None]


def _lowrank_gan(real: np.ndarray, r: int) -> np.ndarray:
    """Project real images on their top-r principal components and re-quantise to uint8.

    The projection is shrunk towards mid-grey just enough to fit in [0, 1]: clipping is a
    non-linearity that would leak variance into other directions, the affine shrink keeps the
    rank at exactly r (the ratio along kept directions becomes shrink^2).
    """
    n = real.shape[0]
    x = real.reshape(n, -1) / 255.0
    mean = x.mean(0)
    _, vecs = np.linalg.eigh(np.cov(x, rowvar=False))
    top = vecs[:, ::-1][:, :r]
    projected = (x - mean) @ top @ top.T + mean
    shrink = min(1.0, 0.5 / (0.5 - projected.min()), 0.5 / (projected.max() - 0.5))
    projected = 0.5 + shrink * (projected - 0.5)
    return np.rint(projected * 255).astype(np.uint8).reshape(real.shape)


@pytest.mark.parametrize("source", ["digits", "gaussian"])
def test_planted_lowrank_generator_recovered(source):
    r = 10
    real = _digits_uint8() if source == "digits" else _correlated_uint8(n=4000, side=12, seed=5)[0]
    gan = _lowrank_gan(real, r)
    result = sp.analyse_spectra(real, gan)
    s = result.summary
    assert s["method"].startswith("full-eigh") and s["k"] == s["d"] == real[0].size
    # effective number of GAN directions = eigenvalues above the rounding-noise floor
    assert abs(s["directions_gan"] - r) <= 0.1 * r
    assert s["directions_real"] > 2 * r
    assert s["significant_real_directions"] > r
    assert s["dropped_directions"] >= s["significant_real_directions"] - r
    assert s["effective_rank_gan"] < s["effective_rank_real"]
    # the first r real directions are kept (ratio = shrink^2 > threshold), the rest dropped
    assert np.all(result.ratio[:r] > s["dropped_threshold"])
    assert np.all(result.ratio[r:] < s["dropped_threshold"])


def test_no_false_alarm_for_independent_real_samples():
    real = _digits_uint8()
    half = real.shape[0] // 2
    s = sp.spectrum_summary(real[:half], real[half:])
    assert s["dropped_directions"] == 0
    assert 0.7 < s["median_variance_ratio"] < 1.4
    assert abs(s["directions_gan"] - s["directions_real"]) <= 2


def test_randomized_path_agrees_with_full():
    real, _ = _correlated_uint8(n=1500, side=12, seed=6)
    gan = _lowrank_gan(real, 8)
    full = sp.analyse_spectra(real, gan)
    rand = sp.analyse_spectra(real, gan, max_full_d=100, k=60)
    s = rand.summary
    assert s["method"].startswith("randomized") and s["k"] == 60 and s["truncated"]
    np.testing.assert_allclose(rand.real_eigs[:30], full.real_eigs[:30], rtol=1e-3)
    np.testing.assert_allclose(rand.gan_eigs[:8], full.gan_eigs[:8], rtol=1e-6)
    for key in ("n90_real", "n90_gan", "n99_gan", "directions_gan"):
        assert s[key] == full.summary[key], key
    # n99_real lies beyond the top 60, so only the top 60 count as significant
    assert s["n99_real"] is None and full.summary["n99_real"] > 60
    assert s["significant_real_directions"] == 60
    assert s["dropped_directions"] == sp.dropped_directions(full.ratio, significant=60)


# --------------------------------------------------------------------------------------------
# table, plot and the stage


def test_table_and_plot(tmp_path):
    table = sp.spectrum_table(np.array([3.0, 1.0]), {"a": np.array([1.0, 1.0]), "b": np.array([2.0])})
    assert list(table.columns) == ["index", "real", "a", "b"]
    np.testing.assert_allclose(table["real"], [0.75, 0.25])
    assert table["b"].iloc[0] == 1.0 and math.isnan(table["b"].iloc[1])
    plot_spectra(table, tmp_path / "s.png", floors={"real": 0.1})
    assert (tmp_path / "s.png").stat().st_size > 1000
    assert not list(tmp_path.glob(".*part*"))


def _stage_argv(real, gan, out_dir, **options) -> list[str]:
    """Every option of ``python -m audit.spectrum``; ``options`` (flag -> value, None to omit)
    replace the defaults the rule would pass."""
    values = {"--real": str(real), "--real-split": "test", "--gan": str(gan), "--label": "gan",
              "--max-samples": "500", "--threshold": "0.1", "--seed": "3", "--threads": "1", "--device": "cpu",
              "--out-json": str(out_dir / "spectrum.json"), "--out-csv": str(out_dir / "spectrum.csv"),
              "--out-png": str(out_dir / "spectrum.png")}  # fmt: skip
    values.update({f"--{k.replace('_', '-')}": v for k, v in options.items()})
    return [part for flag, value in values.items() if value is not None for part in (flag, value)]


def test_stage_writes_outputs(tmp_path):
    real = _digits_uint8()[:600]
    np.save(tmp_path / "real.npy", real)
    np.save(tmp_path / "gan.npy", _lowrank_gan(real, 6))
    out = tmp_path / "out"
    stage.main(_stage_argv(tmp_path / "real.npy", tmp_path / "gan.npy", out, label="lowrank"))
    summary = json.loads((out / "spectrum.json").read_text())
    assert summary["n_real"] == 500 and summary["n_gan"] == 500 and summary["d"] == 64
    assert summary["real"] == str(tmp_path / "real.npy") and summary["max_samples"] == 500 and summary["seed"] == 3
    assert summary["directions_gan"] == 6 and summary["dropped_threshold"] == 0.1
    table = pd.read_csv(out / "spectrum.csv")
    assert list(table.columns) == ["index", "real", "lowrank"] and len(table) == 64
    assert table["real"].sum() == pytest.approx(1.0)
    assert (out / "spectrum.png").stat().st_size > 1000
    assert not list(out.glob(".*part*"))


def test_stage_reads_one_split_of_a_prepared_dataset(digits_prepared, tmp_path):
    test_rows = digits_prepared.rows("test")
    np.save(tmp_path / "gan.npy", np.asarray(digits_prepared.images[digits_prepared.rows("pool")]))
    stage.main(_stage_argv(digits_prepared.path, tmp_path / "gan.npy", tmp_path, max_samples="50000"))
    summary = json.loads((tmp_path / "spectrum.json").read_text())
    assert summary["real"] == f"{digits_prepared.path} (test split)"
    assert summary["n_real"] == test_rows.shape[0] < digits_prepared.images.shape[0]
    assert summary["n_gan"] == digits_prepared.rows("pool").shape[0]


@pytest.mark.parametrize("option", ["max_samples", "threshold", "seed", "threads", "device"])
def test_stage_options_from_config_have_no_default(tmp_path, capsys, option):
    np.save(tmp_path / "real.npy", _digits_uint8()[:20])
    with pytest.raises(SystemExit) as exit_info:
        stage.main(_stage_argv(tmp_path / "real.npy", tmp_path / "real.npy", tmp_path, **{option: None}))
    assert exit_info.value.code == 2
    assert f"--{option.replace('_', '-')}" in capsys.readouterr().err
    assert not (tmp_path / "spectrum.json").exists()


def test_stage_computes_on_the_cpu_when_the_device_is_mps(tmp_path, monkeypatch, capsys):
    # MPS has no float64: the stage must not hand it the covariance numerics
    import audit.runtime

    monkeypatch.setattr(audit.runtime, "resolve_device", lambda device: "mps")
    real = _digits_uint8()[:100]
    np.save(tmp_path / "real.npy", real)
    stage.main(_stage_argv(tmp_path / "real.npy", tmp_path / "real.npy", tmp_path, device="auto"))
    assert "on the CPU" in capsys.readouterr().out
    assert json.loads((tmp_path / "spectrum.json").read_text())["dropped_directions"] == 0


def test_stage_rejects_shape_mismatch(tmp_path, capsys):
    np.save(tmp_path / "real.npy", np.zeros((5, 8, 8, 1), np.uint8))
    np.save(tmp_path / "gan.npy", np.zeros((5, 8, 8, 3), np.uint8))
    argv = _stage_argv(tmp_path / "real.npy", tmp_path / "gan.npy", tmp_path)
    with pytest.raises(AuditInputError):
        stage.main(argv)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(stage.main, argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "real.npy" in err and "gan.npy" in err
    assert not (tmp_path / "spectrum.json").exists()


# --------------------------------------------------------------------------------------------
# planted truth on the 64x64 RGB scenes (d = 12,288), through the pipeline's own samplers


@pytest.fixture(scope="module")
def scenes_spectra(scenes_prepared):
    """Spectra of the pool resampler and the rank-10 projector against the 800 test patches."""
    from audit.gans import SamplerContext, make_sampler

    real = cv.RowSubset(scenes_prepared.images, scenes_prepared.rows("test"))
    context = SamplerContext(data=scenes_prepared)
    specs = {"lowrank": {"type": "lowrank", "rank": 10}, "uniform": {"type": "resample", "class_probs": "real"}}
    return {name: sp.analyse_spectra(real, make_sampler(name, spec, context).sample(2000, 0).images)
            for name, spec in specs.items()}


def test_planted_lowrank_recovered_on_scenes(scenes_spectra):
    r = 10
    s = scenes_spectra["lowrank"].summary
    assert s["d"] == 64 * 64 * 3 and s["method"] == "full-eigh (real: gram, gan: gram)"
    # 2,000 draws from the 640 pool patches: duplicates share their rounding error, so the
    # noise floor uses the effective sample size (the plain N = 2,000 floor counted 18)
    assert s["n_distinct_gan"] <= 640 and s["n_effective_gan"] < s["n_distinct_gan"]
    assert abs(s["directions_gan"] - r) <= 0.1 * r
    assert s["n99_gan"] <= r
    assert s["significant_real_directions"] > 20 * r
    assert s["dropped_directions"] >= s["significant_real_directions"] - r
    # per real direction, mixing of nearly equal real eigenvalues credits a few extra directions
    assert s["low_ratio_directions"] >= s["significant_real_directions"] - r - 3
    assert s["median_variance_ratio"] < 0.05


def test_pool_resampler_keeps_every_scenes_direction(scenes_spectra):
    s = scenes_spectra["uniform"].summary
    assert s["dropped_directions"] == 0
    assert 0.7 < s["median_variance_ratio"] < 1.4
