"""The Stacked MNIST annotator: the annotator stage's digit classifier, applied to each channel.

The annotator stage trains its classifier on the single-channel digits of the base ``mnist``
train split (:meth:`audit.data.store.PreparedDataset.base`) and saves it with
``stacked_channels: 3`` beside :func:`audit.models.classifier.save_classifier`'s fields; the
label stage then labels each channel of a 28x28x3 sample with it (:func:`channel_probabilities`).

**Compact labels.** A table with p_0 .. p_999 for 26,000 samples is about 300 MB of CSV. The
1,000-class probabilities are the product of the channels' (:mod:`audit.metrics.kronecker`), so
the label table stores the 3 x 10 channel probabilities instead (:data:`CHANNEL_COLUMNS`,
``p_r0 .. p_r9, p_g0 .. p_g9, p_b0 .. p_b9``) beside the composed ``predicted`` class and its
``confidence`` (the product of the three maxima): 17.9 MB for 26,000 samples (measured), and every
downstream figure follows from it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit.io import AuditInputError
from audit.metrics.kronecker import BASE_CLASSES, CHANNELS, triple_outputs

#: the label table's per-channel probability columns, channel-major (R, G, B)
CHANNEL_COLUMNS = tuple(f"p_{c}{d}" for c in "rgb" for d in range(BASE_CLASSES))
#: the key of a saved annotator that labels each of this many channels
STACKED_KEY = "stacked_channels"


def save_stacked_annotator(path, model, arch: str, image_shape, class_names, temperature: float) -> None:
    """:func:`audit.models.classifier.save_classifier`'s file plus ``stacked_channels: 3``:
    ``load_classifier`` reads it as the digit classifier it is, the label stage labels channels."""
    from audit.io import save_torch

    save_torch(path, {"arch": arch, "image_shape": list(image_shape), "class_names": list(class_names),
                      "temperature": temperature, "state_dict": model.state_dict(), STACKED_KEY: CHANNELS})


def channel_probabilities(model, temperature: float, images: np.ndarray, device: str = "cpu") -> np.ndarray:
    """(N, 3, 10) calibrated digit probabilities of each channel of uint8 (N, H, W, 3) images."""
    from audit.models.classifier import calibrated_probabilities

    if images.ndim != 4 or images.shape[-1] != CHANNELS:
        raise ValueError(f"expected (N, H, W, {CHANNELS}) images, got {images.shape}")
    return np.stack([calibrated_probabilities(model, temperature, images[..., c:c + 1], device)
                     for c in range(CHANNELS)], axis=1)


def channel_table(rows: np.ndarray, labels: np.ndarray | None, probabilities: np.ndarray) -> pd.DataFrame:
    """One row per image: row, [label], predicted (the 1,000-class argmax), confidence (its
    probability) and the (N, 3, 10) channel probabilities as :data:`CHANNEL_COLUMNS`."""
    predicted, confidence = triple_outputs(probabilities)
    table = pd.DataFrame({"row": rows})
    if labels is not None:
        table["label"] = labels
    table["predicted"] = predicted
    table["confidence"] = confidence
    flat = probabilities.reshape(probabilities.shape[0], CHANNELS * BASE_CLASSES)
    return pd.concat([table, pd.DataFrame(flat, columns=list(CHANNEL_COLUMNS), index=table.index)], axis=1)


def read_channel_probabilities(table: pd.DataFrame, path) -> np.ndarray:
    """(N, 3, 10) channel probabilities of a label table (:func:`channel_table`), checked: every
    column present, finite, in [0, 1], each channel's ten summing to 1 (1e-6), and ``predicted``
    and ``confidence`` agreeing with them."""
    missing = [c for c in CHANNEL_COLUMNS if c not in table.columns]
    if missing:
        raise AuditInputError(f"{path}: missing column(s) {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}"
                              " (a Stacked MNIST label table holds p_r0 .. p_b9)")
    p = table[list(CHANNEL_COLUMNS)].to_numpy(dtype=np.float64).reshape(-1, CHANNELS, BASE_CLASSES)
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any() or np.abs(p.sum(axis=2) - 1).max() > 1e-6:
        raise AuditInputError(f"{path}: columns p_r0 .. p_b9 must hold each channel's probabilities (in [0, 1], "
                              "summing to 1)")
    predicted, _ = triple_outputs(p)
    if {"predicted"} <= set(table.columns) and not np.array_equal(predicted, table["predicted"].to_numpy()):
        raise AuditInputError(f"{path}: column predicted disagrees with the channel probabilities p_r0 .. p_b9")
    return p


def triple_check(model, temperature: float, data, per_channel: np.ndarray, device: str = "cpu") -> dict:
    """The annotator on the real Stacked MNIST test triples of ``data``: predicted classes against
    the Kronecker confusion of the per-digit ``per_channel`` (10, 10)
    (:func:`audit.metrics.kronecker.kronecker_check`)."""
    from audit.metrics.kronecker import kronecker_check

    images, labels = data.subset("test")
    predicted, _ = triple_outputs(channel_probabilities(model, temperature, images, device))
    return kronecker_check(labels, predicted, per_channel)
