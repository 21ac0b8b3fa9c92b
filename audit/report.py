"""Stage ``report``: one row per GAN in ``summary.csv`` and a self-contained ``report.html``.

    python -m audit.report --gans dcgan skewed --meta results/digits/data/meta.json \
        --annotator-metrics results/digits/annotator/metrics.json \
        --confusion results/digits/annotator/confusion.png \
        --skew results/digits/skew/dcgan.json results/digits/skew/skewed.json \
        --skew-plots results/digits/skew/dcgan.png results/digits/skew/skewed.png \
        --truths ... --previews ... --interpolations results/digits/gans/dcgan/interpolation.png - \
        --spectra ... --spectrum-plots ... --diversity ... --diversity-plots ... \
        --real-curve results/digits/diversity/real_curve.json \
        --dynamics-summary results/dynamics/summary.json --dynamics-figures results/dynamics/figure1.png \
        results/dynamics/figure2.png results/dynamics/sweep_heatmap.png \
        --out-csv results/digits/summary.csv --out-html results/digits/report.html

Reads only the files named on its command line (one flag per kind of file; the per-GAN lists
are aligned with ``--gans``), so its rule can declare every one of them; images are embedded
in the HTML so the file can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np
import pandas as pd

from audit.cli import add_inputs, add_outputs, run_cli, stage_parser
from audit.io import AuditInputError, atomic_path, load_json, save_table
from audit.metrics import diversity as dv
from audit.metrics.skew import ESTIMATES


SPECTRUM_COLUMNS = {"effective_rank_gan": "spectrum_effective_rank", "directions_gan": "spectrum_directions",
                    "dropped_directions": "spectrum_dropped_directions",
                    "low_ratio_directions": "spectrum_low_ratio_directions",
                    "significant_real_directions": "spectrum_significant_real_directions"}


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
            f"{name}_perfect_generator_tv_95": entry["perfect_generator_tv_95"],
            f"{name}_consistent_with_real": entry["consistent_with_real"],
        })
        if "tv_to_planted" in entry:
            row[f"{name}_tv_to_planted"] = entry["tv_to_planted"]
    for name, test in skew["chi_square_vs_real_test"].items():
        row[f"chi2_{name}_p_value"] = test["p_value"]
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


def spectrum_section(gans: list[str], spectra: dict, plots: dict) -> str:
    first = next(iter(spectra.values()))
    rows = [{"gan": g, "effective rank": spectra[g]["effective_rank_gan"], "directions above noise": spectra[g]["directions_gan"],
             "n90": spectra[g]["n90_gan"], "n99": spectra[g]["n99_gan"],
             "dropped real directions": f"{spectra[g]['dropped_directions']} of {spectra[g]['significant_real_directions']}",
             "below the ratio, per direction": spectra[g]["low_ratio_directions"],
             "median variance ratio": spectra[g]["median_variance_ratio"]} for g in gans]
    images = "".join(f"<div>{_img(plots[g], 360)}</div>" for g in gans)
    return f"""<h2>Covariance spectra (Santurkar et al. 2017, section 4)</h2>
<p class="note">Eigenvalues of the pixel covariance (pixels in [0, 1], d = {first['d']}) of {first['n_real']} real test
images: effective rank {first['effective_rank_real']:.1f}, {first['directions_real']} directions above the uint8
rounding-noise floor, {first['n90_real']} / {first['n99_real']} for 90% / 99% of the variance. For each GAN the
same figures, and the real principal directions (the first {first['significant_real_directions']}) along which the GAN
keeps less than {first['dropped_threshold']} of the real variance (<em>dropped</em>); a GAN with m directions above
its own noise floor is counted as keeping at most m. The noise floors use each set's effective sample size, because
repeated images share their rounding error.</p>
{_table(pd.DataFrame(rows))}<div style="display:flex;flex-wrap:wrap;gap:.5em">{images}</div>"""


def _img(path: str | Path, width: int | None = None) -> str:
    """The PNG at ``path`` embedded as a data URI."""
    path = Path(path)
    if not path.is_file():
        raise AuditInputError(f"{path}: file not found")
    data = base64.b64encode(path.read_bytes()).decode()
    style = f' style="max-width:{width}px"' if width else ' style="max-width:100%"'
    return f'<img src="data:image/png;base64,{data}"{style} alt="{html.escape(path.name)}">'


def _fmt(value, digits: int = 4) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return "inf" if np.isinf(value) else ("" if np.isnan(value) else f"{value:.{digits}g}")
    return html.escape(str(value))


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:13px;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f3f3f3}.warn{background:#fff3cd;padding:.5em;border:1px solid #e0c060}
.note{color:#555;font-size:14px}h2{border-bottom:1px solid #ddd}"""


