"""The split plan and the prepared-dataset store."""

import numpy as np
import pytest

from audit.data.base import SPLITS
from audit.data.store import PreparedDataset, assign_splits
from audit.io import AuditInputError
from tests.conftest import DEFAULT_SPLITS


def test_splits_are_disjoint_stratified_and_seeded():
    labels = np.repeat(np.arange(4), [100, 50, 30, 20])
    split = assign_splits(labels, DEFAULT_SPLITS, seed=3)
    assert set(split) == set(SPLITS)
    # every image in exactly one split, per-class counts follow the fractions to one image
    for k, n in enumerate([100, 50, 30, 20]):
        for name, fraction in DEFAULT_SPLITS.items():
            assert abs((split[labels == k] == name).sum() - fraction * n) < 1
    np.testing.assert_array_equal(split, assign_splits(labels, DEFAULT_SPLITS, seed=3))
    assert (split != assign_splits(labels, DEFAULT_SPLITS, seed=4)).any()


def test_official_partition_is_kept():
    labels = np.tile([0, 1], 50)
    official = np.array(["train"] * 60 + ["val"] * 20 + ["test"] * 20)
    split = assign_splits(labels, DEFAULT_SPLITS, seed=0, official_split=official)
    assert (split[official == "test"] == "test").all()
    assert (split[official == "val"] == "val").all()
    train_part = split[official == "train"]
    assert set(train_part) == {"train", "pool"}
    # train:pool = 0.45:0.2 within the official train part
    assert (train_part == "pool").sum() == pytest.approx(60 * 0.2 / 0.65, abs=1)


def test_bad_fractions_name_the_key():
    with pytest.raises(AuditInputError, match="dataset.splits"):
        assign_splits(np.zeros(10, int), {"train": 0.5, "val": 0.5, "pool": 0.5, "test": 0.5}, 0)
    with pytest.raises(AuditInputError, match="missing pool"):
        assign_splits(np.zeros(10, int), {"train": 0.5, "val": 0.25, "test": 0.25}, 0)


def test_prepared_digits(digits_prepared):
    data = PreparedDataset.open(digits_prepared.path)
    assert data.images.shape == (1797, 8, 8, 1) and data.images.dtype == np.uint8
    assert data.images.max() == 255 and data.n_classes == 10
    sizes = data.meta["split_sizes"]
    assert sum(sizes.values()) == 1797 and sizes["test"] == pytest.approx(0.25 * 1797, abs=10)
    images, labels = data.subset("pool")
    assert images.shape[0] == labels.shape[0] == sizes["pool"]
    np.testing.assert_allclose(data.class_distribution().sum(), 1)
