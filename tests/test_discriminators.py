"""The discriminators stage (audit.discriminators): the ladder, the held-out sets, the command
line, and the planted truths (an exchangeable null, blank noise images, a memoriser)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from audit import discriminators as disc
from audit.io import AuditInputError, load_json
from benchmarks.discriminators import audit_run, blank_without_copies, exchangeable_null, ladder_args
from tests.conftest import assert_cli_error

LADDER = '[{"arch": "linear"}, {"arch": "smallcnn", "width": 0.25}, {"arch": "smallcnn", "width": 0.5}, {"arch": "auto"}]'


def test_width_one_is_the_default_small_cnn_bit_for_bit():
    from audit.models.classifier import build_classifier

    torch.manual_seed(0)
    default = build_classifier("smallcnn", (8, 8, 1), 10)
    torch.manual_seed(0)
    explicit = build_classifier("smallcnn", (8, 8, 1), 10, width=1.0)
    a, b = default.state_dict(), explicit.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="small CNN only"):
        build_classifier("resnet18", (64, 64, 3), 2, width=0.5)


def test_the_ladder_grows_in_capacity():
    rungs = disc.parse_ladder(LADDER, (8, 8, 1))
    counts = [disc.parameter_count(r, (8, 8, 1)) for r in rungs]
    # logistic regression: 64 x 2 + 2; the widths scale the CNN roughly quadratically
    assert counts[0] == 130 and counts == sorted(counts) and len(set(counts)) == 4
    assert [r.label for r in rungs] == ["logistic regression", "CNN x0.25", "CNN x0.5", "CNN"]


@pytest.mark.parametrize("ladder, fragment", [
    ("not json", "discriminators.ladder: not valid JSON"),
    ("[]", "discriminators.ladder: expected a non-empty list"),
    ('[{"arch": "linear", "depth": 3}]', "discriminators.ladder[0]"),
    ('[{"arch": "vgg"}]', "discriminators.ladder[0].arch"),
    ('[{"arch": "smallcnn", "width": -1}]', "discriminators.ladder[0].width"),
    ('[{"arch": "linear", "width": 2}]', "applies to the small CNN only"),
])
def test_bad_ladders_are_refused_naming_the_key(ladder, fragment):
    with pytest.raises(AuditInputError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        disc.parse_ladder(ladder, (8, 8, 1))


def test_split_sizes_scale_down_together_and_never_exceed_the_samples():
    real = {"train": 809, "val": 179, "test": 450}
    assert disc.split_sizes(real, 10000, 5000) == real
    small = disc.split_sizes(real, 359, 5000)
    assert sum(small.values()) <= 359 and small["train"] > small["test"] > small["val"] > 0
    assert disc.split_sizes(real, 10000, 100) == {"train": 100, "val": 100, "test": 100}


def test_held_out_sets_are_balanced_disjoint_and_from_their_splits(digits_prepared):
    samples = exchangeable_null(digits_prepared, 0)
    sets = disc.balanced_sets(disc.real_splits(digits_prepared), samples, 0, 5000)
    sizes = disc.split_sizes({n: digits_prepared.rows(n).size for n in ("train", "val", "test")}, len(samples), 5000)
    seen = []
    for name, (images, labels) in sets.items():
        n = sizes[name]
        assert images.shape[0] == 2 * n and (labels == 0).sum() == (labels == 1).sum() == n
        seen.append({img.tobytes() for img in images[labels == 1]})
    # the pool images appear once each: no GAN image is in two sets
    assert not (seen[0] & seen[2]) and not (seen[0] & seen[1]) and not (seen[1] & seen[2])
    test_real = {img.tobytes() for img in sets["test"][0][sets["test"][1] == 0]}
    split_images = {img.tobytes() for img in np.asarray(digits_prepared.images[digits_prepared.rows("test")])}
    assert test_real <= split_images


def run_stage(tmp_path, data, samples, *extra):
    np.save(tmp_path / "samples.npy", samples)
    argv = ["--name", "g", "--data", str(data.path), "--samples", str(tmp_path / "samples.npy"), "--ladder", LADDER,
            "--steps", "40", "--batch-size", "32", "--lr", "0.002", "--linear-lr", "0.03", "--weight-decay", "0.0005",
            "--seeds", "1", "--max-per-class", "5000", "--alpha", "0.05", "--bootstrap", "50", "--seed", "0",
            "--threads", "1", "--device", "cpu", "--out-json", str(tmp_path / "g.json"),
            "--out-csv", str(tmp_path / "g.csv"), "--out-png", str(tmp_path / "g.png"), *extra]
    return argv


def test_stage_flags_a_memoriser_of_ten_images_and_writes_its_verdict(tmp_path, digits_prepared):
    """Power and plumbing: a memoriser of 10 pool images is told apart by every rung, and the
    JSON holds one Verdict (to_json) under "verdicts" naming the smallest rung that rejects."""
    from audit.gans import SamplerContext, make_sampler

    images = make_sampler("m", {"type": "memoriser", "k": 10, "noise_std": 2},
                          SamplerContext(data=digits_prepared)).sample(1500, 0).images
    disc.main(run_stage(tmp_path, digits_prepared, images))
    out = load_json(tmp_path / "g.json")
    (verdict,) = out["verdicts"]
    assert verdict["test"] == "discriminators.ladder" and verdict["state"] == "flagged"
    assert verdict["text"].startswith("told apart: by a 130-parameter logistic regression")
    assert [r["label"] for r in out["ladder"]] == ["logistic regression", "CNN x0.25", "CNN x0.5", "CNN"]
    for rung in out["ladder"]:
        assert rung["accuracy"] > 0.8 and rung["p_holm"] < 0.05 and rung["js_interval"][0] > 0
        assert rung["n_test"] == 2 * out["images_per_class"]["test"]
    assert (tmp_path / "g.csv").stat().st_size > 0 and (tmp_path / "g.png").stat().st_size > 0


def test_too_few_samples_give_an_undefined_verdict(tmp_path, digits_prepared):
    disc.main(run_stage(tmp_path, digits_prepared, exchangeable_null(digits_prepared, 0)[:20]))
    (verdict,) = load_json(tmp_path / "g.json")["verdicts"]
    assert verdict["p_value"] is None and verdict["state"] == "undefined" and "too few images" in verdict["reason"]


def test_stage_input_errors_name_the_file_or_key(tmp_path, digits_prepared, capsys):
    samples = np.zeros((50, 9, 9, 1), dtype=np.uint8)
    assert_cli_error(disc.main, run_stage(tmp_path, digits_prepared, samples), capsys, "samples.npy", "(9, 9, 1)")
    argv = run_stage(tmp_path, digits_prepared, exchangeable_null(digits_prepared, 0))
    argv[argv.index("--alpha") + 1] = "1.5"
    assert_cli_error(disc.main, argv, capsys, "discriminators.alpha")
    argv = run_stage(tmp_path, digits_prepared, exchangeable_null(digits_prepared, 0))
    argv[argv.index("--ladder") + 1] = json.dumps([{"arch": "linear", "width": 3}])
    assert_cli_error(disc.main, argv, capsys, "discriminators.ladder[0].width")


def test_stage_is_deterministic_for_a_seed(tmp_path, digits_prepared):
    samples = exchangeable_null(digits_prepared, 1)
    results = []
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        disc.main(run_stage(tmp_path / sub, digits_prepared, samples))
        results.append(load_json(tmp_path / sub / "g.json"))
    assert results[0] == results[1]


# --- planted truths (slow: whole ladders, ~60-90 s on an idle core) --------------------------

NULL_RUNS = 20
NULL_STEPS = 100


@pytest.mark.slow
def test_null_false_positive_rate_at_every_capacity(digits_prepared):
    """A GAN equal to the real distribution (every pool image once: exchangeable with the real
    test split): over 20 runs (fresh discriminator seeds, splits and orders) each rung's test
    rejects at 0.05 in at most 2 runs (rate <= 0.10), and its JS bound's interval reaches 0
    (the clipped bound's interval contains 0) in at least 18. CI-size recipe (100 steps, one seed
    per rung); the default recipe's rates are measured by benchmarks/discriminators.py."""
    rows = []
    for run in range(NULL_RUNS):
        rows += audit_run(digits_prepared, exchangeable_null(digits_prepared, run),
                          ladder_args(run, steps=NULL_STEPS, seeds=1, bootstrap=100))
    for label in dict.fromkeys(r["label"] for r in rows):
        mine = [r for r in rows if r["label"] == label]
        assert len(mine) == NULL_RUNS
        rejected = sum(r["p_value"] < 0.05 for r in mine)
        assert rejected / NULL_RUNS <= 0.10, (label, rejected)
        assert sum(r["js_interval"][0] <= 0 for r in mine) >= NULL_RUNS - 2, label


