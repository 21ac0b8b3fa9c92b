"""The report's detail sections: one table per test across GANs, then methods and caveats.

Each function takes the stages' JSON results (dicts keyed by GAN name, in report order) and
returns HTML. Numbers are printed as the stages wrote them; a sentence that interprets them
("where the inception-style score is fooled") appears only where the numbers show it.
"""

from __future__ import annotations

import pandas as pd

from audit.metrics import diversity as dv
from audit.metrics.skew import ESTIMATES
from audit.reporting.html import esc, fmt, table
from audit.reporting.verdicts import p_text, verdict_of


def _interval(low, high) -> str:
    return "undefined" if low is None or high is None else f"[{fmt(low)}, {fmt(high)}]"


def skew_section(gans: list[str], skews: dict) -> str:
    """Class-distribution skew: the three estimates of every GAN, their intervals and tests."""
    first = skews[gans[0]]
    rows = []
    for g in gans:
        s = skews[g]
        for name in ESTIMATES:
            e = s["estimates"][name]
            rows.append({"gan": g, "estimate": name, "TV to real": e["tv"],
                         "95% interval": _interval(e["tv_ci"]["low"], e["tv_ci"]["high"]),
                         "p": e["p_value"], "verdict": verdict_of(s, f"skew.{name}")["text"],
                         "KL(gan||real) nats": e["kl"], "max/min": e["max_min_ratio"],
                         "TV to planted": e.get("tv_to_planted")})
    frame = pd.DataFrame(rows)
    if frame["TV to planted"].isna().all():
        frame = frame.drop(columns="TV to planted")
    warnings = "".join(f'<p class="warn">{esc(g)}: {esc(w)}</p>' for g in gans for w in skews[g]["warnings"])
    real = pd.DataFrame({"class": first["class_names"], "real frequency": first["real_distribution"]})
    return f"""<h2 id="skew">Class-distribution skew (Santurkar, Schmidt, Madry 2017)</h2>
<p class="note">Three estimates of each GAN's class distribution: <b>argmax</b> (every sample, its most probable
class), <b>confident</b> (only samples with calibrated confidence at or above {first['confidence_threshold']}, the
paper's protocol; the filter is class-dependent and biases the counts) and <b>corrected</b> (black-box shift
estimation, Lipton et al. 2018: the argmax frequencies un-mixed with the annotator's confusion matrix measured on real
test images; the verdict table shows this one). TV: total variation to the real class mix, with a 95% basic bootstrap
interval over the GAN samples and the test images. Each estimate is tested (Monte Carlo, level {first['alpha']})
against H0: {esc(first['hypothesis'])}. False-positive rates and interval coverage measured by simulation:
audit/metrics/SKEW.md.</p>{warnings}{table(frame)}
<details><summary>Real class mix ({first['real_n_images']} labelled images)</summary>{table(real)}</details>"""


def diversity_section(gans: list[str], diversity: dict, real_curve: dict) -> str:
    """Diversity by classification: CAS and n_equiv per GAN and classifier, and the real curve."""
    rows = []
    for g in gans:
        for kind, score in diversity[g]["scores"].items():
            v = verdict_of(diversity[g], f"diversity.{kind}")
            rows.append({"gan": g, "classifier": kind, "confident samples": diversity[g]["n_gan_train"],
                         "accuracy on own samples": score.get("gan_train_accuracy_on_gan_samples"),
                         "real-test accuracy (CAS)": score.get("classification_accuracy_score"),
                         "n_equiv": score["n_equiv"]["text"], "95% interval": dv.interval_text(score),
                         "p": v["p_value"], "verdict": v["text"]})
    curves = real_curve["curves"]
    curve = table(pd.DataFrame({"n real": curves[next(iter(curves))]["n"],
                                **{f"{kind} real-test accuracy": c["test_accuracy_mean"] for kind, c in curves.items()}}))
    return f"""<h2 id="diversity">Diversity by classification (Santurkar, Schmidt, Madry 2017)</h2>
<p class="note">A linear and a deep classifier are trained on each GAN's confident samples, labelled by the annotator,
and tested on real test images (the Classification Accuracy Score, Ravuri &amp; Vinyals 2019). The same classifiers
trained on n real images give the sample-efficiency curve; <b>n_equiv</b> is the real n of equal accuracy, with a 95%
interval from a joint bootstrap of test images and seeds ("&lt; n" / "&gt; n" where it leaves the curve or the curve
is flat within its noise). The test's H0: the GAN's samples are worth at least the real train split; method, coverage
and false-positive rate in audit/metrics/DIVERSITY.md. A high accuracy on the GAN's own samples with a low real-test
accuracy is the overfitting Santurkar et al. report for GAN data.</p>{table(pd.DataFrame(rows))}
<details><summary>Real sample-efficiency curve</summary>{curve}</details>"""


