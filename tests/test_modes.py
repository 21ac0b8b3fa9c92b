"""Mode coverage on Stacked MNIST: the literature's numbers, their floor, and ganaudit's detected
modes against planted generators of exactly M modes."""

import json

import numpy as np
import pandas as pd
import pytest

from audit import modes as modes_stage
from audit.metrics import kronecker as kr
from audit.metrics import modes as md
from tests.conftest import assert_cli_error

#: a per-digit confusion with the structure of the real annotator's (MODES.md): 97% right,
#: errors concentrated on a few look-alike pairs, the rest spread thin
LOOKALIKES = [(2, 5, 0.02), (5, 2, 0.02), (4, 9, 0.015), (9, 4, 0.015), (7, 1, 0.01), (3, 8, 0.01), (8, 3, 0.01)]


def population_confusion() -> np.ndarray:
    a = np.full((10, 10), 0.01 / 9)
    for true, read, rate in LOOKALIKES:
        a[read, true] += rate
    np.fill_diagonal(a, 0.0)
    np.fill_diagonal(a, 1.0 - a.sum(axis=0))
    return a


def digit_outputs(rng, per_digit: int, confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) of ``per_digit`` images of each digit read through ``confusion``."""
    true = np.repeat(np.arange(10), per_digit)
    predicted = np.array([rng.choice(10, p=confusion[:, d]) for d in true])
    return true, predicted


def planted_predictions(rng, modes: np.ndarray, n: int, pool_true, pool_predicted) -> np.ndarray:
    """The annotator's classes of n fresh triples of the given modes (uniform among them), each
    channel a pool digit of its class drawn as :func:`audit.data.stacked_mnist.draw_rows` draws it:
    a triple's label is its three digits' labels, so this is what labelling the images gives."""
    from audit.data.stacked_mnist import draw_rows

    members = [np.flatnonzero(pool_true == d) for d in range(10)]
    classes = rng.choice(modes, size=n)
    return kr.compose(pool_predicted[draw_rows(members, classes, rng)])


@pytest.fixture(scope="module")
def annotator_outputs():
    """Test digits (125 per digit, as the default split gives) and, independently, pool digits
    (100 per digit) read through the same population confusion: the pool's own error rates
    differ from the test's by sampling, as the real splits' do."""
    rng = np.random.default_rng(18)
    a = population_confusion()
    return digit_outputs(rng, 125, a), digit_outputs(rng, 100, a)


def test_literature_scores_and_kl_floor():
    predicted = np.repeat([0, 1, 2, 999], [50, 25, 25, 0])
    scores = md.literature_scores(predicted)
    assert scores["modes"] == 3 and scores["n"] == 100
    assert scores["kl_to_uniform"] == pytest.approx(np.log(1000) + 0.5 * np.log(0.5) + 2 * 0.25 * np.log(0.25))
    floor = md.kl_floor(26000, draws=100, seed=0)
    assert floor["approximation"] == pytest.approx(999 / 52000)
    assert 0.014 <= floor["mean"] <= 0.025 and abs(floor["mean"] - floor["approximation"]) < 0.001
    assert md.modes_with_at_least(np.array([0, 1, 9, 10, 11]), 10) == 2


def test_benjamini_hochberg_matches_its_definition():
    rng = np.random.default_rng(3)
    p = np.concatenate([rng.uniform(0, 1e-3, 30), rng.uniform(size=970)])
    found = md.benjamini_hochberg(p, 0.05)
    ordered = np.sort(p)
    k = max(i + 1 for i in range(1000) if ordered[i] <= 0.05 * (i + 1) / 1000)
    assert found.sum() == k and found[p <= ordered[k - 1]].all()
    assert not md.benjamini_hochberg(np.ones(1000), 0.05).any()


def test_a_perfect_annotator_leaks_nothing():
    """Test digits all read right: no mode receives misreads, so a mode with labels has p = 0 and
    an empty one p = 1, whatever the predictive draws."""
    true = np.repeat(np.arange(10), 50)
    counts = np.zeros(1000)
    counts[[5, 500]] = [30, 70]
    q = counts / counts.sum()
    p = md.leak_p_values(counts, q, true, true, 50, np.random.default_rng(0), prior=0.0)
    assert p[5] == p[500] == 0.0 and (p[counts == 0] == 1.0).all()


@pytest.mark.parametrize("m", [10, 100, 500, 1000])
def test_planted_m_modes_are_recovered_within_ten_percent(annotator_outputs, m):
    """The must-show at CI size: 26,000 samples of exactly M modes (chosen with the seed), their
    triples' digits from a pool whose error rates are not the test's; ganaudit's detected modes
    within 10% of M, beside the literature's count (inflated by misreads wherever M < 1000)."""
    (test_true, test_predicted), (pool_true, pool_predicted) = annotator_outputs
    rng = np.random.default_rng([0, m])
    modes = rng.choice(1000, m, replace=False)
    predicted = planted_predictions(rng, modes, md.LITERATURE_N, pool_true, pool_predicted)
    counts = np.bincount(predicted, minlength=1000)
    result = md.corrected_modes(counts, test_true, test_predicted, fdr=0.05, n_bootstrap=300, seed=0)
    literature = md.literature_scores(predicted)["modes"]
    print(f"M={m}: literature {literature}, at least 10 labels {md.modes_with_at_least(counts, 10)}, "
          f"ganaudit {result['modes_detected']}")
    assert abs(result["modes_detected"] - m) <= 0.1 * m
    assert literature > 1.5 * m if m <= 100 else literature >= m - 0.1 * m
    # the corrected distribution puts its mass on the planted modes
    assert result["distribution"][modes].sum() > 0.95
    assert result["kl_to_uniform"] == pytest.approx(np.log(1000 / m), abs=0.1)


