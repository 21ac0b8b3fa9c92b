"""Stage ``diversity``: how many real images a GAN's samples are worth to a classifier.

    python -m audit.diversity real --data results/digits/data \
        --out-json results/digits/diversity/real_curve.json --out-csv results/digits/diversity/real_curve.csv \
        [--grid 20 50 100 200 500 1000] [--seeds 3] [--seed 0] [--arch smallcnn] [--steps 300] [--threads N]

    python -m audit.diversity gan --name dcgan --data results/digits/data \
        --samples results/digits/samples/dcgan --labels results/digits/labels/dcgan.csv \
        --real-curve results/digits/diversity/real_curve.csv --threshold 0.9 \
        --out-json results/digits/diversity/dcgan.json --out-csv results/digits/diversity/dcgan.csv \
        --out-png results/digits/diversity/dcgan.png

Santurkar, Schmidt & Madry (2017): train a classifier on GAN samples labelled by the annotator,
test it on real images, and compare with the same classifier trained on n real images.

``real`` (once per dataset): the sample-efficiency curve. For every n of a log grid (sizes at or
above the real ``train`` split become the full split), every seed, and both classifier kinds
(linear, deep; see :class:`audit.metrics.diversity.Recipe`): a class-stratified subset of n
``train`` images, model selection on the ``val`` split, accuracy on the ``test`` split. The CSV
(one row per classifier) also carries the training recipe, which ``gan`` reuses unchanged.

``gan`` (per GAN): the samples whose annotator confidence is >= ``--threshold``, labelled with
the annotator's class; ``--holdout`` of them (per class, at most ``--max-holdout``) are their
validation set, so no real image reaches a GAN-trained classifier except the test split that
scores it. The rest (N samples) train each kind once per seed of the real curve. The real-test
accuracy is the Classification Accuracy Score (Ravuri & Vinyals 2019) = GAN-train (Shmelkov et
al. 2018). ``n_equiv``: the real sample size of equal accuracy on the (isotonic) real curve,
interpolated in log n, censored ("< n_min", "> n_max") outside the grid, with a bootstrap
interval over seeds. A saturation curve (accuracy vs N on a log grid up to all N, first seed)
shows whether more samples would help.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from audit.data.store import PreparedDataset
from audit.io import AuditInputError, atomic_path, load_images, load_json, load_table, run_cli, save_json, save_table
from audit.metrics import diversity as dv

DEFAULT_GRID = (20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)
DEFAULT_GAN_GRID = (100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)
#: recipe columns of the real-curve CSV (the GAN-trained classifiers reuse them)
RECIPE_COLUMNS = ("arch", "steps", "batch_size", "lr", "weight_decay", "flip", "shift", "linear_c_grid",
                  "linear_max_pixels", "linear_lr")
REAL_COLUMNS = ("kind", "n", "seed", "train_accuracy", "val_accuracy", "test_accuracy", "image_shape",
                "n_classes", *RECIPE_COLUMNS)


# --------------------------------------------------------------------------------------------
# argument helpers


def parse_sizes(values: list[str], flag: str) -> list[int]:
    """``--grid 20 50 100`` or ``--grid '[20, 50, 100]'`` -> sorted unique ints >= 1."""
    text = " ".join(values).strip()
    try:
        raw = json.loads(text) if text.startswith("[") else [float(v) for v in text.replace(",", " ").split()]
        sizes = [int(v) for v in raw]
        if not sizes or any(s < 1 or s != float(v) for s, v in zip(sizes, raw)):
            raise ValueError
    except (ValueError, TypeError):
        raise AuditInputError(f"{flag}: expected positive integers, got {text!r}") from None
    return sorted(set(sizes))


def parse_floats(values: list[str], flag: str) -> tuple[float, ...]:
    text = " ".join(values).strip()
    try:
        raw = json.loads(text) if text.startswith("[") else [float(v) for v in text.replace(",", " ").split()]
        out = tuple(sorted(float(v) for v in raw))
        if not out or any(not np.isfinite(v) or v <= 0 for v in out):
            raise ValueError
    except (ValueError, TypeError):
        raise AuditInputError(f"{flag}: expected positive numbers, got {text!r}") from None
    return out


def positive(flag: str, value, minimum=1) -> None:
    if value < minimum:
        raise AuditInputError(f"{flag}: must be >= {minimum}, got {value}")


def shape_text(shape) -> str:
    return "x".join(str(int(s)) for s in shape)


def setup_threads(threads: int, seed: int) -> int:
    """Seed every RNG, keep torch at one intra-op thread and return the number of worker
    processes: ``--threads`` capped at the machine's cores.

    Every classifier trains single-threaded, in ``threads`` parallel processes (see
    :func:`run_tasks`): small networks gain little from intra-op threads, which on a shared,
    busy 2-core machine made the real curve 5x slower (413 s against 81 s), and with one
    thread per classifier the results are the same for any ``--threads``.
    """
    import os

    from audit.runtime import configure_torch

    configure_torch(1, seed)
    return max(1, min(int(threads), len(os.sched_getaffinity(0))))


#: the arrays the classifier tasks read: set before a pool forks, so workers share them
_SHARED: dict = {}


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _fit_task(task: tuple) -> dict:
    """Train and evaluate one classifier: ``(kind, rows of _SHARED["train_x"] or None for all, seed)``."""
    kind, rows, seed = task
    shared = _SHARED
    x, y = shared["train_x"], shared["train_y"]
    if rows is not None:
        x, y = x[rows], y[rows]
    return dv.train_and_evaluate(kind, x, y, shared["val_x"], shared["val_y"], shared["test_x"], shared["test_y"],
                                 shared["n_classes"], shared["recipe"], seed)


def run_tasks(shared: dict, tasks: list[tuple], workers: int, describe=None, log=print) -> list[dict]:
    """Run :func:`_fit_task` on every task, in order; in ``workers`` forked processes when > 1.

    ``shared``: train_x, train_y, val_x, val_y, test_x, test_y, n_classes, recipe. Processes
    are forked (Linux), so the arrays are shared copy-on-write, never pickled. Sequential on a
    GPU, with one worker, or where fork is unavailable. ``describe(task, row)`` makes a log line.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    global _SHARED
    _SHARED = shared
    try:
        parallel = (workers > 1 and len(tasks) > 1 and shared["recipe"].device == "cpu"
                    and "fork" in multiprocessing.get_all_start_methods())
        if parallel:
            pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), initializer=_worker_init,
                                       mp_context=multiprocessing.get_context("fork"))
            results = pool.map(_fit_task, tasks)
        else:
            pool, results = None, map(_fit_task, tasks)
        rows = []
        try:
            for task, row in zip(tasks, results):
                rows.append(row)
                if describe is not None:
                    log(describe(task, row))
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        return rows
    finally:
        _SHARED = {}


