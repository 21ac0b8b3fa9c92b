"""Coverage of the n_equiv 95% interval and error rates of the low-diversity test (issue 12).

    python benchmarks/calibration_n_equiv.py train --data results/digits/data --out results/calibration/n_equiv \
        --seeds 50 --threads 1
    python benchmarks/calibration_n_equiv.py assemble --data results/digits/data --out results/calibration/n_equiv \
        --repeats 200

The world of the study. Digits prepared as the pipeline prepares them (train 809 / val 179 /
pool 359 / test 450, seed 0). Model selection uses no real split beyond each classifier's own
training set, so val and test are both unused: together they are the held-out population H
(629 images). ``train`` trains, ONCE per seed (``--seeds``, default 50), every classifier the
pipeline would (the real curve on the pipeline grid 20 50 100 200 500 809, both kinds, with the
pipeline recipe; and both kinds on N = 10,000 samples of each planted GAN below) and keeps its
prediction on every image of H (one .npz per seed in ``--out``, so an interrupted run resumes).

The GANs: ``memoriser`` (k = 50 pool images + noise of 2 grey levels), ``resampler`` (the 359
pool images, real class mix) and ``replica`` (every image of the real train split emitted
N / 809 times, quota, shuffled: its samples ARE the train split, so "n_equiv >= n_train"
holds with equality, up to the multiplicity rounding; it is the H0 boundary of the verdict).
Each draws its samples once (seed 0); the interval is conditional on the samples, as the
pipeline's is.

``assemble`` builds ``--repeats`` pipeline-size audits, each with its own ``--pipeline-seeds``
(5) real seeds and 5 GAN seeds (drawn without replacement from the trained ones) and its own
test set: T = 450 images drawn with replacement from H, i.e. an i.i.d. draw from the
population H. The truth of a repeat is n_equiv on the whole population H with every trained
seed the repeat does NOT use (so the estimate and its truth share no classifier): what an
infinite test set and many seeds would give. It prints, per GAN and kind, the truth, the
coverage of the 95% interval (Wilson 95% interval of the share), the share of intervals with a
censored end, the median interval, and the share of repeats whose verdict rejects H0 at 0.05
(the false-positive rate on ``replica``; the power on the others), the coverage of the same joint
bootstrap without the flat-stretch censoring, and that of the interval the pipeline used before
issue 12 (percentile bootstrap over 3 seeds only, fixed test set, no flat censoring). Per-repeat
rows go to ``--out``/repeats.csv. Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit import real_curve as real_stage  # noqa: E402
from audit.data.store import PreparedDataset, largest_remainder  # noqa: E402
from audit.dynamics.simulate import wilson_interval  # noqa: E402
from audit.gans import SamplerContext, make_sampler  # noqa: E402
from audit.metrics import diversity as dv  # noqa: E402
from audit.metrics.bootstrap import percentile_interval  # noqa: E402
from audit.models.fitting import KINDS, PREDICTIONS_COLUMN, Recipe, decode_predictions, train_many  # noqa: E402
from audit.runtime import configure_torch, run_seed  # noqa: E402

#: the pipeline's digits settings (rules/config.schema.yaml defaults; annotator shift 1, no flips)
GRID = [20, 50, 100, 200, 500, 1000]
RECIPE = {"arch": "smallcnn", "steps": 300, "batch_size": 32, "lr": 0.002, "flip": False, "shift": 1, "holdout": 0.0}
N_SAMPLES = 10000
GANS = ("memoriser", "resampler", "replica")


def held_out_rows(data: PreparedDataset) -> np.ndarray:
    """The population H: every val and test image (no classifier selects or trains on them)."""
    return np.sort(np.concatenate([data.rows("val"), data.rows("test")]))


def gan_samples(name: str, data: PreparedDataset) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images, labels) of one study GAN, N_SAMPLES of them, drawn once (seed 0).

    ``replica`` and ``resampler`` are drawn here, not by :mod:`audit.gans.planted`, so a change
    of the planted generators' defaults cannot change the study's samples between two runs of
    ``train``: ``resampler`` draws exactly the largest-remainder quota of the real class mix
    from each class's pool images (with replacement), then shuffles (the planted ``resample``
    with ``draw: quota``).
    """
    rng = np.random.default_rng(0)
    if name == "replica":
        rows = data.rows("train")
        chosen = rng.permutation(np.repeat(rows, largest_remainder(np.full(rows.size, 1.0 / rows.size), N_SAMPLES)))
    elif name == "resampler":
        pool = data.rows("pool")
        counts = largest_remainder(data.class_distribution(), N_SAMPLES)
        chosen = np.concatenate([rng.choice(pool[data.labels[pool] == k], c) for k, c in enumerate(counts) if c])
        chosen = chosen[rng.permutation(N_SAMPLES)]
    else:
        batch = make_sampler(name, {"type": "memoriser", "k": 50}, SamplerContext(data=data)).sample(N_SAMPLES, 0)
        return batch.images, batch.planted_labels
    return np.asarray(data.images[chosen]), np.asarray(data.labels[chosen])


