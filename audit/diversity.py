"""Stage ``diversity``: how many real images a GAN's samples are worth to a classifier.

    python -m audit.diversity --name dcgan --data results/digits/data \
        --samples results/digits/samples/dcgan/samples.npy --truth results/digits/samples/dcgan/truth.json \
        --labels results/digits/labels/dcgan.csv --real-curve results/digits/diversity/real_curve.csv \
        --threshold 0.9 --gan-grid 100 200 500 --bootstrap 1000 --alpha 0.05 --seed 0 --threads 1 \
        --device auto --out-json results/digits/diversity/dcgan.json \
        --out-csv results/digits/diversity/dcgan.csv --out-png results/digits/diversity/dcgan.png

Santurkar, Schmidt & Madry (2017): train a classifier on GAN samples labelled by the annotator,
test it on real images, and compare with the same classifier trained on n real images (the
real curve of :mod:`audit.real_curve`, whose recipe, model-selection rule included, is reused
unchanged).

Per GAN: the samples whose annotator confidence is >= ``--threshold``, labelled with the
annotator's class (N samples), train each kind once per seed of the real curve; no real image
reaches a GAN-trained classifier except the test split that scores it. The real-test accuracy
is the Classification Accuracy Score (Ravuri & Vinyals 2019) = GAN-train (Shmelkov et al.
2018). ``n_equiv``: the real sample size of equal accuracy on the (isotonic) real curve,
interpolated in log n, with a percentile interval from a joint bootstrap of the test images and
the seeds of both sides (:func:`audit.metrics.diversity.n_equiv_analysis`); censored ("< n",
"> n") outside the grid and where the real curve is flat within its noise. One verdict per
classifier kind tests H0 "n_equiv >= n_train" (:func:`audit.metrics.diversity.low_diversity_verdict`).
Fewer than 2 classes among the confident samples: no classifier is trained, CAS, n_equiv and
the verdicts are undefined with the reason. A saturation curve (accuracy vs N on a log grid up
to all N, first seed) shows whether more samples would help. Wall-clock times go to the log only.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from audit.cli import run_cli, stage_parser
from audit.data.store import PreparedDataset
from audit.data.subsets import parse_sizes
from audit.io import AuditInputError, load_images, load_json, load_table, save_json, save_table
from audit.metrics import diversity as dv
from audit.models.fitting import (KINDS, PREDICTIONS_COLUMN, RECIPE_COLUMNS, TEST_SPLIT_COLUMN, Recipe,
                                  decode_predictions, encode_predictions, log_line, recipe_from_curve, result_rows,
                                  test_split_digest, train_many)
from audit.runtime import run_seed

#: the columns of the real-curve CSV this stage reads
REAL_COLUMNS = ("kind", "n", "seed", "train_accuracy", "val_accuracy", "test_accuracy", "image_shape",
                "n_classes", TEST_SPLIT_COLUMN, PREDICTIONS_COLUMN, *RECIPE_COLUMNS)
#: the columns of this stage's CSV, in order (one row per trained classifier)
TABLE_COLUMNS = ["role", "kind", "N", "seed", "train_accuracy", "val_accuracy", "test_accuracy", "selected",
                 "method", "n_train", "n_selection", PREDICTIONS_COLUMN]


def load_real_curve(path, data: PreparedDataset) -> tuple[pd.DataFrame, Recipe, np.ndarray]:
    """The real-curve CSV checked against the dataset: (its rows without the predictions column,
    the recipe it was trained with, (R, T) int16 test predictions of its R rows)."""
    table = load_table(path, REAL_COLUMNS)
    if table.empty:
        raise AuditInputError(f"{path}: no rows")
    recipe = recipe_from_curve(table, path, data.images.shape[1:], data.n_classes)
    seeds = table.groupby(["kind", "n"])["seed"].apply(lambda s: tuple(sorted(s)))
    if seeds.nunique() != 1 or len(set(seeds.iloc[0])) != len(seeds.iloc[0]) or set(table["kind"]) - set(KINDS):
        raise AuditInputError(f"{path}: every (kind, n) needs one row per seed, the same seeds, kinds among {KINDS}")
    test_rows = data.rows("test")
    if str(table[TEST_SPLIT_COLUMN].iloc[0]) != test_split_digest(test_rows, data.labels[test_rows]):
        raise AuditInputError(f"{path}: made on other test images than {data.path}'s test split")
    n_train = int(data.rows("train").size)
    if int(table["n"].max()) != n_train:
        raise AuditInputError(f"{path}: its largest n is {int(table['n'].max())}, not the train split's {n_train}")
    rows, predictions = split_predictions(table, data, path)
    return rows, recipe, predictions


def split_predictions(table: pd.DataFrame, data: PreparedDataset,
                      where="real curve") -> tuple[pd.DataFrame, np.ndarray]:
    """A real-curve table (:func:`audit.real_curve.real_curve`) as (its rows without the
    predictions column, their (R, T) int16 predictions on ``data``'s test split)."""
    predictions = decode_predictions(table[PREDICTIONS_COLUMN], int(data.rows("test").size), data.n_classes, where)
    return table.drop(columns=PREDICTIONS_COLUMN).reset_index(drop=True), predictions


def load_labels(path, n_samples: int, n_classes: int) -> pd.DataFrame:
    table = load_table(path, ("row", "predicted", "confidence"))
    if table[["row", "predicted", "confidence"]].isna().any().any():
        raise AuditInputError(f"{path}: empty values in row, predicted or confidence")
    if not table["row"].between(0, n_samples - 1).all() or table["row"].duplicated().any():
        raise AuditInputError(f"{path}: column row must index the {n_samples} samples, each at most once")
    if not table["predicted"].between(0, n_classes - 1).all():
        raise AuditInputError(f"{path}: column predicted must hold class indices in [0, {n_classes})")
    if not table["confidence"].between(0, 1).all():
        raise AuditInputError(f"{path}: column confidence must be in [0, 1]")
    return table


def saturation_sizes(requested: list[int], n_all: int) -> list[int]:
    return sorted({n for n in requested if 2 <= n < n_all} | ({n_all} if n_all >= 1 else set()))


def real_correctness(real_table: pd.DataFrame, predictions: np.ndarray, test_y: np.ndarray, kind: str,
                     seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(grid (G,), bool (S, G, T) correctness of the real classifiers of ``kind``, seed by seed)."""
    mine = real_table[real_table["kind"] == kind]
    grid = np.array(sorted(mine["n"].unique()), dtype=np.float64)
    correct = np.zeros((len(seeds), grid.size, test_y.size), dtype=bool)
    for s, seed in enumerate(seeds):
        for g, n in enumerate(grid):
            row = mine.index[(mine["seed"] == seed) & (mine["n"] == n)]
            correct[s, g] = predictions[row[0]] == test_y
    return grid, correct


def degenerate_reason(n_all: int, classes: list[int]) -> str | None:
    """Why no GAN classifier can be trained (None: it can)."""
    if n_all == 0:
        return "no confident samples: CAS and n_equiv are undefined (never a number from 0 samples)"
    if len(classes) < 2:
        return (f"the confident samples hold only class {classes[0]}: a classifier needs at least 2 classes, so CAS "
                "and n_equiv are undefined")
    return None


def audit_gan(images: np.ndarray, labels: np.ndarray, data: PreparedDataset, real_table: pd.DataFrame,
              real_predictions: np.ndarray, recipe: Recipe, *, gan_grid: list[int], n_bootstrap: int, seed: int,
              alpha: float = 0.05, log=print, workers: int = 1) -> tuple[dict, pd.DataFrame]:
    """Every diversity figure of one GAN.

    ``images``: uint8 (N, H, W, C) confident GAN samples; ``labels``: (N,) their classes
    (annotator's, or planted in tests). ``real_table`` / ``real_predictions``: the real-curve
    rows and their (R, T) test predictions (:func:`load_real_curve`; its seeds and grid are
    used). ``gan_grid``: N of the saturation curve (``[]``: none beyond the seeds on all N).
    Returns (JSON-ready summary with ``scores`` and ``verdicts``, one row per trained classifier
    with its test predictions in :data:`audit.models.fitting.PREDICTIONS_COLUMN`).
    """
    labels = np.asarray(labels, dtype=np.int64)
    test_x, test_y = data.subset("test")
    test_y = np.asarray(test_y)
    seeds = sorted(int(s) for s in real_table["seed"].unique())
    kinds = [k for k in KINDS if k in set(real_table["kind"])]
    n_all, n_train = int(labels.size), int(real_table["n"].max())
    classes_present = sorted(int(c) for c in np.unique(labels))
    reason = degenerate_reason(n_all, classes_present)
    tasks, keys = [], []
    if reason is None:
        for s in seeds:  # every seed on all N samples, then the saturation curve (first seed) on nested subsets
            tasks += [(kind, None, run_seed(s, n_all, k, 1)) for k, kind in enumerate(kinds)]
            keys += [{"role": "seeds", "N": n_all, "seed": s} for _ in kinds]
        order = np.random.default_rng([seed, 31337]).permutation(n_all)
        for n in saturation_sizes(gan_grid, n_all):
            if n < n_all:
                tasks += [(kind, np.sort(order[:n]), run_seed(seeds[0], n, k, 2)) for k, kind in enumerate(kinds)]
                keys += [{"role": "saturation", "N": int(n), "seed": seeds[0]} for _ in kinds]
    rows = train_many(tasks, images, labels, test_x, test_y, data.n_classes, recipe, workers,
                      lambda task, row: log(log_line(f"GAN N={row['n_train']:>6}", row)))
    rows, predictions = result_rows(rows, keys)
    for row, predicted in zip(rows, predictions):
        row[PREDICTIONS_COLUMN] = encode_predictions(predicted)
        row["correct"] = predicted == test_y
    if reason is None and n_all in saturation_sizes(gan_grid, n_all):  # the point at all N is the first seed's run
        rows += [{**row, "role": "saturation"} for row in rows if row["role"] == "seeds" and row["seed"] == seeds[0]]
    rows = ([r for r in rows if r["role"] == "seeds"]
            + sorted((r for r in rows if r["role"] == "saturation"), key=lambda r: (r["N"], kinds.index(r["kind"]))))
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS + ["correct"])

    result = {
        "n_confident": n_all,
        "n_gan_train": n_all,
        "classes_in_gan_train": classes_present,
        "degenerate": reason,
        "seeds": seeds,
        "recipe": recipe.public(),
        "model_selection": recipe.selection_text(),
        "score_names": {"classification_accuracy_score": dv.CAS_ALIASES},
        "scores": {},
        "verdicts": [],
    }
    for k, kind in enumerate(kinds):
        if reason is not None:
            result["scores"][kind] = undefined_score(reason)
            result["verdicts"].append(dv.low_diversity_verdict(kind, None, n_train, alpha, reason).to_json())
            continue
        mine = table[(table["role"] == "seeds") & (table["kind"] == kind)].sort_values("seed")
        grid, real_correct = real_correctness(real_table, real_predictions, test_y, kind, seeds)
        analysis = dv.n_equiv_analysis(grid, real_correct, np.stack(mine["correct"].to_list()),
                                       n_bootstrap=n_bootstrap, seed=run_seed(seed, k, 3))
        result["scores"][kind] = defined_score(mine, analysis, n_all)
        result["verdicts"].append(dv.low_diversity_verdict(kind, analysis, n_train, alpha).to_json())
    sat = table[table["role"] == "saturation"]
    result["saturation"] = {kind: {"N": part["N"].astype(int).tolist(), "test_accuracy": part["test_accuracy"].tolist()}
                            for kind, part in sat.groupby("kind", sort=False)}
    return result, table.drop(columns="correct")


def defined_score(mine: pd.DataFrame, analysis: dict, n_all: int) -> dict:
    """The JSON score of one kind from its seed rows and :func:`audit.metrics.diversity.n_equiv_analysis`."""
    train_acc = mine["train_accuracy"].dropna()
    cas = analysis["classification_accuracy_score"]
    point = analysis["point"]
    details = ("ci_level", "ci_method", "resolved_from", "resolved_to", "fraction_censored_below",
               "fraction_censored_above", "real_curve_n", "real_curve_mean", "real_curve_isotonic", "test")
    return {
        "classification_accuracy_score": cas,
        "gan_train_accuracy_on_gan_samples": None if train_acc.empty else float(train_acc.mean()),
        "generalisation_gap": None if train_acc.empty else float(train_acc.mean() - cas),
        "gan_val_accuracy": None if mine["val_accuracy"].isna().all() else float(mine["val_accuracy"].mean()),
        "test_accuracy_per_seed": mine["test_accuracy"].tolist(),
        "real_full_train_accuracy": analysis["real_curve_mean"][-1],
        "n_equiv": point,
        "n_equiv_ci_low": analysis["ci_low"],
        "n_equiv_ci_high": analysis["ci_high"],
        "n_equiv_per_seed": analysis.get("per_seed"),
        "n_equiv_details": {key: analysis[key] for key in details},
        # n_equiv / N: the fraction of a real image each GAN sample is worth (None when censored)
        "n_equiv_per_gan_sample": None if point["value"] is None else point["value"] / n_all,
        "method": mine["method"].iloc[0],
    }


def undefined_score(reason: str) -> dict:
    """The JSON score of one kind when no GAN classifier could be trained."""
    return {"undefined": reason, "classification_accuracy_score": None, "gan_train_accuracy_on_gan_samples": None,
            "generalisation_gap": None, "gan_val_accuracy": None, "test_accuracy_per_seed": [],
            "real_full_train_accuracy": None, "n_equiv": dv.undefined_n(reason),
            "n_equiv_ci_low": dv.undefined_n(reason), "n_equiv_ci_high": dv.undefined_n(reason),
            "n_equiv_per_seed": None, "n_equiv_details": None, "n_equiv_per_gan_sample": None, "method": None}


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser("audit.diversity", __doc__)
    parser.add_argument("--name", required=True, help="the GAN's name in the outputs")
    parser.add_argument("--data", required=True, help="prepared dataset directory (python -m audit.prepare)")
    parser.add_argument("--samples", required=True, help="samples.npy written by the sample stage")
    parser.add_argument("--truth", required=True, help="truth.json written beside it (copied into the JSON)")
    parser.add_argument("--labels", required=True, help="labels CSV written by the label stage")
    parser.add_argument("--real-curve", required=True, help="CSV written by python -m audit.real_curve")
    parser.add_argument("--threshold", type=float, required=True, help="annotator confidence of a used sample")
    parser.add_argument("--gan-grid", nargs="+", required=True,
                        help="N GAN samples of the saturation curve (plus all of them)")
    parser.add_argument("--bootstrap", type=int, required=True,
                        help="joint bootstrap replicates (test images and seeds) for the n_equiv interval and test")
    parser.add_argument("--alpha", type=float, required=True, help="level of the low-diversity test (diversity.alpha)")
    parser.add_argument("--out-json", required=True)
    parser.add_argument("--out-csv", required=True)
    parser.add_argument("--out-png", required=True)
    args = parser.parse_args(argv)
    if not 0 <= args.threshold <= 1:
        raise AuditInputError(f"--threshold: must be in [0, 1], got {args.threshold}")
    if args.bootstrap < 10:
        raise AuditInputError(f"--bootstrap: must be >= 10, got {args.bootstrap}")
    if not 0 < args.alpha < 1:
        raise AuditInputError(f"--alpha: must be in (0, 1), got {args.alpha}")
    started = time.perf_counter()
    from audit.runtime import configure_workers, resolve_device

    workers = configure_workers(args.threads, args.seed)
    data = PreparedDataset.open(args.data)
    images = load_images(args.samples)
    if images.shape[1:] != data.images.shape[1:]:
        raise AuditInputError(f"{args.samples}: images of shape {images.shape[1:]}, "
                              f"the real images {data.images.shape[1:]}")
    real_table, recipe, real_predictions = load_real_curve(args.real_curve, data)
    recipe.device = resolve_device(args.device)
    labels = load_labels(args.labels, images.shape[0], data.n_classes)
    truth = load_json(args.truth)
    confident = labels[labels["confidence"] >= args.threshold].sort_values("row")
    rows = confident["row"].to_numpy(np.int64)
    gan_x = np.asarray(images[rows]) if rows.size else np.zeros((0, *images.shape[1:]), np.uint8)
    result, table = audit_gan(gan_x, confident["predicted"].to_numpy(np.int64), data, real_table, real_predictions,
                              recipe, gan_grid=parse_sizes(args.gan_grid, "--gan-grid"), n_bootstrap=args.bootstrap,
                              alpha=args.alpha, seed=args.seed, workers=workers)
    result = {
        "gan": args.name,
        "n_samples": int(images.shape[0]),
        "n_labelled": len(labels),
        "confidence_threshold": args.threshold,
        "confident_fraction": float(len(confident) / max(1, len(labels))),
        **result,
        "real_curve": str(args.real_curve),
        "real_n_train_split": int(data.rows("train").size),
        "n_test": int(data.rows("test").size),
        "truth": truth,
    }
    table.insert(0, "gan", args.name)
    save_table(args.out_csv, table)
    from audit.plots.diversity import plot_diversity

    plot_diversity(real_table, result, args.out_png,
                   f"{args.name}: {result['n_gan_train']} confident GAN samples (threshold {args.threshold})")
    save_json(args.out_json, result)
    if result["degenerate"]:
        print(f"warning: {args.name}: {result['degenerate']} (threshold {args.threshold})", file=sys.stderr)
    for kind, score in result["scores"].items():
        print(f"{args.name} {kind}: CAS (GAN-train) {_fmt(score['classification_accuracy_score'])}, "
              f"train {_fmt(score['gan_train_accuracy_on_gan_samples'])}, n_equiv {score['n_equiv']['text']} "
              f"{dv.interval_text(score)} of N={result['n_gan_train']}")
    for verdict in result["verdicts"]:
        print(f"{args.name} {verdict['test']}: {verdict['text']} (p = {verdict['p_value']})")
    print(f"{args.name}: {workers} worker(s), {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    run_cli(main)
