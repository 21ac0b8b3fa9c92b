"""Planted-truth generators: real held-out images, emitted so that the right answer is known.

They draw only from the real ``pool`` split, which no evaluation uses (see
:data:`audit.data.base.SPLITS`), so a control never shares images with what measures it.

``resample``   pool images with a set class distribution (truth: ``class_distribution``);
               ``n_modes: M`` restricts it to M classes chosen with the seed (truth ``modes``)
``memoriser``  k distinct pool images, each re-emitted with small pixel noise (``support_size``);
               ``source_split: train``, the one exception to the pool rule, copies training
               images instead: the memorisation stage's control (truth ``source_split``)
``lowrank``    pool images projected onto the top-r principal components of the pool (``rank``)
``dropmodes``  pool images of only some classes, real proportions among them
               (``class_distribution``, ``kept_classes``)
``blank``      a set fraction of blank images mixed with pool images (``blank_fraction``)

Every one is deterministic for a given ``seed`` and draws through :func:`quota_resample`. Option
``draw`` says how: ``multinomial`` draws each sample independently (class counts vary as a real
generator's do: the skew tests' H0 is stated for such a generator), ``quota`` realises the counts
exactly (largest remainder). The default is ``multinomial`` for ``resample`` and ``dropmodes``,
whose truth is a class distribution that the skew stage tests, and ``quota`` for ``memoriser``,
``lowrank`` and ``blank``, whose truth (support size, rank, blank fraction) the other stages
measure and which ``quota`` realises exactly (every one of the k images emitted, exactly f * n
blanks); see ``audit/gans/README.md``.
"""

from __future__ import annotations

import hashlib

import numpy as np

from audit.data.store import largest_remainder
from audit.gans import SampleBatch, Sampler, SamplerContext
from audit.io import AuditInputError

SOURCE_SPLIT = "pool"

#: how a planted generator draws its categories (classes, memorised images, blank or not)
DRAWS = ("multinomial", "quota")


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
    return largest_remainder(probs, n)


def pool_members(name: str, data, probs: np.ndarray) -> list[np.ndarray]:
    """Row indices of the pool images of each class; an error if a class with ``probs > 0`` has none."""
    rows = data.rows(SOURCE_SPLIT)
    members = [rows[data.labels[rows] == k] for k in range(data.n_classes)]
    empty = [data.class_names[k] for k in range(data.n_classes) if probs[k] > 0 and members[k].size == 0]
    if empty:
        raise AuditInputError(f"gans.{name}: the pool split has no images of class(es) {empty}")
    return members


def draw_counts(rng: np.random.Generator, probs: np.ndarray, n: int, draw: str) -> np.ndarray:
    """(K,) counts summing to ``n``: ``rng.multinomial(n, probs)`` (``multinomial``) or exactly
    ``quota_counts(probs, n)`` (``quota``)."""
    if draw not in DRAWS:
        raise ValueError(f"draw must be one of {DRAWS}, got {draw!r}")
    return rng.multinomial(n, probs / probs.sum()) if draw == "multinomial" else quota_counts(probs, n)


def quota_resample(rng: np.random.Generator, members: list[np.ndarray], probs: np.ndarray,
                   n: int, draw: str = "quota") -> tuple[np.ndarray, np.ndarray]:
    """The one resampling step of every planted generator.

    Draws ``draw_counts(rng, probs, n, draw)[k]`` items from ``members[k]`` (with replacement
    within the group), then shuffles. Returns (chosen items, group index of each), both (n,).
    """
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    counts = draw_counts(rng, probs, n, draw)
    chosen = np.concatenate([rng.choice(members[k], c) for k, c in enumerate(counts) if c])
    groups = np.concatenate([np.full(c, k) for k, c in enumerate(counts) if c])
    order = rng.permutation(n)
    return chosen[order], groups[order]


