"""The figure of stage ``feature_metrics``: each metric of one GAN beside its real-vs-real value."""

from __future__ import annotations

from matplotlib import pyplot as plt

from audit.plots import save_figure

REAL, GAN = "#7f7f7f", "#0173b2"


def panels(result: dict) -> list[tuple[str, tuple, tuple]]:
    """(title, (real value, low, high), (GAN value, low, high)) per metric; low/high None when
    the metric has no interval."""
    fd, kid, score, pr, vs = (result[key] for key in ("fd", "kid", "inception_score", "prdc", "vendi"))
    out = [(f"FD, N = {fd['n'][0]} (lower: closer)", (fd["real_vs_real"], *fd["real_vs_real_interval"]),
            (fd["value"], *fd["interval"])),
           ("KID (mean ± std over subsets)", (kid["real_vs_real"], kid["real_vs_real"] - kid["real_vs_real_std"],
                                              kid["real_vs_real"] + kid["real_vs_real_std"]),
            (kid["value"], kid["value"] - kid["std"], kid["value"] + kid["std"])),
           (f"inception-style score (max {score['classes']})", (score["real"], *score["real_interval"]),
            (score["value"], *score["interval"]))]
    out += [(f"{name}, k = {pr['k']}", (pr["real_vs_real"][name], None, None), (pr["gan"][name], None, None))
            for name in ("precision", "recall", "density", "coverage")]
    out.append((f"Vendi score, n = {vs['n']}", (vs["real"], None, None), (vs["value"], None, None)))
    return out


def plot_feature_metrics(result: dict, path) -> None:
    """2 x 4 panels, one per metric: the real-vs-real value (grey) and the GAN's (blue) as
    horizontal bars with their intervals where they have one. Written atomically to ``path``."""
    fig, axes = plt.subplots(2, 4, figsize=(12, 3.6))
    for ax, (title, real, gan) in zip(axes.ravel(), panels(result)):
        for y, (value, low, high), colour in ((1, real, REAL), (0, gan, GAN)):
            ax.barh(y, value, color=colour, height=0.6)
            if low is not None:
                ax.errorbar(value, y, xerr=[[max(value - low, 0)], [max(high - value, 0)]], fmt="none", ecolor="black",
                            lw=0.9, capsize=3)
            ax.text(max(value, high if high is not None else value, 0), y, f"  {value:.3g}", va="center", fontsize=8)
        ax.set_yticks([1, 0], ["real", "GAN"], fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.margins(x=0.35)
    fig.suptitle(f"{result['gan']}: metrics on annotator features (d = {result['d']}). Grey: {result['reference']} "
                 "against the same real test images at the same N (the inception-style score: of the real test split)",
                 fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
