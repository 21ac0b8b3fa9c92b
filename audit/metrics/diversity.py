"""Diversity by classification (issue 5; Santurkar, Schmidt & Madry 2017).

A classifier trained on N GAN samples (labelled by the annotator) is tested on the real ``test``
split and compared with the same classifier trained on n real images: the GAN's samples are
"worth" ``n_equiv`` real images, the real sample size whose accuracy equals the GAN-trained
accuracy. Santurkar et al. found n_equiv far below N for the GANs of 2017.

The real-test accuracy of a GAN-trained classifier is the **Classification Accuracy Score**
(CAS; Ravuri & Vinyals 2019), called **GAN-train** by Shmelkov, Schmid & Alahari (2018).

Two parts, both on arrays:

* pure functions on accuracy curves: :func:`isotonic_increasing`, :func:`mean_curve`,
  :func:`equivalent_sample_size` (interpolation in log n with censoring),
  :func:`n_equiv_summary` (point, per-seed pairings, bootstrap
  over seeds);
* training and evaluation helpers: :func:`stratified_subset`, :func:`holdout_split`,
  :func:`fit_linear`, :func:`fit_deep`, :func:`train_and_evaluate`, :func:`constant_result`.

Units: sample sizes are numbers of images; accuracies are fractions in [0, 1]; images are uint8
(N, H, W, C) arrays and labels (N,) int class indices in [0, K).
Censored sample sizes are floats ``-inf`` ("< n_min": below the smallest real n of the curve)
and ``+inf`` ("> n_max": above the largest), never invented numbers; :func:`describe_n` turns
them into JSON-ready dicts.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass
from collections.abc import Callable

import numpy as np

from audit.data.store import largest_remainder
from audit.metrics.bootstrap import percentile_interval

#: the name every output gives the real-test accuracy of a GAN-trained classifier
CAS_ALIASES = ("accuracy on the real test split of the classifier trained on GAN samples = Classification "
               "Accuracy Score (CAS; Ravuri & Vinyals 2019) = GAN-train (Shmelkov, Schmid & Alahari 2018)")
KINDS = ("linear", "deep")


# --------------------------------------------------------------------------------------------
# pure functions on curves


def isotonic_increasing(y: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Least-squares non-decreasing fit of ``y`` (pool-adjacent-violators).

    ``y``: (G,) values in grid order; ``weights``: (G,) positive weights (default 1).
    Returns the (G,) fitted values: every run of violating points is replaced by its weighted
    mean, so ``[0.5, 0.7, 0.6, 0.9]`` becomes ``[0.5, 0.65, 0.65, 0.9]``. Unlike a running
    maximum it does not ratchet up on a lucky (noisy) point.
    """
    y = np.asarray(y, dtype=np.float64)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64)
    blocks: list[list[float]] = []  # [mean, weight, length]
    for value, weight in zip(y, w):
        blocks.append([value, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m1, w1, l1), (m2, w2, l2) = blocks[-2], blocks.pop()
            blocks[-1] = [(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, l1 + l2]
    return np.concatenate([np.full(length, mean) for mean, _, length in blocks]) if blocks else y


def mean_curve(n: np.ndarray, accuracy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean accuracy per sample size: (sorted unique n (G,), mean accuracy at each (G,)).

    ``n`` and ``accuracy`` are (R,) one entry per trained classifier (e.g. sizes x seeds).
    """
    n = np.asarray(n, dtype=np.float64)
    accuracy = np.asarray(accuracy, dtype=np.float64)
    grid = np.unique(n)
    return grid, np.array([accuracy[n == g].mean() for g in grid])


def equivalent_sample_size(n_grid: np.ndarray, curve: np.ndarray, target: float) -> float:
    """The real sample size at which a non-decreasing accuracy curve reaches ``target``.

    ``n_grid``: (G,) increasing sample sizes; ``curve``: (G,) non-decreasing accuracies (make
    it so with :func:`isotonic_increasing` first). Between grid points the curve is linear in
    log n, so between n_i < n_{i+1} with c_i < target <= c_{i+1}:

        log n_equiv = log n_i + (target - c_i) / (c_{i+1} - c_i) * (log n_{i+1} - log n_i)

    i.e. the *smallest* n reaching ``target`` (on a flat stretch: its left end). Censored:
    ``-inf`` when ``target < c_0`` (fewer than n_min real images would do), ``+inf`` when
    ``target > c_{G-1}`` (more than n_max would be needed). ``target == c_0`` gives n_0.
    """
    n_grid = np.asarray(n_grid, dtype=np.float64)
    curve = np.asarray(curve, dtype=np.float64)
    if n_grid.ndim != 1 or n_grid.shape != curve.shape or n_grid.size == 0:
        raise ValueError("equivalent_sample_size: n_grid and curve must be equal-length 1-d arrays")
    if np.any(np.diff(n_grid) <= 0) or np.any(n_grid <= 0):
        raise ValueError("equivalent_sample_size: n_grid must be positive and increasing")
    if np.any(np.diff(curve) < -1e-12):
        raise ValueError("equivalent_sample_size: curve must be non-decreasing (use isotonic_increasing)")
    if not np.isfinite(target):
        raise ValueError("equivalent_sample_size: target must be finite")
    tol = 1e-12  # accuracies equal up to rounding (a mean over seeds) count as equal
    if target < curve[0] - tol:
        return -np.inf
    if target > curve[-1] + tol:
        return np.inf
    i = int(np.argmax(curve >= target - tol))  # first grid point reaching the target
    if i == 0:
        return float(n_grid[0])
    lo, hi = curve[i - 1], curve[i]
    fraction = min(1.0, (target - lo) / (hi - lo))
    log_n = np.log(n_grid[i - 1]) + fraction * (np.log(n_grid[i]) - np.log(n_grid[i - 1]))
    return float(np.exp(log_n))


def describe_n(value: float, n_min: float, n_max: float) -> dict:
    """JSON-ready form of a (possibly censored) sample size.

    ``{"value": 43.2, "censored": None, "text": "43"}``, or
    ``{"value": None, "censored": "below", "bound": n_min, "text": "< 20"}`` /
    ``{"value": None, "censored": "above", "bound": n_max, "text": "> 809"}``.
    """
    if value == -np.inf:
        return {"value": None, "censored": "below", "bound": float(n_min), "text": f"< {n_min:g}"}
    if value == np.inf:
        return {"value": None, "censored": "above", "bound": float(n_max), "text": f"> {n_max:g}"}
    return {"value": float(value), "censored": None, "text": f"{value:.0f}"}


def interval_text(score: dict) -> str:
    """``"[lo, hi]"``: the n_equiv 95% interval of one classifier kind's score, censored bounds as
    "< n" / "> n" (the text every output prints)."""
    return f"[{score['n_equiv_ci_low']['text']}, {score['n_equiv_ci_high']['text']}]"


def n_equiv_summary(n_grid: np.ndarray, real_accuracy: np.ndarray, gan_accuracy: np.ndarray,
                    n_bootstrap: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """n_equiv with a confidence interval over training seeds.

    Parameters
    ----------
    n_grid : (G,) increasing real sample sizes.
    real_accuracy : (S, G) real-test accuracy of the real-trained classifier, seed s, size g.
    gan_accuracy : (S',) real-test accuracy of the GAN-trained classifier, one per seed.
    n_bootstrap, seed : bootstrap replicates over seeds and their RNG seed.
    level : coverage of the percentile interval.

    Returns
    -------
    dict with ``point`` (n_equiv of the mean GAN accuracy on the isotonic fit of the mean real
    curve), ``per_seed`` (seed s of the GAN paired with seed s of the real curve, each curve
    made isotonic; only when S == S'), ``ci_low`` / ``ci_high`` (percentile bootstrap over
    seeds: the S real seeds and the S' GAN seeds are resampled with replacement, independently,
    and the point estimate recomputed) and the curve used, each sample size as
    :func:`describe_n`. With few seeds (3 by default) the interval only covers training
    randomness and is coarse; the test split is the same for every classifier.
    """
    n_grid = np.asarray(n_grid, dtype=np.float64)
    real = np.atleast_2d(np.asarray(real_accuracy, dtype=np.float64))
    gan = np.asarray(gan_accuracy, dtype=np.float64).ravel()
    if real.shape[1] != n_grid.size or gan.size == 0:
        raise ValueError("n_equiv_summary: real_accuracy must be (S, G) and gan_accuracy non-empty")
    n_min, n_max = float(n_grid[0]), float(n_grid[-1])

    def estimate(real_rows: np.ndarray, gan_values: np.ndarray) -> float:
        return equivalent_sample_size(n_grid, isotonic_increasing(real_rows.mean(axis=0)), float(gan_values.mean()))

    point = estimate(real, gan)
    rng = np.random.default_rng(seed)
    replicates = np.array([
        estimate(real[rng.integers(0, real.shape[0], real.shape[0])], gan[rng.integers(0, gan.size, gan.size)])
        for _ in range(n_bootstrap)
    ])
    ci_low, ci_high = percentile_interval(replicates, level)
    result = {
        "point": describe_n(point, n_min, n_max),
        "ci_low": describe_n(ci_low, n_min, n_max),
        "ci_high": describe_n(ci_high, n_min, n_max),
        "ci_level": level,
        "ci_method": f"percentile bootstrap over seeds ({n_bootstrap} replicates; real and GAN seeds "
                     "resampled independently)",
        "fraction_censored_below": float(np.mean(replicates == -np.inf)),
        "fraction_censored_above": float(np.mean(replicates == np.inf)),
        "gan_accuracy_mean": float(gan.mean()),
        "real_curve_n": n_grid.tolist(),
        "real_curve_isotonic": isotonic_increasing(real.mean(axis=0)).tolist(),
    }
    if real.shape[0] == gan.size:
        result["per_seed"] = [describe_n(equivalent_sample_size(n_grid, isotonic_increasing(real[s]), gan[s]),
                                         n_min, n_max) for s in range(gan.size)]
    return result


# --------------------------------------------------------------------------------------------
# subsets


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
    ``max_holdout`` (quota over classes). Used for GAN samples, whose validation must come from
    the GAN itself.
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


# --------------------------------------------------------------------------------------------
# classifiers


@dataclass
class Recipe:
    """How every classifier of one audit is trained (the same for real- and GAN-trained ones).

    Deep: ``arch`` (:func:`audit.models.classifier.build_classifier`), fresh weights, AdamW with
    a one-cycle schedule over a FIXED budget of ``steps`` optimisation steps of ``batch_size``
    images (cost independent of the training-set size), validation every ``steps // 10`` steps,
    the best-validation weights kept (the whole budget is always spent), augmentation
    ``flip``/``shift``.
    Linear: multinomial logistic regression on standardised pixels. scikit-learn (L-BFGS) when
    an image has at most ``linear_max_pixels`` values d, with C chosen from ``linear_c_grid`` by
    validation accuracy; above that a torch linear layer on per-pixel standardised inputs
    trained like the deep one (``steps`` of ``batch_size``, AdamW at peak rate ``linear_lr``,
    weight decay ``weight_decay``, no augmentation, best-validation weights). The solver depends
    on d only, so the real curve and every GAN of one dataset use the same one (an N-dependent
    switch would compare a GAN's torch layer with a real curve of L-BFGS fits). L-BFGS on
    1,440 64x64x3 scenes patches took 144 s for the four C values; the torch layer costs the
    step budget whatever N is.
    """

    arch: str = "smallcnn"
    steps: int = 300
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 5e-4
    flip: bool = False
    shift: int = 1
    linear_c_grid: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)
    linear_max_pixels: int = 1024
    #: peak learning rate of the torch linear layer (a linear model on standardised inputs wants
    #: a larger step than a network: on digits, 300 steps reach 97.6% test accuracy at 0.03,
    #: 92% at 0.002)
    linear_lr: float = 0.03
    device: str = "cpu"
    #: training accuracy is measured on at most this many training images (seeded subset)
    max_train_eval: int = 5000

    def public(self) -> dict:
        out = asdict(self)
        out.pop("device")
        out["linear_c_grid"] = list(self.linear_c_grid)
        return out


@dataclass
class Fitted:
    """A trained classifier: ``predict`` maps uint8 (N, H, W, C) images to (N,) classes."""

    predict: Callable[[np.ndarray], np.ndarray]
    val_accuracy: float | None
    selected: str  # what model selection chose, e.g. "C=0.1" or "step=240"
    method: str


def _flat(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, C) -> float64 (N, d) in [0, 1]."""
    return np.asarray(images, dtype=np.float64).reshape(images.shape[0], -1) / 255.0


def _predict_batched(predict_rows: Callable[[np.ndarray], np.ndarray], images: np.ndarray,
                     batch: int = 4096) -> np.ndarray:
    if images.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([predict_rows(np.asarray(images[s:s + batch])) for s in range(0, images.shape[0], batch)])


def fit_linear(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray | None, val_y: np.ndarray | None,
               n_classes: int, recipe: Recipe, seed: int) -> Fitted:
    """Linear classifier on standardised pixels (see :class:`Recipe` for which solver when).

    ``train_x``: uint8 (N, H, W, C) with (N,) ``train_y`` holding >= 2 classes; ``val_x`` /
    ``val_y`` the model-selection set (None: C = 1, or the last step).
    """
    d = int(np.prod(train_x.shape[1:]))
    if d <= recipe.linear_max_pixels:
        return _fit_sklearn_linear(train_x, train_y, val_x, val_y, recipe)
    return _fit_torch_linear(train_x, train_y, val_x, val_y, n_classes, recipe, seed)


def _one_blas_thread():
    """One BLAS thread for the scikit-learn fits: at these sizes threads gain little, and on a
    shared, busy 2-core machine OpenBLAS spin-waiting made a 10,000 x 64 fit 30x slower with two
    threads than with one."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _fit_sklearn_linear(train_x, train_y, val_x, val_y, recipe: Recipe) -> Fitted:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    with _one_blas_thread():
        scaler = StandardScaler().fit(_flat(train_x))
        features = scaler.transform(_flat(train_x))
        val_features = None if val_x is None or len(val_x) == 0 else scaler.transform(_flat(val_x))
        grid = recipe.linear_c_grid if val_features is not None else (1.0,)
        best = None
        for c in grid:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model = LogisticRegression(C=c, max_iter=1000).fit(features, train_y)
            if val_features is None:
                best = (None, c, model)
                break
            # ties keep the earlier C of the grid (ascending: the stronger regularisation)
            score = float((model.predict(val_features) == val_y).mean())
            if best is None or score > best[0]:
                best = (score, c, model)
    score, c, model = best

    def predict(images):
        with _one_blas_thread():
            return _predict_batched(lambda b: model.predict(scaler.transform(_flat(b))), images)

    return Fitted(predict, score, f"C={c:g}", "sklearn LogisticRegression (lbfgs) on standardised pixels")


def _fit_torch_linear(train_x, train_y, val_x, val_y, n_classes: int, recipe: Recipe, seed: int) -> Fitted:
    import torch
    from torch import nn

    from audit.models.classifier import predict_logits, to_tensor, train_classifier

    # per-pixel mean and standard deviation of the training images in to_tensor's units, streamed
    total = torch.zeros(train_x.shape[3], *train_x.shape[1:3], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for s in range(0, train_x.shape[0], 2048):
        x = to_tensor(np.asarray(train_x[s:s + 2048])).double()
        total += x.sum(0)
        squares += (x * x).sum(0)
    mean = total / train_x.shape[0]
    std = (squares / train_x.shape[0] - mean * mean).clamp_min(0).sqrt()
    std[std < 1e-6] = 1.0

    class Standardise(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", mean.float())
            self.register_buffer("std", std.float())

        def forward(self, x):
            return (x - self.mean) / self.std

    torch.manual_seed(seed)
    model = nn.Sequential(Standardise(), nn.Flatten(), nn.Linear(mean.numel(), n_classes))
    has_val = val_x is not None and len(val_x) > 0
    result = train_classifier(model, train_x, train_y, val_x if has_val else None, val_y if has_val else None,
                              steps=recipe.steps, batch_size=recipe.batch_size, lr=recipe.linear_lr,
                              weight_decay=recipe.weight_decay, patience=recipe.steps + 1, seed=seed,
                              device=recipe.device)
    val_acc = max((r.get("val_accuracy", -1) for r in result.history), default=-1)

    def predict(images):
        return predict_logits(result.model, images, device=recipe.device).argmax(1).numpy()

    return Fitted(predict, val_acc if has_val else None, f"step={result.best_step}",
                  "torch linear layer on standardised pixels (d above linear_max_pixels)")


def fit_deep(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray | None, val_y: np.ndarray | None,
             n_classes: int, recipe: Recipe, seed: int) -> Fitted:
    """Fresh ``recipe.arch`` network trained for ``recipe.steps`` steps (see :class:`Recipe`)."""
    import torch

    from audit.models.classifier import build_classifier, predict_logits, train_classifier

    torch.manual_seed(seed)  # weights and dropout
    model = build_classifier(recipe.arch, tuple(train_x.shape[1:]), n_classes)
    has_val = val_x is not None and len(val_x) > 0
    result = train_classifier(model, train_x, train_y, val_x if has_val else None, val_y if has_val else None,
                              steps=recipe.steps, batch_size=recipe.batch_size, lr=recipe.lr,
                              weight_decay=recipe.weight_decay, flip=recipe.flip, shift=recipe.shift,
                              patience=recipe.steps + 1, seed=seed, device=recipe.device)
    val_acc = max((r.get("val_accuracy", -1) for r in result.history), default=-1)

    def predict(images):
        return predict_logits(result.model, images, device=recipe.device).argmax(1).numpy()

    return Fitted(predict, val_acc if has_val else None, f"step={result.best_step}", f"{recipe.arch}, fresh weights")


def accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of (N,) ``predicted`` equal to (N,) ``labels``."""
    return float(np.mean(np.asarray(predicted) == np.asarray(labels)))


def run_seed(*parts: int) -> int:
    """A 31-bit seed derived from integers (base seed, sample size, role...)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


def train_and_evaluate(kind: str, train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray | None,
                       val_y: np.ndarray | None, test_x: np.ndarray, test_y: np.ndarray, n_classes: int,
                       recipe: Recipe, seed: int) -> dict:
    """Train one ``kind`` ("linear" | "deep") classifier and evaluate it.

    Returns a row: kind, n_train, train_accuracy (on at most ``recipe.max_train_eval`` training
    images, without augmentation), val_accuracy (of the selected model; None without a
    validation set), test_accuracy (real test split), selected, method, seconds (wall clock of
    training and evaluation). Fewer than 2 classes in ``train_y`` gives :func:`constant_result`.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown classifier kind '{kind}', expected one of {KINDS}")
    train_y = np.asarray(train_y)
    if np.unique(train_y).size < 2 or train_y.size < 2:
        return constant_result(kind, train_y, test_y, n_classes)
    start = time.perf_counter()
    fit = fit_linear if kind == "linear" else fit_deep
    fitted = fit(train_x, train_y, val_x, val_y, n_classes, recipe, seed)
    if train_y.size > recipe.max_train_eval:
        sub = np.sort(np.random.default_rng(seed).choice(train_y.size, recipe.max_train_eval, replace=False))
        train_acc = accuracy(fitted.predict(train_x[sub]), train_y[sub])
    else:
        train_acc = accuracy(fitted.predict(train_x), train_y)
    test_acc = accuracy(fitted.predict(test_x), test_y)
    return {"kind": kind, "n_train": int(train_y.size), "train_accuracy": train_acc,
            "val_accuracy": fitted.val_accuracy, "test_accuracy": test_acc, "selected": fitted.selected,
            "method": fitted.method, "seconds": time.perf_counter() - start}


def constant_result(kind: str, train_y: np.ndarray, test_y: np.ndarray, n_classes: int) -> dict:
    """The degenerate classifier when the training labels hold fewer than 2 classes.

    One class c: the constant classifier "always c" (train accuracy 1, test accuracy = share of
    c in the test split). No training images: no class to predict, recorded as the expected
    accuracy of a uniform guess, 1 / K, with train accuracy None.
    """
    train_y = np.asarray(train_y)
    test_y = np.asarray(test_y)
    if train_y.size == 0:
        return {"kind": kind, "n_train": 0, "train_accuracy": None, "val_accuracy": None,
                "test_accuracy": 1.0 / n_classes, "selected": "none",
                "method": "degenerate: no training images (uniform guess)", "seconds": 0.0}
    c = int(np.bincount(train_y).argmax())
    return {"kind": kind, "n_train": int(train_y.size), "train_accuracy": accuracy(np.full(train_y.size, c), train_y),
            "val_accuracy": None, "test_accuracy": accuracy(np.full(test_y.size, c), test_y),
            "selected": f"constant={c}", "method": "degenerate: fewer than 2 classes (constant classifier)",
            "seconds": 0.0}