def make_resample(name: str, kind: str, options: dict, context: SamplerContext) -> Sampler:
    """The planted ``skewed`` / ``uniform`` control: pool images resampled with a set class distribution.

    ``draw: multinomial`` (default): each sample's class is drawn independently from the planted
    distribution, as a generator with that class distribution would draw it (with ``class_probs:
    real`` this is the perfect generator of the skew tests' H0). ``draw: quota``: exactly
    ``quota_counts(probs, n)`` images of each class, so the realised mix is the planted one.
    Images are drawn with replacement within the class, then shuffled.

    ``n_modes: M`` (with the real class mix only): the distribution restricted to M of its
    classes, renormalised; the M are a uniform choice without replacement among the classes the
    real mix has, seeded by the prepared dataset's seed (the run's ``seed``), listed in truth
    ``modes``. On Stacked MNIST each sample is a fresh triple of pool digits of its class
    (:func:`audit.data.stacked_mnist.fresh_triples`), not one of the few stored pool triples of
    its class: a generator emitting the 26 stored triples of a mode 100 times each would turn
    each misread triple into a phantom mode of 100 samples.
    """
    data = context.data
    probs = planted_class_distribution(name, options, data.class_distribution())
    truth = {}
    if "n_modes" in options:
        probs, truth["modes"] = mode_subset(name, options, probs, data.meta["seed"])
        truth["n_modes"] = len(truth["modes"])
    draw = choice_option(name, options, "draw", "multinomial", DRAWS)
    if "stacked" in data.meta:
        from audit.data.stacked_mnist import base_members, fresh_triples

        base = data.base()
        base_members(base, SOURCE_SPLIT)  # every digit in the pool, checked now

        def sample(n: int, seed: int) -> SampleBatch:
            rng = np.random.default_rng(seed)
            labels = rng.permutation(np.repeat(np.arange(probs.size), draw_counts(rng, probs, n, draw)))
            return SampleBatch(fresh_triples(base, SOURCE_SPLIT, labels, rng), labels)
    else:
        members = pool_members(name, data, probs)

        def sample(n: int, seed: int) -> SampleBatch:
            chosen, labels = quota_resample(np.random.default_rng(seed), members, probs, n, draw)
            return SampleBatch(np.asarray(data.images[chosen]), labels)

    return Sampler(name, sample, truth={"class_distribution": probs.tolist(), "draw": draw,
                                        "source_split": SOURCE_SPLIT, **truth})


#: sub-stream of the run seed that chooses the modes of ``n_modes``
MODES_ROLE = 18


def mode_subset(name: str, options: dict, probs: np.ndarray, seed: int) -> tuple[np.ndarray, list[int]]:
    """``probs`` restricted to ``options["n_modes"]`` of its classes (uniform choice without
    replacement among those with probability > 0, seeded by ``seed``), renormalised; and the
    chosen classes, sorted."""
    if "dominant_class" in options or "dominant_prob" in options or options.get("class_probs", "real") != "real":
        raise AuditInputError(f"gans.{name}.n_modes: restricts the real class mix; remove class_probs / dominant_*")
    candidates = np.flatnonzero(probs > 0)
    m = int_option(name, options, "n_modes", 0, minimum=1, maximum=int(candidates.size))
    modes = np.sort(np.random.default_rng([seed, MODES_ROLE, m]).choice(candidates, m, replace=False))
    restricted = np.zeros_like(probs)
    restricted[modes] = probs[modes]
    return restricted / restricted.sum(), modes.tolist()


# --- option checks shared by the planted generators --------------------------------------------

def check_option_names(name: str, options: dict, allowed: tuple[str, ...]) -> None:
    """A typo in an option (``noise_sd``) is an error, not a silent default."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise AuditInputError(f"gans.{name}: unknown option(s) {', '.join(unknown)}; "
                              f"expected {', '.join(allowed) or 'none'}")


def int_option(name: str, options: dict, key: str, default: int, minimum: int, maximum: int | None = None) -> int:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise AuditInputError(f"gans.{name}.{key}: expected an integer {bounds}, got {value!r}")
    return value


def number_option(name: str, options: dict, key: str, default: float, minimum: float,
                  maximum: float | None = None) -> float:
    value = options.get(key, default)
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value)
            or value < minimum or (maximum is not None and value > maximum)):
        bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise AuditInputError(f"gans.{name}.{key}: expected a number {bounds}, got {value!r}")
    return float(value)


def choice_option(name: str, options: dict, key: str, default: str, choices: tuple[str, ...]) -> str:
    value = options.get(key, default)
    if value not in choices:
        raise AuditInputError(f"gans.{name}.{key}: expected one of {', '.join(choices)}, got {value!r}")
    return value


CHUNK = 1024  # images per block when a generator computes in float (bounds memory at any n)


# --- memoriser ----------------------------------------------------------------------------------

def distinct_rows(data, rows: np.ndarray) -> np.ndarray:
    """The rows of ``rows`` whose pixels differ from every earlier row's (first occurrence kept)."""
    seen, keep = set(), []
    for start in range(0, rows.size, CHUNK):
        block = np.ascontiguousarray(data.images[rows[start:start + CHUNK]])
        for row, image in zip(rows[start:start + CHUNK], block):
            digest = hashlib.blake2b(image.tobytes(), digest_size=16).digest()
            if digest not in seen:
                seen.add(digest)
                keep.append(row)
    return np.asarray(keep, dtype=np.int64)