def skew_section(gan: str, skew: dict, preview: str, plot: str, interpolation: str | None) -> str:
    """One GAN's skew table with its samples preview, class-frequency plot and, for a GAN with a
    latent space, its interpolation strips."""
    rows = []
    for name in ESTIMATES:
        e = skew["estimates"][name]
        rows.append({"estimate": name, "TV to real": e["tv"], "95% CI": f"[{_fmt(e['tv_ci']['low'])}, {_fmt(e['tv_ci']['high'])}]",
                     "perfect generator TV (95%)": e["perfect_generator_tv_95"],
                     "consistent with real": e["consistent_with_real"], "KL(gan||real) nats": e["kl"],
                     "max/min ratio": e["max_min_ratio"],
                     **({"TV to planted": e["tv_to_planted"]} if "tv_to_planted" in e else {})})
    chi = skew["chi_square_vs_real_test"]
    strips = (f"<p>Latent interpolations (each row: 10 steps on a straight line between two random latents, "
              f"Radford et al. 2016):</p>{_img(interpolation, 420)}" if interpolation else "")
    extra = ""
    if "annotator_accuracy_on_planted" in skew:
        extra = (f"<p>GAN-test (annotator accuracy on samples whose class the generator planted): "
                 f"{skew['annotator_accuracy_on_planted']:.4f}</p>")
    return f"""<h3>{html.escape(gan)}</h3>
<div style="display:flex;gap:1em;align-items:flex-start">{_img(preview, 260)}
<div>{_table(pd.DataFrame(rows))}
<p>{skew['n_samples']} samples; {skew['unrecognisable_fraction']:.1%} below the confidence threshold
{skew['confidence_threshold']} (unrecognisable). Chi-square test of homogeneity against the annotator's labels of
{skew['annotator_test_n']} real test images: argmax p = {_fmt(chi['argmax']['p_value'], 3)},
confident-only p = {_fmt(chi['confident']['p_value'], 3)}.</p>{extra}</div></div>
{_img(plot)}{strips}"""


def diversity_section(gans: list[str], diversity: dict, real_curve: dict, plots: dict) -> str:
    rows = []
    for g in gans:
        for kind, score in diversity[g]["scores"].items():
            rows.append({"gan": g, "classifier": kind, "confident samples used": diversity[g]["n_gan_train"],
                         "accuracy on GAN samples (train)": score["gan_train_accuracy_on_gan_samples"],
                         "real-test accuracy (CAS = GAN-train)": score["classification_accuracy_score"],
                         "n_equiv real images": score["n_equiv"]["text"],
                         "95% CI": dv.interval_text(score)})
    curves = real_curve["curves"]
    curve = _table(pd.DataFrame({"n real": curves[next(iter(curves))]["n"],
                                 **{f"{kind} real-test accuracy": c["test_accuracy_mean"] for kind, c in curves.items()}}))
    images = "".join(f"<div>{_img(plots[g], 420)}</div>" for g in gans)
    return f"""<h2>Diversity by classification (Santurkar, Schmidt, Madry 2017, section 5)</h2>
<p class="note">A linear and a deep classifier are trained on each GAN's confident samples, labelled by the annotator,
and tested on real test images: that real-test accuracy is the Classification Accuracy Score (Ravuri &amp; Vinyals
2019), also called GAN-train (Shmelkov et al. 2018). The same classifiers trained on n real images give the
sample-efficiency curve below; <b>n_equiv</b> is the number of real images whose classifier is as accurate as the
GAN-trained one (interpolated in log n on the monotone mean curve; "&lt; n" or "&gt; n" when outside it), with a
bootstrap interval over seeds. A high accuracy on the GAN's own samples with a low real-test accuracy is the
overfitting Santurkar et al. report for GAN data.</p>
<h3>Real sample-efficiency curve</h3>{curve}<h3>Per GAN</h3>{_table(pd.DataFrame(rows))}
<div style="display:flex;flex-wrap:wrap;gap:.5em">{images}</div>"""