def feature_metrics_section(gans: list[str], results: dict) -> str:
    """The metrics people already use, and where each fails: a sentence only where the numbers
    show it (inception-style score within 10% of the real one while coverage or recall is below
    half the real-vs-real value at the same N)."""
    defined = [g for g in gans if "undefined" not in results[g]]
    if not defined:
        return ('<h2 id="feature-metrics">The metrics people already use, on annotator features</h2>'
                f'<p class="note">Undefined for every GAN: {esc(results[gans[0]]["undefined"])}.</p>')
    first = results[defined[0]]
    rows, fooled = [], []
    for g in defined:
        r = results[g]
        fd, pr, sc = r["fd"], r["prdc"], r["inception_score"]
        rows.append({"gan": g, "FD (annotator features)": fd["value"], "FD interval": _interval(*fd["interval"]),
                     "FD real vs real": fd["real_vs_real"], "FD test p": fd["p_value"],
                     "KID": r["kid"]["value"], "inception-style score": sc["value"], "real score": sc["real"],
                     **{name: pr["gan"][name] for name in ("precision", "recall", "density", "coverage")},
                     "Vendi": r["vendi"]["value"], "Vendi real": r["vendi"]["real"]})
        rr = pr["real_vs_real"]
        low = [f"{m} {pr['gan'][m]:.3g} (real vs real {rr[m]:.3g})" for m in ("coverage", "recall")
               if pr["gan"][m] < 0.5 * rr[m]]
        if abs(sc["value"] / sc["real"] - 1) <= 0.1 and low:
            fooled.append(f"<b>{esc(g)}</b>: inception-style score {sc['value']:.3f}, within "
                          f"{abs(sc['value'] / sc['real'] - 1):.1%} of the real test images' {sc['real']:.3f}, yet "
                          f"{' and '.join(low)}")
    verdict = ("<p>Where the inception-style score is fooled: " + "; ".join(fooled) + ". The score rewards confident, "
               "class-balanced predictions, which a generator of one image per class gives; coverage and recall count "
               "the real images it reproduces.</p>") if fooled else ""
    return f"""<h2 id="feature-metrics">The metrics people already use, on annotator features</h2>
<p class="note">FD, KID, the inception-style score, precision / recall / density / coverage (Naeem et al. 2020,
k = {first['prdc']['k']}, closed balls) and the Vendi score, on the annotator's {first['d']}-d penultimate-layer
features, L2-normalised: ImageNet Inception weights cannot be downloaded offline and know nothing of this domain, so
none of these numbers is an FID or comparable with a published one. FD, PRDC and Vendi compare {first['n_same']} GAN
samples with {first['fd']['n'][1]} real test images, beside the same metric for {first['n_same']}
{first['reference']} against the same test images (the perfect-generator value at those sizes); the FD test is a permutation test (error rate in audit/metrics/FEATURE_METRICS.md).</p>
{table(pd.DataFrame(rows))}{verdict}"""


