"""Stage ``report``: one row per GAN in ``summary.csv`` and a self-contained ``report.html``.

    python -m audit.report --results results/digits --gans dcgan skewed uniform \
        --out-csv results/digits/summary.csv --out-html results/digits/report.html

Reads what the earlier stages wrote under ``--results`` (see README, "Outputs"); images are
embedded in the HTML so the file can be mailed or archived alone.
"""

from __future__ import annotations

import argparse
import base64
import html
from pathlib import Path

import numpy as np
import pandas as pd

from audit.io import atomic_path, load_json, run_cli, save_table
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


def spectrum_section(gans: list[str], spectra: dict, results: Path) -> str:
    if not spectra:
        return ""
    first = next(iter(spectra.values()))
    rows = [{"gan": g, "effective rank": spectra[g]["effective_rank_gan"], "directions above noise": spectra[g]["directions_gan"],
             "n90": spectra[g]["n90_gan"], "n99": spectra[g]["n99_gan"],
             "dropped real directions": f"{spectra[g]['dropped_directions']} of {spectra[g]['significant_real_directions']}",
             "below the ratio, per direction": spectra[g]["low_ratio_directions"],
             "median variance ratio": spectra[g]["median_variance_ratio"]} for g in gans if g in spectra]
    plots = "".join(f"<div>{_img(results / 'spectrum' / f'{g}.png', 360)}</div>" for g in gans if g in spectra)
    return f"""<h2>Covariance spectra (Santurkar et al. 2017, section 4)</h2>
<p class="note">Eigenvalues of the pixel covariance (pixels in [0, 1], d = {first['d']}) of {first['n_real']} real test
images: effective rank {first['effective_rank_real']:.1f}, {first['directions_real']} directions above the uint8
rounding-noise floor, {first['n90_real']} / {first['n99_real']} for 90% / 99% of the variance. For each GAN the
same figures, and the real principal directions (the first {first['significant_real_directions']}) along which the GAN
keeps less than {first['dropped_threshold']} of the real variance (<em>dropped</em>); a GAN with m directions above
its own noise floor is counted as keeping at most m. The noise floors use each set's effective sample size, because
repeated images share their rounding error.</p>
{_table(pd.DataFrame(rows))}<div style="display:flex;flex-wrap:wrap;gap:.5em">{plots}</div>"""


def _img(path: Path, width: int | None = None) -> str:
    if not path.is_file():
        return f"<p><em>missing: {html.escape(str(path))}</em></p>"
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


def skew_section(gan: str, skew: dict, results: Path) -> str:
    rows = []
    for name in ESTIMATES:
        e = skew["estimates"][name]
        rows.append({"estimate": name, "TV to real": e["tv"], "95% CI": f"[{_fmt(e['tv_ci']['low'])}, {_fmt(e['tv_ci']['high'])}]",
                     "perfect generator TV (95%)": e["perfect_generator_tv_95"],
                     "consistent with real": e["consistent_with_real"], "KL(gan||real) nats": e["kl"],
                     "max/min ratio": e["max_min_ratio"],
                     **({"TV to planted": e["tv_to_planted"]} if "tv_to_planted" in e else {})})
    chi = skew["chi_square_vs_real_test"]
    strips = [p for p in (results / "gans" / gan / "interpolation.png", results / "samples" / gan / "interpolation.png")
              if p.is_file()]
    interpolation = (f"<p>Latent interpolations (each row: 10 steps on a straight line between two random latents, "
                     f"Radford et al. 2016):</p>{_img(strips[0], 420)}" if strips else "")
    extra = ""
    if "annotator_accuracy_on_planted" in skew:
        extra = (f"<p>GAN-test (annotator accuracy on samples whose class the generator planted): "
                 f"{skew['annotator_accuracy_on_planted']:.4f}</p>")
    return f"""<h3>{html.escape(gan)}</h3>
<div style="display:flex;gap:1em;align-items:flex-start">{_img(results / 'samples' / gan / 'preview.png', 260)}
<div>{_table(pd.DataFrame(rows))}
<p>{skew['n_samples']} samples; {skew['unrecognisable_fraction']:.1%} below the confidence threshold
{skew['confidence_threshold']} (unrecognisable). Chi-square test of homogeneity against the annotator's labels of
{skew['annotator_test_n']} real test images: argmax p = {_fmt(chi['argmax']['p_value'], 3)},
confident-only p = {_fmt(chi['confident']['p_value'], 3)}.</p>{extra}</div></div>
{_img(results / 'skew' / f'{gan}.png')}{interpolation}"""


