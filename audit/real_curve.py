"""Stage ``real_curve``: the real sample-efficiency curve the diversity of every GAN is read from.

    python -m audit.real_curve --data results/digits/data \
        --out-csv results/digits/diversity/real_curve.csv --out-json results/digits/diversity/real_curve.json \
        --grid 20 50 100 200 500 1000 --seeds 5 --arch smallcnn --steps 300 --batch-size 32 --lr 0.002 \
        --no-flip --shift 1 --holdout 0 --seed 0 --threads 1 --device auto

Once per dataset (Santurkar, Schmidt & Madry 2017). For every n of a log grid (sizes at or
above the real ``train`` split become the full split), every seed (``seed``, ``seed + 1``, ...)
and both classifier kinds (linear, deep; see :class:`audit.models.fitting.Recipe`): a
class-stratified subset of n ``train`` images, model selection by the recipe's rule on the
subset itself (``--holdout``; 0: none), accuracy on the ``test`` split. No other real split is
read: the GAN-trained classifiers of the ``diversity`` stage (:mod:`audit.diversity`) follow
the same rule on their own samples. The CSV (one row per classifier) carries the training
recipe, which the ``diversity`` stage reuses unchanged, and each classifier's predictions on
every test image (:func:`audit.models.fitting.encode_predictions`), which its joint bootstrap
reads; the JSON summarises the curve of each kind (mean, min, max and isotonic fit of the test
accuracy per n). Wall-clock times go to the log only.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from audit.cli import run_cli, stage_parser
from audit.data.store import PreparedDataset
from audit.data.subsets import parse_sizes, stratified_subset
from audit.io import AuditInputError, save_json, save_table
from audit.metrics.diversity import isotonic_increasing
from audit.models.fitting import (KINDS, PREDICTIONS_COLUMN, Recipe, curve_columns, encode_predictions, log_line,
                                  result_rows, test_split_digest, train_many)
from audit.runtime import run_seed


def real_grid(requested: list[int], n_train: int, n_classes: int) -> list[int]:
    """The requested sizes below the train split, plus the full split; every size >= K."""
    small = [n for n in requested if n < n_classes]
    if small:
        raise AuditInputError(f"diversity.grid: sizes {small} are below the number of classes ({n_classes}); "
                              "a stratified subset needs one image of every class")
    return sorted({min(n, n_train) for n in requested} | {n_train})


def real_curve(data: PreparedDataset, grid: list[int], seeds: list[int], recipe: Recipe,
               kinds=KINDS, log=print, workers: int = 1, test_rows: np.ndarray | None = None) -> pd.DataFrame:
    """One row per (kind, n, seed): classifiers trained on n real ``train`` images, each with
    its predictions on the test split (column :data:`audit.models.fitting.PREDICTIONS_COLUMN`).

    The train split stays on disk (memmap); each classifier reads only its n images. The
    predictions are on the ``test`` split, or on the images of ``test_rows`` when given (the
    coverage study of benchmarks/calibration_n_equiv.py scores a larger held-out set).
    """
    train_rows = data.rows("train")
    test_rows = data.rows("test") if test_rows is None else np.asarray(test_rows)
    test_x, test_y = np.asarray(data.images[test_rows]), np.asarray(data.labels[test_rows])
    tasks, keys = [], []
    for seed in seeds:
        for n in grid:
            idx = train_rows[stratified_subset(data.labels[train_rows], n, seed)]
            for k, kind in enumerate(kinds):
                tasks.append((kind, idx, run_seed(seed, n, k)))
                keys.append({"n": int(n), "seed": int(seed)})

    rows = train_many(tasks, data.images, data.labels, test_x, test_y, data.n_classes, recipe, workers,
                      lambda task, row: log(log_line(f"real n={row['n_train']:>6}", row)))
    rows, predictions = result_rows(rows, keys)
    table = pd.DataFrame(rows)
    digest = test_split_digest(test_rows, test_y)
    for column, value in curve_columns(data.images.shape[1:], data.n_classes, recipe, digest).items():
        table[column] = value
    table[PREDICTIONS_COLUMN] = [encode_predictions(p) for p in predictions]
    first = ["kind", "n", "seed", "train_accuracy", "val_accuracy", "test_accuracy", "selected", "method"]
    return table[first + [c for c in table.columns if c not in first]]


def curve_summary(table: pd.DataFrame) -> dict:
    """Per kind: the grid, mean / min / max test accuracy per n, its isotonic fit, train accuracy."""
    out = {}
    for kind, part in table.groupby("kind", sort=False):
        by_n = part.groupby("n")
        grid = np.array(sorted(part["n"].unique()), dtype=float)
        mean = by_n["test_accuracy"].mean().reindex(grid).to_numpy()
        out[kind] = {
            "n": grid.astype(int).tolist(),
            "test_accuracy_mean": mean.tolist(),
            "test_accuracy_min": by_n["test_accuracy"].min().reindex(grid).tolist(),
            "test_accuracy_max": by_n["test_accuracy"].max().reindex(grid).tolist(),
            "test_accuracy_isotonic": isotonic_increasing(mean).tolist(),
            "train_accuracy_mean": by_n["train_accuracy"].mean().reindex(grid).tolist(),
            "full_train_test_accuracy": float(mean[-1]),
        }
    return out


def _at_least(flag: str, value, minimum) -> None:
    if value < minimum:
        raise AuditInputError(f"{flag}: must be >= {minimum}, got {value}")


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser("audit.real_curve", __doc__)
    parser.add_argument("--data", required=True, help="prepared dataset directory (python -m audit.prepare)")
    parser.add_argument("--out-csv", required=True, help="one row per classifier, with the recipe")
    parser.add_argument("--out-json", required=True, help="the curve of each kind")
    parser.add_argument("--grid", nargs="+", required=True,
                        help="real sample sizes (diversity.grid); sizes >= the train split become the full split")
    parser.add_argument("--seeds", type=int, required=True, help="seeds seed, seed+1, ... (diversity.seeds)")
    parser.add_argument("--arch", required=True, help="deep classifier: auto | smallcnn | resnet18")
    parser.add_argument("--steps", type=int, required=True, help="optimisation steps of every classifier")
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--lr", type=float, required=True, help="peak learning rate of the deep classifier")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, required=True,
                        help="random horizontal flips of the deep classifier's images (or --no-flip)")
    parser.add_argument("--shift", type=int, required=True, help="random shifts of up to this many pixels")
    parser.add_argument("--holdout", type=float, required=True,
                        help="share of each classifier's own training set held out for model selection "
                             "(diversity.holdout; 0: none)")
    args = parser.parse_args(argv)
    _at_least("--seeds", args.seeds, 1)
    _at_least("--steps", args.steps, 1)
    _at_least("--batch-size", args.batch_size, 2)
    _at_least("--shift", args.shift, 0)
    if not args.lr > 0:
        raise AuditInputError(f"--lr: must be > 0, got {args.lr}")
    if not 0 <= args.holdout < 1:
        raise AuditInputError(f"--holdout: must be in [0, 1), got {args.holdout}")
    started = time.perf_counter()
    from audit.models.classifier import choose_architecture
    from audit.runtime import configure_workers, resolve_device

    workers = configure_workers(args.threads, args.seed)
    data = PreparedDataset.open(args.data)
    n_train = int(data.rows("train").size)
    if data.rows("test").size == 0:
        raise AuditInputError(f"{args.data}: the test split holds no images")
    grid = real_grid(parse_sizes(args.grid, "--grid"), n_train, data.n_classes)
    recipe = Recipe(arch=choose_architecture(args.arch, data.images.shape[1:]), steps=args.steps,
                    batch_size=args.batch_size, lr=args.lr, flip=args.flip, shift=args.shift,
                    holdout=args.holdout, device=resolve_device(args.device))
    seeds = [args.seed + i for i in range(args.seeds)]
    table = real_curve(data, grid, seeds, recipe, workers=workers)
    summary = {
        "dataset": data.name,
        "image_shape": list(data.images.shape[1:]),
        "n_classes": data.n_classes,
        "n_train_split": n_train,
        "n_test": int(data.rows("test").size),
        "grid": grid,
        "seeds": seeds,
        "recipe": recipe.public(),
        "model_selection": recipe.selection_text(),
        "curves": curve_summary(table),
    }
    save_table(args.out_csv, table)
    save_json(args.out_json, summary)
    for kind, curve in summary["curves"].items():
        pairs = ", ".join(f"{n}: {a:.3f}" for n, a in zip(curve["n"], curve["test_accuracy_mean"]))
        print(f"real curve {kind}: {pairs}")
    print(f"real curve: {len(table)} classifiers, {workers} worker(s), {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    run_cli(main)