def test_perfect_generator_literature_kl_through_an_annotator(annotator_outputs):
    """The uniform resampler's literature KL at 26,000 samples, labelled through an annotator
    that errs: within [0.014, 0.025] (the error-free floor is 0.019)."""
    (test_true, test_predicted), (pool_true, pool_predicted) = annotator_outputs
    rng = np.random.default_rng(5)
    predicted = planted_predictions(rng, np.arange(1000), md.LITERATURE_N, pool_true, pool_predicted)
    kl = md.literature_scores(predicted)["kl_to_uniform"]
    print(f"uniform: literature KL {kl:.4f}")
    assert 0.014 <= kl <= 0.025


def test_modes_stage_refuses_a_dataset_without_modes(digits_prepared, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"row": [0, 1], "predicted": [3, 4], "confidence": [0.9, 0.8]}).to_csv(labels, index=False)
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps({}))
    argv = ["--name", "g", "--spec", "{}", "--labels", str(labels), "--annotator-test", str(labels), "--data",
            str(digits_prepared.path), "--truth", str(truth), "--literature-n", "26000", "--min-samples", "10",
            "--fdr", "0.05", "--bootstrap", "100", "--floor-draws", "10", "--seed", "0",
            "--out-json", str(tmp_path / "m.json"), "--out-csv", str(tmp_path / "m.csv"),
            "--out-png", str(tmp_path / "m.png")]
    assert_cli_error(modes_stage.main, argv, capsys, str(digits_prepared.path), "stacked dataset")
    argv[argv.index("--fdr") + 1] = "1.5"
    assert_cli_error(modes_stage.main, argv, capsys, "modes.fdr")


def test_stacked_configs_validate():
    """config/stacked_mnist.yaml alone, and with the long-training file on top, pass the schema."""
    from audit.config import resolve_config, schema_error
    from tests.conftest import REPO

    schema = REPO / "rules" / "config.schema.yaml"
    for files in (["config/stacked_mnist.yaml"], ["config/stacked_mnist.yaml", "config/stacked_mnist_long.yaml"]):
        config, *_ = resolve_config([REPO / f for f in files], default=None)
        assert schema_error(config, schema) is None, files
        assert config["dataset"]["name"] == "stacked_mnist" and config["samples"]["n"] == md.LITERATURE_N
    assert config["gans"]["dcgan_small_d"]["disc_width"] == 20 and config["gans"]["dcgan"]["steps"] == 50000


