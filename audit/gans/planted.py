"""Planted-truth generators: real held-out images, emitted so that the right answer is known.

They draw only from the real ``pool`` split, which no evaluation uses (see
:data:`audit.data.base.SPLITS`), so a control never shares images with what measures it.
"""

from __future__ import annotations

import numpy as np

from audit.gans import SampleBatch, Sampler, SamplerContext
from audit.io import AuditInputError

SOURCE_SPLIT = "pool"


def planted_class_distribution(name: str, options: dict, real: np.ndarray) -> np.ndarray:
    """The class distribution a resampler plants, from its options.

    ``class_probs: real`` (default): the real class proportions ``real``. ``class_probs: [..]``:
    explicit (K,) probabilities. ``dominant_class: k, dominant_prob: p``: class k at p, every
    other class equally likely.
    """
    n_classes = real.shape[0]
    if "dominant_class" in options or "dominant_prob" in options:
        k, p = options.get("dominant_class", 0), options.get("dominant_prob")
        if not isinstance(k, int) or not 0 <= k < n_classes:
            raise AuditInputError(f"gans.{name}.dominant_class: expected a class index in [0, {n_classes}), got {k!r}")
        if not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise AuditInputError(f"gans.{name}.dominant_prob: expected a probability in [0, 1], got {p!r}")
        probs = np.full(n_classes, (1 - p) / (n_classes - 1))
        probs[k] = p
        return probs
    class_probs = options.get("class_probs", "real")
    if isinstance(class_probs, str) and class_probs == "real":
        return np.asarray(real, float)
    probs = np.asarray(class_probs, float)
    if probs.shape != (n_classes,) or (probs < 0).any() or abs(probs.sum() - 1) > 1e-6:
        raise AuditInputError(f"gans.{name}.class_probs: expected {n_classes} non-negative probabilities summing to 1")
    return probs


def quota_counts(probs: np.ndarray, n: int) -> np.ndarray:
    """Integer class counts summing to ``n`` closest to ``probs * n`` (largest remainder)."""
    exact = probs * n
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def make_resample(name: str, kind: str, options: dict, context: SamplerContext) -> Sampler:
    """The planted ``skewed`` control: pool images resampled with a set class distribution.

    Each call emits exactly ``quota_counts(probs, n)`` images of each class (drawn with
    replacement within the class, then shuffled), so the planted distribution is also the
    realised one: the error an audit reports on it is the audit's own, not sampling noise.
    """
    data = context.data
    probs = planted_class_distribution(name, options, data.class_distribution())
    rows = data.rows(SOURCE_SPLIT)
    members = [rows[data.labels[rows] == k] for k in range(data.n_classes)]
    empty = [data.class_names[k] for k in range(data.n_classes) if probs[k] > 0 and members[k].size == 0]
    if empty:
        raise AuditInputError(f"gans.{name}: the pool split has no images of class(es) {empty}")

    def sample(n: int, seed: int) -> SampleBatch:
        rng = np.random.default_rng(seed)
        counts = quota_counts(probs, n)
        chosen = np.concatenate([rng.choice(members[k], c) for k, c in enumerate(counts) if c])
        labels = np.concatenate([np.full(c, k) for k, c in enumerate(counts) if c])
        order = rng.permutation(n)
        chosen, labels = chosen[order], labels[order]
        return SampleBatch(np.asarray(data.images[chosen]), labels)

    return Sampler(name, sample, truth={"class_distribution": probs.tolist(), "source_split": SOURCE_SPLIT})