def make_memoriser(name: str, kind: str, options: dict, context: SamplerContext) -> Sampler:
    """The planted memoriser: a support of exactly ``k`` real images.

    ``sample(n, seed)`` picks ``k`` distinct pool images with the seed (distinct in pixels, not
    only in row), emits each of them ``n // k`` or ``n // k + 1`` times (``draw: quota``, the
    default; ``multinomial``: each sample one of the k at random), adds independent
    Gaussian noise of standard deviation ``noise_std`` grey levels to every pixel, clips to
    [0, 255] and rounds to uint8. ``planted_labels`` is the class of each sample's source image.
    Asking for fewer than ``k`` samples is an error: the planted support would not be realised.

    ``per_class: true`` (the lecture's fooled inception score): one distinct pool image of each
    class, picked with the seed (k = the number of classes; setting ``k`` too is an error),
    emitted in the real class proportions (quota), so the class mix is the real one while the
    support is one image per class. Truth then also has ``class_distribution``.

    ``source_split: train`` (a memorisation control, issue 13): the k images come from the
    train split instead of the pool, so every sample is a noisy copy of a training image; the
    memorisation stage must flag it. Truth records the split. Default ``pool``.
    """
    check_option_names(name, options, ("k", "noise_std", "per_class", "draw", "source_split"))
    draw = choice_option(name, options, "draw", "quota", DRAWS)
    source = choice_option(name, options, "source_split", SOURCE_SPLIT, (SOURCE_SPLIT, "train"))
    data = context.data
    per_class = options.get("per_class", False)
    if not isinstance(per_class, bool):
        raise AuditInputError(f"gans.{name}.per_class: expected true or false, got {per_class!r}")
    if per_class and "k" in options:
        raise AuditInputError(f"gans.{name}: per_class: true sets k to the number of classes; remove k")
    k = data.n_classes if per_class else int_option(name, options, "k", 50, minimum=1)
    noise_std = number_option(name, options, "noise_std", 2.0, minimum=0)
    candidates = distinct_rows(data, data.rows(source))
    if k > candidates.size:
        raise AuditInputError(f"gans.{name}.k: {k} exceeds the {candidates.size} distinct images of the {source} split")
    weights = data.class_distribution() if per_class else np.full(k, 1.0 / k)
    if per_class:
        by_class = [candidates[data.labels[candidates] == c] for c in range(k)]
        empty = [data.class_names[c] for c, members in enumerate(by_class) if members.size == 0]
        if empty:
            raise AuditInputError(f"gans.{name}: the {source} split has no distinct images of class(es) {empty}")

    def sample(n: int, seed: int) -> SampleBatch:
        if n < k:
            raise AuditInputError(f"gans.{name}: asked for {n} samples, fewer than k={k}; "
                                  "the planted support would not be realised")
        rng = np.random.default_rng(seed)
        sources = (np.array([rng.choice(m) for m in by_class]) if per_class
                   else rng.choice(candidates, k, replace=False))
        chosen, _ = quota_resample(rng, [sources[i:i + 1] for i in range(k)], weights, n, draw)
        images = np.empty((n, *data.images.shape[1:]), dtype=np.uint8)
        for start in range(0, n, CHUNK):
            block = np.asarray(data.images[chosen[start:start + CHUNK]], dtype=np.float64)
            block += rng.normal(0.0, noise_std, size=block.shape) if noise_std > 0 else 0.0
            images[start:start + CHUNK] = np.rint(np.clip(block, 0, 255))
        return SampleBatch(images, data.labels[chosen])

    truth = {"support_size": k, "noise_std": noise_std, "draw": draw, "source_split": source}
    if per_class:
        truth.update(per_class=True, class_distribution=np.asarray(weights, float).tolist())
    return Sampler(name, sample, truth=truth)


# --- lowrank ------------------------------------------------------------------------------------

