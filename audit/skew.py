"""Stage ``skew``: class-distribution skew of one GAN, three estimates side by side.

    python -m audit.skew --labels results/digits/labels/dcgan.csv \
        --annotator-test results/digits/annotator/test_predictions.csv \
        --data results/digits/data --truth results/digits/samples/dcgan/truth.json \
        --name dcgan --threshold 0.9 --bootstrap 1000 --seed 0 \
        --out-json results/digits/skew/dcgan.json --out-csv results/digits/skew/dcgan_classes.csv \
        --out-png results/digits/skew/dcgan.png

See :mod:`audit.metrics.skew` for the estimates. The real reference distribution is the class
mix of every labelled real image of the dataset; the annotator's error rates come from its
predictions on the real ``test`` split. Outputs: a JSON with every figure and its 95%
bootstrap interval, a long table (class, source, frequency, low, high) and its bar plot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit.cli import add_inputs, add_outputs, run_cli, stage_parser
from audit.data.store import PreparedDataset
from audit.io import AuditInputError, load_json, load_table, save_json, save_table
from audit.metrics import skew as sk
from audit.metrics.bootstrap import percentile_interval


def summarise(values: np.ndarray) -> dict:
    """95% percentile interval of bootstrap replicates (:func:`percentile_interval`); with the
    share of infinite replicates when there are any (KL to a distribution with an empty class)."""
    low, high = percentile_interval(values)
    infinite = float(np.mean(np.isinf(values)))
    return {"low": low, "high": high, **({"fraction_infinite": infinite} if infinite else {})}


def audit_skew(
    predicted: np.ndarray,
    confidence: np.ndarray,
    real_true: np.ndarray,
    real_predicted: np.ndarray,
    real_confidence: np.ndarray,
    reference: np.ndarray,
    threshold: float,
    n_bootstrap: int,
    seed: int,
    planted: np.ndarray | None = None,
) -> dict:
    """Every skew figure of one GAN as a JSON-ready dict (see the module docstring)."""
    n_classes = reference.shape[0]
    confusion = sk.confusion_matrix(real_true, real_predicted, n_classes)
    estimates = sk.estimate_distributions(predicted, confidence, threshold, confusion)
    replicates = sk.bootstrap_estimates(predicted, confidence, real_true, real_predicted, threshold, reference,
                                        n_bootstrap, seed)
    null = sk.perfect_generator_null(real_true, real_predicted, real_confidence, threshold, reference,
                                     predicted.shape[0], max(200, n_bootstrap // 5), seed + 1)
    result: dict = {
        "n_samples": int(predicted.shape[0]),
        "confidence_threshold": threshold,
        "confident_fraction": float((confidence >= threshold).mean()),
        "unrecognisable_fraction": float((confidence < threshold).mean()),
        "estimates": {},
        "chi_square_vs_real_test": {
            "argmax": sk.chi_square_two_sample(predicted, real_predicted, n_classes),
            "confident": sk.chi_square_two_sample(predicted[confidence >= threshold],
                                                  real_predicted[real_confidence >= threshold], n_classes),
        },
    }
    for name, dist in estimates.items():
        entry = {"distribution": dist.tolist(),
                 "distribution_low": np.percentile(replicates[name], 2.5, axis=0).tolist(),
                 "distribution_high": np.percentile(replicates[name], 97.5, axis=0).tolist()}
        for figure, value in sk.divergences(dist, reference).items():
            entry[figure] = value
            entry[f"{figure}_ci"] = summarise(replicates[f"{name}_{figure}"])
        entry["perfect_generator_tv_mean"] = float(null[name].mean())
        entry["perfect_generator_tv_95"] = float(np.percentile(null[name], 95))
        entry["consistent_with_real"] = bool(entry["tv_ci"]["low"] <= entry["perfect_generator_tv_95"])
        if planted is not None:
            entry["tv_to_planted"] = sk.total_variation(dist, planted)
        result["estimates"][name] = entry
    return result


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser("audit.skew", __doc__, threads=False, device=False)
    add_inputs(parser, labels="the label stage's table (.csv)",
               annotator_test="the annotator's test predictions (.csv)", data="prepared dataset directory",
               truth="the sample stage's truth.json")
    parser.add_argument("--name", required=True, help="the GAN's name")
    parser.add_argument("--threshold", type=float, required=True, help="label.confidence_threshold")
    parser.add_argument("--bootstrap", type=int, required=True, help="bootstrap resamples")
    add_outputs(parser, out_json="every figure (.json)", out_csv="class, source, frequency, low, high (.csv)",
                out_png="bar plot of real vs GAN class frequencies")
    args = parser.parse_args(argv)
    if not 0 <= args.threshold <= 1:
        raise AuditInputError(f"label.confidence_threshold: must be in [0, 1], got {args.threshold}")
    if args.bootstrap < 10:
        raise AuditInputError(f"skew.bootstrap: must be >= 10, got {args.bootstrap}")
    data = PreparedDataset.open(args.data)
    labels = load_table(args.labels, ("predicted", "confidence"))
    test = load_table(args.annotator_test, ("label", "predicted", "confidence"))
    reference = data.class_distribution()
    truth = load_json(args.truth)
    planted = np.asarray(truth["class_distribution"]) if "class_distribution" in truth else None
    result = audit_skew(labels["predicted"].to_numpy(), labels["confidence"].to_numpy(),
                        test["label"].to_numpy(), test["predicted"].to_numpy(), test["confidence"].to_numpy(),
                        reference, args.threshold, args.bootstrap, args.seed, planted)
    rng = np.random.default_rng(args.seed + 2)
    n_real = int(data.labels.shape[0])
    result.update({
        "gan": args.name,
        "class_names": list(data.class_names),
        "real_distribution": reference.tolist(),
        "real_n_images": n_real,
        # how far the empirical real mix itself may sit from the population it was drawn from
        "real_sampling_tv_mean": float(np.mean([sk.total_variation(rng.multinomial(n_real, reference) / n_real,
                                                                   reference) for _ in range(500)])),
        "annotator_test_n": int(len(test)),
        "annotator_test_accuracy": float((test["label"] == test["predicted"]).mean()),
        "planted_distribution": None if planted is None else planted.tolist(),
    })
    if "planted_label" in labels.columns:
        # GAN-test (Shmelkov et al. 2018) for generators that know each sample's class; blanks
        # and other samples of no class (planted_label -1) have no right answer
        known = labels[labels["planted_label"] >= 0]
        result["annotator_accuracy_on_planted"] = float((known["planted_label"] == known["predicted"]).mean())
    rows = [{"class": c, "source": "real", "frequency": reference[k], "low": np.nan, "high": np.nan}
            for k, c in enumerate(data.class_names)]
    if planted is not None:
        rows += [{"class": c, "source": "planted", "frequency": planted[k], "low": np.nan, "high": np.nan}
                 for k, c in enumerate(data.class_names)]
    for name, entry in result["estimates"].items():
        rows += [{"class": c, "source": f"GAN ({name})", "frequency": entry["distribution"][k],
                  "low": entry["distribution_low"][k], "high": entry["distribution_high"][k]}
                 for k, c in enumerate(data.class_names)]
    table = pd.DataFrame(rows)
    save_table(args.out_csv, table)
    from audit.plots import plot_class_distributions

    plot_class_distributions(table, args.out_png, title=f"{args.name}: class frequencies (95% bootstrap CIs)")
    save_json(args.out_json, result)
    for name, entry in result["estimates"].items():
        extra = f", TV to planted {entry['tv_to_planted']:.4f}" if planted is not None else ""
        print(f"{args.name} {name}: TV to real {entry['tv']:.4f} [{entry['tv_ci']['low']:.4f}, "
              f"{entry['tv_ci']['high']:.4f}], perfect-generator 95% {entry['perfect_generator_tv_95']:.4f}{extra}")


if __name__ == "__main__":
    run_cli(main)
