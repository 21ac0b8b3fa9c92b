"""Stage ``skew``: class-distribution skew of one GAN: three estimates, their tests and intervals.

    python -m audit.skew --labels results/digits/labels/dcgan.csv \
        --annotator-test results/digits/annotator/test_predictions.csv \
        --data results/digits/data --truth results/digits/samples/dcgan/truth.json \
        --name dcgan --threshold 0.9 --alpha 0.05 --null-draws 1000 --bootstrap 1000 --seed 0 \
        --out-json results/digits/skew/dcgan.json --out-csv results/digits/skew/dcgan_classes.csv \
        --out-png results/digits/skew/dcgan.png

See :mod:`audit.metrics.skew` for the estimates, the tests and the intervals, and
``audit/metrics/SKEW.md`` for why they are built so. The real reference distribution is the
class mix of every labelled real image of the dataset; the annotator's error rates come from its
predictions on the real ``test`` split. Outputs: a JSON with every figure, its 95% interval and
the verdicts (:class:`audit.metrics.verdict.Verdict` dicts under ``"verdicts"``), a long table
(class, source, frequency, low, high) and its bar plot. On Stacked MNIST the annotator's test
predictions are per digit and the confusion matrix is their Kronecker cube
(:func:`audit.metrics.kronecker.skew_tests_stacked`); the plot then shows each source's 1,000
class frequencies sorted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit.cli import add_inputs, add_outputs, run_cli, stage_parser
from audit.data.store import PreparedDataset
from audit.io import AuditInputError, load_json, load_table, save_json, save_table
from audit.metrics import kronecker as kr
from audit.metrics import skew as sk
from audit.metrics.verdict import Verdict

#: the files the skew stage reads (the modes stage reads the same ones)
INPUTS = {"labels": "the label stage's table (.csv)",
          "annotator_test": "the annotator's test predictions (.csv; per digit on Stacked MNIST)",
          "data": "prepared dataset directory", "truth": "the sample stage's truth.json"}

CHI_SQUARE_HYPOTHESIS = ("the GAN samples and the real test images get the same mix of {what} from the "
                         "annotator")
CHI_SQUARE_LABELS = {"argmax": "labels", "confident": "labels among confident outputs"}


def estimate_entry(name: str, result: dict, reference: np.ndarray, alpha: float, planted: np.ndarray | None) -> dict:
    """The JSON entry of one estimate (None where undefined, with the reason)."""
    e = result["estimates"][name]
    dist = e["distribution"]
    figures = sk.divergences(dist, reference)
    null = e["null_tv"]
    interval, bounds = e["tv_interval"], e["distribution_interval"]
    return {
        "distribution": None if dist is None else dist.tolist(),
        "distribution_low": None if bounds is None else bounds[0].tolist(),
        "distribution_high": None if bounds is None else bounds[1].tolist(),
        **figures,
        "tv_ci": {"low": None if interval is None else interval[0], "high": None if interval is None else interval[1],
                  "method": sk.TV_INTERVAL_METHOD},
        "p_value": e["p_value"],
        "consistent_with_real": None if e["p_value"] is None else bool(e["p_value"] >= alpha),
        "reason": e["reason"],
        "null_tv_mean": float(null.mean()) if null.size else None,
        "null_tv_critical": float(np.quantile(null, 1 - alpha)) if null.size else None,
        "null_undefined_draws": e["null_undefined"],
        "bootstrap_undefined_resamples": e["bootstrap_undefined"],
        **({} if planted is None or dist is None else {"tv_to_planted": sk.total_variation(dist, planted)}),
    }


def verdicts(result: dict, estimates: dict, reference: np.ndarray, class_names, alpha: float,
             n_null: int) -> list[dict]:
    """One verdict per estimate (Monte Carlo test) and per chi-square test."""
    out = []
    for name in sk.ESTIMATES:
        entry = estimates[name]
        dist = entry["distribution"]
        ci = entry["tv_ci"]
        out.append(Verdict(
            test=f"skew.{name}", title=f"class skew ({name})", hypothesis=sk.NULL_HYPOTHESIS,
            p_value=entry["p_value"], alpha=alpha, finding="skewed", null_finding="consistent with real",
            key_number="" if dist is None else sk.largest_deviation(dist, reference, class_names),
            estimate=entry["tv"], interval=None if ci["low"] is None else (ci["low"], ci["high"]),
            method=f"{sk.NULL_METHOD}; {n_null} draws; statistic: TV to the real class mix",
            reason=entry["reason"] or "").to_json())
    for name, test in result["chi_square"].items():
        out.append(Verdict(
            test=f"skew.chi2_{name}", title=f"label mix vs real ({name}, chi-square)",
            hypothesis=CHI_SQUARE_HYPOTHESIS.format(what=CHI_SQUARE_LABELS[name]), p_value=test["p_value"],
            alpha=alpha, finding="skewed", null_finding="consistent with real",
            key_number="" if test["p_value"] is None else f"chi2 = {test['chi2']:.1f} on {test['dof']} dof",
            method="Pearson chi-square test of homogeneity, GAN labels vs the real test images' labels",
            reason=test.get("reason", "")).to_json())
    return out


def audit_skew(predicted: np.ndarray, confidence: np.ndarray, real_true: np.ndarray, real_predicted: np.ndarray,
               real_confidence: np.ndarray, reference: np.ndarray, threshold: float, alpha: float, n_null: int,
               n_bootstrap: int, seed: int, class_names, planted: np.ndarray | None = None,
               stacked: bool = False) -> dict:
    """Every skew figure and verdict of one GAN as a JSON-ready dict (see the module docstring).
    ``stacked``: the real_* arrays are held-out digits, the confusion their Kronecker cube."""
    n_classes = reference.shape[0]
    gan_cells = sk.cell_counts(sk.annotator_cells(predicted, confidence, threshold, n_classes), n_classes)
    if stacked:
        result = kr.skew_tests_stacked(gan_cells, real_true, real_predicted, real_confidence, reference, threshold,
                                       alpha, n_null, n_bootstrap, seed)
    else:
        test_cells = sk.annotator_cells(real_predicted, real_confidence, threshold, n_classes)
        result = sk.skew_tests(gan_cells, real_true, test_cells, reference, alpha, n_null, n_bootstrap, seed)
    condition = result["condition"]
    estimates = {name: estimate_entry(name, result, reference, alpha, planted) for name in sk.ESTIMATES}
    confident = confidence >= threshold
    return {
        "hypothesis": sk.NULL_HYPOTHESIS,
        "alpha": alpha,
        "null": {"method": sk.NULL_METHOD, "draws": n_null},
        "bootstrap_resamples": n_bootstrap,
        "n_samples": int(predicted.shape[0]),
        "confidence_threshold": threshold,
        "confident_fraction": float(confident.mean()),
        "unrecognisable_fraction": float((~confident).mean()),
        "confusion_pred_given_true": result["confusion"].tolist(),
        **({"confusion_structure": "per digit (10 x 10); the 1,000-class confusion is its Kronecker cube"}
           if stacked else {}),
        "confusion_condition_number": condition["condition_number"],
        "confusion_rank": condition["rank"],
        "warnings": [w for w in [condition["warning"]] if w],
        "estimates": estimates,
        "chi_square_vs_real_test": result["chi_square"],
        "verdicts": verdicts(result, estimates, reference, class_names, alpha, n_null),
    }


def annotator_outputs(path, n_classes: int, with_label: bool) -> pd.DataFrame:
    """A label or annotator-test table, checked: classes in [0, K), confidences in [0, 1]."""
    columns = ("label", "predicted", "confidence") if with_label else ("predicted", "confidence")
    table = load_table(path, columns)
    if table.empty:
        raise AuditInputError(f"{path}: no rows")
    for column in columns[:-1]:
        values = table[column].to_numpy()
        if not np.issubdtype(values.dtype, np.integer) or values.min() < 0 or values.max() >= n_classes:
            raise AuditInputError(f"{path}: column {column} must hold class indices in [0, {n_classes})")
    confidence = table["confidence"].to_numpy(dtype=np.float64)
    if not (np.isfinite(confidence).all() and (confidence >= 0).all() and (confidence <= 1).all()):
        raise AuditInputError(f"{path}: column confidence must hold probabilities in [0, 1]")
    return table


def check_options(args) -> None:
    if not 0 <= args.threshold < 1:
        raise AuditInputError(f"label.confidence_threshold: must be in [0, 1), got {args.threshold} (at 1 no "
                              "calibrated probability would count as confident)")
    if not 0 < args.alpha < 1:
        raise AuditInputError(f"skew.alpha: must be in (0, 1), got {args.alpha}")
    if args.bootstrap < 10:
        raise AuditInputError(f"skew.bootstrap: must be >= 10, got {args.bootstrap}")
    if args.null_draws < 1 or 1 / (1 + args.null_draws) >= args.alpha:
        raise AuditInputError(f"skew.null_draws: {args.null_draws} draws cannot give a p-value below "
                              f"skew.alpha = {args.alpha}; use at least {int(np.ceil(1 / args.alpha))}")


def class_table(result: dict, class_names, reference: np.ndarray, planted: np.ndarray | None) -> pd.DataFrame:
    """Long table (class, source, frequency, low, high) of the real, planted and defined estimates."""
    rows = [{"class": c, "source": "real", "frequency": reference[k], "low": np.nan, "high": np.nan}
            for k, c in enumerate(class_names)]
    if planted is not None:
        rows += [{"class": c, "source": "planted", "frequency": planted[k], "low": np.nan, "high": np.nan}
                 for k, c in enumerate(class_names)]
    for name, entry in result["estimates"].items():
        if entry["distribution"] is not None:
            low, high = entry["distribution_low"], entry["distribution_high"]
            rows += [{"class": c, "source": f"GAN ({name})", "frequency": entry["distribution"][k],
                      "low": np.nan if low is None else low[k], "high": np.nan if high is None else high[k]}
                     for k, c in enumerate(class_names)]
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser("audit.skew", __doc__, threads=False, device=False)
    add_inputs(parser, **INPUTS)
    parser.add_argument("--name", required=True, help="the GAN's name")
    parser.add_argument("--threshold", type=float, required=True, help="label.confidence_threshold")
    parser.add_argument("--alpha", type=float, required=True, help="skew.alpha: level of every skew test")
    parser.add_argument("--null-draws", type=int, required=True, help="skew.null_draws: simulated perfect generators")
    parser.add_argument("--bootstrap", type=int, required=True, help="skew.bootstrap: bootstrap resamples")
    add_outputs(parser, out_json="every figure and verdict (.json)",
                out_csv="class, source, frequency, low, high (.csv)",
                out_png="bar plot of real vs GAN class frequencies")
    args = parser.parse_args(argv)
    check_options(args)
    data = PreparedDataset.open(args.data)
    stacked = "stacked" in data.meta  # Stacked MNIST: the annotator's test table holds digits
    labels = annotator_outputs(args.labels, data.n_classes, with_label=False)
    test = annotator_outputs(args.annotator_test, kr.BASE_CLASSES if stacked else data.n_classes, with_label=True)
    reference = data.class_distribution()
    truth = load_json(args.truth)
    planted = np.asarray(truth["class_distribution"], float) if "class_distribution" in truth else None
    if planted is not None and planted.shape != reference.shape:
        raise AuditInputError(f"{args.truth}: class_distribution has {planted.size} classes, the data {reference.size}")
    result = audit_skew(labels["predicted"].to_numpy(), labels["confidence"].to_numpy(),
                        test["label"].to_numpy(), test["predicted"].to_numpy(), test["confidence"].to_numpy(),
                        reference, args.threshold, args.alpha, args.null_draws, args.bootstrap, args.seed,
                        data.class_names, planted, stacked)
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
    table = class_table(result, data.class_names, reference, planted)
    save_table(args.out_csv, table)
    from audit.plots import plot_class_distributions
    from audit.plots.modes import plot_sorted_frequencies

    undefined = [name for name, e in result["estimates"].items() if e["distribution"] is None]
    note = f"; undefined: {', '.join(undefined)}" if undefined else ""
    if stacked:  # 1,000 classes: sorted frequencies, not 5,000 bars
        plot_sorted_frequencies(table, args.out_png, title=f"{args.name}: class frequencies, sorted{note}")
    else:
        plot_class_distributions(table, args.out_png, title=f"{args.name}: class frequencies (95% bootstrap CIs){note}")
    save_json(args.out_json, result)
    for warning in result["warnings"]:
        print(f"{args.name}: warning: {warning}")
    for verdict in result["verdicts"]:
        p = "undefined" if verdict["p_value"] is None else f"p = {verdict['p_value']:.4g}"
        print(f"{args.name} {verdict['test']}: {p}; {verdict['text']}")


if __name__ == "__main__":
    run_cli(main)
