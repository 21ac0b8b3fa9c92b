"""The prepared form of a real dataset: what every stage after ``prepare`` reads.

Layout of a prepared dataset directory::

    images.npy   uint8 (N, H, W, C), written chunk by chunk, read back as a memmap
    index.csv    one row per image: row, label, class_name, split (and a composed dataset's
                 own columns, e.g. the base rows of each Stacked MNIST triple)
    meta.json    name, class_names, image_shape, split sizes, split fractions, seed, source
    base/        a composed dataset only: its base dataset, prepared (same layout)

A *composed* dataset (:class:`ComposedSource`, e.g. ``stacked_mnist``) is built from another
one's images after that one is split: :func:`prepare` first prepares the base into ``base/``
(split plan as usual), then composes each split's images from that split's base images only, so
the split plan holds for the composed images too (no test digit in a train triple). This is the
one extra code path of the store; everything after ``prepare`` reads a composed dataset like any
other, and :meth:`PreparedDataset.base` opens its base.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from audit.data.base import SPLITS, SourceDataset
from audit.io import AuditInputError, atomic_path, load_images, load_json, load_table, save_json, save_table


def assign_splits(
    labels: np.ndarray,
    fractions: dict[str, float],
    seed: int,
    official_split: np.ndarray | None = None,
) -> np.ndarray:
    """Stratified, seeded assignment of every image to one of :data:`SPLITS`.

    Parameters
    ----------
    labels : (N,) int class of each image.
    fractions : split name -> fraction of the images; must cover :data:`SPLITS` and sum to 1.
    seed : the same seed always gives the same assignment.
    official_split : optional (N,) ``train``/``val``/``test`` partition of the dataset itself;
        when given it is kept (official test images stay test), and its ``train`` part is cut
        into ``train`` and ``pool`` in the ratio of their fractions.

    Returns
    -------
    (N,) array of split names. Within each class the counts follow ``fractions`` to the
    nearest image (largest remainder), so every split holds every class when it can.
    """
    missing = [s for s in SPLITS if s not in fractions]
    if missing:
        raise AuditInputError(f"dataset.splits: missing {', '.join(missing)}")
    if any(fractions[s] < 0 for s in SPLITS) or abs(sum(fractions[s] for s in SPLITS) - 1) > 1e-6:
        raise AuditInputError(f"dataset.splits: fractions must be >= 0 and sum to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    assignment = np.empty(labels.shape[0], dtype=object)
    if official_split is None:
        groups = [(np.arange(labels.shape[0]), SPLITS, [fractions[s] for s in SPLITS])]
    else:
        official_split = np.asarray(official_split)
        train_share = fractions["train"] + fractions["pool"]
        groups = [
            (np.flatnonzero(official_split == "train"), ("train", "pool"),
             [fractions["train"] / train_share, fractions["pool"] / train_share]),
            (np.flatnonzero(official_split == "val"), ("val",), [1.0]),
            (np.flatnonzero(official_split == "test"), ("test",), [1.0]),
        ]
    for members, names, shares in groups:
        for label in np.unique(labels[members]):
            in_class = rng.permutation(members[labels[members] == label])
            counts = largest_remainder(np.asarray(shares) / np.sum(shares), in_class.shape[0])
            for name, chunk in zip(names, np.split(in_class, np.cumsum(counts)[:-1])):
                assignment[chunk] = name
    return assignment.astype(str)


def largest_remainder(fractions: np.ndarray, total: int) -> np.ndarray:
    """Integer counts summing to ``total`` closest to ``fractions * total`` (fractions sum to 1);
    the largest fractional parts round up, ties in index order."""
    exact = fractions * total
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


#: the folder of a composed dataset's prepared base, inside the composed dataset's folder
BASE_DIR = "base"


@dataclass
class ComposedSource:
    """A dataset composed from the images of another after that one is split (``stacked_mnist``).

    ``base``: the source whose images are composed. ``compose(base, seed)``: given the base as a
    :class:`PreparedDataset` (split), returns the composed :class:`SourceDataset` (its ``read``
    builds uint8 images from the base's), its (N,) split names (an image takes base images of its
    own split only) and a dict of extra (N,) ``index.csv`` columns.
    """

    name: str
    base: SourceDataset
    compose: Callable[["PreparedDataset", int], tuple[SourceDataset, np.ndarray, dict]]


def prepare(
    source: SourceDataset | ComposedSource,
    out_dir: str | os.PathLike,
    fractions: dict[str, float],
    seed: int,
    chunk_size: int = 2048,
    progress: bool = True,
) -> "PreparedDataset":
    """Stream ``source`` into ``out_dir`` (see the module docstring for the layout).

    Pixels go chunk by chunk into a uint8 memmap, so memory stays at one chunk whatever N is.
    ``meta.json`` is written last: its presence marks a complete preparation. A
    :class:`ComposedSource` prepares its base into ``out_dir/base`` first, then composes.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    split, columns, extra_meta = None, {}, {}
    if isinstance(source, ComposedSource):
        base = prepare(source.base, out_dir / BASE_DIR, fractions, seed, chunk_size, progress)
        source, split, columns = source.compose(base, seed)
        extra_meta = {"base": BASE_DIR}
    n = len(source)
    if n == 0:
        raise AuditInputError(f"dataset '{source.name}': no images found")
    if split is None:
        split = assign_splits(source.labels, fractions, seed, source.official_split)
    with atomic_path(out_dir / "images.npy") as tmp, open(tmp, "wb") as stream:
        # plain writes after the .npy header: a writable memmap would keep every written page
        # resident in this process (2.5 GB for 200k 64x64x3 images)
        np.lib.format.write_array_header_2_0(
            stream, {"descr": np.dtype(np.uint8).str, "fortran_order": False, "shape": (n, *source.image_shape)})
        starts = range(0, n, chunk_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc=f"prepare {source.name}", unit="chunk", mininterval=2)
        for start in starts:
            idx = np.arange(start, min(start + chunk_size, n))
            chunk = source.read(idx)
            if chunk.shape != (idx.shape[0], *source.image_shape) or chunk.dtype != np.uint8:
                raise AuditInputError(
                    f"dataset '{source.name}': reader returned {chunk.dtype} {chunk.shape}, "
                    f"expected uint8 {(idx.shape[0], *source.image_shape)}"
                )
            stream.write(np.ascontiguousarray(chunk).tobytes())
    index = pd.DataFrame({
        "row": np.arange(n),
        "label": source.labels,
        "class_name": np.asarray(source.class_names)[source.labels],
        "split": split,
        **columns,
    })
    save_table(out_dir / "index.csv", index)
    save_json(out_dir / "meta.json", {
        "name": source.name,
        "description": source.description,
        "class_names": list(source.class_names),
        "image_shape": list(source.image_shape),
        "n_images": n,
        "split_sizes": {s: int((split == s).sum()) for s in SPLITS},
        "split_fractions": {s: float(fractions[s]) for s in SPLITS},
        "seed": seed,
        **source.extra,
        **extra_meta,
    })
    return PreparedDataset.open(out_dir)


