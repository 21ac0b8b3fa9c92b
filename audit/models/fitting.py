"""How the diversity classifiers are trained and scored: one recipe, two kinds, many fits.

Every classifier of one diversity audit, real-trained or GAN-trained, follows one
:class:`Recipe`; :func:`train_and_evaluate` trains one ``kind`` ("linear" | "deep") and scores
it on the real test split; :func:`train_many` runs many such fits in worker processes
(:func:`audit.runtime.parallel_map`). The recipe travels with the real curve as table columns
(:func:`curve_columns`, :func:`recipe_from_curve`), so the GAN stage trains exactly as the real
curve was trained.

Images are uint8 (N, H, W, C) arrays, labels (N,) int class indices in [0, K); accuracies are
fractions in [0, 1]; seconds are wall clock.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from audit.io import AuditInputError

#: the classifier kinds, in the order every output lists them
KINDS = ("linear", "deep")


@dataclass(kw_only=True)
class Recipe:
    """How every classifier of one audit is trained (the same for real- and GAN-trained ones).

    ``arch``, ``steps``, ``batch_size``, ``lr``, ``flip`` and ``shift`` come from the config
    (``diversity.*``, ``annotator.flip``/``shift``) and have no default here; the technical knobs
    below them do.

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

    arch: str
    steps: int
    batch_size: int
    lr: float
    #: AdamW weight decay of the deep network and of the torch linear layer
    weight_decay: float = 5e-4
    flip: bool
    shift: int
    #: inverse regularisation strengths C tried by the scikit-learn linear fit (ascending)
    linear_c_grid: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)
    #: pixels per image (H*W*C) above which the linear classifier is a torch layer instead of
    #: scikit-learn, for the real curve and every GAN alike
    linear_max_pixels: int = 1024
    #: peak learning rate of the torch linear layer (a linear model on standardised inputs wants
    #: a larger step than a network: on digits, 300 steps reach 97.6% test accuracy at 0.03,
    #: 92% at 0.002)
    linear_lr: float = 0.03
    device: str = "cpu"
    #: training accuracy is measured on at most this many training images (seeded subset)
    max_train_eval: int = 5000

    def public(self) -> dict:
        """Every field but ``device`` (which does not change the numbers), JSON-ready."""
        out = asdict(self)
        out.pop("device")
        out["linear_c_grid"] = list(self.linear_c_grid)
        return out


# --------------------------------------------------------------------------------------------
# the recipe as table columns (the real-curve CSV carries it; the GAN stage reuses it)

#: recipe columns of a curve table (the GAN-trained classifiers reuse them)
RECIPE_COLUMNS = ("arch", "steps", "batch_size", "lr", "weight_decay", "flip", "shift", "linear_c_grid",
                  "linear_max_pixels", "linear_lr")


def shape_text(shape) -> str:
    """``(8, 8, 1)`` -> ``"8x8x1"``."""
    return "x".join(str(int(s)) for s in shape)


def curve_columns(image_shape, n_classes: int, recipe: Recipe) -> dict:
    """The columns every row of a curve table carries, in order: ``image_shape`` ("8x8x1"),
    ``n_classes`` and every field of ``recipe.public()`` (lists as JSON text)."""
    columns = {"image_shape": shape_text(image_shape), "n_classes": n_classes}
    for key, value in recipe.public().items():
        columns[key] = json.dumps(value) if isinstance(value, list) else value
    return columns


def recipe_from_curve(table: pd.DataFrame, path, image_shape, n_classes: int) -> Recipe:
    """The recipe a curve table (:func:`curve_columns`) was trained with, checked: one value
    per column, made for images of ``image_shape`` and ``n_classes`` classes. ``path`` names
    the file in the one-line :class:`audit.io.AuditInputError`. ``device`` is left at cpu."""
    for column in (*RECIPE_COLUMNS, "image_shape", "n_classes"):
        if table[column].nunique(dropna=False) != 1:
            raise AuditInputError(f"{path}: column {column} differs between rows; one recipe per curve")
    first = table.iloc[0]
    if str(first["image_shape"]) != shape_text(image_shape) or int(first["n_classes"]) != n_classes:
        raise AuditInputError(f"{path}: made for {first['image_shape']} images of {first['n_classes']} classes, "
                              f"the dataset has {shape_text(image_shape)} and {n_classes}")
    return Recipe(arch=str(first["arch"]), steps=int(first["steps"]), batch_size=int(first["batch_size"]),
                  lr=float(first["lr"]), weight_decay=float(first["weight_decay"]),
                  flip=bool(first["flip"]), shift=int(first["shift"]),
                  linear_c_grid=tuple(json.loads(first["linear_c_grid"])),
                  linear_max_pixels=int(first["linear_max_pixels"]), linear_lr=float(first["linear_lr"]))