# --------------------------------------------------------------------------------------------
# real curve


def real_grid(requested: list[int], n_train: int, n_classes: int) -> list[int]:
    """The requested sizes below the train split, plus the full split; every size >= K."""
    small = [n for n in requested if n < n_classes]
    if small:
        raise AuditInputError(f"diversity.grid: sizes {small} are below the number of classes ({n_classes}); "
                              "a stratified subset needs one image of every class")
    return sorted({min(n, n_train) for n in requested} | {n_train})


def real_curve(data: PreparedDataset, grid: list[int], seeds: list[int], recipe: dv.Recipe,
               kinds=dv.KINDS, log=print, workers: int = 1) -> pd.DataFrame:
    """One row per (kind, n, seed): classifiers trained on n real ``train`` images.

    The train split stays on disk (memmap); each classifier reads only its n images.
    """
    train_rows = data.rows("train")
    val_x, val_y = data.subset("val")
    test_x, test_y = data.subset("test")
    tasks, keys = [], []
    for seed in seeds:
        for n in grid:
            idx = train_rows[dv.stratified_subset(data.labels[train_rows], n, seed)]
            for k, kind in enumerate(kinds):
                tasks.append((kind, idx, dv.run_seed(seed, n, k)))
                keys.append({"n": int(n), "seed": int(seed)})
    shared = {"train_x": data.images, "train_y": data.labels, "val_x": val_x, "val_y": val_y, "test_x": test_x,
              "test_y": test_y, "n_classes": data.n_classes, "recipe": recipe}

    def describe(task, row):
        return (f"real n={row['n_train']:>6} {task[0]:>6}: train {row['train_accuracy']:.4f} "
                f"test {row['test_accuracy']:.4f} ({row['selected']}, {row['seconds']:.1f}s)")

    rows = [{**row, **key} for row, key in zip(run_tasks(shared, tasks, workers, describe, log), keys)]
    table = pd.DataFrame(rows)
    table["image_shape"] = shape_text(data.images.shape[1:])
    table["n_classes"] = data.n_classes
    for key, value in recipe.public().items():
        table[key] = json.dumps(value) if isinstance(value, list) else value
    first = ["kind", "n", "seed", "train_accuracy", "val_accuracy", "test_accuracy", "selected", "method", "seconds"]
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
            "test_accuracy_isotonic": dv.isotonic_increasing(mean).tolist(),
            "train_accuracy_mean": by_n["train_accuracy"].mean().reindex(grid).tolist(),
            "full_train_test_accuracy": float(mean[-1]),
            "seconds_total": float(part["seconds"].sum()),
        }
    return out


