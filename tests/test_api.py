"""audit.api: docs/API.md's worked example runs as written and recovers what the planted memoriser
planted; on the same arrays written as the stages' input files, the skew and feature_metrics
stages print the API's numbers; `import audit.api` never imports Snakemake; bad arrays get one
line naming the argument."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from audit import api
from audit.io import AuditInputError
from tests.conftest import REPO


@pytest.fixture(scope="module")
def docs():
    """Every ```python block of docs/API.md, in order, in one namespace (the example's own sizes:
    1,000 samples of 8x8 digits)."""
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "API.md").read_text(), re.S)
    assert len(blocks) >= 6
    namespace: dict = {}
    for number, block in enumerate(blocks):
        exec(compile(block, f"docs/API.md python block {number + 1}", "exec"), namespace)
    return namespace


def test_docs_example_recovers_the_planted_memoriser(docs):
    """The memoriser emits 50 training images with noise of 2 grey levels: every sample is a copy,
    its samples are worth far fewer real images than the 809 of the train split, and its features
    sit farther from the real ones than real images do. Each verdict could come out the other way
    if the API passed its arrays in the wrong roles (train for held-out, real for fake)."""
    copies, diversity, fm = docs["copies"], docs["diversity"], docs["fm"]
    assert docs["memoriser"].truth["support_size"] == 50
    assert copies.verdict.rejected and copies.value > 0.9 and copies.interval[0] <= copies.value <= copies.interval[1]
    n_train = int(docs["grid"][-1])
    assert diversity.verdict.rejected and diversity.interval[1] < n_train
    assert fm.fd.verdict.rejected and fm.fd.value > fm.fd.details["real_vs_real"]
    assert fm.recall.value < fm.recall.details["real_vs_real"]
    # the birthday paradox: more duplicates than real draws hold, and the planted support of 50 in
    # the interval (SUPPORT.md measures ~92% coverage for this setting; seed 0 is one draw of it)
    support = docs["support"]
    assert support.verdict.rejected and support.interval[0] <= 50 <= support.interval[1]
    # unseen noisy copies of training images are told from real test images by a 10-NN on pixels
    told = docs["told"]
    assert told.verdict.rejected and told.value > 0.5 and told.details["n_test"] == 2 * len(docs["test_x"])
    for estimate in docs["skew"].estimates.values():  # every estimate's test ran and agrees with its p-value
        assert estimate.verdict.p_value is not None
        assert estimate.verdict.rejected == (estimate.verdict.p_value < estimate.verdict.alpha)


def probability_table(probs: np.ndarray, **columns) -> pd.DataFrame:
    return pd.DataFrame({**columns, "predicted": probs.argmax(1), "confidence": probs.max(1),
                         **{f"p_{k}": probs[:, k] for k in range(probs.shape[1])}})


def test_stages_print_the_apis_numbers_on_the_same_files(docs, tmp_path):
    """The example's arrays written as the stages' input files (the label stage's table, the
    annotator's test predictions, features .npy) and run through the skew and feature_metrics
    stages with the same options: the JSON holds the API's numbers, to the last bit."""
    from audit import feature_metrics as fm_stage
    from audit import skew as skew_stage

    data, fake_probs, real_probs = docs["data"], docs["fake_probs"], docs["real_probs"]
    probability_table(fake_probs).to_csv(tmp_path / "labels.csv", index=False)
    probability_table(real_probs, label=docs["test_y"]).to_csv(tmp_path / "test.csv", index=False)
    (tmp_path / "truth.json").write_text("{}")
    skew_stage.main(["--labels", str(tmp_path / "labels.csv"), "--annotator-test", str(tmp_path / "test.csv"),
                     "--data", str(data.path), "--truth", str(tmp_path / "truth.json"), "--name", "memoriser",
                     "--threshold", "0.9", "--alpha", "0.05", "--null-draws", "200", "--bootstrap", "200", "--seed", "0",
                     "--out-json", str(tmp_path / "skew.json"), "--out-csv", str(tmp_path / "skew.csv"),
                     "--out-png", str(tmp_path / "skew.png")])
    stage = json.loads((tmp_path / "skew.json").read_text())
    skew = docs["skew"]
    for name, entry in stage["estimates"].items():
        assert skew.estimates[name].value == entry["tv"]
        assert skew.estimates[name].interval == (entry["tv_ci"]["low"], entry["tv_ci"]["high"])
    assert [v.to_json() for v in [*map(lambda e: e.verdict, skew.estimates.values()),
                                  *map(lambda e: e.verdict, skew.chi_square.values())]] == stage["verdicts"]

    pixels = docs["pixels"]
    np.save(tmp_path / "real.npy", pixels(docs["test_x"]).astype(np.float32))
    np.save(tmp_path / "fake.npy", pixels(docs["fake"]).astype(np.float32))

    def run_stage(name: str, *extra: str) -> dict:
        """The feature_metrics stage on the files above with the API calls' options."""
        fm_stage.main(["--name", "memoriser", "--real-features", str(tmp_path / "real.npy"), *extra,
                       "--features", str(tmp_path / "fake.npy"), "--labels", str(tmp_path / "labels.csv"),
                       "--annotator-test", str(tmp_path / "test.csv"), "--k", "5", "--kid-subsets", "20",
                       "--kid-subset-size", "1000", "--bootstrap", "50", "--permutations", "50", "--alpha", "0.05",
                       "--seed", "0", "--threads", "1", "--out-json", str(tmp_path / f"{name}.json"),
                       "--out-png", str(tmp_path / f"{name}.png")])
        return json.loads((tmp_path / f"{name}.json").read_text())

    stage = run_stage("fm")
    probabilities = [pd.read_csv(tmp_path / f"{name}.csv")[[f"p_{k}" for k in range(10)]].to_numpy()
                     for name in ("test", "labels")]
    ours = api.feature_metrics(np.load(tmp_path / "real.npy"), np.load(tmp_path / "fake.npy"), *probabilities,
                               kid_subsets=20, bootstrap=50, permutations=50, seed=0)
    assert (ours.fd.value, list(ours.fd.interval), ours.fd.verdict.p_value) == (
        stage["fd"]["value"], stage["fd"]["interval"], stage["fd"]["p_value"])
    assert ours.kid.value == stage["kid"]["value"] and ours.vendi.value == stage["vendi"]["value"]
    assert ours.inception_score.value == stage["inception_score"]["value"]
    assert {k: getattr(ours, k).value for k in ("precision", "recall", "density", "coverage")} == stage["prdc"]["gan"]
    fd_alone = api.frechet_distance(np.load(tmp_path / "real.npy"), np.load(tmp_path / "fake.npy"), bootstrap=50,
                                    permutations=50, seed=0)
    assert fd_alone.value == stage["fd"]["value"] and fd_alone.verdict.to_json() == stage["verdicts"][0]

    # with the pool split as the real-vs-real reference, as the workflow runs the stage
    np.save(tmp_path / "pool.npy", pixels(data.subset("pool")[0]).astype(np.float32))
    pooled = run_stage("fm_pool", "--real-reference", str(tmp_path / "pool.npy"))
    assert pooled["reference"] == "real pool images" and pooled["fd"]["value"] != stage["fd"]["value"]
    reference = np.load(tmp_path / "pool.npy")
    fd_pool = api.frechet_distance(np.load(tmp_path / "real.npy"), np.load(tmp_path / "fake.npy"), bootstrap=50,
                                   permutations=50, seed=0, reference=reference)
    assert fd_pool.value == pooled["fd"]["value"] and fd_pool.verdict.to_json() == pooled["verdicts"][0]
    ours = api.feature_metrics(np.load(tmp_path / "real.npy"), np.load(tmp_path / "fake.npy"), *probabilities,
                               kid_subsets=20, bootstrap=50, permutations=50, seed=0, reference=reference)
    assert {k: getattr(ours, k).value for k in ("precision", "recall", "density", "coverage")} == pooled["prdc"]["gan"]
    assert ours.kid.value == pooled["kid"]["value"] and ours.details["prdc"] == pooled["prdc"]


def test_options_default_to_the_packaged_config():
    """An option left out is the default config.yaml's value (the schema's where config.yaml is
    silent): the same FD with and without spelling them out, and a different one at another seed."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert api.defaults("skew")["null_draws"] == config["skew"]["null_draws"]
    assert api.defaults("label")["confidence_threshold"] == config["label"]["confidence_threshold"]
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(60, 3)), rng.normal(0.5, 1, size=(40, 3))
    options = {key: api.defaults("feature_metrics")[key] for key in ("bootstrap", "permutations", "alpha")}
    implicit = api.frechet_distance(real, fake)
    assert implicit == api.frechet_distance(real, fake, **options, seed=config["seed"])
    assert implicit.interval != api.frechet_distance(real, fake, seed=config["seed"] + 1).interval


def test_import_never_loads_snakemake():
    code = ("import sys, audit; light = not any(m in sys.modules for m in ('numpy', 'torch', 'snakemake')); "
            "import audit.api; audit.class_skew; print(light, 'snakemake' in sys.modules, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False", "False"]


@pytest.mark.parametrize("call, message", [
    (lambda: api.class_skew([0, 10], [0.9, 0.9], [0, 1], [0, 1], [0.9, 0.9], np.full(10, 0.1)),
     "predicted: class indices must be in [0, 10)"),
    (lambda: api.class_skew([0, 1], [0.9, 0.9], [0, 1], [0, 1], [0.9, 0.9], np.full(10, 0.2)),
     "reference: must be a class distribution"),
    (lambda: api.frechet_distance(np.zeros((10, 3)), np.zeros((10, 4))), "fake: rows of shape (4,), real has (3,)"),
    (lambda: api.frechet_distance(np.zeros((10, 3)), np.zeros((10, 3)), reference=np.zeros((10, 4))),
     "reference: rows of shape (4,), real has (3,)"),
    (lambda: api.vendi_score(np.array([[np.nan, 1.0]])), "features: expected finite numbers"),
    (lambda: api.covariance_spectrum(np.zeros((5, 2, 2, 1)), np.zeros((5, 2, 2, 1), np.uint8),
                                     np.zeros((5, 2, 2, 1), np.uint8)), "real: expected uint8 images"),
    (lambda: api.n_equiv([20, 10], np.ones((1, 2, 3), bool), np.ones((1, 3), bool)), "n_grid: sizes must increase"),
])
def test_bad_arrays_name_the_argument(call, message):
    with pytest.raises(AuditInputError) as error:
        call()
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_chance_discriminator_is_not_told_apart():
    """A discriminator that says 1/2 everywhere decides "real" for every image: accuracy exactly
    1/2 on balanced sets, p = P(Bin(400, 1/2) >= 200) > 1/2, no JS above 0. Swapping prob_fake
    and is_fake, or reading accuracy from the wrong class, would change each of these."""
    is_fake = np.r_[np.zeros(200, bool), np.ones(200, bool)]
    result = api.two_sample_test(np.full((3, 400), 0.5), is_fake, bootstrap=50, seed=0)
    assert result.value == 0.5 and result.details["js_bound"] == pytest.approx(0.0, abs=1e-12)  # log 2 - log 2
    assert result.verdict.p_value > 0.5 and not result.verdict.rejected
    perfect = api.two_sample_test(is_fake.astype(float) * 0.98 + 0.01, is_fake, bootstrap=50, seed=0)
    assert perfect.value == 1.0 and perfect.verdict.rejected and perfect.details["js_bound"] > 0.6


def test_stage_modules_win_over_api_names():
    """`audit.feature_metrics` and `audit.memorisation` are stages and API functions: the lazy
    re-export must leave `from audit import feature_metrics` meaning the stage module."""
    code = ("import types, audit; from audit import feature_metrics, memorisation; "
            "print(isinstance(feature_metrics, types.ModuleType), isinstance(memorisation, types.ModuleType), "
            "audit.class_skew is audit.api.class_skew)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.stdout.split() == ["True", "True", "True"], done.stderr