@pytest.mark.slow
def test_blank_noise_images_are_told_apart_without_beating_the_bayes_limit(digits_prepared):
    """30% noise images among pool images (each pool image once, so nothing but the noise tells
    them apart). With f the test set's realised blank share: no rung beats the Bayes limit
    0.5 + f/2 by more than 3 binomial standard errors (beating it means the sets leak: the pool
    resampler with replacement does, TWO_SAMPLE.md); every CNN reaches at least 0.5 + f/4 - 3 SE,
    what a discriminator gets that calls every noise image a sample and guesses on the digits (a
    CNN that misses noise images falls below it); every rung rejects after Holm and has a JS
    bound whose interval is above 0. (The issue's "within 0.03 of 0.5 + f/2" is measured by
    benchmarks/discriminators.py --study blank; README "Finite discriminators".)"""
    images, is_blank = blank_without_copies(digits_prepared, 0.3, 0)
    args = ladder_args(0, steps=NULL_STEPS, seeds=2, bootstrap=200)
    sizes = disc.split_sizes({n: digits_prepared.rows(n).size for n in ("train", "val", "test")}, len(images), 5000)
    f_test = float(is_blank[disc.split_samples(len(images), sizes, 0)["test"]].mean())
    assert 0.2 < f_test < 0.4
    bayes = 0.5 + f_test / 2
    for rung in audit_run(digits_prepared, images, args):
        se = math.sqrt(bayes * (1 - bayes) / rung["n_test"])
        assert rung["accuracy"] <= bayes + 3 * se, (rung["label"], rung["accuracy"], bayes)
        assert rung["p_holm"] < 0.05 and rung["js_interval"][0] > 0, rung["label"]
        if rung["label"] != "logistic regression":
            assert rung["accuracy"] >= 0.5 + f_test / 4 - 3 * se, (rung["label"], rung["accuracy"])


