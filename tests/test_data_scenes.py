"""The embedded scikit-image photo-patch set, run through ``audit.prepare.main``."""

from __future__ import annotations

import numpy as np
import pytest

from audit.data import load_source
from audit.data.store import PreparedDataset
from audit.io import AuditInputError
from audit.prepare import main

SPLITS = ["train=0.45", "val=0.1", "pool=0.2", "test=0.25"]
CLASSES = ("astronaut", "cat", "coffee", "rocket", "galaxies", "tissue", "retina", "motorcycle")


def prepare(out, *options):
    main(["--dataset", "scenes", "--out", str(out), "--seed", "0", "--splits", *SPLITS,
          "--option", *options])
    return PreparedDataset.open(out)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return prepare(tmp_path_factory.mktemp("scenes") / "a", "patches_per_class=40")


def test_shapes_balance_and_splits(scenes):
    assert scenes.class_names == CLASSES
    assert scenes.images.shape == (320, 64, 64, 3) and scenes.images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(scenes.labels), [40] * 8)
    # 40 per class at 0.45/0.1/0.2/0.25 -> 18/4/8/10 in every class.
    assert scenes.meta["split_sizes"] == {"train": 144, "val": 32, "pool": 64, "test": 80}
    for label in range(8):
        split = scenes.split[scenes.labels == label]
        assert [(split == s).sum() for s in ("train", "val", "pool", "test")] == [18, 4, 8, 10]


def test_deterministic(scenes, tmp_path):
    again = prepare(tmp_path / "b", "patches_per_class=40")
    np.testing.assert_array_equal(np.asarray(again.images), np.asarray(scenes.images))
    np.testing.assert_array_equal(again.split, scenes.split)
    # A class's patches do not depend on how many patches the set has.
    larger = load_source("scenes", patches_per_class=50)
    np.testing.assert_array_equal(larger.read(np.arange(50, 90)), scenes.images[40:80])


def test_classes_are_different_photographs(scenes):
    images = np.asarray(scenes.images, dtype=np.float64)
    means = np.stack([images[scenes.labels == c].mean(axis=(0, 1, 2)) for c in range(8)])  # (8, RGB)
    galaxies, retina = CLASSES.index("galaxies"), CLASSES.index("retina")
    assert means[galaxies].max() < 60  # black sky
    assert means[retina, 0] > means[retina, 1] + 60  # red fundus
    # Class mean colours are pairwise distinct, and no patch appears in two classes.
    distances = np.linalg.norm(means[:, None] - means[None], axis=-1)
    assert distances[~np.eye(8, dtype=bool)].min() > 5
    flat = scenes.images.reshape(320, -1)
    assert len({row.tobytes() for row in flat}) == 320
    # Patches vary within a class too (not one crop repeated).
    assert all(images[scenes.labels == c].std(axis=0).mean() > 10 for c in range(8))


def test_defaults_and_size(tmp_path):
    source = load_source("scenes")
    assert len(source) == 8 * 400 and source.image_shape == (64, 64, 3)
    small = prepare(tmp_path / "small", "size=32", "patches_per_class=5")
    assert small.images.shape == (40, 32, 32, 3)


@pytest.mark.parametrize("options, fragment", [
    ({"size": 151}, "dataset.options.size: at most 150"),
    ({"patches_per_class": 0}, "dataset.options.patches_per_class"),
    ({"root": "/data"}, "unknown scenes option(s) ['root']"),
])
def test_bad_options(options, fragment):
    with pytest.raises(AuditInputError, match=None) as info:
        load_source("scenes", **options)
    assert fragment in str(info.value)
