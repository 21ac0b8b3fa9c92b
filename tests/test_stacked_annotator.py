"""The Stacked MNIST annotator: a digit classifier per channel, its Kronecker confusion checked
against real triples, and the compact label table."""

import json

import numpy as np
import pandas as pd
import pytest

from audit import annotator as annotator_stage
from audit import label as label_stage
from audit.data import load_source
from audit.data.store import prepare
from audit.metrics import kronecker as kr
from audit.metrics import skew as sk
from audit.models.stacked import CHANNEL_COLUMNS, read_channel_probabilities
from tests.conftest import DEFAULT_SPLITS

TRIPLES = {"train": 1000, "val": 1000, "pool": 1000, "test": 2000}


def random_confusion(rng, accuracy=0.9):
    a = np.eye(10) * accuracy + rng.random((10, 10)) * (1 - accuracy) / 5
    return a / a.sum(axis=0)


def test_kronecker_algebra_matches_the_explicit_matrix():
    rng = np.random.default_rng(0)
    a = random_confusion(rng)
    c = kr.kron_confusion(a)
    # C[i, j] = A[i_R, j_R] A[i_G, j_G] A[i_B, j_B] with class 100 d_R + 10 d_G + d_B
    assert c[kr.compose([3, 0, 7]), kr.compose([2, 0, 7])] == pytest.approx(a[3, 2] * a[0, 0] * a[7, 7])
    v = rng.random((4, 1000))
    np.testing.assert_allclose(kr.kron_apply(a, v), v @ c.T, atol=1e-12)
    np.testing.assert_allclose(kr.kron_diagonal(a), np.diagonal(c))
    q = rng.dirichlet(np.ones(1000))
    np.testing.assert_allclose(kr.kron_solve(c @ q, a), q, atol=1e-10)
    np.testing.assert_allclose(kr.kron_corrected(c @ q, a), q, atol=1e-10)
    # C's singular values are the triple products of A's: condition cond(A)^3
    assert kr.kron_condition(a)["condition_number"] == pytest.approx(np.linalg.cond(a) ** 3, rel=1e-8)
    # a singular A: the minimum-norm solution, through the cube of A's pseudo-inverse
    a[:, 1] = a[:, 2]
    np.testing.assert_allclose(kr.kron_solve(v, a), v @ kr.kron_confusion(np.linalg.pinv(a)).T, atol=1e-8)
    assert kr.kron_condition(a)["rank"] == 9 ** 3 and kr.kron_condition(a)["singular"]


def test_triple_outputs_are_the_product_distributions_argmax():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(10) * 0.3, size=(50, 3))
    predicted, confidence = kr.triple_outputs(p)
    full = np.einsum("ni,nj,nk->nijk", p[:, 0], p[:, 1], p[:, 2]).reshape(50, 1000)
    np.testing.assert_array_equal(predicted, full.argmax(axis=1))
    np.testing.assert_allclose(confidence, full.max(axis=1))
    np.testing.assert_array_equal(kr.decompose(kr.compose(rng.integers(0, 10, (20, 3)))).shape, (20, 3))


def test_confusion_of_every_triple_is_exactly_the_kronecker_cube():
    """Over every triple of a set of labelled digits (3 per class, 27,000 triples), a per-channel
    annotator's confusion measured directly on the triples is A (x) A (x) A exactly."""
    rng = np.random.default_rng(2)
    true = np.repeat(np.arange(10), 3)
    predicted = np.where(rng.random(30) < 0.6, true, rng.integers(0, 10, 30))
    grid = np.stack(np.meshgrid(np.arange(30), np.arange(30), np.arange(30), indexing="ij"), -1).reshape(-1, 3)
    direct = sk.confusion_matrix(kr.compose(true[grid]), kr.compose(predicted[grid]), 1000)
    np.testing.assert_allclose(direct, kr.kron_confusion(kr.channel_confusion(true, predicted)), atol=1e-12)