def test_demo_finding_speaks_only_where_a_rung_fails_and_the_birthday_test_succeeds(tmp_path):
    import pandas as pd

    from audit.plots.discriminators import plot_demo

    cells = [{"k": k, "label": label, "parameters": params, "accuracy": acc, "p_value": p, "p_holm": p,
              "js_bound": 0.1, "reason": None}
             for k, label, params, acc, p in [(10, "logistic regression", 130, 0.95, 1e-9), (10, "CNN", 93154, 1.0, 1e-9),
                                             (300, "logistic regression", 130, 0.52, 0.3), (300, "CNN", 93154, 0.7, 1e-9)]]
    birthday = {k: {"birthday_rejected": True, "birthday_p_value": 1e-20, "support_text": f"support ~{k}",
                    "support_kind": "estimate", "support_estimate": float(k), "support_low": k * 0.9,
                    "support_high": k * 1.1, "support_bound": None} for k in (10, 300)}
    (sentence,) = disc.demo_finding(cells, birthday, 0.05)
    assert "130-parameter logistic regression does not tell a memoriser of k = 300" in sentence
    assert "support ~300" in sentence
    assert disc.demo_finding(cells, {**birthday, 300: {**birthday[300], "birthday_rejected": False}}, 0.05) == []
    assert disc.demo_finding([c for c in cells if c["p_holm"] < 0.05], birthday, 0.05) == []
    plot_demo(pd.DataFrame([{**c, **birthday[c["k"]]} for c in cells]), 0.05, tmp_path / "demo.png")
    assert (tmp_path / "demo.png").stat().st_size > 0
