"""Skew metrics against values computed by hand, the estimators against planted truth, the edge
cases (no confident sample, a singular confusion matrix) and the skew stage's verdicts."""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from audit import skew as stage
from audit.metrics import skew as sk
from audit.metrics.bootstrap import basic_interval, bias_corrected_interval, percentile_interval
from tests.conftest import assert_cli_error


def test_total_variation_by_hand():
    # |0.5-0.25| + |0.5-0.25| + |0-0.5| = 1.0, halved
    assert sk.total_variation([0.5, 0.5, 0.0], [0.25, 0.25, 0.5]) == pytest.approx(0.5)
    assert sk.total_variation([0.2, 0.8], [0.2, 0.8]) == 0.0


def test_kl_divergence_by_hand():
    # 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75)
    expected = 0.5 * math.log(2) + 0.5 * math.log(2 / 3)
    assert sk.kl_divergence([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected)
    # a dropped class in p costs nothing; mass where q has none is infinite
    assert sk.kl_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(math.log(2))
    assert sk.kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf


def test_max_min_ratio_by_hand():
    assert sk.max_min_ratio([0.3, 0.6, 0.1]) == pytest.approx(6.0)
    assert sk.max_min_ratio([0.5, 0.5, 0.0]) == math.inf


def test_class_frequencies():
    np.testing.assert_allclose(sk.class_frequencies(np.array([0, 0, 2, 2, 2, 1]), 4), [2 / 6, 1 / 6, 3 / 6, 0])
    # no labels: no distribution, not an all-zero vector that every divergence would score as perfect
    assert sk.class_frequencies(np.array([], dtype=int), 4) is None


def test_an_empty_distribution_never_scores_perfect():
    zeros = np.zeros(3)
    for divergence in (sk.total_variation, sk.kl_divergence):
        with pytest.raises(ValueError, match="summing to 1"):
            divergence(zeros, np.full(3, 1 / 3))
    assert sk.divergences(None, np.full(3, 1 / 3)) == {"tv": None, "kl": None, "max_min_ratio": None}


def test_confusion_matrix_is_p_predicted_given_true():
    true = np.array([0, 0, 0, 0, 1, 1])
    pred = np.array([0, 0, 0, 1, 1, 1])
    c = sk.confusion_matrix(true, pred, 3)
    # class 0: 3 of 4 right, 1 predicted as 1; class 1 always right; class 2 unseen -> identity column
    np.testing.assert_allclose(c, [[0.75, 0, 0], [0.25, 1, 0], [0, 0, 1]])
    np.testing.assert_allclose(c.sum(axis=0), 1)


def test_project_to_simplex():
    np.testing.assert_allclose(sk.project_to_simplex(np.array([0.2, 0.3, 0.5])), [0.2, 0.3, 0.5])
    # (1.2, -0.2): clipping the negative coordinate and shifting gives (1, 0)
    np.testing.assert_allclose(sk.project_to_simplex(np.array([1.2, -0.2])), [1.0, 0.0])
    # (0.6, 0.6, -0.5): drop the last, split the excess 0.2 equally
    np.testing.assert_allclose(sk.project_to_simplex(np.array([0.6, 0.6, -0.5])), [0.5, 0.5, 0.0])
    # batched, each row on its own; a NaN row stays NaN
    rows = sk.project_to_simplex(np.array([[1.2, -0.2], [0.3, 0.7], [np.nan, 0.0]]))
    np.testing.assert_allclose(rows[:2], [[1.0, 0.0], [0.3, 0.7]])
    assert np.isnan(rows[2]).all()


def test_corrected_distribution_inverts_known_confusion():
    confusion = np.array([[0.9, 0.2], [0.1, 0.8]])
    truth = np.array([0.3, 0.7])
    observed = confusion @ truth  # (0.41, 0.59)
    np.testing.assert_allclose(sk.corrected_distribution(observed, confusion), truth, atol=1e-12)


def test_confident_filter_biases_and_correction_does_not():
    """Planted truth: class 1 is hard for the annotator (often unconfident, sometimes wrong)."""
    rng = np.random.default_rng(0)
    truth = np.array([0.3, 0.5, 0.2])
    n = 200_000
    labels = rng.choice(3, n, p=truth)
    wrong = rng.random(n) < np.array([0.02, 0.15, 0.02])[labels]
    predicted = np.where(wrong, (labels + 1) % 3, labels)
    confidence = np.where(rng.random(n) < np.array([0.95, 0.5, 0.95])[labels], 0.99, 0.6)
    test_true = rng.choice(3, 50_000, p=[1 / 3] * 3)
    test_wrong = rng.random(50_000) < np.array([0.02, 0.15, 0.02])[test_true]
    test_pred = np.where(test_wrong, (test_true + 1) % 3, test_true)
    confusion = sk.confusion_matrix(test_true, test_pred, 3)
    estimates = sk.estimate_distributions(predicted, confidence, 0.9, confusion)
    assert sk.total_variation(estimates["corrected"], truth) < 0.01
    assert sk.total_variation(estimates["argmax"], truth) > 0.05
    assert sk.total_variation(estimates["confident"], truth) > 0.1


def test_chi_square_two_sample_matches_hand_computation():
    gan = np.array([0] * 30 + [1] * 10)
    real = np.array([0] * 20 + [1] * 20)
    # table [[30, 10], [20, 20]], expected [[25, 15], [25, 15]]
    expected_stat = 25 / 25 + 25 / 15 + 25 / 25 + 25 / 15
    result = sk.chi_square_two_sample(gan, real, 2)
    assert result["chi2"] == pytest.approx(expected_stat)
    assert result["dof"] == 1
    # an empty side cannot be tested: None with the reason, never NaN
    empty = sk.chi_square_two_sample(np.array([], dtype=int), real, 2)
    assert empty["p_value"] is None and empty["reason"]


# --- bootstrap intervals (audit/metrics/bootstrap.py) -------------------------------------------

def test_basic_and_bias_corrected_intervals_by_hand():
    replicates = np.arange(1, 101) / 100.0  # 0.01 .. 1.00; inverted-CDF 2.5% / 97.5%: 0.03 / 0.98
    assert percentile_interval(replicates) == (0.03, 0.98)
    # basic: [2 t - 0.98, 2 t - 0.03] with t = 0.5
    assert basic_interval(0.5, replicates) == pytest.approx((0.02, 0.97))
    # an estimate below its replicates (an upward-biased statistic): the basic interval reaches
    # below the estimate and is clipped at the parameter's minimum
    assert basic_interval(0.1, replicates, minimum=0.0) == pytest.approx((0.0, 0.17))
    # the estimate at the replicates' median: z0 = 0, BC is the percentile interval
    assert bias_corrected_interval(0.505, replicates) == pytest.approx(percentile_interval(replicates))
    # an estimate below every replicate pulls the BC interval to the lowest replicates
    low, high = bias_corrected_interval(0.0, replicates)
    assert low == 0.01 and high < 0.2
    with pytest.raises(ValueError):
        basic_interval(0.5, np.array([0.1, np.nan]))


def test_tv_interval_reaches_zero_exactly_when_the_test_does_not_reject():
    replicates = np.linspace(0.02, 0.06, 101)
    # estimate 0.05: basic interval [0.1 - 0.059, 0.1 - 0.021] = [0.041, 0.079]
    low, high = sk.tv_interval(0.05, replicates, p_value=0.01, alpha=0.05)
    assert low == pytest.approx(0.0408, abs=1e-3) and high == pytest.approx(0.0792, abs=1e-3)
    low, high = sk.tv_interval(0.05, replicates, p_value=0.2, alpha=0.05)
    assert low == 0.0 and high == pytest.approx(0.0792, abs=1e-3)


# --- the null, the bootstrap, the edge cases -------------------------------------------------

def perfect_annotator(true: np.ndarray) -> np.ndarray:
    """Cells of an annotator that is always right and always confident (K = 3)."""
    return true + 3


def test_perfect_generator_null_is_finite_sample_tv():
    """With a perfect annotator the null TV of the argmax and corrected estimates is the
    multinomial TV of n draws: E ~ sum_k sqrt(2 p_k (1 - p_k) / (pi n)) / 2."""
    reference = np.array([0.25, 0.25, 0.5])
    test_true = np.repeat(np.arange(3), 100)
    null = sk.perfect_generator_null(test_true, perfect_annotator(test_true), reference, 2000, 400, 0)
    expected = 0.5 * sum(math.sqrt(2 * p * (1 - p) / (math.pi * 2000)) for p in reference)
    assert null["argmax"].mean() == pytest.approx(expected, rel=0.15)
    np.testing.assert_allclose(null["corrected"], null["argmax"], atol=1e-12)  # C = I in every draw


def test_null_refuses_a_class_without_two_test_images():
    reference = np.full(3, 1 / 3)
    test_true = np.array([0, 0, 1, 1, 2])
    assert "[2]" in sk.null_unavailable(test_true, reference)
    with pytest.raises(ValueError, match="fewer than 2"):
        sk.perfect_generator_null(test_true, perfect_annotator(test_true), reference, 100, 10, 0)


def test_bootstrap_interval_covers_planted_value():
    rng = np.random.default_rng(1)
    truth = np.array([0.5, 0.25, 0.25])
    cells = sk.cell_counts(perfect_annotator(rng.choice(3, 5000, p=truth)), 3)
    test_true = np.repeat(np.arange(3), 200)
    replicates = sk.bootstrap_distributions(cells, test_true, perfect_annotator(test_true), 300, 0)
    low, high = np.percentile(replicates["argmax"], [2.5, 97.5], axis=0)
    assert np.all((low <= truth) & (truth <= high))
    # binomial standard error of p=0.5 at n=5000 is 0.0071: the interval is about +-1.96 of it
    assert (high[0] - low[0]) == pytest.approx(2 * 1.96 * 0.00707, rel=0.2)


def test_no_confident_sample_gives_undefined_not_perfect():
    reference = np.full(3, 1 / 3)
    test_true = np.repeat(np.arange(3), 20)
    gan_cells = np.array([30, 30, 40, 0, 0, 0])  # 100 samples, none confident
    result = sk.skew_tests(gan_cells, test_true, perfect_annotator(test_true), reference, 0.05, 50, 50, 0)
    confident = result["estimates"]["confident"]
    assert confident["distribution"] is None and confident["tv"] is None and confident["p_value"] is None
    assert confident["reason"] == "no GAN sample reaches the confidence threshold"
    assert result["estimates"]["argmax"]["p_value"] is not None  # the others still run


def test_singular_confusion_matrix_leaves_the_corrected_estimate_undefined():
    reference = np.full(3, 1 / 3)
    test_true = np.repeat(np.arange(3), 20)
    test_cells = np.where(test_true == 2, 1, test_true) + 3  # class 2 always called 1: C singular
    result = sk.skew_tests(np.array([0, 0, 0, 30, 40, 30]), test_true, test_cells, reference, 0.05, 50, 50, 0)
    assert result["condition"]["singular"] and result["condition"]["condition_number"] == math.inf
    assert "singular (rank 2 of 3)" in result["condition"]["warning"]
    corrected = result["estimates"]["corrected"]
    assert corrected["distribution"] is None and corrected["p_value"] is None
    assert "not identified" in corrected["reason"]


def test_ill_conditioned_confusion_matrix_is_reported():
    # an annotator barely better than chance on two classes: singular values 1 and 0.04, condition 25
    nearly = sk.confusion_condition(np.array([[0.52, 0.48], [0.48, 0.52]]))
    assert nearly["condition_number"] == pytest.approx(25) and not nearly["singular"]
    assert "ill-conditioned" in nearly["warning"]
    assert sk.confusion_condition(np.eye(3)) == {"condition_number": 1.0, "rank": 3, "singular": False,
                                                 "warning": None}


def test_key_number_in_words():
    reference = np.full(4, 0.25)
    assert sk.largest_deviation(np.array([0.625, 0.125, 0.125, 0.125]), reference, "abcd") == \
        "class a at 2.50x its real share (62.5% vs 25.0%)"
    assert sk.largest_deviation(np.array([0.5, 0.5, 0.0, 0.0]), reference, "abcd") == "2 classes missing (c, d)"


# --- the stage ------------------------------------------------------------------------------

def write_inputs(tmp_path, data, predicted, confidence, planted=None):
    """The skew stage's input files for GAN outputs (predicted, confidence) and the data's real test
    split labelled by a perfect, fully confident annotator."""
    test_rows = data.rows("test")
    pd.DataFrame({"row": np.arange(predicted.size), "predicted": predicted, "confidence": confidence}).to_csv(
        tmp_path / "labels.csv", index=False)
    pd.DataFrame({"row": test_rows, "label": data.labels[test_rows], "predicted": data.labels[test_rows],
                  "confidence": 1.0}).to_csv(tmp_path / "test.csv", index=False)
    truth = {} if planted is None else {"class_distribution": list(planted)}
    (tmp_path / "truth.json").write_text(json.dumps(truth))


def stage_args(tmp_path, data, threshold=0.9, alpha=0.05, null_draws=200):
    return ["--labels", str(tmp_path / "labels.csv"), "--annotator-test", str(tmp_path / "test.csv"),
            "--data", str(data.path), "--truth", str(tmp_path / "truth.json"), "--name", "g",
            "--threshold", str(threshold), "--alpha", str(alpha), "--null-draws", str(null_draws),
            "--bootstrap", "100", "--seed", "0", "--out-json", str(tmp_path / "out.json"),
            "--out-csv", str(tmp_path / "out.csv"), "--out-png", str(tmp_path / "out.png")]


def test_stage_writes_a_verdict_per_test(digits_prepared, tmp_path):
    data = digits_prepared
    rng = np.random.default_rng(0)
    skewed = np.full(10, 0.7 / 9)
    skewed[3] = 0.3
    write_inputs(tmp_path, data, rng.choice(10, 3000, p=skewed), np.full(3000, 0.99), skewed)
    stage.main(stage_args(tmp_path, data))
    result = json.loads((tmp_path / "out.json").read_text())
    verdicts = {v["test"]: v for v in result["verdicts"]}
    assert set(verdicts) == {"skew.argmax", "skew.confident", "skew.corrected", "skew.chi2_argmax",
                             "skew.chi2_confident"}
    for name in sk.ESTIMATES:
        v, entry = verdicts[f"skew.{name}"], result["estimates"][name]
        assert v["p_value"] == entry["p_value"] and v["alpha"] == 0.05
        assert entry["consistent_with_real"] == (entry["p_value"] >= 0.05)
        # class 3 at 0.3 against ~0.1: flagged at the smallest p 200 draws allow, with the key number
        assert v["state"] == "flagged" and v["p_value"] == pytest.approx(1 / 201)
        ratio = float(re.match(r"skewed: class 3 at (\d+\.\d+)x its real share", v["text"]).group(1))
        assert ratio == pytest.approx(0.3 / data.class_distribution()[3], abs=0.15)  # sd of the ratio ~0.09
        assert v["interval"][0] > 0.1 and v["hypothesis"] == result["hypothesis"]
    assert result["confusion_condition_number"] == 1.0 and result["warnings"] == []


def test_stage_no_confident_sample_is_undefined_not_consistent(digits_prepared, tmp_path):
    data = digits_prepared
    write_inputs(tmp_path, data, np.random.default_rng(0).choice(10, 500), np.full(500, 0.5))
    stage.main(stage_args(tmp_path, data, threshold=0.9))
    result = json.loads((tmp_path / "out.json").read_text())
    confident = result["estimates"]["confident"]
    assert confident["tv"] is None and confident["kl"] is None and confident["consistent_with_real"] is None
    verdict = next(v for v in result["verdicts"] if v["test"] == "skew.confident")
    assert verdict["state"] == "undefined" and "no GAN sample reaches" in verdict["text"]
    sources = set(pd.read_csv(tmp_path / "out.csv")["source"])
    assert "GAN (confident)" not in sources and "GAN (argmax)" in sources  # no made-up frequencies


@pytest.mark.parametrize("override, fragment", [
    ({"threshold": 1.0}, "label.confidence_threshold: must be in [0, 1), got 1.0"),
    ({"alpha": 0.0}, "skew.alpha: must be in (0, 1)"),
    ({"alpha": 0.01, "null_draws": 50}, "skew.null_draws: 50 draws cannot give a p-value below skew.alpha = 0.01"),
])
def test_stage_option_errors_are_one_line(digits_prepared, tmp_path, capsys, override, fragment):
    write_inputs(tmp_path, digits_prepared, np.zeros(10, dtype=int), np.ones(10))
    assert_cli_error(stage.main, stage_args(tmp_path, digits_prepared, **override), capsys, fragment)


def test_stage_input_errors_name_the_file(digits_prepared, tmp_path, capsys):
    write_inputs(tmp_path, digits_prepared, np.array([0, 12]), np.ones(2))
    assert_cli_error(stage.main, stage_args(tmp_path, digits_prepared), capsys, "labels.csv",
                     "class indices in [0, 10)")
    write_inputs(tmp_path, digits_prepared, np.array([0, 1]), np.array([0.5, 1.5]))
    assert_cli_error(stage.main, stage_args(tmp_path, digits_prepared), capsys, "labels.csv",
                     "probabilities in [0, 1]")


def test_schema_rejects_a_threshold_of_one_and_fills_the_skew_defaults():
    import copy

    import yaml

    from audit.config import schema_error
    from tests.conftest import REPO, default_config

    schema = REPO / "rules" / "config.schema.yaml"
    config = copy.deepcopy(default_config())
    config["label"]["confidence_threshold"] = 1.0
    assert schema_error(config, schema).startswith("label.confidence_threshold:")
    config["label"]["confidence_threshold"] = 0.9
    config["skew"]["alpha"] = 1.0
    assert schema_error(config, schema).startswith("skew.alpha:")
    properties = yaml.safe_load(schema.read_text())["properties"]["skew"]["properties"]
    assert properties["alpha"]["default"] == 0.05 and properties["null_draws"]["default"] == 1000
