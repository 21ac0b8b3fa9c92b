"""Error rates of the discriminators stage, measured by simulation (audit/metrics/TWO_SAMPLE.md).

    python benchmarks/discriminators.py --study null --runs 20 --seeds 1   # ~25 min on a loaded machine
    python benchmarks/discriminators.py --study blank --runs 5
    python benchmarks/discriminators.py --study blank --runs 5 --selection last   # before issue 15's fix
    python benchmarks/discriminators.py --study resampler --runs 5

On digits (prepared as the default run prepares it), the default ladder and recipe
(config discriminators.*), one run = fresh discriminator seeds, a fresh random split of the
samples into train / val / test and a fresh order of the planted images (seed = run):

* ``null``: a GAN equal to the real distribution: every image of the pool split once, in a
  seeded order (359 images; a random split of the same data as train/val/test, so exchangeable
  with the real test images). Per rung: the share of runs whose binomial test rejects at alpha
  (must be <= 0.10 over >= 20 runs), of runs whose Holm-adjusted p rejects, and of runs whose JS
  bound's 95% interval lies above 0 (the interval of the clipped bound then excludes 0).
* ``blank``: 30% noise images (the planted ``blank`` generator's ``noise`` kind) among the pool
  images, each pool image once: the held-out accuracy against the Bayes limit 0.5 + f/2 of the
  test set's realised blank share f, the share of noise images called GAN, and of digits (real
  and GAN alike) called GAN; a rung "separates noise from digits" when it calls >= 95% of the
  noise test images GAN (``SEPARATES``), and only such rungs are held to the issue's "within
  0.03 of the limit".
* ``--selection``: which weights each discriminator keeps (``audit.discriminators.SELECTIONS``):
  the stage's lowest-val-cross-entropy checkpoint, or ``last`` (the rejected fixed recipe).
* ``resampler``: the planted ``uniform`` control as the default run samples it (10,000 draws
  with replacement from the 359 pool images): a memoriser of the whole pool. Its rejection rate
  per rung shows why it is not a null of this test (TWO_SAMPLE.md, "The pool resampler").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit import discriminators as stage  # noqa: E402  (after the path: the stage's recipe constants)

#: the default ladder and recipe (rules/config.schema.yaml discriminators.*)
LADDER = ('[{"arch": "linear"}, {"arch": "smallcnn", "width": 0.25}, {"arch": "smallcnn", "width": 0.5}, '
          '{"arch": "auto", "role": "annotator"}]')
RECIPE = {"steps": 300, "batch_size": 32, "lr": 0.002, "linear_lr": 0.03, "weight_decay": 0.0005,
          "selection": stage.SELECTION, "checkpoints": stage.CHECKPOINTS, "calibration": stage.CALIBRATION}
#: a rung separates noise from digits when it calls at least this share of the noise test images GAN
SEPARATES = 0.95


def prepared_digits(folder):
    """Digits prepared with the default split shares and seed 0 (as the default run)."""
    from audit.data.digits import load
    from audit.data.store import prepare

    return prepare(load(), Path(folder) / "data", {"train": 0.45, "val": 0.1, "pool": 0.2, "test": 0.25},
                   seed=0, progress=False)


def exchangeable_null(data, run: int) -> np.ndarray:
    """Every pool image once, in the order of seed ``run``: a sample of the real distribution."""
    pool = np.asarray(data.images[data.rows("pool")])
    return pool[np.random.default_rng(run).permutation(pool.shape[0])]


def blank_without_copies(data, fraction: float, run: int) -> tuple[np.ndarray, np.ndarray]:
    """(images, is_blank): every pool image once plus round(f / (1 - f) x pool) noise images of
    the planted ``blank`` generator (``blank_kind: noise``), shuffled by seed ``run``."""
    from audit.gans import SamplerContext, make_sampler

    pool = np.asarray(data.images[data.rows("pool")])
    n_blank = round(fraction / (1 - fraction) * pool.shape[0])
    spec = {"type": "blank", "blank_fraction": 1.0, "blank_kind": "noise"}
    noise = make_sampler("blank", spec, SamplerContext(data=data)).sample(n_blank, run).images
    images = np.concatenate([pool, noise])
    is_blank = np.repeat([False, True], [pool.shape[0], n_blank])
    order = np.random.default_rng(run).permutation(images.shape[0])
    return images[order], is_blank[order]


def ladder_args(run: int, steps: int = RECIPE["steps"], seeds: int = 2, bootstrap: int = 200,
                max_per_class: int = 5000, selection: str = RECIPE["selection"],
                checkpoints: int = RECIPE["checkpoints"], calibration: str = RECIPE["calibration"]) -> SimpleNamespace:
    """The stage's options for one run (seed = run)."""
    return SimpleNamespace(seed=run, seeds=seeds, bootstrap=bootstrap, max_per_class=max_per_class,
                           recipe={**RECIPE, "steps": steps, "selection": selection, "checkpoints": checkpoints, "calibration": calibration,
                                   "device": "cpu"})


def audit_run(data, samples: np.ndarray, args, keep_probs: bool = False) -> list[dict]:
    """The stage's rung records of one image set (:func:`audit.discriminators.audit_gan`)."""
    from audit import discriminators as disc

    rungs = disc.parse_ladder(LADDER, data.images.shape[1:])
    records, _ = disc.audit_gan(disc.real_splits(data), samples, rungs, args.recipe, args, workers=1,
                                keep_probs=keep_probs)
    return records