def top_components(centred: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """(d, r) orthonormal top-r principal directions of the (m, d) centred matrix, and the r
    leading eigenvalues of ``centred.T @ centred``. Uses the m x m Gram matrix when m <= d (an
    image set is usually fewer images than pixels), the d x d scatter matrix otherwise."""
    m, d = centred.shape
    if m <= d:
        values, vectors = np.linalg.eigh(centred @ centred.T)
        values, vectors = values[::-1][:r], vectors[:, ::-1][:, :r]
        if values[-1] <= 1e-10 * values[0]:
            return None, values
        basis = centred.T @ (vectors / np.sqrt(values))
    else:
        values, basis = np.linalg.eigh(centred.T @ centred)
        values, basis = values[::-1][:r], basis[:, ::-1][:, :r]
        if values[-1] <= 1e-10 * values[0]:
            return None, values
    basis, _ = np.linalg.qr(basis)  # exactly orthonormal; same span
    return basis, values


def make_lowrank(name: str, kind: str, options: dict, context: SamplerContext) -> Sampler:
    """The planted low-rank generator: pool images on an r-dimensional affine subspace.

    PCA is fitted on the **pool** split (the same images the samples come from; never train,
    val or test): pixels as float64 in [0, 1], flattened to d = H*W*C, at most ``fit_images``
    images (default 2,000; evenly spaced over the pool rows when the pool is larger, so the fit
    does not depend on the sample seed). A sample is a pool image x (drawn with the real class
    proportions; ``draw: quota`` by default, or ``multinomial``) mapped to
    ``mean + V_r V_r^T (x - mean)``.

    The projections leave [0, 1] (e.g. below 0 on black backgrounds). ``out_of_range``:

    * ``rescale`` (default): one affine map ``(p - lo) / (hi - lo)`` for every pixel of every
      sample, with lo = min(0, min projection) and hi = max(1, max projection) over the whole
      projected pool, fixed when the sampler is built. An affine map of the values keeps the
      samples on an r-dimensional affine subspace, so the rank is exact up to the uint8
      rounding (contrast drops by a factor hi - lo, ~1.7 on digits).
    * ``clip``: clip to [0, 1]. Keeps contrast but adds directions wherever it clips (on
      digits at r = 10 the (r+1)-th singular value is 17% of the r-th, against <1% rescaled).

    Then ``rint(255 * p)`` to uint8. ``planted_labels``: the class of each source image.
    """
    check_option_names(name, options, ("rank", "fit_images", "out_of_range", "draw"))
    data = context.data
    r = int_option(name, options, "rank", 10, minimum=1)
    fit_images = int_option(name, options, "fit_images", 2000, minimum=2)
    mode = choice_option(name, options, "out_of_range", "rescale", ("rescale", "clip"))
    draw = choice_option(name, options, "draw", "quota", DRAWS)
    shape = data.images.shape[1:]
    d = int(np.prod(shape))
    rows = data.rows(SOURCE_SPLIT)
    fit_rows = rows if rows.size <= fit_images else rows[np.linspace(0, rows.size - 1, fit_images).round().astype(int)]
    if r > min(fit_rows.size - 1, d - 1):
        raise AuditInputError(f"gans.{name}.rank: {r} must be below both the pixels per image ({d}) "
                              f"and the images the PCA is fitted on ({fit_rows.size})")
    pixels = np.asarray(data.images[fit_rows], dtype=np.float64).reshape(fit_rows.size, d) / 255.0
    mean = pixels.mean(axis=0)
    pixels -= mean
    basis, values = top_components(pixels, r)
    del pixels
    if basis is None:
        raise AuditInputError(f"gans.{name}.rank: the pool images span fewer than {r} directions")

    def project(images: np.ndarray) -> np.ndarray:
        x = np.asarray(images, dtype=np.float64).reshape(images.shape[0], d) / 255.0 - mean
        return mean + (x @ basis) @ basis.T

    lo, hi = 0.0, 1.0
    if mode == "rescale":
        for start in range(0, rows.size, CHUNK):
            p = project(data.images[rows[start:start + CHUNK]])
            lo, hi = min(lo, float(p.min())), max(hi, float(p.max()))
    probs = data.class_distribution()
    members = pool_members(name, data, probs)

    def sample(n: int, seed: int) -> SampleBatch:
        chosen, labels = quota_resample(np.random.default_rng(seed), members, probs, n, draw)
        images = np.empty((n, *shape), dtype=np.uint8)
        for start in range(0, n, CHUNK):
            p = project(data.images[chosen[start:start + CHUNK]])
            p = (p - lo) / (hi - lo) if mode == "rescale" else p
            images[start:start + CHUNK] = np.rint(255.0 * np.clip(p, 0.0, 1.0)).reshape(-1, *shape)
        return SampleBatch(images, labels)

    return Sampler(name, sample, truth={"rank": r, "source_split": SOURCE_SPLIT, "pca_split": SOURCE_SPLIT,
                                        "pca_images": int(fit_rows.size), "out_of_range": mode,
                                        "value_range": [lo, hi], "draw": draw})


# --- dropmodes ----------------------------------------------------------------------------------

def make_dropmodes(name: str, kind: str, options: dict, context: SamplerContext) -> Sampler:
    """The planted mode dropper: pool images of the kept classes only.

    ``keep_classes: [i, ..]`` (class indices) or ``n_classes_kept: m`` (classes 0..m-1), not
    both. The planted distribution is the real class proportions restricted to the kept classes
    and renormalised; each sample's class is drawn from it independently (``draw: multinomial``,
    the default, as in ``resample``) or its counts are realised exactly (``draw: quota``).
    """
    check_option_names(name, options, ("keep_classes", "n_classes_kept", "draw"))
    draw = choice_option(name, options, "draw", "multinomial", DRAWS)
    data = context.data
    n_classes = data.n_classes
    if ("keep_classes" in options) == ("n_classes_kept" in options):
        raise AuditInputError(f"gans.{name}: set exactly one of keep_classes (class indices) or n_classes_kept")
    if "keep_classes" in options:
        kept = options["keep_classes"]
        if (not isinstance(kept, list) or not kept or len(set(kept)) != len(kept)
                or any(isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < n_classes for k in kept)):
            raise AuditInputError(f"gans.{name}.keep_classes: expected distinct class indices in [0, {n_classes}), "
                                  f"got {kept!r}")
        kept = sorted(kept)
    else:
        kept = list(range(int_option(name, options, "n_classes_kept", 0, minimum=1, maximum=n_classes)))
    real = planted_class_distribution(name, {}, data.class_distribution())
    probs = np.zeros(n_classes)
    probs[kept] = real[kept]
    if probs.sum() == 0:
        raise AuditInputError(f"gans.{name}: the kept classes {kept} have no real images")
    probs /= probs.sum()
    members = pool_members(name, data, probs)

    def sample(n: int, seed: int) -> SampleBatch:
        chosen, labels = quota_resample(np.random.default_rng(seed), members, probs, n, draw)
        return SampleBatch(np.asarray(data.images[chosen]), labels)

    return Sampler(name, sample, truth={"class_distribution": probs.tolist(), "kept_classes": kept,
                                        "draw": draw, "source_split": SOURCE_SPLIT})


# --- blank --------------------------------------------------------------------------------------

def make_blank(name: str, kind: str, options: dict, context: SamplerContext) -> Sampler:
    """The planted failure: a set fraction of blank images among real pool images.

    Of n samples exactly ``quota_counts([f, 1 - f], n)[0]`` (f * n to the nearest image) are
    blank, the rest are pool images with the real class proportions (quota); with ``draw:
    multinomial`` each sample is blank with probability f and its class drawn independently
    (default ``quota``). ``blank_kind``:
    ``noise`` (every pixel and channel uniform in 0..255, independently) or ``constant``
    (every pixel ``blank_level``, default 128). Blanks and real images are shuffled together;
    ``planted_labels`` is -1 for a blank and the class for a real image.
    """
    check_option_names(name, options, ("blank_fraction", "blank_kind", "blank_level", "draw"))
    data = context.data
    fraction = number_option(name, options, "blank_fraction", 0.2, minimum=0, maximum=1)
    blank_kind = choice_option(name, options, "blank_kind", "noise", ("noise", "constant"))
    if blank_kind == "noise" and "blank_level" in options:
        raise AuditInputError(f"gans.{name}.blank_level: only applies to blank_kind: constant")
    level = int_option(name, options, "blank_level", 128, minimum=0, maximum=255)
    draw = choice_option(name, options, "draw", "quota", DRAWS)
    probs = data.class_distribution()
    members = pool_members(name, data, probs)
    shape = data.images.shape[1:]

    def sample(n: int, seed: int) -> SampleBatch:
        rng = np.random.default_rng(seed)
        n_blank = int(draw_counts(rng, np.array([fraction, 1.0 - fraction]), n, draw)[0])
        chosen, labels = quota_resample(rng, members, probs, n - n_blank, draw)
        if blank_kind == "noise":
            blanks = rng.integers(0, 256, size=(n_blank, *shape), dtype=np.uint8)
        else:
            blanks = np.full((n_blank, *shape), level, dtype=np.uint8)
        images = np.concatenate([blanks, np.asarray(data.images[chosen])])
        labels = np.concatenate([np.full(n_blank, -1, dtype=np.int64), labels])
        order = rng.permutation(n)
        return SampleBatch(images[order], labels[order])

    truth = {"blank_fraction": fraction, "blank_kind": blank_kind, "draw": draw, "source_split": SOURCE_SPLIT}
    if blank_kind == "constant":
        truth["blank_level"] = level
    return Sampler(name, sample, truth=truth)
