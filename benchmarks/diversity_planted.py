"""Diversity audit (n_equiv) of the planted memoriser and pool resampler on a prepared dataset.

    python benchmarks/diversity_planted.py --data results/scenes/data --arch smallcnn --flip --shift 4
    python benchmarks/diversity_planted.py --data results/digits/data --grid 20 50 100 200 500
    python benchmarks/diversity_planted.py --data results/digits/data --grid 20 50 100 200 500 --holdout 0.1

Runs the stages' own functions (``audit.real_curve.real_curve`` and ``audit.diversity.audit_gan``)
with the pipeline's recipe: the real curve on the ``train`` split, then a memoriser of k pool
images (+ noise of 2 grey levels) and a resampler of the P pool images, N samples each. The GAN
samples are labelled with their TRUE planted class (confidence 1), so the figures measure the
diversity audit alone, not the annotator. Prints the real curve, each GAN's CAS and n_equiv
[95% CI] and verdict p-value per classifier kind, the planted targets (memoriser <= 2k,
resampler >= P/2, stated before any run) and wall times. ``--holdout`` sets the model-selection
rule of every classifier (:attr:`audit.models.fitting.Recipe.holdout`; 0: none), which is how
DIVERSITY.md compares the rules. Prints figures; asserts nothing (tests/test_diversity.py
asserts the same on a budget).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit import diversity as gan_stage  # noqa: E402
from audit import real_curve as real_stage  # noqa: E402
from audit.data.store import PreparedDataset  # noqa: E402
from audit.gans import SamplerContext, make_sampler  # noqa: E402
from audit.io import save_json, save_table  # noqa: E402
from audit.metrics import diversity as dv  # noqa: E402
from audit.models.fitting import Recipe  # noqa: E402
from audit.runtime import configure_torch  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="a prepared dataset directory (python -m audit.prepare)")
    parser.add_argument("--arch", default="smallcnn")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.002)
    parser.add_argument("--flip", action="store_true")
    parser.add_argument("--shift", type=int, default=1)
    parser.add_argument("--grid", type=int, nargs="+", default=[20, 50, 100, 200, 500, 1000])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n", type=int, default=10000, help="samples per planted GAN (all train every classifier)")
    parser.add_argument("--k", type=int, default=50, help="memoriser support size")
    parser.add_argument("--holdout", type=float, default=0.0,
                        help="share of every classifier's own training set held out for model selection (0: none)")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--linear-max-pixels", type=int, default=Recipe.linear_max_pixels,
                        help="pixels per image above which the linear classifier is the torch layer (0: always)")
    parser.add_argument("--threads", type=int, default=1, help="classifiers trained at once (worker processes)")
    parser.add_argument("--out", help="folder for the real-curve CSV and each GAN's CSV and JSON (with predictions)")
    args = parser.parse_args()

    configure_torch(1, 0)
    data = PreparedDataset.open(args.data)
    recipe = Recipe(arch=args.arch, steps=args.steps, batch_size=args.batch_size, lr=args.lr, flip=args.flip,
                    shift=args.shift, holdout=args.holdout, linear_max_pixels=args.linear_max_pixels)
    n_train, pool = int(data.rows("train").size), int(data.rows("pool").size)
    grid = real_stage.real_grid(args.grid, n_train, data.n_classes)
    print(f"{data.meta['name']}: images {data.images.shape[1:]}, train {n_train}, pool P = {pool}, "
          f"test {data.rows('test').size}; recipe {recipe.public()}; grid {grid}, {args.seeds} seeds")
    quiet = lambda *_: None  # noqa: E731
    start = time.perf_counter()
    real = real_stage.real_curve(data, grid, list(range(args.seeds)), recipe, log=quiet, workers=args.threads)
    real_seconds = time.perf_counter() - start
    if args.out:
        save_table(Path(args.out) / "real_curve.csv", real)
    real, predictions = gan_stage.split_predictions(real, data)
    for kind, curve in real_stage.curve_summary(real).items():
        accuracies = ", ".join(f"{n}: {a:.3f}" for n, a in zip(curve["n"], curve["test_accuracy_mean"]))
        print(f"real curve {kind:>6}: {accuracies}")
    print(f"real curve: {real_seconds:.0f} s ({len(real)} classifiers)")

    # the planted bounds, stated before any run (issue 5): memoriser <= 2k, pool resampler >= P/2
    targets = {"memoriser": ({"type": "memoriser", "k": args.k}, f"<= 2k = {2 * args.k}",
                             lambda d: dv.states_at_most(d, 2 * args.k)),
               "resampler": ({"type": "resample", "class_probs": "real"}, f">= P/2 = {pool / 2:g}",
                             lambda d: dv.states_at_least(d, pool / 2))}
    for name, (spec, target, holds) in targets.items():
        start = time.perf_counter()
        batch = make_sampler(name, spec, SamplerContext(data=data)).sample(args.n, 0)
        result, table = gan_stage.audit_gan(batch.images, batch.planted_labels, data, real, predictions, recipe,
                                        gan_grid=[], n_bootstrap=args.bootstrap, seed=0, log=quiet,
                                        workers=args.threads)
        seconds = time.perf_counter() - start
        if args.out:
            save_table(Path(args.out) / f"{name}.csv", table)
            save_json(Path(args.out) / f"{name}.json", result)
        for (kind, score), verdict in zip(result["scores"].items(), result["verdicts"]):
            print(f"{name:>9} {kind:>6}: CAS {score['classification_accuracy_score']:.3f}, train acc "
                  f"{score['gan_train_accuracy_on_gan_samples']:.3f}, n_equiv {score['n_equiv']['text']} "
                  f"{dv.interval_text(score)} "
                  f"(per seed {[s['text'] for s in score['n_equiv_per_seed']]}), target {target} "
                  f"{'met' if holds(score['n_equiv']) else 'NOT MET'}; "
                  f"H0 n_equiv >= {n_train}: p = {verdict['p_value']:.4f}")
        print(f"{name:>9}: N = {result['n_gan_train']}, {seconds:.0f} s")


if __name__ == "__main__":
    main()
