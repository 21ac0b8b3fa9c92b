"""End to end: the whole DAG on a reduced digits config recovers the planted class skew."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import reduced_config, run_snakemake


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    config = reduced_config()
    workdir = tmp_path_factory.mktemp("digits_run")
    run_snakemake(workdir, config, "--cores", "2")
    return workdir, config


def skew(workdir, gan):
    return json.loads((workdir / "results" / "digits" / "skew" / f"{gan}.json").read_text())


def test_annotator_accuracy(finished_run):
    workdir, _ = finished_run
    metrics = json.loads((workdir / "results/digits/annotator/metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.97
    assert metrics["ece_after_calibration"] <= metrics["ece_before_calibration"] + 0.01


def test_planted_skew_is_recovered(finished_run):
    workdir, _ = finished_run
    result = skew(workdir, "skewed")
    planted = np.asarray(result["planted_distribution"])
    assert planted[0] == pytest.approx(0.3)
    assert result["estimates"]["corrected"]["tv_to_planted"] <= 0.02
    assert result["estimates"]["argmax"]["tv_to_planted"] <= 0.03
    # the skew is detected: far outside what a perfect generator shows
    corrected = result["estimates"]["corrected"]
    assert corrected["tv_ci"]["low"] > corrected["perfect_generator_tv_95"]
    assert corrected["max_min_ratio"] == pytest.approx(0.3 / (0.7 / 9), rel=0.2)


def test_uniform_control_is_not_flagged(finished_run):
    workdir, _ = finished_run
    result = skew(workdir, "uniform")
    for name in ("argmax", "corrected"):
        assert result["estimates"][name]["consistent_with_real"], name
    assert result["chi_square_vs_real_test"]["argmax"]["p_value"] > 0.01
    assert result["estimates"]["corrected"]["tv_to_planted"] <= 0.02


def test_memoriser_is_worth_few_real_images(finished_run):
    workdir, _ = finished_run
    result = json.loads((workdir / "results/digits/diversity/memoriser.json").read_text())
    n_equiv = result["scores"]["deep"]["n_equiv"]
    # k = 50 memorised images: censored below, or a value, but never above 2k
    assert n_equiv["censored"] == "below" or n_equiv["value"] <= 100, n_equiv


def test_summary_and_report(finished_run):
    workdir, config = finished_run
    summary = pd.read_csv(workdir / "results/digits/summary.csv")
    assert list(summary["gan"]) == list(config["gans"])
    html = (workdir / "results/digits/report.html").read_text()
    assert "data:image/png;base64" in html and "skewed" in html


def test_rerun_is_a_no_op_and_deletion_reruns_only_downstream(finished_run):
    workdir, _ = finished_run
    assert "Nothing to be done" in run_snakemake(workdir, finished_run[1], "-n").stdout
    (workdir / "results/digits/samples/skewed/samples.npy").unlink()
    dry = run_snakemake(workdir, finished_run[1], "-n").stdout
    planned = [line.strip().removeprefix("rule ").rstrip(":") for line in dry.splitlines()
               if line.startswith(("rule ", "localrule "))]
    planned = [p.removeprefix("localrule ") for p in planned]
    wildcards = {line.split("gan=")[1].strip() for line in dry.splitlines() if "wildcards: gan=" in line}
    assert sorted(planned) == sorted(["sample", "label", "skew", "spectrum", "diversity", "report", "all"]), dry
    assert wildcards == {"skewed"}, dry
