"""scikit-learn's bundled digits: 1,797 real scanned 8x8 digits, 10 classes, offline."""

from __future__ import annotations

import numpy as np

from audit.data.base import SourceDataset

#: digits pixels are counts of set bits in 4x4 blocks, 0..16; scaled to the full uint8 range.
_DIGITS_MAX = 16


def load() -> SourceDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / _DIGITS_MAX)).astype(np.uint8)[..., None]
    return SourceDataset(
        name="digits",
        labels=bunch.target.astype(np.int64),
        class_names=tuple(str(c) for c in bunch.target_names),
        image_shape=images.shape[1:],
        read=lambda idx: images[np.asarray(idx)],
        description="scikit-learn load_digits: 1,797 8x8 grayscale scans (UCI optdigits test set), "
        "pixels 0..16 scaled by 255/16",
    )