def train(args) -> None:
    configure_torch(1, 0)
    data = PreparedDataset.open(args.data)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    held = held_out_rows(data)
    held_x, held_y = np.asarray(data.images[held]), np.asarray(data.labels[held])
    recipe = Recipe(**RECIPE)
    grid = real_stage.real_grid(GRID, int(data.rows("train").size), data.n_classes)
    samples = {name: gan_samples(name, data) for name in GANS}
    quiet = lambda *_: None  # noqa: E731
    for seed in range(args.start, args.seeds):
        path = out / f"seed_{seed:03d}.npz"
        if path.exists():
            continue
        table = real_stage.real_curve(data, grid, [seed], recipe, log=quiet, workers=args.threads, test_rows=held)
        predictions = decode_predictions(table[PREDICTIONS_COLUMN], held.size, data.n_classes, "real curve")
        arrays = {f"real_{kind}": predictions[(table["kind"] == kind).to_numpy()] for kind in KINDS}  # (G, |H|)
        for name, (images, labels) in samples.items():
            tasks = [(kind, None, run_seed(seed, labels.size, k, 1)) for k, kind in enumerate(KINDS)]
            rows = train_many(tasks, images, labels, held_x, held_y, data.n_classes, recipe, args.threads)
            arrays.update({f"{name}_{row['kind']}": row["test_predictions"] for row in rows})
        partial = out / f"partial_{seed:03d}.npz"  # renamed when complete: assemble never reads half a file
        np.savez_compressed(partial, grid=np.asarray(grid), held=held, **arrays)
        partial.rename(path)
        print(f"seed {seed}: " + ", ".join(f"{k} {np.mean(v == held_y):.3f}" for k, v in arrays.items()
                                           if not k.startswith("real")), flush=True)


def load_study(out: Path, held_y: np.ndarray) -> tuple[np.ndarray, dict]:
    """(grid, {"real_<kind>": bool (S, G, |H|), "<gan>_<kind>": bool (S, |H|)}) over every trained seed."""
    files = sorted(out.glob("seed_*.npz"))
    if not files:
        raise SystemExit(f"{out}: no seed_*.npz; run the train step first")
    loaded = [np.load(f) for f in files]
    keys = [k for k in loaded[0].files if k not in ("grid", "held")]
    return loaded[0]["grid"].astype(float), {k: np.stack([z[k] for z in loaded]) == held_y for k in keys}


def truth_n(grid: np.ndarray, real: np.ndarray, gan: np.ndarray) -> float:
    """n_equiv of the population: mean curve of ``real`` (S, G, |H|) and mean accuracy of ``gan`` (S', |H|)."""
    return dv.n_equiv_point(grid, real.mean(axis=2), gan.mean(axis=1))


def seeds_only_interval(grid, real, gan, n_bootstrap, rng) -> tuple[float, float]:
    """The interval before issue 12: percentile bootstrap over seeds (real, GAN independently),
    accuracies on one fixed test set, no flat censoring (only below / above the grid)."""
    real_acc, gan_acc = real.mean(axis=2), gan.mean(axis=1)  # (S, G), (S',)
    reps = [dv.n_equiv_point(grid, real_acc[rng.integers(0, len(real_acc), len(real_acc))],
                             gan_acc[rng.integers(0, gan_acc.size, gan_acc.size)]) for _ in range(n_bootstrap)]
    return percentile_interval(np.array(reps))


def wilson(k: int, n: int) -> str:
    """``"0.950 [0.910, 0.973]"``: a share and its Wilson 95% interval."""
    low, high = wilson_interval(np.array(k), np.array(n))
    return f"{k / n:.3f} [{float(low):.3f}, {float(high):.3f}]"