def diversity_section(gans: list[str], diversity: dict, real_curve: dict | None, results: Path) -> str:
    if not diversity:
        return ""
    rows = []
    for g in gans:
        for kind, score in diversity[g]["scores"].items():
            rows.append({"gan": g, "classifier": kind, "confident samples used": diversity[g]["n_gan_train"],
                         "accuracy on GAN samples (train)": score["gan_train_accuracy_on_gan_samples"],
                         "real-test accuracy (CAS = GAN-train)": score["classification_accuracy_score"],
                         "n_equiv real images": score["n_equiv"]["text"],
                         "95% CI": dv.interval_text(score)})
    curve = ""
    if real_curve is not None:
        curves = real_curve["curves"]
        curve = _table(pd.DataFrame({"n real": curves[next(iter(curves))]["n"],
                                     **{f"{kind} real-test accuracy": c["test_accuracy_mean"] for kind, c in curves.items()}}))
    plots = "".join(f"<div>{_img(results / 'diversity' / f'{g}.png', 420)}</div>" for g in gans)
    return f"""<h2>Diversity by classification (Santurkar, Schmidt, Madry 2017, section 5)</h2>
<p class="note">A linear and a deep classifier are trained on each GAN's confident samples, labelled by the annotator,
and tested on real test images: that real-test accuracy is the Classification Accuracy Score (Ravuri &amp; Vinyals
2019), also called GAN-train (Shmelkov et al. 2018). The same classifiers trained on n real images give the
sample-efficiency curve below; <b>n_equiv</b> is the number of real images whose classifier is as accurate as the
GAN-trained one (interpolated in log n on the monotone mean curve; "&lt; n" or "&gt; n" when outside it), with a
bootstrap interval over seeds. A high accuracy on the GAN's own samples with a low real-test accuracy is the
overfitting Santurkar et al. report for GAN data.</p>
<h3>Real sample-efficiency curve</h3>{curve}<h3>Per GAN</h3>{_table(pd.DataFrame(rows))}
<div style="display:flex;flex-wrap:wrap;gap:.5em">{plots}</div>"""


def dynamics_section(dynamics_dir: Path | None) -> str:
    if dynamics_dir is None:
        return ""
    summary = load_json(dynamics_dir / "summary.json")
    settings = summary["settings"]
    table = pd.DataFrame(summary["sweep"]).T.reset_index(names="dynamics")
    figures = "".join(
        f"<p>{name}: mu* = {tuple(f['mu_star'])}, step {f['eta']}, start mu0 = {tuple(f['mu0'])}: optimal "
        f"discriminator -> <b>{f['outcome']['optimal']}</b>, first order -> <b>{f['outcome']['first_order']}</b>.</p>"
        for name, f in summary["figures"].items())
    return f"""<h2>GAN dynamics on a Gaussian mixture (Li, Madry, Peebles, Schmidt 2017)</h2>
<p class="note">True distribution 1/2 N(mu1*, 1) + 1/2 N(mu2*, 1), generator means (mu1, mu2), discriminator the
indicator of two intervals; every loss and gradient exact (normal CDF). Sweep: {settings['runs']} seeded starts x
{settings['steps']} steps per step-size cell, mu* = {tuple(settings['true_means'])}, eta_g in {settings['eta_g']},
eta_d in {settings['eta_d']}; outcome fractions pooled over cells (per-cell fractions with Wilson intervals in
results/dynamics/sweep.csv).</p>{_table(table)}{figures}
{_img(dynamics_dir / 'figure1.png')}{_img(dynamics_dir / 'figure2.png')}{_img(dynamics_dir / 'sweep_heatmap.png')}"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m audit.report", description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True)
    parser.add_argument("--gans", nargs="+", required=True)
    parser.add_argument("--out-csv", required=True)
    parser.add_argument("--out-html", required=True)
    parser.add_argument("--spectrum", action="store_true", help="include results/<dataset>/spectrum/")
    parser.add_argument("--diversity", action="store_true", help="include results/<dataset>/diversity/")
    parser.add_argument("--dynamics", default=None, help="directory of the dynamics stage's outputs")
    args = parser.parse_args(argv)
    results = Path(args.results)
    meta = load_json(results / "data" / "meta.json")
    annotator = load_json(results / "annotator" / "metrics.json")
    skews = {g: load_json(results / "skew" / f"{g}.json") for g in args.gans}
    truths = {g: load_json(results / "samples" / g / "truth.json") for g in args.gans}
    spectra = {g: load_json(results / "spectrum" / f"{g}.json") for g in args.gans} if args.spectrum else {}
    diversity = {g: load_json(results / "diversity" / f"{g}.json") for g in args.gans} if args.diversity else {}
    real_curve = load_json(results / "diversity" / "real_curve.json") if args.diversity else None
    summary = pd.DataFrame([summary_row(g, skews[g], truths[g], spectra.get(g), diversity.get(g))
                            for g in args.gans])
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
{_img(results / 'annotator' / 'confusion.png', 420)}
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
{''.join(skew_section(g, skews[g], results) for g in args.gans)}
{diversity_section(args.gans, diversity, real_curve, results)}
{spectrum_section(args.gans, spectra, results)}
{dynamics_section(Path(args.dynamics) if args.dynamics else None)}
<h2>Reproducibility</h2><p class="note">Every figure above comes from config.yaml with seed {meta['seed']}; rerunning
snakemake with the same config reproduces it. Annotator architecture {html.escape(annotator['architecture'])},
device {html.escape(annotator['device'])}.</p>
</body></html>"""
    with atomic_path(args.out_html) as tmp:
        tmp.write_text(page)
    print(summary.to_string())


if __name__ == "__main__":
    run_cli(main)
