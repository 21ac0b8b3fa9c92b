"""Diversity audit (n_equiv) of the planted memoriser and pool resampler on a prepared dataset.

    python benchmarks/diversity_planted.py --data results/scenes/data --arch smallcnn --flip --shift 4
    python benchmarks/diversity_planted.py --data results/digits/data --grid 20 50 100 200 500

Runs the stages' own functions (``audit.real_curve.real_curve`` and ``audit.diversity.audit_gan``)
with the pipeline's recipe: the real curve on the ``train`` split, then a memoriser of k pool
images (+ noise of 2 grey levels) and a resampler of the P pool images, N samples each. The GAN
samples are labelled with their TRUE planted class (confidence 1), so the figures measure the
diversity audit alone, not the annotator. Prints the real curve, each GAN's CAS and n_equiv
[95% CI] per classifier kind, the planted targets (memoriser <= 2k, resampler >= P/2) and wall
times. Prints figures; asserts nothing (tests/test_diversity.py asserts the same on a budget).
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
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n", type=int, default=10000, help="samples per planted GAN (10%% held out)")
    parser.add_argument("--k", type=int, default=50, help="memoriser support size")
    parser.add_argument("--holdout", type=float, default=0.1, help="fraction of GAN samples held out for validation")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1, help="classifiers trained at once (worker processes)")
    args = parser.parse_args()

    configure_torch(1, 0)
    data = PreparedDataset.open(args.data)
    recipe = Recipe(arch=args.arch, steps=args.steps, batch_size=args.batch_size, lr=args.lr, flip=args.flip,
                    shift=args.shift)
    n_train, pool = int(data.rows("train").size), int(data.rows("pool").size)
    grid = real_stage.real_grid(args.grid, n_train, data.n_classes)
    print(f"{data.meta['name']}: images {data.images.shape[1:]}, train {n_train}, pool P = {pool}, "
          f"test {data.rows('test').size}; recipe {recipe.public()}; grid {grid}, {args.seeds} seeds")
    quiet = lambda *_: None  # noqa: E731
    start = time.perf_counter()
    real = real_stage.real_curve(data, grid, list(range(args.seeds)), recipe, log=quiet, workers=args.threads)
    real_seconds = time.perf_counter() - start
    for kind, curve in real_stage.curve_summary(real).items():
        accuracies = ", ".join(f"{n}: {a:.3f}" for n, a in zip(curve["n"], curve["test_accuracy_mean"]))
        print(f"real curve {kind:>6}: {accuracies}")
    print(f"real curve: {real_seconds:.0f} s ({len(real)} classifiers)")

    targets = {"memoriser": ({"type": "memoriser", "k": args.k}, f"<= 2k = {2 * args.k}"),
               "resampler": ({"type": "resample", "class_probs": "real"}, f">= P/2 = {pool / 2:g}")}
    for name, (spec, target) in targets.items():
        start = time.perf_counter()
        batch = make_sampler(name, spec, SamplerContext(data=data)).sample(args.n, 0)
        result, _ = gan_stage.audit_gan(batch.images, batch.planted_labels, data, real, recipe, gan_grid=[],
                                        holdout=args.holdout, n_bootstrap=args.bootstrap, seed=0, log=quiet,
                                        workers=args.threads)
        seconds = time.perf_counter() - start
        for kind, score in result["scores"].items():
            print(f"{name:>9} {kind:>6}: CAS {score['classification_accuracy_score']:.3f}, train acc "
                  f"{score['gan_train_accuracy_on_gan_samples']:.3f}, n_equiv {score['n_equiv']['text']} "
                  f"{dv.interval_text(score)} "
                  f"(per seed {[s['text'] for s in score['n_equiv_per_seed']]}), target {target}")
        print(f"{name:>9}: N = {result['n_gan_train']} train / {result['n_gan_val']} val, {seconds:.0f} s")


if __name__ == "__main__":
    main()
