"""End to end on digits (reduced config, three planted controls): the metrics people already use
fail where the lecture says they do, and the feature-metrics stage shows it.

Stated before any run (issue 14):
- ``one_per_class`` (one pool image per class, in the real class mix): its inception-style score
  is within 10% of the real test split's; the FD test flags it;
- ``uniform`` (pool images in the real class mix): its FD interval contains the real-vs-real
  value at the same N;
- ``dropmodes`` (classes 0-4 only): its recall is *near* the share of real test images in the
  kept classes, near meaning within 0.10 absolute; the FD test flags it.

Not met, and so asserted differently (chosen after the first run, which is said here): the
issue's "coverage below 0.2" for ``one_per_class``. Digits' test split has 450 images, so the
same-N comparisons use m = 225 a side, and a generator of K images covers about K k / m of the
real points by the definition of coverage (each point lies in about k real balls): 10 x 5 / 225
= 0.22; the default run measured 0.240 (real vs real 0.964). Asserted instead: recall below 0.2
(the fake balls of repeated images are tiny, whatever m) and coverage below half the
real-vs-real value.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import reduced_config, run_snakemake

pytestmark = pytest.mark.slow

GANS = ("uniform", "one_per_class", "dropmodes")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    config = reduced_config()
    config["gans"] = {name: config["gans"][name] for name in GANS}
    config["feature_metrics"].update(bootstrap=100, permutations=100, kid_subsets=20)
    workdir = tmp_path_factory.mktemp("feature_metrics_run")
    targets = [f"results/digits/feature_metrics/{gan}.json" for gan in GANS]
    run_snakemake(workdir, config, "--cores", "2", *targets)
    return workdir


def result(workdir, gan):
    return json.loads((workdir / "results/digits/feature_metrics" / f"{gan}.json").read_text())


def test_one_image_per_class_fools_the_inception_score_not_coverage(finished_run):
    r = result(finished_run, "one_per_class")
    score = r["inception_score"]
    assert abs(score["value"] / score["real"] - 1) <= 0.10, score
    assert r["prdc"]["gan"]["recall"] < 0.2, r["prdc"]
    assert r["prdc"]["gan"]["coverage"] < 0.5 * r["prdc"]["real_vs_real"]["coverage"], r["prdc"]
    assert r["verdicts"][0]["rejected"], r["verdicts"][0]


def test_uniform_fd_interval_holds_the_real_vs_real_value(finished_run):
    fd = result(finished_run, "uniform")["fd"]
    assert fd["interval"][0] <= fd["real_vs_real"] <= fd["interval"][1], fd


def test_dropmodes_recall_is_near_the_kept_share(finished_run):
    r = result(finished_run, "dropmodes")
    truth = json.loads((finished_run / "results/digits/samples/dropmodes/truth.json").read_text())
    test = pd.read_csv(finished_run / "results/digits/annotator/test_predictions.csv")
    kept_share = test["label"].isin(truth["kept_classes"]).mean()
    assert abs(r["prdc"]["gan"]["recall"] - kept_share) <= 0.10, (r["prdc"], kept_share)
    assert r["verdicts"][0]["rejected"], r["verdicts"][0]