def main_real(args) -> None:
    positive("--seeds", args.seeds)
    positive("--steps", args.steps)
    positive("--batch-size", args.batch_size, 2)
    positive("--shift", args.shift, 0)
    for flag, value in (("--lr", args.lr), ("--linear-lr", args.linear_lr)):
        if not value > 0:
            raise AuditInputError(f"{flag}: must be > 0, got {value}")
    if not args.weight_decay >= 0:
        raise AuditInputError(f"--weight-decay: must be >= 0, got {args.weight_decay}")
    started = time.perf_counter()
    workers = setup_threads(args.threads, args.seed)
    from audit.models.classifier import choose_architecture
    from audit.runtime import resolve_device

    data = PreparedDataset.open(args.data)
    n_train = int(data.rows("train").size)
    if min(data.rows("val").size, data.rows("test").size) == 0:
        raise AuditInputError(f"{args.data}: the val and test splits must both hold images")
    grid = real_grid(parse_sizes(args.grid, "--grid"), n_train, data.n_classes)
    recipe = dv.Recipe(arch=choose_architecture(args.arch, data.images.shape[1:]), steps=args.steps,
                       batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, flip=args.flip,
                       shift=args.shift, linear_c_grid=parse_floats(args.linear_c_grid, "--linear-c-grid"),
                       linear_max_pixels=args.linear_max_pixels, linear_lr=args.linear_lr,
                       device=resolve_device(args.device))
    seeds = [args.seed + i for i in range(args.seeds)]
    table = real_curve(data, grid, seeds, recipe, workers=workers)
    summary = {
        "dataset": data.name,
        "image_shape": list(data.images.shape[1:]),
        "n_classes": data.n_classes,
        "n_train_split": n_train,
        "n_val": int(data.rows("val").size),
        "n_test": int(data.rows("test").size),
        "grid": grid,
        "seeds": seeds,
        "recipe": recipe.public(),
        "model_selection": "val split (real-data classifiers)",
        "workers": workers,
        "curves": curve_summary(table),
        "seconds": time.perf_counter() - started,
    }
    save_table(args.out_csv, table)
    save_json(args.out_json, summary)
    for kind, curve in summary["curves"].items():
        pairs = ", ".join(f"{n}: {a:.3f}" for n, a in zip(curve["n"], curve["test_accuracy_mean"]))
        print(f"real curve {kind}: {pairs}")
    print(f"real curve: {summary['seconds']:.1f}s")


# --------------------------------------------------------------------------------------------
# one GAN