@pytest.fixture(scope="module")
def annotated(tmp_path_factory):
    """Stacked MNIST prepared small, the annotator stage run on it (2 epochs)."""
    root = tmp_path_factory.mktemp("stacked_annotator")
    data = prepare(load_source("stacked_mnist", triples=TRIPLES), root / "data", DEFAULT_SPLITS, seed=0,
                   progress=False)
    out = {name: root / name for name in ("model.pt", "metrics.json", "test.csv", "confusion.png")}
    annotator_stage.main(["--data", str(data.path), "--model", str(out["model.pt"]), "--metrics",
                          str(out["metrics.json"]), "--test-predictions", str(out["test.csv"]), "--confusion",
                          str(out["confusion.png"]), "--arch", "smallcnn", "--epochs", "2", "--batch-size", "64",
                          "--lr", "0.002", "--patience", "2", "--no-flip", "--shift", "1", "--seed", "0",
                          "--threads", "1", "--device", "cpu"])
    # the label stage on the real test triples: the compact table the tests below read
    np.save(root / "samples.npy", np.asarray(data.images[data.rows("test")]))
    np.save(root / "planted.npy", data.labels[data.rows("test")])
    out["labels.csv"] = root / "labels.csv"
    label_stage.main(["--annotator", str(out["model.pt"]), "--samples", str(root / "samples.npy"),
                      "--planted-labels", str(root / "planted.npy"), "--out", str(out["labels.csv"]),
                      "--threads", "1", "--device", "cpu"])
    return data, out


def test_annotator_learns_digits_and_checks_real_triples(annotated):
    data, out = annotated
    metrics = json.loads(out["metrics.json"].read_text())
    base = data.base()
    assert metrics["n_train"] == base.rows("train").size and metrics["n_test"] == base.rows("test").size
    test = pd.read_csv(out["test.csv"])  # per digit: the base test split
    assert set(test["label"]) == set(range(10)) and (base.split[test["row"]] == "test").all()
    check = metrics["stacked"]
    assert check["n_triples"] == TRIPLES["test"] and sum(check["observed"]) == TRIPLES["test"]
    assert metrics["test_accuracy"] > 0.5  # two epochs; the real run's figures are in the README
    # the Kronecker confusion, measured on the test digits, predicts the real test triples' outcomes
    assert check["p_value"] > 1e-3, check
    assert abs(check["triple_accuracy"] - check["triple_accuracy_kronecker"]) < 4 * np.sqrt(0.25 / check["n_triples"])


def test_kronecker_check_catches_a_channel_mixup(annotated):
    """Negative control: the same real triples, the predicted digits read in the wrong channel
    order (B, G, R): the errors fall in the wrong "only c wrong" patterns and the check fails."""
    data, out = annotated
    labels = pd.read_csv(out["labels.csv"])
    labels, predicted = labels["planted_label"].to_numpy(), labels["predicted"].to_numpy()
    test = pd.read_csv(out["test.csv"])
    a = kr.channel_confusion(test["label"], test["predicted"])
    assert kr.kronecker_check(labels, predicted, a)["p_value"] > 1e-3
    swapped = kr.compose(kr.decompose(predicted)[:, ::-1])
    assert kr.kronecker_check(labels, swapped, a)["p_value"] < 1e-6


def test_label_stage_writes_compact_channel_probabilities(annotated):
    data, out = annotated
    table = pd.read_csv(out["labels.csv"])
    n = TRIPLES["test"]
    assert list(table.columns) == ["row", "planted_label", "predicted", "confidence", *CHANNEL_COLUMNS]
    p = read_channel_probabilities(table, "labels.csv")
    full = np.einsum("ni,nj,nk->nijk", p[:, 0], p[:, 1], p[:, 2]).reshape(n, 1000)
    np.testing.assert_array_equal(table["predicted"], full.argmax(axis=1))
    np.testing.assert_allclose(table["confidence"], full.max(axis=1), rtol=1e-12)
    # 34 columns instead of 1,004
    assert out["labels.csv"].stat().st_size < n * 34 * 25
    # the label table's predicted class must agree with its channel probabilities
    table.loc[0, "predicted"] = (table.loc[0, "predicted"] + 1) % 1000
    with pytest.raises(ValueError, match="disagrees"):
        read_channel_probabilities(table, "labels.csv")