def dynamics_section(summary: dict, figures: list[str]) -> str:
    """The dynamics stage's summary and its figures (Figure 1, Figure 2, the sweep heatmap)."""
    settings = summary["settings"]
    table = pd.DataFrame(summary["sweep"]).T.reset_index(names="dynamics")
    outcomes = "".join(
        f"<p>{name}: mu* = {tuple(f['mu_star'])}, step {f['eta']}, start mu0 = {tuple(f['mu0'])}: optimal "
        f"discriminator -> <b>{f['outcome']['optimal']}</b>, first order -> <b>{f['outcome']['first_order']}</b>.</p>"
        for name, f in summary["figures"].items())
    return f"""<h2>GAN dynamics on a Gaussian mixture (Li, Madry, Peebles, Schmidt 2017)</h2>
<p class="note">True distribution 1/2 N(mu1*, 1) + 1/2 N(mu2*, 1), generator means (mu1, mu2), discriminator the
indicator of two intervals; every loss and gradient exact (normal CDF). Sweep: {settings['runs']} seeded starts x
{settings['steps']} steps per step-size cell, mu* = {tuple(settings['true_means'])}, eta_g in {settings['eta_g']},
eta_d in {settings['eta_d']}; outcome fractions pooled over cells (per-cell fractions with Wilson intervals in
results/dynamics/sweep.csv).</p>{_table(table)}{outcomes}
{''.join(_img(path) for path in figures)}"""


#: per-GAN inputs: flag -> what each of its files is (one file per name of --gans, same order)
PER_GAN = {"skew": "skew stage JSON", "skew_plots": "skew stage plot (.png)", "truths": "sample stage truth.json",
           "previews": "sample stage preview (.png)",
           "interpolations": "latent interpolation strips (.png), '-' for a GAN without a latent space",
           "spectra": "spectrum stage JSON", "spectrum_plots": "spectrum stage plot (.png)",
           "diversity": "diversity stage JSON", "diversity_plots": "diversity stage plot (.png)"}


