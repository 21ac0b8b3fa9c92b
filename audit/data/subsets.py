"""Subsets of labelled items: class-stratified nested subsets, stratified holdout splits, and
the grids of subset sizes the stages take.

Labels are (M,) int class indices; every function returns sorted (k,) int64 indices into them.
"""

from __future__ import annotations

import json

import numpy as np

from audit.data.store import largest_remainder
from audit.io import AuditInputError


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of ``n`` of the items, class-stratified and nested in ``n``.

    ``labels``: (M,) classes. Per class the counts follow the classes' shares of ``labels``
    (largest remainder), with at least one of every present class when ``n`` allows. Within a
    class the items are a fixed seeded permutation, and a subset takes its first items, so for
    one seed the subset of size n is contained in the one of size n' > n (less noise along a
    curve). ``n >= M`` gives every index. Returns sorted (n,) int indices.
    """
    labels = np.asarray(labels)
    if n >= labels.size:
        return np.arange(labels.size)
    classes, sizes = np.unique(labels, return_counts=True)
    counts = largest_remainder(sizes / sizes.sum(), n)
    while np.any(counts == 0) and n >= classes.size:  # one of every class, taken from the largest
        empty, largest = int(np.flatnonzero(counts == 0)[0]), int(np.argmax(counts))
        counts[largest] -= 1
        counts[empty] += 1
    rng = np.random.default_rng([seed, 7919])
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, counts)]
    return np.sort(np.concatenate(chosen))


def holdout_split(labels: np.ndarray, fraction: float, max_holdout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices) of (M,) ``labels``, stratified by class.

    Each class gives ``floor(fraction * m_k)`` of its m_k items to validation (a class of fewer
    than 1 / fraction items keeps them all for training); the whole holdout is then capped at
    ``max_holdout`` (quota over classes). Used for the model-selection holdout a classifier
    carves from its own training set, real or GAN samples alike (``Recipe.holdout`` of
    :mod:`audit.models.fitting`).
    """
    labels = np.asarray(labels)
    if labels.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng([seed, 104729])
    classes = np.unique(labels)
    per_class = np.array([int(np.floor(fraction * np.sum(labels == c))) for c in classes])
    if per_class.sum() > max_holdout:
        per_class = np.minimum(per_class, largest_remainder(per_class / per_class.sum(), max_holdout))
    train, val = [], []
    for c, k in zip(classes, per_class):
        members = rng.permutation(np.flatnonzero(labels == c))
        val.append(members[:k])
        train.append(members[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def parse_sizes(values: list[str], flag: str) -> list[int]:
    """A grid of subset sizes as a stage receives it: ``["20", "50", "100"]`` or
    ``["[20, 50, 100]"]`` -> sorted unique ints >= 1; anything else is an
    :class:`audit.io.AuditInputError` naming ``flag``."""
    text = " ".join(values).strip()
    try:
        raw = json.loads(text) if text.startswith("[") else [float(v) for v in text.replace(",", " ").split()]
        sizes = [int(v) for v in raw]
        if not sizes or any(s < 1 or s != float(v) for s, v in zip(sizes, raw)):
            raise ValueError
    except (ValueError, TypeError):
        raise AuditInputError(f"{flag}: expected positive integers, got {text!r}") from None
    return sorted(set(sizes))