def rejection_table(records: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Per rung: runs, the share rejected by its own test and after Holm, with 95% Clopper-Pearson
    intervals, and the share whose JS interval lies above 0."""
    rows = []
    for (label, parameters), group in records.groupby(["label", "parameters"], sort=False):
        runs, hits = len(group), int((group["p_value"] < alpha).sum())
        ci = stats.binomtest(hits, runs).proportion_ci(0.95, method="exact")
        rows.append({"rung": label, "parameters": parameters, "runs": runs, "rejected": hits / runs,
                     "ci_low": ci.low, "ci_high": ci.high, "holm_rejected": float((group["p_holm"] < alpha).mean()),
                     "mean_accuracy": group["accuracy"].mean(),
                     "js_interval_above_0": float((group["js_low"] > 0).mean())})
    return pd.DataFrame(rows)


def flatten(run: int, records: list[dict], **extra) -> list[dict]:
    return [{"run": run, "label": r["label"], "parameters": r["parameters"], "accuracy": r["accuracy"],
             "p_value": r["p_value"], "p_holm": r["p_holm"], "js_bound": r["js_bound"],
             "js_low": r["js_interval"][0], "js_high": r["js_interval"][1],
             "selected_step": float(np.mean(r["selected_steps"])), **extra} for r in records]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", choices=("null", "blank", "resampler"), required=True)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seeds", type=int, default=2, help="training seeds per rung (config: 2)")
    parser.add_argument("--steps", type=int, default=RECIPE["steps"], help="step budget (config: 300)")
    parser.add_argument("--selection", choices=stage.SELECTIONS, default=RECIPE["selection"],
                        help="which checkpoint each discriminator keeps (the stage: val_loss)")
    parser.add_argument("--checkpoints", type=int, default=RECIPE["checkpoints"],
                        help="checkpoints selection chooses from (the stage: audit.discriminators.CHECKPOINTS)")
    parser.add_argument("--calibration", choices=("platt", "isotonic"), default=RECIPE["calibration"],
                        help="how val calibrates each score (the stage: audit.discriminators.CALIBRATION)")
    parser.add_argument("--first-run", type=int, default=0,
                        help="seed of the first run (100 on: the runs that explored issue 15's options)")
    parser.add_argument("--out", help="write the per-run records here (.csv)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    options = {"seeds": args.seeds, "steps": args.steps, "selection": args.selection, "checkpoints": args.checkpoints,
               "calibration": args.calibration}
    with tempfile.TemporaryDirectory() as folder:
        data = prepared_digits(folder)
        rows = []
        for run in range(args.first_run, args.first_run + args.runs):
            if args.study == "null":
                rows += flatten(run, audit_run(data, exchangeable_null(data, run), ladder_args(run, **options)))
            elif args.study == "resampler":
                from audit.gans import SamplerContext, make_sampler

                sampler = make_sampler("uniform", {"type": "resample", "class_probs": "real"}, SamplerContext(data=data))
                rows += flatten(run, audit_run(data, sampler.sample(10000, run).images, ladder_args(run, **options)))
            else:
                images, is_blank = blank_without_copies(data, 0.3, run)
                rows += blank_rows(data, images, is_blank, ladder_args(run, **options))
            print(f"run {run} done", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    if args.out:
        table.to_csv(args.out, index=False)
    pd.set_option("display.width", 200)
    if args.study == "blank":
        table["below_limit"] = table["bayes_limit"] - table["accuracy"]
        print(table.groupby(["label", "parameters"], sort=False).mean(numeric_only=True).drop(columns="run").to_string())
        print(table.groupby(["label", "parameters"], sort=False)["below_limit"].agg(["min", "max"]).to_string())
    else:
        print(rejection_table(table, args.alpha).to_string(index=False))


def blank_records(data, images: np.ndarray, is_blank: np.ndarray, args) -> tuple[list[dict], float]:
    """(records, f_test) of one blank run (seed ``args.seed``): each record also holds the shares
    of the test set's noise images, real digits and GAN digits the rung's ensemble calls GAN
    (``noise_called_gan``, ``real_digits_called_gan``, ``gan_digits_called_gan``) and whether it
    ``separates`` noise from digits; f_test is the test set's realised blank share."""
    from audit import discriminators as disc

    sizes = disc.split_sizes({n: x.shape[0] for n, x in disc.real_splits(data).items()}, images.shape[0],
                             args.max_per_class)
    test_blank = is_blank[disc.split_samples(images.shape[0], sizes, args.seed)["test"]]
    records = audit_run(data, images, args, keep_probs=True)
    n = sizes["test"]
    for record in records:  # the test set: n real images, then the n GAN samples in row order
        called = record.pop("test_prob_fake") > 0.5
        record.update(noise_called_gan=float(called[n:][test_blank].mean()),
                      real_digits_called_gan=float(called[:n].mean()),
                      gan_digits_called_gan=float(called[n:][~test_blank].mean()))
        record["separates"] = record["noise_called_gan"] >= SEPARATES
    return records, float(test_blank.mean())


def blank_rows(data, images: np.ndarray, is_blank: np.ndarray, args) -> list[dict]:
    """One blank run's table rows: the records plus the Bayes limit of the realised blank share."""
    records, f_test = blank_records(data, images, is_blank, args)
    keys = ("noise_called_gan", "real_digits_called_gan", "gan_digits_called_gan", "separates")
    return [{**row, **{k: r[k] for k in keys}, "f_test": f_test, "bayes_limit": 0.5 + f_test / 2}
            for row, r in zip(flatten(args.seed, records), records)]


if __name__ == "__main__":
    main()
