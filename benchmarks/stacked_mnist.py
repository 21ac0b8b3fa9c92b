"""Error rates of ganaudit's Stacked MNIST figures, measured on planted generators of known truth.

    python benchmarks/stacked_mnist.py --data results/stacked_mnist/data \
        --annotator results/stacked_mnist/annotator/model.pt --reps 20 --skew-sims 100

Reads a prepared stacked_mnist dataset and its annotator (a pipeline run's), labels the held-out
base digits (test and pool splits) once, and simulates, as the pipeline would label them,
generators whose triples compose held-out digits (the planted ``n_modes`` resampler: a fresh
triple's label is its three digits' labels). In each simulation a fresh world (``--world
resplit``, default) draws, per digit and with replacement from the held-out digits, a test split
of the real test split's size (its confusion corrects) and a generator source of the pool's size
(the generator's digits): so the figures include the test split's own deviation from the
population and a finite source's, as the calibration of the skew tests does (SKEW.md). ``--world
fixed`` uses the run's own test and pool digits instead.

Prints (markdown, for MODES.md):

1. per planted M in {10, 100, 500, 1000} (``--reps`` simulations of 26,000 samples): the
   literature's count, the count with >= k labels, ganaudit's detected modes (mean, range, runs
   off M by more than 10%), phantom and missed modes, per-class interval coverage and the KL to
   uniform over the detected modes against the planted log(1000 / M); also with Jeffreys' prior
   (1/2) in the detection, the rejected alternative;
2. the skew stage's false-positive rate on perfect generators (uniform over the 1,000 modes) and
   its power at mode 000 at 5% (``--skew-sims`` each), with 95% Wilson intervals.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit.data.store import PreparedDataset  # noqa: E402
from audit.metrics import kronecker as kr  # noqa: E402
from audit.metrics import modes as md  # noqa: E402
from audit.metrics import skew as sk  # noqa: E402


def held_out_outputs(data: PreparedDataset, annotator: str) -> dict:
    """Per split (test, pool): (true digits, predicted digits, confidences) of the base digits."""
    from audit.models.classifier import calibrated_probabilities, load_classifier

    model, meta = load_classifier(annotator)
    base = data.base()
    out = {}
    for split in ("test", "pool"):
        images, labels = base.subset(split)
        p = calibrated_probabilities(model, meta["temperature"], images)
        out[split] = (labels, p.argmax(axis=1), p.max(axis=1))
    return out


def world(outputs: dict, rng: np.random.Generator, kind: str):
    """(test, source): each (true, predicted, confidence) arrays; ``resplit`` redraws both per
    digit from the pooled held-out digits (sizes kept), ``fixed`` returns the run's own."""
    if kind == "fixed":
        return outputs["test"], outputs["pool"]
    pooled = [np.concatenate([outputs[s][i] for s in ("test", "pool")]) for i in range(3)]
    drawn = []
    for split in ("test", "pool"):
        sizes = np.bincount(outputs[split][0], minlength=10)
        rows = np.concatenate([rng.choice(np.flatnonzero(pooled[0] == d), sizes[d]) for d in range(10)])
        drawn.append(tuple(x[rows] for x in pooled))
    return drawn[0], drawn[1]


def generator_outputs(source, probs: np.ndarray, n: int, rng: np.random.Generator):
    """(predicted classes, confidences) of n triples of classes drawn from ``probs``, each channel
    one of the source's digits of its class (uniform, with replacement)."""
    from audit.data.stacked_mnist import draw_rows

    members = [np.flatnonzero(source[0] == d) for d in range(10)]
    rows = draw_rows(members, np.repeat(np.arange(probs.size), rng.multinomial(n, probs)), rng)
    return kr.compose(source[1][rows]), source[2][rows].prod(axis=1)


def wilson(k: int, n: int) -> str:
    from scipy.stats import norm

    z = norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return f"{p:.3f} [{max(0, centre - half):.3f}, {min(1, centre + half):.3f}]"


