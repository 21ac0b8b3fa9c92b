"""The one interface every real dataset implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

#: The split plan. ``train``: annotator and real baselines; ``val``: early stopping and
#: calibration; ``pool``: the only source of planted generators; ``test``: every evaluation
#: on real data (including the annotator's confusion matrix). No image is in two splits.
SPLITS = ("train", "val", "pool", "test")


@dataclass
class SourceDataset:
    """A labelled real image set, not yet prepared.

    Attributes
    ----------
    name : dataset name, e.g. ``"digits"``.
    labels : (N,) int64 class index of each image, in ``range(len(class_names))``.
    class_names : names of the classes, index-aligned with ``labels``.
    image_shape : (H, W, C) of every image, C in {1, 3}.
    read : ``read(indices) -> uint8 array (len(indices), H, W, C)``; called in chunks so a
        large dataset never sits in memory as a whole.
    official_split : optional (N,) array of ``"train"``/``"val"``/``"test"`` from the dataset's
        own partition (CelebA); the split plan then keeps test images in ``test``.
    description : one line on where the images came from, recorded in the metadata.
    """

    name: str
    labels: np.ndarray
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]
    read: Callable[[np.ndarray], np.ndarray]
    official_split: np.ndarray | None = None
    description: str = ""
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])