def parse_args(argv: list[str] | None = None):
    parser = stage_parser("audit.report", __doc__, seed=False, threads=False, device=False)
    parser.add_argument("--gans", nargs="+", required=True, help="GAN names, in report order")
    add_inputs(parser, meta="the prepared dataset's meta.json", annotator_metrics="the annotator stage's metrics.json",
               confusion="the annotator's confusion matrix (.png)")
    for name, help_text in PER_GAN.items():
        parser.add_argument(f"--{name.replace('_', '-')}", nargs="+", required=True, help=f"per GAN: {help_text}")
    add_inputs(parser, real_curve="the real_curve stage's summary JSON",
               dynamics_summary="the gan_dynamics stage's summary.json")
    parser.add_argument("--dynamics-figures", nargs="+", required=True,
                        help="the gan_dynamics stage's figures (.png), embedded in this order")
    add_outputs(parser, out_csv="one row per GAN (.csv)", out_html="the self-contained report (.html)")
    args = parser.parse_args(argv)
    for name in PER_GAN:
        files = getattr(args, name)
        if len(files) != len(args.gans):
            raise AuditInputError(f"--{name.replace('_', '-')}: {len(files)} file(s) for {len(args.gans)} GAN(s) "
                                  f"in --gans; give one per GAN, in the same order")
        setattr(args, name, dict(zip(args.gans, files)))
    args.interpolations = {g: (None if path == "-" else path) for g, path in args.interpolations.items()}
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    gans = args.gans
    meta = load_json(args.meta)
    annotator = load_json(args.annotator_metrics)
    skews = {g: load_json(args.skew[g]) for g in gans}
    truths = {g: load_json(args.truths[g]) for g in gans}
    spectra = {g: load_json(args.spectra[g]) for g in gans}
    diversity = {g: load_json(args.diversity[g]) for g in gans}
    real_curve = load_json(args.real_curve)
    summary = pd.DataFrame([summary_row(g, skews[g], truths[g], spectra[g], diversity[g]) for g in gans])
    save_table(args.out_csv, summary)

    accuracy = annotator["test_accuracy"]
    warning = ("" if accuracy >= 0.9 else
               f'<p class="warn">The annotator is only {accuracy:.1%} accurate on real test images: every '
               "class-based figure below inherits its errors.</p>")
    first = next(iter(skews.values()))
    real = pd.DataFrame({"class": first["class_names"], "real frequency": first["real_distribution"]})
    overview = summary[["gan", "type", "n_samples", "unrecognisable_fraction", "argmax_tv", "corrected_tv",
                        "corrected_tv_low", "corrected_tv_high", "corrected_perfect_generator_tv_95",
                        "corrected_consistent_with_real", "corrected_max_min_ratio"]]
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>ganaudit: {html.escape(meta['name'])}</title>
<style>{CSS}</style></head><body>
<h1>ganaudit report: {html.escape(meta['name'])}</h1>
<p class="note">{html.escape(meta.get('description', ''))}. {meta['n_images']} real images, {len(meta['class_names'])} classes,
split sizes {meta['split_sizes']} (seed {meta['seed']}). Planted generators draw only from the pool split; every real-data
evaluation uses the test split.</p>
<h2>Annotator</h2>{warning}
<p>{html.escape(annotator['architecture'])} ({annotator['parameters']:,} parameters) trained on {annotator['n_train']} real
images: <b>test accuracy {accuracy:.4f}</b> on {annotator['n_test']} held-out images; temperature {annotator['temperature']:.3f}
fitted on the val split, expected calibration error {annotator['ece_before_calibration']:.4f} before and
{annotator['ece_after_calibration']:.4f} after.</p>
{_img(args.confusion, 420)}
<h2>Class-distribution skew (Santurkar, Schmidt, Madry 2017)</h2>
<p class="note">Three estimates of each GAN's class distribution: <b>argmax</b> (every sample, its most probable class),
<b>confident</b> (only samples with calibrated confidence at or above the threshold, the paper's protocol; the filter
is class-dependent and biases the counts) and <b>corrected</b> (black-box shift estimation, Lipton et al. 2018: the
argmax frequencies un-mixed with the annotator's confusion matrix measured on real test images). TV is the total
variation distance to the real class distribution, with a 95% bootstrap interval over the GAN samples and the test
images. <em>Perfect generator TV (95%)</em> is the 95th percentile of the TV the same estimate reports for a simulated
generator with exactly the real class mix at the same sample size: a GAN whose interval reaches below it is
consistent with the real distribution. The real reference is the class mix of all {first['real_n_images']} labelled
images (its own sampling noise: mean TV {first['real_sampling_tv_mean']:.4f}).</p>
{_table(real)}
<h3>Summary</h3>{_table(overview)}
<p class="note">All columns, with the argmax and confident estimates, are in summary.csv.</p>
{''.join(skew_section(g, skews[g], args.previews[g], args.skew_plots[g], args.interpolations[g]) for g in gans)}
{diversity_section(gans, diversity, real_curve, args.diversity_plots)}
{spectrum_section(gans, spectra, args.spectrum_plots)}
{dynamics_section(load_json(args.dynamics_summary), args.dynamics_figures)}
<h2>Reproducibility</h2><p class="note">Every figure above comes from config.yaml with seed {meta['seed']}; rerunning
snakemake with the same config reproduces it. Annotator architecture {html.escape(annotator['architecture'])},
device {html.escape(annotator['device'])}.</p>
</body></html>"""
    with atomic_path(args.out_html) as tmp:
        tmp.write_text(page)
    print(summary.to_string())


if __name__ == "__main__":
    run_cli(main)