# --------------------------------------------------------------------------------------------
# fits


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

    from audit.models.classifier import to_tensor

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
    return _fit_network(model, train_x, train_y, val_x, val_y, recipe, seed, lr=recipe.linear_lr, augment={},
                        method="torch linear layer on standardised pixels (d above linear_max_pixels)")


def fit_deep(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray | None, val_y: np.ndarray | None,
             n_classes: int, recipe: Recipe, seed: int) -> Fitted:
    """Fresh ``recipe.arch`` network trained for ``recipe.steps`` steps (see :class:`Recipe`)."""
    import torch

    from audit.models.classifier import build_classifier

    torch.manual_seed(seed)  # weights and dropout
    model = build_classifier(recipe.arch, tuple(train_x.shape[1:]), n_classes)
    return _fit_network(model, train_x, train_y, val_x, val_y, recipe, seed, lr=recipe.lr,
                        augment={"flip": recipe.flip, "shift": recipe.shift}, method=f"{recipe.arch}, fresh weights")


def _fit_network(model, train_x, train_y, val_x, val_y, recipe: Recipe, seed: int, *, lr: float, augment: dict,
                 method: str) -> Fitted:
    """Train ``model`` (seeded by the caller) for the recipe's step budget at peak rate ``lr``
    with the ``augment`` keywords (``flip``, ``shift``; none: no augmentation), best-validation
    weights kept (:func:`audit.models.classifier.train_classifier`)."""
    from audit.models.classifier import predict_logits, train_classifier

    has_val = val_x is not None and len(val_x) > 0
    result = train_classifier(model, train_x, train_y, val_x if has_val else None, val_y if has_val else None,
                              steps=recipe.steps, batch_size=recipe.batch_size, lr=lr,
                              weight_decay=recipe.weight_decay, **augment, patience=recipe.steps + 1, seed=seed,
                              device=recipe.device)
    val_acc = max((r.get("val_accuracy", -1) for r in result.history), default=-1)

    def predict(images):
        return predict_logits(result.model, images, device=recipe.device).argmax(1).numpy()

    return Fitted(predict, val_acc if has_val else None, f"step={result.best_step}", method)


def accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of (N,) ``predicted`` equal to (N,) ``labels``."""
    return float(np.mean(np.asarray(predicted) == np.asarray(labels)))


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


# --------------------------------------------------------------------------------------------
# many fits at once


def fit_task(shared: dict, task: tuple) -> dict:
    """:func:`train_and_evaluate` of one task ``(kind, rows of shared["train_x"] or None for
    all, seed)``; ``shared`` as :func:`train_many` builds it."""
    kind, rows, seed = task
    x, y = shared["train_x"], shared["train_y"]
    if rows is not None:
        x, y = x[rows], y[rows]
    return train_and_evaluate(kind, x, y, shared["val_x"], shared["val_y"], shared["test_x"], shared["test_y"],
                              shared["n_classes"], shared["recipe"], seed)


def train_many(tasks: list[tuple], train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray | None,
               val_y: np.ndarray | None, test_x: np.ndarray, test_y: np.ndarray, n_classes: int, recipe: Recipe,
               workers: int = 1, each=None) -> list[dict]:
    """One :func:`train_and_evaluate` row per task ``(kind, rows of train_x or None, seed)``, in
    task order, in ``workers`` forked processes sharing the arrays (memory maps stay on disk;
    see :func:`audit.runtime.parallel_map`). ``each(task, row)`` sees every row as it arrives."""
    from audit.runtime import parallel_map

    shared = {"train_x": train_x, "train_y": train_y, "val_x": val_x, "val_y": val_y, "test_x": test_x,
              "test_y": test_y, "n_classes": n_classes, "recipe": recipe}
    return parallel_map(fit_task, tasks, shared, workers, device=recipe.device, each=each)