def load_real_curve(path, data: PreparedDataset) -> tuple[pd.DataFrame, dv.Recipe]:
    """The real-curve CSV, checked against the dataset, and the recipe it was trained with."""
    table = load_table(path, REAL_COLUMNS)
    if table.empty:
        raise AuditInputError(f"{path}: no rows")
    for column in (*RECIPE_COLUMNS, "image_shape", "n_classes"):
        if table[column].nunique(dropna=False) != 1:
            raise AuditInputError(f"{path}: column {column} differs between rows; one recipe per curve")
    first = table.iloc[0]
    if str(first["image_shape"]) != shape_text(data.images.shape[1:]) or int(first["n_classes"]) != data.n_classes:
        raise AuditInputError(f"{path}: made for {first['image_shape']} images of {first['n_classes']} classes, "
                              f"the dataset has {shape_text(data.images.shape[1:])} and {data.n_classes}")
    counts = table.groupby(["kind", "n"]).size()
    if counts.nunique() != 1 or set(table["kind"]) - set(dv.KINDS):
        raise AuditInputError(f"{path}: every (kind, n) needs one row per seed, kinds among {dv.KINDS}")
    recipe = dv.Recipe(arch=str(first["arch"]), steps=int(first["steps"]), batch_size=int(first["batch_size"]),
                       lr=float(first["lr"]), weight_decay=float(first["weight_decay"]),
                       flip=bool(first["flip"]), shift=int(first["shift"]),
                       linear_c_grid=tuple(json.loads(first["linear_c_grid"])),
                       linear_max_pixels=int(first["linear_max_pixels"]), linear_lr=float(first["linear_lr"]))
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
              recipe: dv.Recipe, gan_grid: list[int] | None = None, holdout: float = 0.1, max_holdout: int = 2000,
              n_bootstrap: int = 1000, seed: int = 0, log=print, workers: int = 1) -> tuple[dict, pd.DataFrame]:
    """Every diversity figure of one GAN.

    ``images``: uint8 (N, H, W, C) confident GAN samples; ``labels``: (N,) their classes
    (annotator's, or planted in tests). ``real_table``: the real-curve rows (its seeds and grid
    are used). Returns (JSON-ready summary, one row per trained classifier).
    """
    labels = np.asarray(labels, dtype=np.int64)
    test_x, test_y = data.subset("test")
    seeds = sorted(int(s) for s in real_table["seed"].unique())
    kinds = [k for k in dv.KINDS if k in set(real_table["kind"])]
    train_idx, val_idx = dv.holdout_split(labels, holdout, max_holdout, seed)
    train_x, train_y = images[train_idx], labels[train_idx]
    val_x, val_y = (images[val_idx], labels[val_idx]) if val_idx.size else (None, None)
    n_all = int(train_idx.size)
    # every seed on all N samples, then the saturation curve (first seed) on nested random subsets
    tasks, keys = [], []
    for s in seeds:
        for k, kind in enumerate(kinds):
            tasks.append((kind, None, dv.run_seed(s, n_all, k, 1)))
            keys.append({"role": "seeds", "N": n_all, "seed": s})
    order = np.random.default_rng([seed, 31337]).permutation(n_all)
    # None: the default grid; [] (tests, quick checks): no saturation curve beyond the seeds on all N
    sizes = saturation_sizes(list(DEFAULT_GAN_GRID) if gan_grid is None else gan_grid, n_all)
    for n in sizes:
        if n < n_all:
            for k, kind in enumerate(kinds):
                tasks.append((kind, np.sort(order[:n]), dv.run_seed(seeds[0], n, k, 2)))
                keys.append({"role": "saturation", "N": int(n), "seed": seeds[0]})
    shared = {"train_x": train_x, "train_y": train_y, "val_x": val_x, "val_y": val_y, "test_x": test_x,
              "test_y": test_y, "n_classes": data.n_classes, "recipe": recipe}

    def describe(task, row):
        return (f"GAN N={row['n_train']:>6} {task[0]:>6}: train {_fmt(row['train_accuracy'])} "
                f"test {row['test_accuracy']:.4f} ({row['selected']}, {row['seconds']:.1f}s)")

    rows = [{**row, **key} for row, key in zip(run_tasks(shared, tasks, workers, describe, log), keys)]
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
                                     n_bootstrap, dv.run_seed(seed, k, 3))
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