def assemble(args) -> None:
    data = PreparedDataset.open(args.data)
    held_y = np.asarray(data.labels[held_out_rows(data)])
    out = Path(args.out)
    grid, study = load_study(out, held_y)
    n_seeds = next(iter(study.values())).shape[0]
    if n_seeds < 2 * args.pipeline_seeds:
        raise SystemExit(f"{n_seeds} trained seeds: need at least {2 * args.pipeline_seeds} (estimate + truth)")
    print(f"{n_seeds} trained seeds, population H = {held_y.size} images, {args.repeats} repeats of "
          f"{args.pipeline_seeds} seeds and T = {args.test_size} test images, B = {args.bootstrap}")
    records = []
    for r in range(args.repeats):
        rng = np.random.default_rng([r, 2026])
        real_seeds = rng.choice(n_seeds, args.pipeline_seeds, replace=False)
        gan_seeds = rng.choice(n_seeds, args.pipeline_seeds, replace=False)
        draw = rng.integers(0, held_y.size, args.test_size)
        for kind in KINDS:
            real = study[f"real_{kind}"]
            rest_real = np.setdiff1d(np.arange(n_seeds), real_seeds)
            for name in GANS:
                gan = study[f"{name}_{kind}"]
                rest_gan = np.setdiff1d(np.arange(n_seeds), gan_seeds)
                truth = truth_n(grid, real[rest_real], gan[rest_gan])
                a = dv.n_equiv_analysis(grid, real[real_seeds][:, :, draw], gan[gan_seeds][:, draw],
                                        n_bootstrap=args.bootstrap, seed=r)
                low, high = dv.interval_bounds(a["ci_low"], a["ci_high"])
                # the same joint bootstrap without the flat-stretch censoring (only below / above the grid)
                raw_low, raw_high = percentile_interval(dv.equivalent_sample_sizes(grid, *dv.joint_bootstrap(
                    real[real_seeds][:, :, draw], gan[gan_seeds][:, draw], args.bootstrap, r)))
                old_low, old_high = seeds_only_interval(grid, real[real_seeds[:3]][:, :, draw],
                                                        gan[gan_seeds[:3]][:, draw], args.bootstrap, rng)
                delta_true = float(real[rest_real][:, -1].mean() - gan[rest_gan].mean())
                records.append({"repeat": r, "gan": name, "kind": kind, "truth": truth, "delta_true": delta_true,
                                "point": a["point"]["text"], "low": a["ci_low"]["text"], "high": a["ci_high"]["text"],
                                "covered": bool(low <= truth <= high), "interval_low": low, "interval_high": high,
                                "raw_covered": bool(raw_low <= truth <= raw_high),
                                "censored_end": None in (a["ci_low"]["value"], a["ci_high"]["value"]),
                                "p_value": a["test"]["p_value"], "old_low": old_low, "old_high": old_high,
                                "old_covered": bool(old_low <= truth <= old_high)})
    table = pd.DataFrame(records)
    table.to_csv(out / "repeats.csv", index=False)
    print("gan        kind    truth: median [range]  coverage [Wilson 95%]   censored end  reject H0 at 0.05 "
          "      uncensored coverage     old interval coverage")
    for (name, kind), part in table.groupby(["gan", "kind"], sort=False):
        n = len(part)
        truths = part["truth"]

        def share(column):
            return wilson(int(part[column].sum()), n)

        print(f"{name:<10} {kind:<6}  {truths.median():>6.0f} [{truths.min():.0f}, {truths.max():.0f}]"
              f"{'':>4}{share('covered'):<24}{part['censored_end'].mean():>6.2f}        "
              f"{wilson(int((part['p_value'] < 0.05).sum()), n):<24}{share('raw_covered'):<24}{share('old_covered')}")
        print(f"{'':<18}most common interval {part['low'].mode()[0]} .. {part['high'].mode()[0]}; median ends "
              f"{part['interval_low'].median():.0f} .. {part['interval_high'].median():.0f}; delta_true (real at "
              f"n_train - CAS) median {part['delta_true'].median():+.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=("train", "assemble"))
    parser.add_argument("--data", required=True, help="prepared digits (python -m audit.prepare, pipeline splits)")
    parser.add_argument("--out", required=True, help="folder of the per-seed predictions and repeats.csv")
    parser.add_argument("--seeds", type=int, default=50, help="train: seeds trained once each")
    parser.add_argument("--start", type=int, default=0, help="train: first seed (a second process can take a range)")
    parser.add_argument("--threads", type=int, default=1, help="train: classifiers trained at once")
    parser.add_argument("--repeats", type=int, default=200, help="assemble: pipeline-size repeats")
    parser.add_argument("--pipeline-seeds", type=int, default=5, help="assemble: seeds of one repeat (diversity.seeds)")
    parser.add_argument("--test-size", type=int, default=450, help="assemble: test images of one repeat (digits: 450)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="assemble: joint bootstrap replicates")
    args = parser.parse_args()
    (train if args.step == "train" else assemble)(args)


if __name__ == "__main__":
    main()