def support_section(gans: list[str], support: dict, memorisation: dict) -> str:
    """Support size (birthday test) and memorisation, one row per GAN."""
    rows = []
    for g in gans:
        s, m = support[g], memorisation[g]
        rows.append({"gan": g, "support (95% interval or bound)": s["support"]["text"],
                     "birthday test": s["verdicts"][0]["text"], "p": s["verdicts"][0]["p_value"],
                     **{f"copies ({space})": f"{r['copy_fraction']:.1%} (real {r['real_copy_fraction']:.1%})"
                        for space, r in m["spaces"].items()},
                     "memorisation test": m["verdicts"][0]["text"]})
    return f"""<h2 id="support">Support size and memorisation (Arora &amp; Zhang 2017)</h2>
<p class="note">Birthday test: draws of S samples; a pair is a near-duplicate when closer than a distance calibrated on
same-size draws of real held-out images. Support = C(S, 2) / mean duplicate pairs, the effective number of distinct
images, with a bootstrap interval over draws; "support &gt; N" is a lower bound where no duplicates appear. Confirm
pairs by hand in support/&lt;gan&gt;/pairs.csv (column confirmed) and rerun snakemake: the estimate then uses the
confirmed pairs only. Memorisation: a sample closer to its nearest training image than 1% of held-out real images are
is a copy. Method and measured error rates: audit/metrics/SUPPORT.md.</p>{table(pd.DataFrame(rows))}"""


def spectrum_section(gans: list[str], spectra: dict) -> str:
    """Covariance spectra: kept real directions per GAN and the test's verdict."""
    first = spectra[gans[0]]
    rows = []
    for g in gans:
        s, v = spectra[g], spectra[g]["verdicts"][0]
        rows.append({"gan": g, "effective rank": s["effective_rank_gan"], "n90": s["n90_gan"], "n99": s["n99_gan"],
                     "kept real directions": f"{s['kept_directions']} of {s['significant_real_directions']}",
                     "worst rank ratio": s["worst_rank_ratio"], "p": v["p_value"], "verdict": v["text"]})
    return f"""<h2 id="spectrum">Covariance spectra (Santurkar et al. 2017, section 4)</h2>
<p class="note">Pixel covariance (pixels in [0, 1], d = {first['d']}) of {first['n_real']} real test images: effective
rank {first['effective_rank_real']:.1f}. The test images are split in two halves; the first half's leading directions
holding 99% of its variance are the significant real directions. Inside them the GAN's covariance and the second
half's, both whitened by the first half's, are compared rank by rank: a rank where the GAN keeps less than
{first['dropped_threshold']} of the real variance is a dropped direction. The test compares the GAN's worst rank ratio
with {first['verdicts'][0]['extra']['null_draws']} real-vs-real draws (audit/metrics/SPECTRUM.md).</p>
{table(pd.DataFrame(rows))}"""


def dynamics_section(summary: dict) -> str:
    """The Gaussian-mixture dynamics study's sweep (its figures follow in the page)."""
    settings = summary["settings"]
    frame = pd.DataFrame(summary["sweep"]).T.reset_index(names="dynamics")
    outcomes = "".join(
        f"<li>{esc(name)}: mu* = {tuple(f['mu_star'])}, step {f['eta']}, start mu0 = {tuple(f['mu0'])}: optimal "
        f"discriminator: <b>{esc(f['outcome']['optimal'])}</b>; first order: <b>{esc(f['outcome']['first_order'])}</b></li>"
        for name, f in summary["figures"].items())
    return f"""<h2 id="dynamics">GAN dynamics on a Gaussian mixture (Li, Madry, Peebles, Schmidt 2017)</h2>
<p class="note">True distribution 1/2 N(mu1*, 1) + 1/2 N(mu2*, 1), generator means (mu1, mu2), discriminator the
indicator of two intervals; every loss and gradient exact. Sweep: {settings['runs']} seeded starts x
{settings['steps']} steps per step-size cell, mu* = {tuple(settings['true_means'])}; outcome fractions pooled over
cells (per cell, with Wilson intervals, in results/dynamics/sweep.csv). This study is about GAN training, not about
the audited GANs: it shows why the tests above are needed (first-order dynamics can collapse to one mode).</p>
{table(frame)}<ul>{outcomes}</ul>"""