def _log_ticks(ax, values) -> None:
    """Log x axis labelled at the grid values only."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.set_xticks(values)
    ax.set_xticklabels([f"{int(v)}" for v in values], fontsize=8)
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_diversity(real_table: pd.DataFrame, result: dict, path, title: str) -> None:
    """Left: real test accuracy vs n real training images (mean, min-max band over seeds; log x)
    with the GAN-trained accuracy (CAS) of each kind as a horizontal line and n_equiv marked.
    Right: GAN-trained accuracy vs N GAN samples (saturation), the real full-train accuracy dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"deep": "tab:blue", "linear": "tab:orange"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for kind, part in real_table.groupby("kind", sort=False):
        by_n = part.groupby("n")["test_accuracy"]
        n = np.array(sorted(part["n"].unique()))
        colour = colours.get(kind, "black")
        left.plot(n, by_n.mean().reindex(n), "o-", color=colour, label=f"real-trained {kind}")
        left.fill_between(n, by_n.min().reindex(n), by_n.max().reindex(n), color=colour, alpha=0.15)
        score = result["scores"].get(kind)
        if score is None:
            continue
        eq = score["n_equiv"]
        label = (f"GAN-trained {kind}: CAS {score['classification_accuracy_score']:.3f}, "
                 f"n_equiv {eq['text']} {dv.interval_text(score)}")
        left.axhline(score["classification_accuracy_score"], color=colour, ls="--", lw=1.2, label=label)
        if eq["value"] is not None:
            left.plot([eq["value"]], [score["classification_accuracy_score"]], "x", color=colour, ms=10, mew=2)
        right.axhline(score["real_full_train_accuracy"], color=colour, ls=":", lw=1.2,
                      label=f"real full train split ({kind})")
    for kind, sat in result["saturation"].items():
        right.plot(sat["N"], sat["test_accuracy"], "o-", color=colours.get(kind, "black"), label=f"GAN-trained {kind}")
    _log_ticks(left, sorted(real_table["n"].unique()))
    left.set_xlabel("n real training images (log)")
    left.set_ylabel("accuracy on real test images")
    left.legend(fontsize=7, loc="lower right")
    left.set_title("real sample-efficiency curve vs GAN-trained")
    if result["saturation"]:
        _log_ticks(right, sorted({n for sat in result["saturation"].values() for n in sat["N"]}))
    right.set_xlabel("N GAN training samples (log)")
    right.set_title("saturation in N (first seed)")
    right.legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main_gan(args) -> None:
    if not 0 <= args.threshold <= 1:
        raise AuditInputError(f"--threshold: must be in [0, 1], got {args.threshold}")
    if not 0 <= args.holdout < 1:
        raise AuditInputError(f"--holdout: must be in [0, 1), got {args.holdout}")
    positive("--max-holdout", args.max_holdout, 0)
    positive("--bootstrap", args.bootstrap, 10)
    started = time.perf_counter()
    workers = setup_threads(args.threads, args.seed)
    from audit.runtime import resolve_device

    data = PreparedDataset.open(args.data)
    samples_dir = Path(args.samples)
    images = load_images(samples_dir / "samples.npy")
    if images.shape[1:] != data.images.shape[1:]:
        raise AuditInputError(f"{samples_dir / 'samples.npy'}: images of shape {images.shape[1:]}, "
                              f"the real images {data.images.shape[1:]}")
    real_table, recipe = load_real_curve(args.real_curve, data)
    recipe.device = resolve_device(args.device)
    labels = load_labels(args.labels, images.shape[0], data.n_classes)
    confident = labels[labels["confidence"] >= args.threshold].sort_values("row")
    rows = confident["row"].to_numpy(np.int64)
    gan_x = np.asarray(images[rows]) if rows.size else np.zeros((0, *images.shape[1:]), np.uint8)
    result, table = audit_gan(gan_x, confident["predicted"].to_numpy(np.int64), data, real_table, recipe,
                              parse_sizes(args.gan_grid, "--gan-grid"), args.holdout, args.max_holdout,
                              args.bootstrap, args.seed, workers=workers)
    truth_path = samples_dir / "truth.json"
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
        "truth": load_json(truth_path) if truth_path.is_file() else {},
        "seconds": time.perf_counter() - started,
    }
    table.insert(0, "gan", args.name)
    save_table(args.out_csv, table)
    if args.out_png:
        plot_diversity(real_table, result, args.out_png,
                       f"{args.name}: {result['n_gan_train']} confident GAN samples (threshold {args.threshold})")
    save_json(args.out_json, result)
    for kind, score in result["scores"].items():
        print(f"{args.name} {kind}: CAS (GAN-train) {score['classification_accuracy_score']:.4f}, "
              f"train {_fmt(score['gan_train_accuracy_on_gan_samples'])}, n_equiv {score['n_equiv']['text']} "
              f"{dv.interval_text(score)} "
              f"of N={result['n_gan_train']}")
    print(f"{args.name}: {result['seconds']:.1f}s")


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m audit.diversity", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", required=True, help="prepared dataset directory")
    common.add_argument("--out-json", required=True)
    common.add_argument("--out-csv", required=True)
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--threads", type=int, default=1)
    common.add_argument("--device", default="auto")

    real = sub.add_parser("real", parents=[common], help="the real sample-efficiency curve (once per dataset)")
    real.add_argument("--grid", nargs="+", default=[str(n) for n in DEFAULT_GRID],
                      help="real sample sizes; sizes >= the train split become the full split")
    real.add_argument("--seeds", type=int, default=3, help="seeds seed, seed+1, ...")
    real.add_argument("--arch", default="auto", help="auto | smallcnn | resnet18 (deep classifier)")
    real.add_argument("--steps", type=int, default=300, help="optimisation steps of every deep classifier")
    real.add_argument("--batch-size", type=int, default=32)
    real.add_argument("--lr", type=float, default=2e-3)
    real.add_argument("--weight-decay", type=float, default=5e-4)
    real.add_argument("--flip", action="store_true")
    real.add_argument("--shift", type=int, default=1)
    real.add_argument("--linear-c-grid", nargs="+", default=["0.01", "0.1", "1", "10"])
    real.add_argument("--linear-max-pixels", type=int, default=1024,
                      help="pixels per image (H*W*C) above which the linear classifier is a torch layer "
                           "instead of scikit-learn, for the real curve and every GAN alike")
    real.add_argument("--linear-lr", type=float, default=0.03, help="peak learning rate of that torch layer")

    gan = sub.add_parser("gan", parents=[common], help="one GAN against the real curve")
    gan.add_argument("--name", default="gan")
    gan.add_argument("--samples", required=True, help="directory written by the sample stage")
    gan.add_argument("--labels", required=True, help="labels CSV written by the label stage")
    gan.add_argument("--real-curve", required=True, help="CSV written by `python -m audit.diversity real`")
    gan.add_argument("--threshold", type=float, default=0.9)
    gan.add_argument("--gan-grid", nargs="+", default=[str(n) for n in DEFAULT_GAN_GRID],
                     help="N GAN samples of the saturation curve (plus all of them)")
    gan.add_argument("--holdout", type=float, default=0.1, help="fraction of GAN samples kept for validation")
    gan.add_argument("--max-holdout", type=int, default=2000)
    gan.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates over seeds for n_equiv CIs")
    gan.add_argument("--out-png", default=None)
    args = parser.parse_args(argv)
    (main_real if args.command == "real" else main_gan)(args)


if __name__ == "__main__":
    run_cli(main)
