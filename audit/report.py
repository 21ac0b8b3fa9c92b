"""Stage ``report``: one row per GAN in ``summary.csv`` and a self-contained ``report.html``.

    python -m audit.report --gans dcgan skewed --meta results/digits/data/meta.json \
        --annotator-metrics results/digits/annotator/metrics.json \
        --confusion results/digits/annotator/confusion.png \
        --skew results/digits/skew/dcgan.json results/digits/skew/skewed.json \
        --skew-plots results/digits/skew/dcgan.png results/digits/skew/skewed.png \
        --truths ... --previews ... --interpolations results/digits/gans/dcgan/interpolation.png - \
        --spectra ... --spectrum-plots ... --diversity ... --diversity-plots ... \
        --feature-metrics ... --feature-metrics-plots ... --support ... --support-curves ... \
        --support-sheets ... --memorisation ... --memorisation-plots ... \
        --real-curve results/digits/diversity/real_curve.json \
        --dynamics-summary results/dynamics/summary.json --dynamics-figures results/dynamics/figure1.png \
        results/dynamics/figure2.png results/dynamics/sweep_heatmap.png \
        --out-csv results/digits/summary.csv --out-html results/digits/report.html

Reads only the files named on its command line (one flag per kind of file; the per-GAN lists
are aligned with ``--gans``), so its rule can declare every one of them; images are embedded
in the HTML so the file can be mailed or archived alone.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from audit.cli import add_inputs, add_outputs, run_cli, stage_parser
from audit.io import AuditInputError, atomic_path, load_json, save_table
from audit.metrics import diversity as dv
from audit.metrics.skew import ESTIMATES
from audit.reporting import sections
from audit.reporting.captions import load_captions, render
from audit.reporting.html import esc, figure, page, verdict_table
from audit.reporting.modes import mode_columns, modes_section, skipped_section
from audit.reporting.verdicts import build_row, column_of, columns_of, recovered_text, text_table, verdict_of


SPECTRUM_COLUMNS = {"effective_rank_gan": "spectrum_effective_rank", "kept_directions": "spectrum_kept_directions",
                    "dropped_directions": "spectrum_dropped_directions",
                    "significant_real_directions": "spectrum_significant_real_directions",
                    "worst_rank_ratio": "spectrum_worst_rank_ratio"}


def summary_row(gan: str, skew: dict, truth: dict, spectrum: dict | None = None, diversity: dict | None = None) -> dict:
    """The flat figures of one GAN for ``summary.csv``."""
    row = {"gan": gan, "type": truth.get("type"), "n_samples": skew["n_samples"],
           "annotator_test_accuracy": skew["annotator_test_accuracy"],
           "unrecognisable_fraction": skew["unrecognisable_fraction"]}
    for name in ESTIMATES:
        entry = skew["estimates"][name]
        row.update({
            f"{name}_tv": entry["tv"], f"{name}_tv_low": entry["tv_ci"]["low"], f"{name}_tv_high": entry["tv_ci"]["high"],
            f"{name}_kl": entry["kl"], f"{name}_max_min_ratio": entry["max_min_ratio"],
            f"{name}_null_tv_critical": entry["null_tv_critical"], f"{name}_p_value": entry["p_value"],
            f"{name}_consistent_with_real": entry["consistent_with_real"],  # p >= alpha; None: undefined
            f"{name}_verdict": verdict_of(skew, f"skew.{name}")["text"],
        })
        if "tv_to_planted" in entry:
            row[f"{name}_tv_to_planted"] = entry["tv_to_planted"]
    for name, test in skew["chi_square_vs_real_test"].items():
        row[f"chi2_{name}_p_value"] = test["p_value"]
    row["confusion_condition_number"] = skew["confusion_condition_number"]
    row["skew_warnings"] = "; ".join(skew["warnings"])
    if "annotator_accuracy_on_planted" in skew:
        row["gan_test_accuracy"] = skew["annotator_accuracy_on_planted"]
    for key, column in SPECTRUM_COLUMNS.items():
        if spectrum is not None:
            row[column] = spectrum[key]
    for kind, score in (diversity or {}).get("scores", {}).items():
        row[f"{kind}_classification_accuracy_score"] = score["classification_accuracy_score"]
        row[f"{kind}_train_accuracy_on_gan"] = score["gan_train_accuracy_on_gan_samples"]
        row[f"{kind}_n_equiv"] = score["n_equiv"]["text"]
        row[f"{kind}_n_equiv_ci"] = dv.interval_text(score)
    for key in ("support_size", "rank", "blank_fraction"):
        if key in truth:
            row[f"planted_{key}"] = truth[key]
    return row


def feature_metric_columns(result: dict) -> dict:
    """summary.csv columns of the feature_metrics stage (issue 14): FD (annotator features, not
    FID) at the same N with its interval and the real-vs-real value, KID, inception-style score,
    PRDC and Vendi beside their real values."""
    if "undefined" in result:
        return {"fd_annotator": None, "feature_metrics_undefined": result["undefined"]}
    fd, pr = result["fd"], result["prdc"]
    return {"fd_annotator": fd["value"], "fd_annotator_low": fd["interval"][0], "fd_annotator_high": fd["interval"][1],
            "fd_annotator_real_vs_real": fd["real_vs_real"], "fd_annotator_p_value": fd["p_value"],
            "fd_annotator_n": fd["n"][0], "kid_annotator": result["kid"]["value"], "kid_annotator_std": result["kid"]["std"],
            "inception_style_score": result["inception_score"]["value"],
            "inception_style_score_real": result["inception_score"]["real"],
            **{f"{name}_k{pr['k']}": pr["gan"][name] for name in ("precision", "recall", "density", "coverage")},
            **{f"{name}_k{pr['k']}_real_vs_real": pr["real_vs_real"][name] for name in ("recall", "coverage")},
            "vendi": result["vendi"]["value"], "vendi_real": result["vendi"]["real"]}


def support_columns(support: dict, memorisation: dict) -> dict:
    """summary.csv columns of the support and memorisation stages (issue 13)."""
    head, verdict, copies = support["support"], support["verdicts"][0], memorisation["spaces"]
    return {"support_text": head["text"], "support_kind": head["kind"], "support_estimate": head.get("estimate"),
            "support_low": head.get("low"), "support_high": head.get("high"), "support_bound": head.get("bound"),
            "support_p_value": verdict["p_value"], "support_verdict": verdict["text"], "support_source": support["source"],
            **{f"copy_fraction_{s}": r["copy_fraction"] for s, r in copies.items()},
            **{f"copy_fraction_{s}_ci": f"[{r['copy_fraction_ci'][0]:.4f}, {r['copy_fraction_ci'][1]:.4f}]"
               for s, r in copies.items()},
            **{f"real_copy_fraction_{s}": r["real_copy_fraction"] for s, r in copies.items()},
            "memorisation_p_value": memorisation["verdicts"][0]["p_value"],
            "memorisation_verdict": memorisation["verdicts"][0]["text"]}


def table_columns(row) -> dict:
    """The verdict table's cells of one GAN as summary.csv columns: ``table_<column>`` (the cell's
    words, decided on the row's Holm-adjusted p-value) and ``table_<column>_p_holm``; the
    columns named after a stage (``corrected_verdict``, ``support_verdict``, ...) are each test
    decided alone."""
    out = {}
    for title, cell in row.cells.items():
        slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
        out[f"table_{slug}"] = cell["text"]
        out[f"table_{slug}_p_holm"] = cell["p_value"]
    if row.planted:
        out["table_planted_truth"] = recovered_text(row)
    return out


#: per-GAN inputs: flag -> what each of its files is (one file per name of --gans, same order)
PER_GAN = {"skew": "skew stage JSON", "skew_plots": "skew stage plot (.png)", "truths": "sample stage truth.json",
           "previews": "sample stage preview (.png)",
           "interpolations": "latent interpolation strips (.png), '-' for a GAN without a latent space",
           "spectra": "spectrum stage JSON", "spectrum_plots": "spectrum stage plot (.png)",
           "diversity": "diversity stage JSON", "diversity_plots": "diversity stage plot (.png)",
           "feature_metrics": "feature_metrics stage JSON", "feature_metrics_plots": "feature_metrics stage plot (.png)",
           "support": "support stage JSON", "support_curves": "support stage curve (.png)",
           "support_sheets": "support stage doppelganger sheet (.png)", "memorisation": "memorisation stage JSON",
           "memorisation_plots": "memorisation stage closest pairs (.png)",
           "modes": "modes stage JSON (stacked datasets)", "modes_plots": "modes stage sorted counts (.png)",
           "discriminators": "discriminators stage JSON", "discriminators_plots": "discriminators stage plot (.png)"}
#: stages that may not run on a dataset (rules/modes.smk): their per-GAN flags; without --skipped
#: naming the stage they are required, except modes (stacked datasets only)
OPTIONAL_STAGES = {"diversity": ("diversity", "diversity_plots"), "feature_metrics": ("feature_metrics",
                   "feature_metrics_plots"), "support": ("support", "support_curves", "support_sheets"),
                   "memorisation": ("memorisation", "memorisation_plots"), "modes": ("modes", "modes_plots"),
                   "discriminators": ("discriminators", "discriminators_plots")}
#: optional stages that are simply absent when they do not run (no --skipped needed)
ABSENT_WHEN_OFF = ("modes", "discriminators")


def parse_args(argv: list[str] | None = None):
    parser = stage_parser("audit.report", __doc__, seed=False, threads=False, device=False)
    parser.add_argument("--gans", nargs="+", required=True, help="GAN names, in report order")
    add_inputs(parser, meta="the prepared dataset's meta.json", annotator_metrics="the annotator stage's metrics.json",
               confusion="the annotator's confusion matrix (.png)")
    optional = {name for names in OPTIONAL_STAGES.values() for name in names}
    for name, help_text in PER_GAN.items():
        parser.add_argument(f"--{name.replace('_', '-')}", nargs="+", required=name not in optional,
                            help=f"per GAN: {help_text}")
    parser.add_argument("--skipped", nargs="*", default=[],
                        help="stage=reason for each stage that does not run on this dataset (its flags are then absent)")
    parser.add_argument("--real-curve", help="the real_curve stage's summary JSON (unless diversity is skipped)")
    add_inputs(parser, dynamics_summary="the gan_dynamics stage's summary.json")
    parser.add_argument("--dynamics-figures", nargs="+", required=True,
                        help="the gan_dynamics stage's figures (.png), embedded in this order")
    parser.add_argument("--captions", nargs="+", required=True,
                        help="the figure captions report/captions/*.rst (shared with Snakemake's --report)")
    add_outputs(parser, out_csv="one row per GAN (.csv)", out_html="the self-contained report (.html)",
                out_verdicts="the verdict table as plain text (.txt), printed when a run ends")
    args = parser.parse_args(argv)
    args.skipped = dict(item.partition("=")[::2] for item in args.skipped)
    for stage, names in OPTIONAL_STAGES.items():
        given = [n for n in names + (("real_curve",) if stage == "diversity" else ()) if getattr(args, n)]
        if stage in args.skipped and given:
            raise AuditInputError(f"--{given[0].replace('_', '-')}: stage {stage} is skipped (--skipped)")
        if stage not in args.skipped and stage not in ABSENT_WHEN_OFF and len(given) < len(names) + (stage == "diversity"):
            raise AuditInputError(f"--{stage.replace('_', '-')}: the {stage} stage's files are required unless "
                                  f"--skipped {stage}=<reason>")
    for name in PER_GAN:
        files = getattr(args, name)
        if files is None:
            setattr(args, name, {})
            continue
        if len(files) != len(args.gans):
            raise AuditInputError(f"--{name.replace('_', '-')}: {len(files)} file(s) for {len(args.gans)} GAN(s) "
                                  f"in --gans; give one per GAN, in the same order")
        setattr(args, name, dict(zip(args.gans, files)))
    args.interpolations = {g: (None if path == "-" else path) for g, path in args.interpolations.items()}
    return args


def _png(path: str | Path) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise AuditInputError(f"{path}: file not found")
    return path.read_bytes()


#: the figures of one GAN's section, in page order: (flag, caption file stem)
GAN_FIGURES = (("previews", "preview"), ("skew_plots", "skew"), ("modes_plots", "modes"),
               ("diversity_plots", "diversity"), ("support_curves", "support"), ("support_sheets", "support_sheet"),
               ("memorisation_plots", "memorisation"), ("spectrum_plots", "spectrum"),
               ("feature_metrics_plots", "feature_metrics"), ("discriminators_plots", "discriminators"),
               ("interpolations", "interpolation"))


def gan_section(gan: str, row, args, captions: dict, params: dict) -> str:
    """One GAN: what was planted, every verdict with its p-value and method, then its figures
    one per row, each with the caption saying what a good GAN looks like on it."""
    planted = f"<p><b>Planted control</b>: {esc(row.planted)}.</p>" if row.planted else ""
    figures = []
    for flag, kind in GAN_FIGURES:
        path = getattr(args, flag).get(gan)
        if path:
            caption = render(captions.get(kind, ""), gan, params.get(kind))
            figures.append(figure(_png(path), caption, alt=f"{gan}: {kind}"))
    return (f'<section id="gan-{esc(gan)}"><h2>{esc(gan)} <span class="note">({esc(row.kind)})</span></h2>{planted}'
            f"{sections.verdict_list(row.verdicts, column_of)}{''.join(figures)}</section>")


def _real_distribution(skews: dict) -> np.ndarray:
    return np.asarray(next(iter(skews.values()))["real_distribution"], dtype=float)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    gans = args.gans
    meta, annotator = load_json(args.meta), load_json(args.annotator_metrics)
    captions = load_captions(args.captions)
    results = {flag: {g: load_json(path) for g, path in getattr(args, flag).items()}
               for flag in ("skew", "truths", "spectra", "diversity", "feature_metrics", "support", "memorisation",
                            "modes", "discriminators")}
    skews, truths, spectra = results["skew"], results["truths"], results["spectra"]
    diversity, features, support = results["diversity"], results["feature_metrics"], results["support"]
    memorisation, modes = results["memorisation"], results["modes"]

    stage_results = [flag for flag in results if flag != "truths"]
    rows = [build_row(g, truths[g].get("type", ""), [results[flag][g] for flag in stage_results if g in results[flag]],
                      truths[g], _real_distribution(skews)) for g in gans]
    summary = pd.DataFrame([{**summary_row(g, skews[g], truths[g], spectra[g], diversity.get(g)),
                             **(feature_metric_columns(features[g]) if features else {}),
                             **(support_columns(support[g], memorisation[g]) if support and memorisation else {}),
                             **(mode_columns(modes[g]) if modes else {}),
                             **table_columns(row)} for g, row in zip(gans, rows)])
    save_table(args.out_csv, summary)
    params = {"diversity": {"seeds": len(d["seeds"]), "threshold": d["confidence_threshold"],
                            "holdout": d["recipe"].get("holdout", 0)} for d in list(diversity.values())[:1]}
    accuracy = annotator["test_accuracy"]
    nav = " ".join(f'<a href="#gan-{esc(g)}">{esc(g)}</a>' for g in gans)
    details = "".join(part for part in (
        sections.skew_section(gans, skews),
        modes_section(gans, modes, annotator, meta) if modes else "",
        skipped_section("Diversity by classification", args.skipped, "diversity")
        or sections.diversity_section(gans, diversity, load_json(args.real_curve)),
        skipped_section("The metrics people already use", args.skipped, "feature_metrics")
        or sections.feature_metrics_section(gans, features),
        skipped_section("Support size and memorisation", args.skipped, "support", "memorisation")
        or sections.support_section(gans, support, memorisation),
        sections.spectrum_section(gans, spectra)))
    dynamics = load_json(args.dynamics_summary)
    body = f"""<h1>ganaudit report: {esc(meta['name'])}</h1>