@dataclass
class PreparedDataset:
    """A prepared dataset opened for reading. ``images`` is a read-only memmap."""

    path: Path
    name: str
    images: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    class_names: tuple[str, ...]
    meta: dict

    @classmethod
    def open(cls, path: str | os.PathLike) -> "PreparedDataset":
        path = Path(path)
        meta = load_json(path / "meta.json")
        index = load_table(path / "index.csv", ("row", "label", "split"))
        images = load_images(path / "images.npy")
        if images.shape[0] != len(index):
            raise AuditInputError(f"{path}: images.npy has {images.shape[0]} images, index.csv {len(index)} rows")
        return cls(path, meta["name"], images, index["label"].to_numpy(np.int64),
                   index["split"].to_numpy(str), tuple(meta["class_names"]), meta)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def rows(self, split: str) -> np.ndarray:
        if split not in SPLITS:
            raise AuditInputError(f"unknown split '{split}', expected one of {SPLITS}")
        return np.flatnonzero(self.split == split)

    def subset(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of one split; images are copied into memory (uint8)."""
        rows = self.rows(split)
        return np.asarray(self.images[rows]), self.labels[rows]

    def base(self) -> "PreparedDataset":
        """The prepared base of a composed dataset (``base/``); an error for any other dataset."""
        if "base" not in self.meta:
            raise AuditInputError(f"{self.path}: dataset '{self.name}' is not composed from a base dataset")
        return PreparedDataset.open(self.path / self.meta["base"])

    def class_distribution(self, split: str | None = None) -> np.ndarray:
        """(K,) fraction of images in each class, over ``split`` or the whole dataset."""
        labels = self.labels if split is None else self.labels[self.rows(split)]
        return np.bincount(labels, minlength=self.n_classes) / labels.shape[0]
