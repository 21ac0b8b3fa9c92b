"""How the diversity classifiers are trained and scored: one recipe, two kinds, many fits.

Every classifier of one diversity audit, real-trained or GAN-trained, follows one
:class:`Recipe`; :func:`train_and_evaluate` trains one ``kind`` ("linear" | "deep") and scores
it on the real test split; :func:`train_many` runs many such fits in worker processes
(:func:`audit.runtime.parallel_map`). The recipe travels with the real curve as table columns
(:func:`curve_columns`, :func:`recipe_from_curve`), so the GAN stage trains exactly as the real
curve was trained, and so does every classifier's per-image predictions on the real test split
(:func:`encode_predictions`), which the joint bootstrap of :mod:`audit.metrics.diversity` reads.

Model selection is the same rule for every classifier, real-trained or GAN-trained: it sees only
its own training set (:attr:`Recipe.holdout`; 0, the default, is no selection: a fixed recipe).

Images are uint8 (N, H, W, C) arrays, labels (N,) int class indices in [0, K); accuracies are
fractions in [0, 1]; ``seconds`` (wall clock) goes to logs only, never into a result file.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from audit.data.subsets import holdout_split
from audit.io import AuditInputError

#: the classifier kinds, in the order every output lists them
KINDS = ("linear", "deep")


@dataclass(kw_only=True)
class Recipe:
    """How every classifier of one audit is trained (the same for real- and GAN-trained ones).

    ``arch``, ``steps``, ``batch_size``, ``lr``, ``flip`` and ``shift`` come from the config
    (``diversity.*``, ``annotator.flip``/``shift``) and have no default here; the technical knobs
    below them do.

    Model selection (``holdout``, the same rule for every classifier): 0 (the default) trains
    on the whole training set and keeps the last weights (deep, torch linear) and C =
    ``linear_c`` (scikit-learn); h > 0 carves a class-stratified holdout of ``floor(h * m_k)``
    of the m_k training items of each class (at most ``max_holdout`` in all;
    :func:`audit.data.subsets.holdout_split`) from the classifier's OWN training set and selects
    on it (best-validation weights; C from ``linear_c_grid``). No classifier ever selects on
    real images it was not given to train on (see DIVERSITY.md, "Model selection").

    Deep: ``arch`` (:func:`audit.models.classifier.build_classifier`), fresh weights, AdamW with
    a one-cycle schedule over a FIXED budget of ``steps`` optimisation steps of ``batch_size``
    images (cost independent of the training-set size), augmentation ``flip``/``shift``.
    Linear: multinomial logistic regression on standardised pixels: a torch linear layer on
    per-pixel standardised inputs trained like the deep one (``steps`` of ``batch_size``, AdamW
    at peak rate ``linear_lr``, weight decay ``weight_decay``, no augmentation), or scikit-learn
    (L-BFGS) when an image has at most ``linear_max_pixels`` values d (default 0: never). The
    solver depends on d only, so the real curve and every GAN of one dataset use the same one
    (an N-dependent switch would compare a GAN's torch layer with a real curve of L-BFGS fits).
    The torch layer costs the step budget whatever N is (L-BFGS on 1,440 64x64x3 scenes patches
    took 144 s for the four C values).
    """

    arch: str
    steps: int
    batch_size: int
    lr: float
    #: AdamW weight decay of the deep network and of the torch linear layer
    weight_decay: float = 5e-4
    flip: bool
    shift: int
    #: share of each class of a classifier's own training set held out for model selection
    #: (0: none, the fixed recipe)
    holdout: float = 0.0
    #: at most this many training items are held out (quota over classes)
    max_holdout: int = 2000
    #: inverse regularisation strength C of the scikit-learn linear fit without selection
    linear_c: float = 1.0
    #: inverse regularisation strengths C tried by the scikit-learn linear fit with selection (ascending)
    linear_c_grid: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)
    #: pixels per image (H*W*C) up to which the linear classifier is scikit-learn instead of the
    #: torch layer, for the real curve and every GAN alike. 0 (the default): always the torch
    #: layer, whose mean loss and fixed step budget make it depend on its training set only
    #: through the set's distribution, as the deep classifier does; scikit-learn's summed loss
    #: under a fixed C weakens the penalty as samples repeat, so N draws of m images do not train
    #: it like the m images (DIVERSITY.md, "Model selection")
    linear_max_pixels: int = 0
    #: peak learning rate of the torch linear layer (a linear model on standardised inputs wants
    #: a larger step than a network: on digits, 300 steps reach 97.6% test accuracy at 0.03,
    #: 92% at 0.002)
    linear_lr: float = 0.03
    device: str = "cpu"
    #: training accuracy is measured on at most this many training images (seeded subset)
    max_train_eval: int = 5000

    def selection_text(self) -> str:
        """How every classifier (real- and GAN-trained alike) selects its model, in words."""
        if self.holdout == 0:
            sklearn = f"; scikit-learn C = {self.linear_c:g}" if self.linear_max_pixels > 0 else ""
            return (f"none: a fixed recipe (last weights after the step budget{sklearn}), the same for real- and "
                    "GAN-trained classifiers")
        return (f"a class-stratified holdout of {self.holdout:g} of each classifier's own training set (at most "
                f"{self.max_holdout}), the same rule for real- and GAN-trained classifiers")

    def public(self) -> dict:
        """Every field but ``device`` (which does not change the numbers), JSON-ready."""
        out = asdict(self)
        out.pop("device")
        out["linear_c_grid"] = list(self.linear_c_grid)
        return out


# --------------------------------------------------------------------------------------------
# the recipe as table columns (the real-curve CSV carries it; the GAN stage reuses it)

#: recipe columns of a curve table (the GAN-trained classifiers reuse them)
RECIPE_COLUMNS = ("arch", "steps", "batch_size", "lr", "weight_decay", "flip", "shift", "holdout", "max_holdout",
                  "linear_c", "linear_c_grid", "linear_max_pixels", "linear_lr")
#: the column of a curve table naming the test images its predictions are on (:func:`test_split_digest`)
TEST_SPLIT_COLUMN = "test_split"
#: the column of a curve table holding one classifier's predictions on the test split (:func:`encode_predictions`)
PREDICTIONS_COLUMN = "test_predictions"


def shape_text(shape) -> str:
    """``(8, 8, 1)`` -> ``"8x8x1"``."""
    return "x".join(str(int(s)) for s in shape)


def test_split_digest(rows: np.ndarray, labels: np.ndarray) -> str:
    """A 16-hex-digit digest of the test split (its (T,) row indices and (T,) labels, in order):
    two curve tables whose predictions carry the same digest are on the same test images."""
    h = hashlib.blake2b(digest_size=8)
    h.update(np.ascontiguousarray(rows, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()


def encode_predictions(predicted: np.ndarray) -> str:
    """(T,) predicted classes -> the CSV cell ``"3 0 9 ..."`` (one class index per test image, in
    test-split order)."""
    return " ".join(str(int(c)) for c in np.asarray(predicted).ravel())


def decode_predictions(column: pd.Series, n_test: int, n_classes: int, path) -> np.ndarray:
    """The (R, T) int16 predictions of a curve table's :data:`PREDICTIONS_COLUMN` (R rows), each
    row checked: T = ``n_test`` class indices in [0, ``n_classes``); else an
    :class:`audit.io.AuditInputError` naming ``path``."""
    out = np.empty((len(column), n_test), dtype=np.int16)
    for r, text in enumerate(column):
        try:
            values = np.array(str(text).split(), dtype=np.int64)
        except ValueError:
            raise AuditInputError(f"{path}: column {PREDICTIONS_COLUMN} row {r} is not a list of class "
                                  "indices") from None
        if values.size != n_test or values.min(initial=0) < 0 or values.max(initial=0) >= n_classes:
            raise AuditInputError(f"{path}: column {PREDICTIONS_COLUMN} row {r} must hold {n_test} class indices "
                                  f"in [0, {n_classes}), got {values.size}")
        out[r] = values
    return out


def curve_columns(image_shape, n_classes: int, recipe: Recipe, test_split: str) -> dict:
    """The columns every row of a curve table carries, in order: ``image_shape`` ("8x8x1"),
    ``n_classes``, :data:`TEST_SPLIT_COLUMN` (``test_split``, from :func:`test_split_digest`) and
    every field of ``recipe.public()`` (lists as JSON text)."""
    columns = {"image_shape": shape_text(image_shape), "n_classes": n_classes, TEST_SPLIT_COLUMN: test_split}
    for key, value in recipe.public().items():
        columns[key] = json.dumps(value) if isinstance(value, list) else value
    return columns


def recipe_from_curve(table: pd.DataFrame, path, image_shape, n_classes: int) -> Recipe:
    """The recipe a curve table (:func:`curve_columns`) was trained with, checked: one value
    per column, made for images of ``image_shape`` and ``n_classes`` classes. ``path`` names
    the file in the one-line :class:`audit.io.AuditInputError`. ``device`` is left at cpu."""
    for column in (*RECIPE_COLUMNS, "image_shape", "n_classes", TEST_SPLIT_COLUMN):
        if table[column].nunique(dropna=False) != 1:
            raise AuditInputError(f"{path}: column {column} differs between rows; one recipe per curve")
    first = table.iloc[0]
    if str(first["image_shape"]) != shape_text(image_shape) or int(first["n_classes"]) != n_classes:
        raise AuditInputError(f"{path}: made for {first['image_shape']} images of {first['n_classes']} classes, "
                              f"the dataset has {shape_text(image_shape)} and {n_classes}")
    return Recipe(arch=str(first["arch"]), steps=int(first["steps"]), batch_size=int(first["batch_size"]),
                  lr=float(first["lr"]), weight_decay=float(first["weight_decay"]),
                  flip=bool(first["flip"]), shift=int(first["shift"]), holdout=float(first["holdout"]),
                  max_holdout=int(first["max_holdout"]), linear_c=float(first["linear_c"]),
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
    ``val_y`` the model-selection set (None: C = ``recipe.linear_c``, or the last step).
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
        grid = recipe.linear_c_grid if val_features is not None else (recipe.linear_c,)
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
                        method="torch linear layer on standardised pixels")


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


def train_and_evaluate(kind: str, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                       n_classes: int, recipe: Recipe, seed: int) -> dict:
    """Train one ``kind`` ("linear" | "deep") classifier on (``train_x``, ``train_y``) and score
    it on the real test split.

    Model selection follows ``recipe.holdout`` (see :class:`Recipe`): the selection set, if any,
    is carved from ``train_y`` itself with ``seed``. Returns a row: kind, n_train (all training
    images given, holdout included), n_selection (held out of them), train_accuracy (on at most
    ``recipe.max_train_eval`` training images, without augmentation), val_accuracy (on the
    selection set; None without one), test_accuracy, selected, method, ``test_predictions``
    ((T,) int16 predicted classes, test-split order) and ``seconds`` (wall clock, for logs only).
    Fewer than 2 classes in ``train_y`` gives :func:`constant_result`.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown classifier kind '{kind}', expected one of {KINDS}")
    train_y = np.asarray(train_y)
    if np.unique(train_y).size < 2 or train_y.size < 2:
        return constant_result(kind, train_y, test_y)
    start = time.perf_counter()
    fit_idx, val_idx = (holdout_split(train_y, recipe.holdout, recipe.max_holdout, seed) if recipe.holdout > 0
                        else (np.arange(train_y.size), np.zeros(0, dtype=np.int64)))
    val_x, val_y = (train_x[val_idx], train_y[val_idx]) if val_idx.size else (None, None)
    fit_x, fit_y = (train_x, train_y) if val_idx.size == 0 else (train_x[fit_idx], train_y[fit_idx])
    fit = fit_linear if kind == "linear" else fit_deep
    fitted = fit(fit_x, fit_y, val_x, val_y, n_classes, recipe, seed)
    if fit_y.size > recipe.max_train_eval:
        sub = np.sort(np.random.default_rng(seed).choice(fit_y.size, recipe.max_train_eval, replace=False))
        train_acc = accuracy(fitted.predict(fit_x[sub]), fit_y[sub])
    else:
        train_acc = accuracy(fitted.predict(fit_x), fit_y)
    predicted = np.asarray(fitted.predict(test_x), dtype=np.int16)
    return {"kind": kind, "n_train": int(train_y.size), "n_selection": int(val_idx.size), "train_accuracy": train_acc,
            "val_accuracy": fitted.val_accuracy, "test_accuracy": accuracy(predicted, test_y),
            "selected": fitted.selected, "method": fitted.method, "test_predictions": predicted,
            "seconds": time.perf_counter() - start}


def constant_result(kind: str, train_y: np.ndarray, test_y: np.ndarray) -> dict:
    """The degenerate classifier when the training labels hold one class c: "always c" (train
    accuracy 1, test accuracy = share of c in the test split). No training images is an error:
    no classifier (and no accuracy) comes from 0 images."""
    train_y = np.asarray(train_y)
    test_y = np.asarray(test_y)
    if train_y.size == 0:
        raise ValueError("constant_result: no training images, so no classifier and no accuracy")
    c = int(np.bincount(train_y).argmax())
    predicted = np.full(test_y.size, c, dtype=np.int16)
    return {"kind": kind, "n_train": int(train_y.size), "n_selection": 0,
            "train_accuracy": accuracy(np.full(train_y.size, c), train_y), "val_accuracy": None,
            "test_accuracy": accuracy(predicted, test_y), "selected": f"constant={c}",
            "method": "degenerate: fewer than 2 classes (constant classifier)", "test_predictions": predicted,
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
    return train_and_evaluate(kind, x, y, shared["test_x"], shared["test_y"], shared["n_classes"], shared["recipe"],
                              seed)


def train_many(tasks: list[tuple], train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
               n_classes: int, recipe: Recipe, workers: int = 1, each=None) -> list[dict]:
    """One :func:`train_and_evaluate` row per task ``(kind, rows of train_x or None, seed)``, in
    task order, in ``workers`` forked processes sharing the arrays (memory maps stay on disk;
    see :func:`audit.runtime.parallel_map`). ``each(task, row)`` sees every row as it arrives."""
    from audit.runtime import parallel_map

    shared = {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y, "n_classes": n_classes,
              "recipe": recipe}
    return parallel_map(fit_task, tasks, shared, workers, device=recipe.device, each=each)


def log_line(prefix: str, row: dict) -> str:
    """The progress line of one trained classifier (logs only: it carries the wall clock)."""
    train = "n/a" if row["train_accuracy"] is None else f"{row['train_accuracy']:.4f}"
    return (f"{prefix} {row['kind']:>6}: train {train} test {row['test_accuracy']:.4f} "
            f"({row['selected']}, {row['seconds']:.1f}s)")


def result_rows(rows: list[dict], keys: list[dict]) -> tuple[list[dict], list[np.ndarray]]:
    """Rows of :func:`train_many` merged with their ``keys``, without the wall clock and with the
    predictions split off: (table rows, the (T,) predictions of each, in the same order)."""
    merged = [{**{k: v for k, v in row.items() if k not in ("seconds", "test_predictions")}, **key}
              for row, key in zip(rows, keys)]
    return merged, [row["test_predictions"] for row in rows]