<p class="note">{esc(meta.get('description', ''))}. {meta['n_images']} real images, {len(meta['class_names'])} classes,
splits {esc(meta['split_sizes'])}, seed {meta['seed']}. Annotator test accuracy {accuracy:.4f}
(<a href="#methods">methods and caveats</a>). Planted generators draw from the pool split; every real-data evaluation
uses the test split.</p>
<h2 id="verdicts">Verdicts</h2>
<p class="note">One row per GAN, one column per test: did the GAN learn the data distribution, or a small, skewed,
low-diversity imitation? Each cell is the test's result in words with its key number and p-value.</p>
{verdict_table(rows)}
<nav>Per GAN: {nav}</nav>
{''.join(gan_section(g, row, args, captions, params) for g, row in zip(gans, rows))}
<h2 id="details">Details across GANs</h2>{details}
{sections.methods_section(annotator, columns_of(rows))}
{figure(_png(args.confusion), render(captions.get("annotator", "")), alt="annotator confusion matrix")}
{sections.dynamics_section(dynamics)}
{''.join(figure(_png(path), render(captions.get("dynamics", ""), params=dynamics["settings"]), alt=Path(path).name)
         for path in args.dynamics_figures)}
<h2>Reproducibility</h2><p class="note">Every number above comes from the run's config with seed {meta['seed']};
rerunning snakemake with the same config reproduces it byte for byte. Every column of every table is in
summary.csv.</p>"""
    with atomic_path(args.out_html) as tmp:
        tmp.write_text(page(f"ganaudit: {meta['name']}", body))
    with atomic_path(args.out_verdicts) as tmp:
        tmp.write_text(text_table(rows))
    print(text_table(rows))


if __name__ == "__main__":
    run_cli(main)