#: what each test can and cannot see, in the methods section
LIMITS = {
    "class skew": "sees the class mix through the annotator; cannot see anything within a class, and is only as "
                  "good as the annotator (the corrected estimate accounts for its measured confusion).",
    "diversity": "sees how much a classifier learns from the samples; a GAN of k images per class scores like k real "
                 "images. It needs confident samples of at least 2 classes, and its interval widens where the real "
                 "curve is flat.",
    "support size": "sees near-duplicates in the similarity space; cannot tell a large support from no support limit "
                    "beyond the largest draw (it then gives a lower bound), and two images the feature space "
                    "confuses count as duplicates (check the doppelganger sheet).",
    "memorisation": "sees samples closer to a training image than real held-out images are; a GAN that copies "
                    "images it was not trained on (or the pool) is not flagged by it, but by the support test.",
    "spectrum": "sees the directions of pixel variance the GAN drops; blind to the class mix and to which images "
                "are made.",
    "FD (annotator features)": "a distance between feature Gaussians; it mixes fidelity and diversity in one "
                               "number and is not an FID (not ImageNet Inception features).",
    "finite discriminators": "sees what a discriminator of the given capacity can tell apart on held-out images; "
                             "not rejecting says the ladder could not tell, not that the distributions are equal "
                             "(Arora et al. 2017).",
    "modes": "counts Stacked MNIST modes corrected for annotator error; the literature count beside it inflates "
             "with annotator errors.",
}


def methods_section(annotator: dict, titles: list[str]) -> str:
    """Methods and caveats: the annotator every class-based test relies on, and each test's limits."""
    accuracy = annotator["test_accuracy"]
    warning = ("" if accuracy >= 0.9 else
               f'<p class="warn">The annotator is only {accuracy:.1%} accurate on real test images: every '
               "class-based figure inherits its errors.</p>")
    limits = "".join(f"<li><b>{esc(t)}</b>: {esc(LIMITS[t])}</li>" for t in titles if t in LIMITS)
    return f"""<h2 id="methods">Methods and caveats</h2>{warning}
<p>The annotator, a {esc(annotator['architecture'])} ({annotator['parameters']:,} parameters) trained on
{annotator['n_train']} real images, labels every sample: <b>test accuracy {accuracy:.4f}</b> on {annotator['n_test']}
held-out images; temperature {annotator['temperature']:.3f} fitted on the val split (expected calibration error
{fmt(annotator['ece_before_calibration'])} before, {fmt(annotator['ece_after_calibration'])} after). Its penultimate
layer is the feature space of the support, memorisation and feature metrics. Each verdict is a test with its level
and p-value; a planted control is a generator whose answer is known, and "recovered" says the tests found it.
The verdict table decides each row's tests together, by Holm's adjustment over the row, so that a GAN that learned
the distribution is flagged anywhere in its row with probability at most the level; each GAN's own list below gives
every test decided alone. Every test's method and measured error rates are in audit/metrics/*.md.</p>
<p>What each test can and cannot see:</p><ul>{limits}</ul>"""


def verdict_list(verdicts: list[dict], column_of) -> str:
    """Every verdict of one GAN, each test decided alone (column, test, result, p-value at its
    level; the verdict table adjusts a row's headline tests together), then, folded, each test's
    null hypothesis and method."""
    if not verdicts:
        return ""
    rows = [{"column": column_of(v), "test": v["test"], "result (this test alone)": v["text"],
             "p": p_text(v) or "undefined", "level": v["alpha"]} for v in verdicts]
    methods = "".join(f"<li><b>{esc(v['test'])}</b>: H0: {esc(v['hypothesis'])}. {esc(v.get('method', ''))}"
                      f"{'. ' + esc(v['reason']) if v.get('reason') else ''}</li>" for v in verdicts)
    return (table(pd.DataFrame(rows)) +
            f'<details class="note"><summary>Null hypotheses and methods</summary><ul>{methods}</ul></details>')
