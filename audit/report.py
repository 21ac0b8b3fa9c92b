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
from audit.metrics.skew import ESTIMATES


def summary_row(gan: str, skew: dict, truth: dict) -> dict:
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
    return row


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
{_img(results / 'skew' / f'{gan}.png')}"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m audit.report", description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True)
    parser.add_argument("--gans", nargs="+", required=True)
    parser.add_argument("--out-csv", required=True)
    parser.add_argument("--out-html", required=True)
    args = parser.parse_args(argv)
    results = Path(args.results)
    meta = load_json(results / "data" / "meta.json")
    annotator = load_json(results / "annotator" / "metrics.json")
    skews = {g: load_json(results / "skew" / f"{g}.json") for g in args.gans}
    truths = {g: load_json(results / "samples" / g / "truth.json") for g in args.gans}
    summary = pd.DataFrame([summary_row(g, skews[g], truths[g]) for g in args.gans])
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
<h2>Reproducibility</h2><p class="note">Every figure above comes from config.yaml with seed {meta['seed']}; rerunning
snakemake with the same config reproduces it. Annotator architecture {html.escape(annotator['architecture'])},
device {html.escape(annotator['device'])}.</p>
</body></html>"""
    with atomic_path(args.out_html) as tmp:
        tmp.write_text(page)
    print(summary.to_string())


if __name__ == "__main__":
    run_cli(main)
