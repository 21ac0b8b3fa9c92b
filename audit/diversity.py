"""Stage ``diversity``: how many real images a GAN's samples are worth to a classifier.

    python -m audit.diversity --name dcgan --data results/digits/data \
        --samples results/digits/samples/dcgan/samples.npy --truth results/digits/samples/dcgan/truth.json \
        --labels results/digits/labels/dcgan.csv --real-curve results/digits/diversity/real_curve.csv \
        --threshold 0.9 --gan-grid 100 200 500 --holdout 0.1 --bootstrap 1000 --seed 0 --threads 1 \
        --device auto --out-json results/digits/diversity/dcgan.json \
        --out-csv results/digits/diversity/dcgan.csv --out-png results/digits/diversity/dcgan.png

Santurkar, Schmidt & Madry (2017): train a classifier on GAN samples labelled by the annotator,
test it on real images, and compare with the same classifier trained on n real images (the
real curve of :mod:`audit.real_curve`, whose recipe is reused unchanged).

Per GAN: the samples whose annotator confidence is >= ``--threshold``, labelled with the
annotator's class; ``--holdout`` of them (per class, at most :data:`MAX_HOLDOUT`) are their
validation set, so no real image reaches a GAN-trained classifier except the test split that
scores it. The rest (N samples) train each kind once per seed of the real curve. The real-test
accuracy is the Classification Accuracy Score (Ravuri & Vinyals 2019) = GAN-train (Shmelkov et
al. 2018). ``n_equiv``: the real sample size of equal accuracy on the (isotonic) real curve,
interpolated in log n, censored ("< n_min", "> n_max") outside the grid, with a bootstrap
interval over seeds. A saturation curve (accuracy vs N on a log grid up to all N, first seed)
shows whether more samples would help.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from audit.cli import run_cli, stage_parser
from audit.data.store import PreparedDataset
from audit.data.subsets import holdout_split, parse_sizes
from audit.io import AuditInputError, load_images, load_json, load_table, save_json, save_table
from audit.metrics import diversity as dv
from audit.models.fitting import KINDS, RECIPE_COLUMNS, Recipe, recipe_from_curve, train_many
from audit.runtime import run_seed

#: at most this many GAN samples are held out for validation (quota over classes)
MAX_HOLDOUT = 2000
#: the columns of the real-curve CSV this stage reads
REAL_COLUMNS = ("kind", "n", "seed", "train_accuracy", "val_accuracy", "test_accuracy", "image_shape",
                "n_classes", *RECIPE_COLUMNS)


def load_real_curve(path, data: PreparedDataset) -> tuple[pd.DataFrame, Recipe]:
    """The real-curve CSV, checked against the dataset, and the recipe it was trained with."""
    table = load_table(path, REAL_COLUMNS)
    if table.empty:
        raise AuditInputError(f"{path}: no rows")
    recipe = recipe_from_curve(table, path, data.images.shape[1:], data.n_classes)
    counts = table.groupby(["kind", "n"]).size()
    if counts.nunique() != 1 or set(table["kind"]) - set(KINDS):
        raise AuditInputError(f"{path}: every (kind, n) needs one row per seed, kinds among {KINDS}")
    return table, recipe


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


def audit_gan(images: np.ndarray, labels: np.ndarray, data: PreparedDataset, real_table: pd.DataFrame,
              recipe: Recipe, *, gan_grid: list[int], holdout: float, n_bootstrap: int, seed: int,
              max_holdout: int = MAX_HOLDOUT, log=print, workers: int = 1) -> tuple[dict, pd.DataFrame]:
    """Every diversity figure of one GAN.

    ``images``: uint8 (N, H, W, C) confident GAN samples; ``labels``: (N,) their classes
    (annotator's, or planted in tests). ``real_table``: the real-curve rows (its seeds and grid
    are used). ``gan_grid``: N of the saturation curve (``[]``: none beyond the seeds on all N).
    Returns (JSON-ready summary, one row per trained classifier).
    """
    labels = np.asarray(labels, dtype=np.int64)
    test_x, test_y = data.subset("test")
    seeds = sorted(int(s) for s in real_table["seed"].unique())
    kinds = [k for k in KINDS if k in set(real_table["kind"])]
    train_idx, val_idx = holdout_split(labels, holdout, max_holdout, seed)
    train_x, train_y = images[train_idx], labels[train_idx]
    val_x, val_y = (images[val_idx], labels[val_idx]) if val_idx.size else (None, None)
    n_all = int(train_idx.size)
    # every seed on all N samples, then the saturation curve (first seed) on nested random subsets
    tasks, keys = [], []
    for s in seeds:
        for k, kind in enumerate(kinds):
            tasks.append((kind, None, run_seed(s, n_all, k, 1)))
            keys.append({"role": "seeds", "N": n_all, "seed": s})
    order = np.random.default_rng([seed, 31337]).permutation(n_all)
    sizes = saturation_sizes(gan_grid, n_all)
    for n in sizes:
        if n < n_all:
            for k, kind in enumerate(kinds):
                tasks.append((kind, np.sort(order[:n]), run_seed(seeds[0], n, k, 2)))
                keys.append({"role": "saturation", "N": int(n), "seed": seeds[0]})

    def each(task, row):
        log(f"GAN N={row['n_train']:>6} {task[0]:>6}: train {_fmt(row['train_accuracy'])} "
            f"test {row['test_accuracy']:.4f} ({row['selected']}, {row['seconds']:.1f}s)")

    rows = train_many(tasks, train_x, train_y, val_x, val_y, test_x, test_y, data.n_classes, recipe, workers, each)
    rows = [{**row, **key} for row, key in zip(rows, keys)]
    if n_all in sizes:  # the saturation point at all N is the first seed's run
        rows += [{**row, "role": "saturation"} for row in rows if row["role"] == "seeds" and row["seed"] == seeds[0]]
    rows = ([r for r in rows if r["role"] == "seeds"]
            + sorted((r for r in rows if r["role"] == "saturation"), key=lambda r: (r["N"], kinds.index(r["kind"]))))
    table = pd.DataFrame(rows)
    first = ["role", "kind", "N", "seed", "train_accuracy", "val_accuracy", "test_accuracy", "selected", "method",
             "seconds"]
    table = table[first + [c for c in table.columns if c not in first]]

    classes_present = sorted(int(c) for c in np.unique(train_y))
    result = {
        "n_confident": int(labels.size),
        "n_gan_train": n_all,
        "n_gan_val": int(val_idx.size),
        "classes_in_gan_train": classes_present,
        "degenerate": None if len(classes_present) >= 2 else
        ("no confident samples" if n_all == 0 else "fewer than 2 classes among confident samples"),
        "seeds": seeds,
        "recipe": recipe.public(),
        "score_names": {"classification_accuracy_score": dv.CAS_ALIASES},
        "scores": {},
    }
    for k, kind in enumerate(kinds):
        mine = table[(table["role"] == "seeds") & (table["kind"] == kind)].sort_values("seed")
        real = real_table[real_table["kind"] == kind].pivot(index="seed", columns="n", values="test_accuracy")
        real = real.reindex(index=seeds).sort_index(axis=1)
        summary = dv.n_equiv_summary(real.columns.to_numpy(float), real.to_numpy(), mine["test_accuracy"].to_numpy(),
                                     n_bootstrap, run_seed(seed, k, 3))
        train_acc = mine["train_accuracy"].dropna()
        cas = float(mine["test_accuracy"].mean())
        point = summary["point"]
        result["scores"][kind] = {
            "classification_accuracy_score": cas,
            "gan_train_accuracy_on_gan_samples": None if train_acc.empty else float(train_acc.mean()),
            "generalisation_gap": None if train_acc.empty else float(train_acc.mean() - cas),
            "gan_val_accuracy": None if mine["val_accuracy"].isna().all() else float(mine["val_accuracy"].mean()),
            "test_accuracy_per_seed": mine["test_accuracy"].tolist(),
            "real_full_train_accuracy": float(real.iloc[:, -1].mean()),
            "n_equiv": point,
            "n_equiv_ci_low": summary["ci_low"],
            "n_equiv_ci_high": summary["ci_high"],
            "n_equiv_per_seed": summary.get("per_seed"),
            "n_equiv_details": {key: summary[key] for key in ("ci_level", "ci_method", "fraction_censored_below",
                                                             "fraction_censored_above", "real_curve_n",
                                                             "real_curve_isotonic")},
            # n_equiv / N: the fraction of a real image each GAN sample is worth (None when censored)
            "n_equiv_per_gan_sample": None if point["value"] is None or n_all == 0 else point["value"] / n_all,
            "method": mine["method"].iloc[0] if len(mine) else None,
        }
    sat = table[table["role"] == "saturation"]
    result["saturation"] = {kind: {"N": part["N"].astype(int).tolist(), "test_accuracy": part["test_accuracy"].tolist()}
                            for kind, part in sat.groupby("kind", sort=False)}
    return result, table


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
    parser.add_argument("--holdout", type=float, required=True, help="fraction of GAN samples kept for validation")
    parser.add_argument("--bootstrap", type=int, required=True, help="bootstrap replicates over seeds for n_equiv CIs")
    parser.add_argument("--out-json", required=True)
    parser.add_argument("--out-csv", required=True)
    parser.add_argument("--out-png", required=True)
    args = parser.parse_args(argv)
    if not 0 <= args.threshold <= 1:
        raise AuditInputError(f"--threshold: must be in [0, 1], got {args.threshold}")
    if not 0 <= args.holdout < 1:
        raise AuditInputError(f"--holdout: must be in [0, 1), got {args.holdout}")
    if args.bootstrap < 10:
        raise AuditInputError(f"--bootstrap: must be >= 10, got {args.bootstrap}")
    started = time.perf_counter()
    from audit.runtime import configure_workers, resolve_device

    workers = configure_workers(args.threads, args.seed)
    data = PreparedDataset.open(args.data)
    images = load_images(args.samples)
    if images.shape[1:] != data.images.shape[1:]:
        raise AuditInputError(f"{args.samples}: images of shape {images.shape[1:]}, "
                              f"the real images {data.images.shape[1:]}")
    real_table, recipe = load_real_curve(args.real_curve, data)
    recipe.device = resolve_device(args.device)
    labels = load_labels(args.labels, images.shape[0], data.n_classes)
    truth = load_json(args.truth)
    confident = labels[labels["confidence"] >= args.threshold].sort_values("row")
    rows = confident["row"].to_numpy(np.int64)
    gan_x = np.asarray(images[rows]) if rows.size else np.zeros((0, *images.shape[1:]), np.uint8)
    result, table = audit_gan(gan_x, confident["predicted"].to_numpy(np.int64), data, real_table, recipe,
                              gan_grid=parse_sizes(args.gan_grid, "--gan-grid"), holdout=args.holdout,
                              n_bootstrap=args.bootstrap, seed=args.seed, workers=workers)
    result = {
        "gan": args.name,
        "n_samples": int(images.shape[0]),
        "n_labelled": len(labels),
        "confidence_threshold": args.threshold,
        "confident_fraction": float(len(confident) / max(1, len(labels))),
        **result,
        "real_curve": str(args.real_curve),
        "real_n_train_split": int(data.rows("train").size),
        "workers": workers,
        "n_test": int(data.rows("test").size),
        "truth": truth,
        "seconds": time.perf_counter() - started,
    }
    table.insert(0, "gan", args.name)
    save_table(args.out_csv, table)
    from audit.plots.diversity import plot_diversity

    plot_diversity(real_table, result, args.out_png,
                   f"{args.name}: {result['n_gan_train']} confident GAN samples (threshold {args.threshold})")
    save_json(args.out_json, result)
    for kind, score in result["scores"].items():
        print(f"{args.name} {kind}: CAS (GAN-train) {score['classification_accuracy_score']:.4f}, "
              f"train {_fmt(score['gan_train_accuracy_on_gan_samples'])}, n_equiv {score['n_equiv']['text']} "
              f"{dv.interval_text(score)} "
              f"of N={result['n_gan_train']}")
    print(f"{args.name}: {result['seconds']:.1f}s")


if __name__ == "__main__":
    run_cli(main)
