"""The report's mode-coverage section (stacked datasets: Stacked MNIST) and the note that stands
in place of a stage that does not run on a dataset."""

from __future__ import annotations

import html

import pandas as pd

from audit.reporting.html import table


def skipped_section(title: str, skipped: dict, *stages: str) -> str:
    """The section ``title`` in place of the stages' own, with the reasons they did not run; empty
    when none of ``stages`` is skipped."""
    reasons = [f"<p class=\"note\"><b>{html.escape(stage)}</b> did not run on this dataset: "
               f"{html.escape(skipped[stage])}.</p>" for stage in stages if stage in skipped]
    return f"<h2>{html.escape(title)}: skipped</h2>{''.join(reasons)}" if reasons else ""


def mode_columns(result: dict) -> dict:
    """summary.csv columns of the modes stage."""
    lit, cor = result["literature"], result["corrected"]
    return {"literature_n": lit["n"], "literature_modes": lit["modes"], "literature_kl": lit["kl_to_uniform"],
            "literature_kl_floor": result["literature_floor"]["mean"],
            f"modes_at_least_{result['modes_at_least_k']['k']}": result["modes_at_least_k"]["modes"],
            "modes_detected": cor["modes_detected"],
            "corrected_kl_uniform": cor["kl_to_uniform"],
            "planted_modes": result.get("planted", {}).get("modes")}


def _setting(result: dict) -> str:
    spec = result.get("gan_spec", {})
    if "parameters" not in result:
        return html.escape(spec.get("type", ""))
    p = result["parameters"]
    return (f"{html.escape(spec['type'])}, {spec['steps']} steps of batch {spec['batch_size']}, width {spec['width']}, "
            f"discriminator {p['discriminator']:,} / generator {p['generator']:,} parameters "
            f"({p['discriminator'] / p['generator']:.2f})")


def modes_section(gans: list[str], modes: dict, annotator: dict, meta: dict) -> str:
    """Mode coverage: every GAN's literature and corrected numbers, the trained GANs beside the
    published rows, what differs from the published setting, and each GAN's sorted counts
    (``img(path, width)`` embeds a figure)."""
    first = modes[gans[0]]
    lit_n, k = first["literature"]["n"], first["modes_at_least_k"]["k"]
    rows = [{"gan": g, "planted modes": r.get("planted", {}).get("modes", ""),
             f"literature modes (>= 1 label, N = {lit_n:,})": r["literature"]["modes"],
             "literature KL (nats)": r["literature"]["kl_to_uniform"],
             f"modes with >= {k} labels": r["modes_at_least_k"]["modes"],
             "ganaudit modes detected": r["corrected"]["modes_detected"],
             "corrected KL on detected modes (nats)": r["corrected"]["kl_to_uniform"]}
            for g, r in modes.items()]
    published = [{"model": m["model"], "modes": m["modes"], "KL (nats)": m["kl"], "ganaudit modes detected": "",
                  "setting": m["source"]} for m in first["published"]]
    trained = [{"model": f"{g} (this run)", "modes": r["literature"]["modes"],
                "KL (nats)": r["literature"]["kl_to_uniform"], "ganaudit modes detected": r["corrected"]["modes_detected"], "setting": _setting(r)}
               for g, r in modes.items() if "parameters" in r]
    check = annotator.get("stacked", {})
    triple = (f" On the {check['n_triples']:,} real test triples its accuracy is <b>{check['triple_accuracy']:.4f}</b> "
              f"(Kronecker prediction {check['triple_accuracy_kronecker']:.4f}; chi-square of the error patterns "
              f"{check['chi2']:.2f} on {check['dof']} dof, p = {check['p_value']:.3g})." if check else "")
    floor, this = first["literature_floor"], first["perfect_generator_this_annotator"]
    train = meta.get("stacked", {}).get("triples", {}).get("train")
    return f"""<h2>Mode coverage on Stacked MNIST (Metz et al. 2017; VEEGAN; PacGAN)</h2>
<p class="note">The literature labels each channel of N = 26,000 samples with an MNIST classifier and reports the modes
(of 1,000) with at least one sample and KL(label frequencies || uniform) in nats. Both count annotator errors as
generated modes: a sample of one mode read as another makes a phantom mode. ganaudit un-mixes the label counts with the
annotator's confusion (the Kronecker cube of its per-digit test confusion) and counts a mode as detected when its
corrected count is significantly above 0 (Benjamini-Hochberg at FDR {first['corrected']['fdr']}; MODES.md has the method
and its error rates measured on planted generators of known M). The annotator is a digit classifier: per-digit test
accuracy <b>{annotator['test_accuracy']:.4f}</b> on {annotator['n_test']} real digits.{triple} A perfect generator
scores literature KL {floor['mean']:.4f} at N = {lit_n:,} with an error-free annotator ((K-1)/2N =
{floor['approximation']:.4f}), and {this['modes_mean']:.0f} modes and KL {this['kl_mean']:.4f} with this one.</p>
{table(pd.DataFrame(rows))}
<h3>Beside the published rows</h3>{table(pd.DataFrame(published + trained))}
<p class="note">What differs from the published setting: training length (the published GANs train for tens of
thousands of steps or more on a GPU; the CPU-sized runs here are given above), the classifier (published: one trained on
MNIST's 60,000 training digits; here: trained on the {annotator['n_train']:,} base training digits, accuracy above),
and the data (published: triples of the full MNIST training set; here: {train or 'the configured'} training triples
composed of those {annotator['n_train']:,} digits). Each published number is a mean over runs; each number here is one
run at one seed. Each GAN's sorted mode counts are in its own section.</p>"""