def mode_table(outputs: dict, reps: int, kind: str, prior: float, k: int, fdr: float, boot: int) -> list[str]:
    lines = ["| M | literature (>= 1 label) | >= %d labels | ganaudit detected: mean (min-max) | runs off by > 10%% | "
             "phantom | missed | per-class coverage present / absent | KL detected (planted) |" % k,
             "|---|---|---|---|---|---|---|---|---|"]
    for m in (10, 100, 500, 1000):
        rows = []
        for r in range(reps):
            rng = np.random.default_rng([18, m, r])
            test, source = world(outputs, rng, kind)
            probs = np.zeros(1000)
            probs[rng.choice(1000, m, replace=False)] = 1.0 / m
            predicted, _ = generator_outputs(source, probs, md.LITERATURE_N, rng)
            counts = np.bincount(predicted, minlength=1000)
            res = md.corrected_modes(counts, test[0], test[1], fdr, boot, seed=r, prior=prior)
            det, planted = res["detected"], probs > 0
            cover = (res["distribution_low"] <= probs) & (probs <= res["distribution_high"])
            rows.append((md.literature_scores(predicted)["modes"], md.modes_with_at_least(counts, k),
                         res["modes_detected"], (det & ~planted).sum(), (~det & planted).sum(),
                         cover[planted].mean(), cover[~planted].mean() if (~planted).any() else np.nan,
                         res["kl_to_uniform"]))
        a = np.array(rows, dtype=float)
        off = int((np.abs(a[:, 2] - m) > 0.1 * m).sum())
        lines.append(f"| {m} | {a[:, 0].mean():.0f} | {a[:, 1].mean():.0f} | {a[:, 2].mean():.1f} ({a[:, 2].min():.0f}-"
                     f"{a[:, 2].max():.0f}) | {off} of {reps} | {a[:, 3].mean():.2f} | {a[:, 4].mean():.2f} | "
                     f"{a[:, 5].mean():.3f} / {np.nanmean(a[:, 6]) if m < 1000 else float('nan'):.3f} | "
                     f"{a[:, 7].mean():.3f} ({np.log(1000 / m):.3f}) |")
        print(lines[-1], flush=True)
    return lines


def skew_rates(outputs: dict, sims: int, kind: str, threshold: float, null_draws: int, boot: int) -> list[str]:
    uniform = np.full(1000, 1e-3)
    skewed = np.full(1000, 0.95 / 999)
    skewed[0] = 0.05
    lines = ["| generator | argmax | confident | corrected |", "|---|---|---|---|"]
    for name, probs in (("perfect (uniform)", uniform), ("mode 000 at 5%", skewed)):
        fired = {e: 0 for e in sk.ESTIMATES}
        for s in range(sims):
            rng = np.random.default_rng([18, 5, s, int(probs[0] * 1e4)])
            test, source = world(outputs, rng, kind)
            predicted, confidence = generator_outputs(source, probs, md.LITERATURE_N, rng)
            cells = sk.cell_counts(sk.annotator_cells(predicted, confidence, threshold, 1000), 1000)
            result = kr.skew_tests_stacked(cells, *test, uniform, threshold, 0.05, null_draws, boot, seed=s)
            for e in sk.ESTIMATES:
                p = result["estimates"][e]["p_value"]
                fired[e] += p is not None and p < 0.05
        lines.append(f"| {name} | " + " | ".join(wilson(fired[e], sims) for e in sk.ESTIMATES) + " |")
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--annotator", required=True)
    parser.add_argument("--reps", type=int, default=20, help="simulations per planted M (0: skip the mode tables)")
    parser.add_argument("--skew-sims", type=int, default=100, help="simulations per skew row (0: skip)")
    parser.add_argument("--world", choices=["resplit", "fixed"], default="resplit")
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--null-draws", type=int, default=500)
    parser.add_argument("--bootstrap", type=int, default=500)
    args = parser.parse_args()
    start = time.time()
    outputs = held_out_outputs(PreparedDataset.open(args.data), args.annotator)
    accuracy = {s: float((o[0] == o[1]).mean()) for s, o in outputs.items()}
    print(f"annotator per-digit accuracy: {accuracy}; world: {args.world}\n")
    if args.reps:
        print(f"### Planted M, prior {md.CONFUSION_PRIOR} (chosen)\n")
        mode_table(outputs, args.reps, args.world, md.CONFUSION_PRIOR, 10, 0.05, args.bootstrap)
        print("\n### Planted M, Jeffreys prior 1/2 (rejected)\n")
        mode_table(outputs, args.reps, args.world, 0.5, 10, 0.05, args.bootstrap)
    if args.skew_sims:
        print(f"\n### Skew tests on Stacked MNIST ({args.skew_sims} simulations, nominal 0.05)\n")
        skew_rates(outputs, args.skew_sims, args.world, args.threshold, args.null_draws, args.bootstrap)
    print(f"\n({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