def test_small_discriminator_setting_is_a_quarter_of_the_generator():
    """config/stacked_mnist.yaml's dcgan_small_d is Metz et al.'s setting: the discriminator has
    about a quarter of the generator's parameters (counted from the networks the DAG trains);
    the default-width dcgan's is not."""
    from audit.config import resolve_config
    from tests.conftest import REPO

    config, *_ = resolve_config([REPO / "config/stacked_mnist.yaml"], default=None)
    ratios = {}
    for name in ("dcgan", "dcgan_small_d"):
        counts = modes_stage.trained_parameters(config["gans"][name], (28, 28, 3))["parameters"]
        ratios[name] = counts["discriminator"] / counts["generator"]
    assert 0.2 <= ratios["dcgan_small_d"] <= 0.3 and ratios["dcgan"] > 0.5, ratios
    assert modes_stage.trained_parameters({"type": "resample", "n_modes": 10}, (28, 28, 3)) == {}


def test_modes_stage_end_to_end_on_a_planted_generator(annotator_outputs, tmp_path):
    """The stage on a prepared Stacked MNIST and label tables of a generator of 10 planted modes:
    its JSON gives the literature's count of the first 26,000 labels, ganaudit's detected modes
    within 10% of 10, the planted truth, an empty verdict list with the reason, and a table of
    1,000 modes and a figure."""
    from audit.data import load_source
    from audit.data.store import prepare
    from tests.conftest import DEFAULT_SPLITS

    data = prepare(load_source("stacked_mnist", triples={s: 1000 for s in ("train", "val", "pool", "test")}),
                   tmp_path / "data", DEFAULT_SPLITS, seed=0, progress=False)
    (test_true, test_predicted), (pool_true, pool_predicted) = annotator_outputs
    rng = np.random.default_rng(7)
    modes = rng.choice(1000, 10, replace=False)
    predicted = planted_predictions(rng, modes, md.LITERATURE_N + 1000, pool_true, pool_predicted)
    labels, test, truth = tmp_path / "labels.csv", tmp_path / "test.csv", tmp_path / "truth.json"
    pd.DataFrame({"row": np.arange(predicted.size), "predicted": predicted, "confidence": 0.9}).to_csv(labels,
                                                                                                      index=False)
    pd.DataFrame({"label": test_true, "predicted": test_predicted, "confidence": 0.95}).to_csv(test, index=False)
    planted = np.zeros(1000)
    planted[modes] = 0.1
    truth.write_text(json.dumps({"class_distribution": planted.tolist()}))
    out = tmp_path / "out"
    modes_stage.main(["--name", "modes10", "--spec", json.dumps({"type": "resample", "n_modes": 10}),
                      "--labels", str(labels), "--annotator-test", str(test), "--data", str(data.path),
                      "--truth", str(truth), "--literature-n", "26000", "--min-samples", "10", "--fdr", "0.05",
                      "--bootstrap", "100", "--floor-draws", "8", "--seed", "0", "--out-json", str(out / "m.json"),
                      "--out-csv", str(out / "m.csv"), "--out-png", str(out / "m.png")])
    result = json.loads((out / "m.json").read_text())
    assert result["literature"] == {**md.literature_scores(predicted[:md.LITERATURE_N]),
                                    "note": result["literature"]["note"], "at_protocol_n": True}
    assert result["n_samples"] == predicted.size and result["planted"]["modes"] == 10
    assert result["literature"]["modes"] > 15 and abs(result["corrected"]["modes_detected"] - 10) <= 1
    assert result["verdicts"] == [] and "no test" in result["verdicts_note"]
    assert result["annotator"]["digit_test_accuracy"] == pytest.approx(np.mean(test_true == test_predicted))
    table = pd.read_csv(out / "m.csv")
    assert len(table) == 1000 and table["detected"].sum() == result["corrected"]["modes_detected"]
    assert (out / "m.png").stat().st_size > 0
