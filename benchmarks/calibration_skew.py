"""Calibration of the class-skew tests and intervals (issue 12) on real digits with a real annotator.

    python benchmarks/calibration_skew.py                      # full size: 400 generators per level
    python benchmarks/calibration_skew.py --sims 200 --null 1000 --bootstrap 1000 --n 10000

A small CNN annotator is trained on the digits ``train`` split (early stopping and temperature on
``val``), exactly as the annotator stage does. Its outputs on the ``pool`` and ``test`` images,
which it never saw, are the material of every simulation. Each simulated audit:

1. re-partitions the held-out images at random, within each class, into a generator source of
   the pool's size and a test split of the test's size (as ``audit.data.store.assign_splits``
   does with another seed), so what plays the generator is independent of what the null and the
   confusion matrix use, and the result is averaged over splits rather than tied to one;
2. draws a planted generator of N samples: classes multinomially from the planted distribution
   (``audit.gans.planted`` with ``draw: multinomial``), each image with replacement from the
   source images of its class (a perfect generator when the planted distribution is the real mix);
3. runs :func:`audit.metrics.skew.skew_tests`, the very function the skew stage runs.

Printed: the rate at which each verdict fires for the perfect generator (the false-positive rate)
with its 95% Wilson interval, and for each planted level the coverage of the 95% TV intervals
(does the interval contain TV(planted, real mix)?) and of the per-class intervals, with the power.
``tests/test_calibration_skew.py`` runs the same simulation at a reduced size and asserts on it.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit.dynamics.simulate import wilson_interval  # noqa: E402
from audit.metrics import skew as sk  # noqa: E402
from audit.metrics.bootstrap import basic_interval, bias_corrected_interval, percentile_interval  # noqa: E402
from audit.metrics.verdict import empirical_p_value  # noqa: E402

#: chi-square verdicts, beside the three Monte Carlo tests (sk.ESTIMATES)
CHI_SQUARE = ("chi2_argmax", "chi2_confident")


@dataclass
class HeldOut:
    """The annotator's outputs on the held-out real images (pool and test splits): (M,) true
    class, predicted class, calibrated confidence, and the per-class sizes of the two splits."""

    labels: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    pool_sizes: np.ndarray
    test_accuracy: float


def held_out_outputs(data, seed: int = 0, epochs: int = 40, patience: int = 10) -> HeldOut:
    """Train the annotator as the annotator stage does (smallcnn, shift 1, temperature on val) and
    label the pool and test images with it."""
    from audit.models.classifier import (build_classifier, calibrated_probabilities, fit_temperature,
                                         predict_logits, train_classifier)
    from audit.runtime import configure_torch

    configure_torch(1, seed)
    train_x, train_y = data.subset("train")
    val_x, val_y = data.subset("val")
    model = build_classifier("smallcnn", data.images.shape[1:], data.n_classes)
    model = train_classifier(model, train_x, train_y, val_x, val_y, epochs=epochs, batch_size=64, lr=0.002,
                             shift=1, patience=patience, seed=seed).model
    temperature = fit_temperature(predict_logits(model, val_x), val_y)
    parts = [data.subset(split) for split in ("pool", "test")]
    images = np.concatenate([np.asarray(x) for x, _ in parts])
    labels = np.concatenate([y for _, y in parts])
    probabilities = calibrated_probabilities(model, temperature, images)
    predicted = probabilities.argmax(axis=1)
    test = slice(parts[0][1].size, None)
    return HeldOut(labels, predicted, probabilities.max(axis=1),
                   np.bincount(parts[0][1], minlength=data.n_classes),
                   float((predicted[test] == labels[test]).mean()))


def dominant_distribution(n_classes: int, dominant_prob: float) -> np.ndarray:
    """Class 0 at ``dominant_prob``, the others equally likely (``resample``'s dominant_class: 0)."""
    probs = np.full(n_classes, (1 - dominant_prob) / (n_classes - 1))
    probs[0] = dominant_prob
    return probs


def simulate(held: HeldOut, reference: np.ndarray, planted: np.ndarray, *, n_samples: int, n_sims: int,
             threshold: float, alpha: float, n_null: int, n_bootstrap: int, seed: int,
             source: str = "pool", alternatives: bool = False) -> list[dict]:
    """``n_sims`` simulated audits of a planted generator (see the module docstring): one record
    each with every verdict's p-value and whether each interval covers the planted truth.

    The held-out images are the population: each simulation draws, independently and with
    replacement within each class, a test split of the real test split's class sizes and (for
    ``source="pool"``) a generator source of the pool's class sizes. Disjoint subsets of a finite
    set would be negatively correlated (a source with more annotator errors leaves fewer to the
    test split), which no real GAN is; independent draws are what H0 describes. With
    ``source="population"`` the generator draws from every held-out image of its class (a GAN
    whose source is as large as the population, closer to a trained GAN than a 36-image pool).
    ``alternatives``: also the p-values of the rejected null schemes (:func:`rejected_nulls`).
    """
    n_classes = reference.shape[0]
    cells = sk.annotator_cells(held.predicted, held.confidence, threshold, n_classes)
    members = [np.flatnonzero(held.labels == k) for k in range(n_classes)]
    test_sizes = np.bincount(held.labels, minlength=n_classes) - held.pool_sizes
    true_tv = sk.total_variation(planted, reference)
    records = []
    for sim_seed in np.random.SeedSequence(seed).spawn(n_sims):
        rng = np.random.default_rng(sim_seed)
        test = np.concatenate([rng.choice(m, size) for m, size in zip(members, test_sizes)])
        sources = members if source == "population" else [rng.choice(m, size) for m, size in
                                                           zip(members, held.pool_sizes)]
        classes = rng.multinomial(n_samples, planted)
        emitted = np.concatenate([rng.choice(sources[k], c) for k, c in enumerate(classes) if c])
        result = sk.skew_tests(sk.cell_counts(cells[emitted], n_classes), held.labels[test], cells[test], reference,
                               alpha, n_null, n_bootstrap, int(rng.integers(2**31)))
        record = {f"{name}_p": result["chi_square"][name.removeprefix("chi2_")]["p_value"] for name in CHI_SQUARE}
        for name, entry in result["estimates"].items():
            record[f"{name}_p"] = entry["p_value"]
            record[f"{name}_tv"] = entry["tv"]
            for method, interval in [("chosen", entry["tv_interval"]), *alternative_intervals(entry)]:
                key = f"{name}_covers" + ("" if method == "chosen" else f"_{method}")
                record[key] = None if interval is None else bool(interval[0] <= true_tv <= interval[1])
            bounds = entry["distribution_interval"]
            record[f"{name}_class_coverage"] = (None if bounds is None else
                                                float(np.mean((bounds[0] <= planted) & (planted <= bounds[1]))))
        if alternatives:
            test_true, test_cells = held.labels[test], cells[test]
            gan_cells = sk.cell_counts(cells[emitted], n_classes)
            confusion = sk.confusion_from_joint(sk.predicted_counts(sk.joint_cell_counts(test_true, test_cells,
                                                                                          n_classes)))
            observed = sk.estimates_from_counts(gan_cells, confusion)
            for scheme, null in rejected_nulls(test_true, test_cells, reference, n_samples, n_null, rng).items():
                for name in sk.ESTIMATES:
                    tv, draws = sk.tv_rows(observed[name], reference), null[name][~np.isnan(null[name])]
                    record[f"{name}_p_{scheme}"] = None if np.isnan(tv) else empirical_p_value(float(tv), draws)
        records.append(record)
    return records


#: interval constructions rejected by measured coverage (SKEW.md), computed from the same replicates
INTERVAL_ALTERNATIVES = ("percentile", "bias_corrected", "basic_no_inversion")


def alternative_intervals(entry: dict) -> list[tuple[str, tuple[float, float] | None]]:
    replicates = entry["tv_replicates"]
    if entry["tv"] is None or replicates.size == 0:
        return [(method, None) for method in INTERVAL_ALTERNATIVES]
    return [("percentile", percentile_interval(replicates)),
            ("bias_corrected", bias_corrected_interval(entry["tv"], replicates)),
            ("basic_no_inversion", basic_interval(entry["tv"], replicates, minimum=0.0))]


def rejected_nulls(test_true: np.ndarray, test_cells: np.ndarray, reference: np.ndarray, n_samples: int,
                   n_draws: int, rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    """Null TVs of the two schemes SKEW.md rejects, for the comparison only.

    ``same_images`` (the scheme before issue 12): the generator's outputs drawn from every test
    image, the confusion matrix from a bootstrap of the same test images. ``split_halves``: the
    test split cut at random into two halves per draw, one for the confusion matrix, one the
    generator's source.
    """
    n_classes = reference.shape[0]
    out = {}
    for scheme in ("same_images", "split_halves"):
        joint = np.zeros((n_draws, n_classes, n_classes))
        gan = np.zeros((n_draws, 2 * n_classes), dtype=np.int64)
        classes = rng.multinomial(n_samples, reference, size=n_draws)
        for k in range(n_classes):
            cells = np.eye(2 * n_classes)[test_cells[test_true == k]]  # (n_k, 2K) one-hot
            if scheme == "same_images":
                in_c = rng.multinomial(len(cells), np.full(len(cells), 1 / len(cells)), size=n_draws)
                source = np.ones((n_draws, len(cells)))
            else:
                keys = rng.random((n_draws, len(cells)))
                half = (len(cells) + 1) // 2
                in_c = (keys <= np.partition(keys, half - 1, axis=1)[:, half - 1:half]).astype(float)
                source = 1.0 - in_c
            joint[:, k, :] = sk.predicted_counts(np.einsum("dm,mc->dc", in_c, cells))
            source = np.einsum("dm,mc->dc", source, cells)
            gan += rng.multinomial(classes[:, k], source / source.sum(axis=1, keepdims=True))
        estimates = sk.estimates_from_counts(gan, sk.confusion_from_joint(joint))
        out[scheme] = {name: sk.tv_rows(dist, reference) for name, dist in estimates.items()}
    return out


def rejection_rates(records: list[dict], alpha: float) -> dict[str, tuple[int, int]]:
    """For each verdict, and each estimate under a rejected null scheme when they were simulated:
    (times it fired, times it could run)."""
    keys = [f"{name}_p" for name in (*sk.ESTIMATES, *CHI_SQUARE)]
    keys += [f"{name}_p_{scheme}" for scheme in ("same_images", "split_halves") for name in sk.ESTIMATES
             if f"{name}_p_{scheme}" in records[0]]
    out = {}
    for key in keys:
        p = [r[key] for r in records if r[key] is not None]
        out[key.replace("_p", "", 1)] = (int(sum(v < alpha for v in p)), len(p))
    return out


def coverage(records: list[dict], name: str, method: str = "chosen") -> tuple[int, int]:
    """(intervals of estimate ``name`` containing the planted TV, intervals computed), for the
    chosen construction or one of :data:`INTERVAL_ALTERNATIVES`."""
    key = f"{name}_covers" + ("" if method == "chosen" else f"_{method}")
    covers = [r[key] for r in records if r[key] is not None]
    return int(sum(covers)), len(covers)


def _rate(count: int, total: int) -> str:
    low, high = wilson_interval(np.array(count), np.array(total))
    return f"{count / total:.3f} [{float(low):.3f}, {float(high):.3f}] ({count}/{total})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sims", type=int, default=400, help="simulated generators per planted level")
    parser.add_argument("--n", type=int, default=10000, help="samples per generator (config samples.n)")
    parser.add_argument("--null", type=int, default=1000, help="null draws per test (skew.null_draws)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (skew.bootstrap)")
    parser.add_argument("--threshold", type=float, default=0.9, help="label.confidence_threshold")
    parser.add_argument("--alpha", type=float, default=0.05, help="skew.alpha")
    parser.add_argument("--levels", type=float, nargs="+", default=[0.15, 0.3], help="planted dominant_prob")
    parser.add_argument("--source", choices=("pool", "population"), default="pool",
                        help="the generator's source: a pool-sized sample, or every held-out image")
    parser.add_argument("--epochs", type=int, default=40,
                        help="annotator epochs (the CI config's 40; 2-3 give a weak annotator, a stress test)")
    parser.add_argument("--alternatives", action="store_true", help="also the rejected null schemes (slower)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import tempfile

    from audit.data.digits import load
    from audit.data.store import prepare

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data = prepare(load(), Path(tmp) / "data", {"train": 0.45, "val": 0.1, "pool": 0.2, "test": 0.25},
                       seed=args.seed, progress=False)
        held = held_out_outputs(data, args.seed, epochs=args.epochs, patience=min(10, args.epochs))
        reference = data.class_distribution()
    print(f"annotator ({args.epochs} epochs): test accuracy {held.test_accuracy:.4f}; held-out images "
          f"{held.labels.size} (pool {held.pool_sizes.sum()}, test {held.labels.size - held.pool_sizes.sum()}); "
          f"confident at {args.threshold}: {np.mean(held.confidence >= args.threshold):.3f}; "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    print(f"N = {args.n} samples, {args.null} null draws, {args.bootstrap} bootstrap resamples, threshold "
          f"{args.threshold}, alpha {args.alpha}, {args.sims} generators per level, source {args.source}\n")
    settings = dict(n_samples=args.n, n_sims=args.sims, threshold=args.threshold, alpha=args.alpha,
                    n_null=args.null, n_bootstrap=args.bootstrap, source=args.source,
                    alternatives=args.alternatives)
    for index, level in enumerate([None, *args.levels]):
        planted = reference if level is None else dominant_distribution(reference.size, level)
        start = time.perf_counter()
        records = simulate(held, reference, planted, **settings, seed=args.seed + 1 + index)
        title = "perfect generator (real mix)" if level is None else f"dominant class at {level}"
        print(f"== {title}: true TV {sk.total_variation(planted, reference):.4f}; "
              f"{time.perf_counter() - start:.0f} s")
        for name, (fired, total) in rejection_rates(records, args.alpha).items():
            label = "false-positive rate" if level is None else "power"
            print(f"  {name:24s} {label} {_rate(fired, total)}")
        for name in sk.ESTIMATES:
            per_class = [r[f"{name}_class_coverage"] for r in records if r[f"{name}_class_coverage"] is not None]
            tvs = [r[f"{name}_tv"] for r in records if r[f"{name}_tv"] is not None]
            print(f"  {name:24s} TV interval coverage {_rate(*coverage(records, name))}; per-class interval "
                  f"coverage {np.mean(per_class):.3f}; mean TV {np.mean(tvs):.4f}")
            for method in INTERVAL_ALTERNATIVES:
                print(f"    rejected {method:18s} coverage {_rate(*coverage(records, name, method))}")
        print(flush=True)


if __name__ == "__main__":
    main()
