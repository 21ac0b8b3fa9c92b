"""The peer metrics (FD, KID, inception-style score, PRDC, Vendi) on arrays with planted answers,
the FD test's error rate under H0, and the feature_metrics stage's boundary checks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import linalg

from audit.metrics import frechet, inception_score as score, kid, prdc, vendi
from audit.metrics.bootstrap import recentred_interval
from tests.conftest import assert_cli_error


def gaussian(rng, n, d, shift=0.0, scale=1.0):
    return rng.normal(size=(n, d)) * scale + shift


# --- Frechet distance ---------------------------------------------------------------------------

def test_fd_of_diagonal_gaussians_is_the_closed_form():
    # FD(N(m1, diag a), N(m2, diag b)) = |m1 - m2|^2 + sum (sqrt a - sqrt b)^2
    a, b = np.array([1.0, 4.0, 0.25, 9.0]), np.array([4.0, 1.0, 0.25, 1.0])
    m1, m2 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0, 3.0])
    expected = ((m1 - m2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet.frechet_distance_from_moments(m1, np.diag(a), m2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_fd_of_non_commuting_covariances_matches_sqrtm():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + np.eye(6), b @ b.T + 0.5 * np.eye(6)
    mu = rng.normal(size=6)
    expected = mu @ mu + np.trace(s1) + np.trace(s2) - 2 * np.trace(linalg.sqrtm(s1 @ s2)).real
    assert frechet.frechet_distance_from_moments(mu, s1, np.zeros(6), s2) == pytest.approx(expected, rel=1e-10)
    # symmetric in its arguments
    assert frechet.frechet_distance_from_moments(np.zeros(6), s2, mu, s1) == pytest.approx(expected, rel=1e-10)


def test_moments_are_np_cov_in_chunks():
    x = np.random.default_rng(1).normal(size=(1000, 7)).astype(np.float32) + 100.0  # far from 0: cancellation
    mean, cov = frechet.mean_and_covariance(x, chunk=64)
    assert np.allclose(mean, x.astype(np.float64).mean(axis=0), rtol=0, atol=1e-12)
    assert np.allclose(cov, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-12, atol=1e-14)


def test_fd_of_a_set_with_itself_is_zero_and_rank_deficient_sets_are_finite():
    x = np.random.default_rng(2).normal(size=(30, 50))  # n < d: singular covariances
    assert frechet.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    value = frechet.frechet_distance(x, x[:20] + 0.1)
    assert np.isfinite(value) and value > 0


def test_fd_permutation_test_holds_its_level_and_has_power():
    """Rejection rate at alpha = 0.05 over 300 data sets drawn under H0 is at most 0.05 plus 2.58
    binomial standard errors (0.083); a shift of 0.5 sd in every one of 8 coordinates (FD 2 at
    N = 60 a side) is rejected at least 90% of the time."""
    rng = np.random.default_rng(3)
    reps, m, d = 300, 60, 8
    rejected = {"h0": 0, "shift": 0}
    for _ in range(reps):
        t1, t2 = gaussian(rng, m, d), gaussian(rng, m, d)
        for case, shift in (("h0", 0.0), ("shift", 0.5)):
            observed, null = frechet.permutation_null(gaussian(rng, m, d, shift), t1, t2, 39, rng)
            rejected[case] += (1 + np.count_nonzero(null >= observed)) / 40 < 0.05
    assert rejected["h0"] / reps <= 0.05 + 2.58 * np.sqrt(0.05 * 0.95 / reps), rejected
    assert rejected["shift"] / reps >= 0.9, rejected


def test_fd_interval_covers_the_expected_value_at_this_n():
    """The recentred bootstrap interval is for E[FD] at the given sizes (the quantity the
    real-vs-real value estimates): over 100 data sets (N = 80 a side, d = 16, FD ~ 3.6, most of
    it finite-sample bias) it covers the Monte Carlo mean of FD at those sizes at least 85% of
    the time. The rejected percentile and basic intervals cover it 2% and 4% of the time here
    (FEATURE_METRICS.md): the test fails if either replaces it. The interval is conservative in
    high dimension (measured 99% here, 100% at d = 128), which this bound does not test."""
    rng = np.random.default_rng(4)
    m, d = 80, 16
    truth = np.mean([frechet.frechet_distance(gaussian(rng, m, d, 0.3), gaussian(rng, m, d)) for _ in range(1000)])
    covered = 0
    reps = 100
    for _ in range(reps):
        x, y = gaussian(rng, m, d, 0.3), gaussian(rng, m, d)
        low, high = recentred_interval(frechet.frechet_distance(x, y), frechet.bootstrap_replicates(x, y, 100, rng))
        covered += low <= truth <= high
    assert covered / reps >= 0.85, covered


# --- KID ------------------------------------------------------------------------------------------

def test_mmd2_is_the_unbiased_formula_by_loops():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)) + 0.3

    def k(a, b):
        return (a @ b / 3 + 1) ** 3

    m = 6
    within = sum(k(x[i], x[j]) + k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    cross = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) * 2 / m**2
    assert kid.mmd2_unbiased(x, y) == pytest.approx(within - cross, rel=1e-12)


def test_kid_is_unbiased_under_h0_and_positive_under_a_shift():
    """Planted truth: MMD^2 = 0 between one distribution and itself. The mean over 200 subsets
    of 100 lies within 4 of its standard errors of 0 (each subset value is unbiased, subsets of
    two fresh 20,000-row sets are close to independent); a mean shift of 0.3 sd makes it
    positive by more than 4 standard errors."""
    rng = np.random.default_rng(6)
    x, y = gaussian(rng, 20000, 16), gaussian(rng, 20000, 16)
    same = kid.kernel_distance(x, y, subsets=200, subset_size=100, rng=rng)
    assert abs(same["kid"]) <= 4 * same["kid_std"] / np.sqrt(200), same["kid"]
    shifted = kid.kernel_distance(x, gaussian(rng, 20000, 16, 0.3), subsets=200, subset_size=100, rng=rng)
    assert shifted["kid"] > 4 * shifted["kid_std"] / np.sqrt(200)


def test_kid_subset_size_is_capped_at_the_smaller_set():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(50, 4)), rng.normal(size=(80, 4))
    result = kid.kernel_distance(x, y, subsets=3, subset_size=1000, rng=rng)
    assert result["subset_size"] == 50 and result["values"].shape == (3,)
    with pytest.raises(ValueError, match="subset size"):
        kid.draw_subsets(50, 80, 3, 60, rng)


# --- inception-style score ------------------------------------------------------------------------

def test_inception_score_planted_values():
    k = 10
    one_hot = np.eye(k)[np.arange(1000) % k]
    assert score.inception_score(one_hot)[0] == pytest.approx(k, rel=1e-12)       # confident, all classes
    assert score.inception_score(np.full((100, k), 1 / k))[0] == pytest.approx(1.0)  # no information
    assert score.inception_score(np.eye(k)[np.zeros(50, int)])[0] == pytest.approx(1.0)  # one class only
    # confident rows on 2 of 10 classes: exp(log 2)
    assert score.inception_score(np.eye(k)[np.arange(100) % 2])[0] == pytest.approx(2.0, rel=1e-12)


def test_inception_score_is_fooled_by_one_image_per_class():
    """The lecture's point on a planted annotator: real images give confident, correct rows with
    some ambiguity; a generator repeating one confidently classified image per class, in the
    real class mix, scores at least as high as the real data while having 10 distinct images."""
    rng = np.random.default_rng(8)
    k, n = 10, 5000
    labels = rng.integers(0, k, n)
    real = 0.9 * np.eye(k)[labels] + 0.1 * rng.dirichlet(np.ones(k), n)
    per_class = real[[np.flatnonzero(labels == c)[0] for c in range(k)]]
    fake = per_class[labels]  # one row per class, repeated in the real mix
    is_real, is_fake = score.inception_score(real)[0], score.inception_score(fake)[0]
    assert len(np.unique(fake, axis=0)) == k
    assert abs(is_fake / is_real - 1) <= 0.1


def test_inception_score_splits_follow_torch_fidelity():
    p = np.random.default_rng(9).dirichlet(np.ones(5), 103)
    parts = [p[i * 103 // 4:(i + 1) * 103 // 4] for i in range(4)]
    by_hand = [np.exp(score.kl_to_marginal(q).mean()) for q in parts]
    mean, std = score.inception_score(p, splits=4)
    assert mean == pytest.approx(np.mean(by_hand)) and std == pytest.approx(np.std(by_hand))


@pytest.mark.parametrize("bad, message", [(np.full((3, 4), 0.3), "sum to 1"), (np.array([[1.2, -0.2]]), "non-negative"),
                                          (np.ones((3, 1)), "K >= 2")])
def test_probabilities_are_checked(bad, message):
    with pytest.raises(ValueError, match=message):
        score.check_probabilities(bad)


# --- precision / recall / density / coverage ------------------------------------------------------

def dense_prdc(real, fake, k):
    """The definitions with a dense float64 matrix and closed balls: the reference for ties."""
    d_rr = np.sqrt(((real[:, None] - real[None]) ** 2).sum(-1))
    d_ff = np.sqrt(((fake[:, None] - fake[None]) ** 2).sum(-1))
    d_rf = np.sqrt(((real[:, None] - fake[None]) ** 2).sum(-1))
    r = np.sort(d_rr, axis=1)[:, k]
    s = np.sort(d_ff, axis=1)[:, k]
    inside = d_rf <= r[:, None]
    return {"precision": inside.any(0).mean(), "recall": (d_rf <= s[None, :]).any(1).mean(),
            "density": inside.sum() / (k * fake.shape[0]), "coverage": inside.any(1).mean()}


def test_prdc_with_ties_matches_the_dense_closed_ball_definition():
    """Integer coordinates: many exactly equal distances and repeated points, where only the
    exact distances and <= decide; every chunk size gives the dense answer."""
    rng = np.random.default_rng(10)
    real = rng.integers(0, 3, size=(120, 4)).astype(np.float32)
    fake = rng.integers(0, 3, size=(90, 4)).astype(np.float32)
    expected = dense_prdc(real.astype(np.float64), fake.astype(np.float64), 3)
    for chunk in (7, 256):
        got = prdc.prdc(real, fake, 3, chunk=chunk)
        assert got == pytest.approx(expected, abs=0), (chunk, got, expected)


def test_prdc_planted_values():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(300, 8))
    same = prdc.prdc(x, x.copy(), 5)
    assert same == pytest.approx({"precision": 1.0, "recall": 1.0, "coverage": 1.0, "density": 6 / 5})
    far = prdc.prdc(x, x + 100.0, 5)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    # one real image far from the others, repeated 6 times (its 5-NN radius is 0), emitted as it
    # is: inside its own balls only (prdc's strict < counts it nowhere)
    lone = x[:1] + 50.0
    repeated = np.concatenate([np.repeat(lone, 6, axis=0), x[1:100]])
    copies = prdc.prdc(repeated, np.repeat(lone, 20, axis=0), 5)
    assert copies == pytest.approx({"precision": 1.0, "coverage": 6 / 105, "density": 6 / 5, "recall": 6 / 105})


def test_prdc_recall_and_coverage_recover_the_kept_share_of_modes():
    """Planted: 10 well-separated clusters, the fake set draws from 4 of them. Recall and
    coverage are 0.4 of the real-vs-real values (within 0.05), precision stays that of real."""
    rng = np.random.default_rng(12)
    centres = rng.normal(size=(10, 16)) * 20

    def draw(n, classes):
        return centres[rng.choice(classes, n)] + rng.normal(size=(n, 16))

    real, other, fake = draw(1000, np.arange(10)), draw(1000, np.arange(10)), draw(1000, np.arange(4))
    rr, dropped = prdc.prdc(real, other, 5), prdc.prdc(real, fake, 5)
    for name in ("recall", "coverage"):
        assert dropped[name] == pytest.approx(0.4 * rr[name], abs=0.05), (name, dropped, rr)
    assert dropped["precision"] == pytest.approx(rr["precision"], abs=0.05)


# --- Vendi ----------------------------------------------------------------------------------------

def test_vendi_planted_values():
    rng = np.random.default_rng(13)
    basis = np.linalg.qr(rng.normal(size=(32, 32)))[0]
    assert vendi.vendi_score(np.repeat(basis[:1], 50, axis=0)) == pytest.approx(1.0)
    assert vendi.vendi_score(basis[:20]) == pytest.approx(20.0)                       # n <= d: n x n route
    assert vendi.vendi_score(np.repeat(basis[:7] * 3.0, 9, axis=0)) == pytest.approx(7.0)  # n > d: dual route


def test_vendi_counts_all_zero_rows_as_one_item():
    basis = np.eye(16)
    with_blanks = np.concatenate([basis[:5], np.zeros((30, 16))])
    # 5 orthogonal items once each, one blank item 30 times: entropy of (1/35 x 5, 30/35)
    shares = np.array([1 / 35] * 5 + [30 / 35])
    assert vendi.vendi_score(with_blanks) == pytest.approx(np.exp(-(shares * np.log(shares)).sum()))


def test_vendi_dual_equals_the_n_by_n_definition():
    x = np.random.default_rng(14).normal(size=(300, 12))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    values = np.linalg.eigvalsh(unit @ unit.T / 300)
    values = values[values > 1e-15]
    assert vendi.vendi_score(x) == pytest.approx(np.exp(-(values * np.log(values)).sum()), rel=1e-10)


# --- the one_per_class control (memoriser, per_class: true) --------------------------------------

def test_per_class_memoriser_emits_one_pool_image_per_class_in_the_real_mix(digits_prepared):
    from audit.gans import SamplerContext, make_sampler
    from audit.gans.planted import quota_counts

    data = digits_prepared
    sampler = make_sampler("opc", {"type": "memoriser", "per_class": True, "noise_std": 0}, SamplerContext(data=data))
    batch = sampler.sample(1000, seed=3)
    pixels = batch.images.reshape(1000, -1)
    distinct, which = np.unique(pixels, axis=0, return_inverse=True)
    assert distinct.shape[0] == data.n_classes                        # one image per class
    assert sorted(batch.planted_labels[np.unique(which, return_index=True)[1]]) == list(range(data.n_classes))
    pool_pixels = {p.tobytes() for p in data.subset("pool")[0].reshape(-1, pixels.shape[1])}
    assert all(p.tobytes() in pool_pixels for p in distinct)           # drawn from the pool
    counts = np.bincount(batch.planted_labels, minlength=data.n_classes)
    np.testing.assert_array_equal(counts, quota_counts(data.class_distribution(), 1000))  # the real mix, exactly
    assert sampler.truth["support_size"] == data.n_classes and sampler.truth["per_class"]
    np.testing.assert_array_equal(sampler.sample(1000, seed=3).images, batch.images)        # deterministic


def test_per_class_memoriser_refuses_k(digits_prepared):
    from audit.gans import SamplerContext, make_sampler
    from audit.io import AuditInputError

    with pytest.raises(AuditInputError, match="remove k"):
        make_sampler("opc", {"type": "memoriser", "per_class": True, "k": 10}, SamplerContext(data=digits_prepared))
    with pytest.raises(AuditInputError, match="per_class"):
        make_sampler("opc", {"type": "memoriser", "per_class": "yes"}, SamplerContext(data=digits_prepared))


# --- the stage ------------------------------------------------------------------------------------

def write_inputs(tmp_path, rng, n_real=200, n_gan=500, d=16, k=10, gan_shift=0.0, n_pool=150):
    def feats(n, shift):
        x = rng.normal(size=(n, d)) + shift
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    def table(n):
        p = rng.dirichlet(np.ones(k) * 0.3, n)
        return pd.DataFrame({"row": np.arange(n), **{f"p_{c}": p[:, c] for c in range(k)}})

    np.save(tmp_path / "real.npy", feats(n_real, 0.0))
    np.save(tmp_path / "gan.npy", feats(n_gan, gan_shift))
    np.save(tmp_path / "pool.npy", feats(n_pool, 0.0))
    table(n_real).to_csv(tmp_path / "test.csv", index=False)
    table(n_gan).to_csv(tmp_path / "labels.csv", index=False)


def stage_args(tmp_path, out="out", reference=True, **overrides):
    options = {"k": 5, "kid-subsets": 10, "kid-subset-size": 1000, "bootstrap": 20, "permutations": 20,
               "alpha": 0.05, "seed": 0, "threads": 1, **overrides}
    args = ["--real-reference", str(tmp_path / "pool.npy")] if reference else []
    args += ["--name", "g", "--real-features", str(tmp_path / "real.npy"), "--features", str(tmp_path / "gan.npy"),
            "--labels", str(tmp_path / "labels.csv"), "--annotator-test", str(tmp_path / "test.csv"),
            "--out-json", str(tmp_path / f"{out}.json"), "--out-png", str(tmp_path / f"{out}.png")]
    for key, value in options.items():
        args += [f"--{key}", str(value)]
    return args


def test_stage_writes_every_metric_and_one_verdict_deterministically(tmp_path):
    from audit import feature_metrics

    write_inputs(tmp_path, np.random.default_rng(15), gan_shift=0.5)
    feature_metrics.main(stage_args(tmp_path, "a"))
    feature_metrics.main(stage_args(tmp_path, "b"))
    a, b = (json.loads((tmp_path / f"{o}.json").read_text()) for o in ("a", "b"))
    assert a == b
    # m = min(500 GAN, 200 test, 150 pool) rows of the GAN and of the pool, each against all 200 test rows
    assert a["n_same"] == 150 and a["fd"]["n"] == [150, 200] and a["prdc"]["n"] == [150, 200]
    assert a["reference"] == a["fd"]["reference"] == "real pool images" and a["kid"]["real_vs_real_n"] == [150, 200]
    assert a["fd"]["full"] > 0 and a["fd"]["n_full"] == [500, 200]
    (verdict,) = a["verdicts"]
    assert verdict["test"] == "feature_metrics.fd" and verdict["p_value"] == a["fd"]["p_value"]
    # a shift of 0.5 in every one of 16 coordinates before normalising: far from the real features
    assert verdict["rejected"] and a["fd"]["interval"][0] > a["fd"]["real_vs_real_interval"][1]
    assert (tmp_path / "a.png").stat().st_size > 10_000


def test_real_vs_real_is_the_pool_against_every_test_row_and_the_gan_never_meets_the_pool(tmp_path):
    """The design of "Same N" in FEATURE_METRICS.md, recomputed from the arrays: GAN value =
    metric(G, T) and real-vs-real = metric(R, T) with T every test row, G and R the stage's m-row
    subsamples of the GAN and of the pool. Fails if the stage halves the test split, compares
    the GAN with the pool, or draws R and G at different sizes."""
    from audit import feature_metrics

    write_inputs(tmp_path, np.random.default_rng(19), n_real=120, n_gan=300, n_pool=90)
    feature_metrics.main(stage_args(tmp_path, "p"))
    result = json.loads((tmp_path / "p.json").read_text())
    test, gan, pool = (np.load(tmp_path / f"{name}.npy").astype(np.float64) for name in ("real", "gan", "pool"))
    g_rows, r_rows = feature_metrics.same_size_rows(300, 120, 90, seed=0)
    assert len(g_rows) == len(r_rows) == 90 and len(set(g_rows)) == 90
    assert result["prdc"]["gan"] == prdc.prdc(test, gan[g_rows], 5)
    assert result["prdc"]["real_vs_real"] == prdc.prdc(test, pool[r_rows], 5)
    assert result["fd"]["value"] == frechet.frechet_distance(gan[g_rows], test)
    assert result["fd"]["real_vs_real"] == frechet.frechet_distance(pool[r_rows], test)
    assert result["vendi"]["real"] == vendi.vendi_score(pool[r_rows])


def test_without_a_reference_the_test_split_is_halved_as_the_api_does(tmp_path):
    """The API has one real set: without --real-reference the stage keeps the halves design
    (m = min(n_gan, n_test // 2) a side) and says so."""
    from audit import feature_metrics

    write_inputs(tmp_path, np.random.default_rng(20))
    feature_metrics.main(stage_args(tmp_path, "h", reference=False))
    result = json.loads((tmp_path / "h.json").read_text())
    assert result["n_same"] == 100 and result["fd"]["n"] == [100, 100] and result["prdc"]["n"] == [100, 100]
    assert result["reference"] == "other real test images"
    assert "100 other real test images" in result["verdicts"][0]["hypothesis"]


@pytest.mark.parametrize("change, fragments", [
    ("width", ("gan.npy", "width 8", "real.npy")),
    ("pool_width", ("pool.npy", "width 8", "real.npy")),
    ("small_pool", ("pool.npy", "5 real rows", "feature_metrics.k")),
    ("small_test", ("real.npy", "5 real rows", "feature_metrics.k")),
    ("columns", ("labels.csv", "p_0")),
    ("rows", ("labels.csv", "rows")),
    ("small", ("real.npy", "feature_metrics.k")),
    ("nan", ("gan.npy", "NaN")),
])
def test_stage_rejects_bad_inputs_with_one_line(tmp_path, capsys, change, fragments):
    from audit import feature_metrics

    rng = np.random.default_rng(16)
    write_inputs(tmp_path, rng)
    if change in ("width", "pool_width"):
        np.save(tmp_path / ("gan.npy" if change == "width" else "pool.npy"), rng.normal(size=(500, 8)).astype(np.float32))
    elif change in ("small_pool", "small_test"):
        which = "pool.npy" if change == "small_pool" else "real.npy"
        np.save(tmp_path / which, np.load(tmp_path / which)[:5])
    elif change == "columns":
        pd.DataFrame({"row": [0, 1], "q_0": [1, 0]}).to_csv(tmp_path / "labels.csv", index=False)
    elif change == "rows":
        pd.read_csv(tmp_path / "labels.csv").iloc[:10].to_csv(tmp_path / "labels.csv", index=False)
    elif change == "small":
        np.save(tmp_path / "real.npy", np.load(tmp_path / "real.npy")[:10])
    elif change == "nan":
        gan = np.load(tmp_path / "gan.npy")
        gan[3, 2] = np.nan
        np.save(tmp_path / "gan.npy", gan)
    # "small": the halves design (no pool) needs n_test // 2 > k
    assert_cli_error(feature_metrics.main, stage_args(tmp_path, reference=change != "small"), capsys, *fragments)


def test_too_few_gan_samples_give_an_undefined_verdict_not_a_number(tmp_path):
    """samples.n = 2 (the schema's minimum, issue 11.10): m = 2 <= k, so no metric is a number;
    the verdict could not run and says why, and the declared figure exists. Fails if the stage
    errors or reports any value from 2 samples."""
    from audit import feature_metrics

    write_inputs(tmp_path, np.random.default_rng(18))
    np.save(tmp_path / "gan.npy", np.load(tmp_path / "gan.npy")[:2])
    pd.read_csv(tmp_path / "labels.csv").iloc[:2].to_csv(tmp_path / "labels.csv", index=False)
    feature_metrics.main(stage_args(tmp_path, "u"))
    result = json.loads((tmp_path / "u.json").read_text())
    assert "fd" not in result and "prdc" not in result and "k = 5" in result["undefined"]
    assert "min(n_gan, n_test, n_pool) = 2" in result["undefined"]
    (verdict,) = result["verdicts"]
    assert verdict["p_value"] is None and verdict["state"] == "undefined" and verdict["reason"] == result["undefined"]
    assert (tmp_path / "u.png").stat().st_size > 0


# --- the report's section -------------------------------------------------------------------------

def test_report_says_the_score_is_fooled_only_where_the_numbers_show_it(tmp_path):
    from audit import feature_metrics
    from audit.report import feature_metric_columns
    from audit.reporting.sections import feature_metrics_section

    write_inputs(tmp_path, np.random.default_rng(17))
    feature_metrics.main(stage_args(tmp_path, "g"))
    honest = json.loads((tmp_path / "g.json").read_text())
    fooled = json.loads(json.dumps(honest))
    fooled["gan"] = "fooled"
    fooled["inception_score"]["value"] = 0.95 * fooled["inception_score"]["real"]  # within 10%
    fooled["prdc"]["gan"]["coverage"] = 0.4 * fooled["prdc"]["real_vs_real"]["coverage"]  # below half
    text = feature_metrics_section(["g", "fooled"], {"g": honest, "fooled": fooled})
    assert "Where the inception-style score is fooled: <b>fooled</b>" in text and "<b>g</b>:" not in text
    assert "FD (annotator features)" in text and text.count("FID") == 1 and "none of these numbers is an FID" in text
    assert "with 200 real test images" in text and "150\nreal pool images against the same test images" in text
    fooled["prdc"]["gan"]["coverage"] = 0.6 * fooled["prdc"]["real_vs_real"]["coverage"]  # not below half
    assert "fooled:" not in feature_metrics_section(["fooled"], {"fooled": fooled})
    columns = feature_metric_columns(honest)
    assert columns["fd_annotator"] == honest["fd"]["value"] and columns["coverage_k5"] == honest["prdc"]["gan"]["coverage"]
