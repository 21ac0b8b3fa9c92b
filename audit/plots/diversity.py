"""The figure of the ``diversity`` stage: one GAN against the real sample-efficiency curve."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.ticker import NullFormatter

from audit.metrics.diversity import interval_text
from audit.plots import save_figure

#: line colour of each classifier kind
COLOURS = {"deep": "tab:blue", "linear": "tab:orange"}


def _log_ticks(ax, values) -> None:
    """Log x axis labelled at the grid values only."""
    ax.set_xscale("log")
    ax.set_xticks(values)
    ax.set_xticklabels([f"{int(v)}" for v in values], fontsize=8)
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_diversity(real_table: pd.DataFrame, result: dict, path, title: str) -> None:
    """Left: real test accuracy vs n real training images (mean, min-max band over seeds; log x)
    with the GAN-trained accuracy (CAS) of each kind as a horizontal line, n_equiv marked, and
    the flat top where n_equiv is censored shaded. Right: GAN-trained accuracy vs N GAN samples
    (saturation), the real full-train accuracy dotted. A kind whose CAS is undefined (fewer
    than 2 classes of confident samples) shows its reason instead.

    ``real_table``: the real-curve rows (kind, n, test_accuracy); ``result``: the JSON summary
    of :func:`audit.diversity.audit_gan` (``scores``, ``saturation``)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for kind, part in real_table.groupby("kind", sort=False):
        by_n = part.groupby("n")["test_accuracy"]
        n = np.array(sorted(part["n"].unique()))
        colour = COLOURS.get(kind, "black")
        left.plot(n, by_n.mean().reindex(n), "o-", color=colour, label=f"real-trained {kind}")
        left.fill_between(n, by_n.min().reindex(n), by_n.max().reindex(n), color=colour, alpha=0.15)
        score = result["scores"].get(kind)
        if score is None:
            continue
        if score["classification_accuracy_score"] is None:
            left.plot([], [], " ", label=f"GAN-trained {kind}: undefined ({score['undefined'].split(':')[0]})")
            continue
        eq = score["n_equiv"]
        flat_from = score["n_equiv_details"]["resolved_to"]
        if flat_from < n[-1]:
            left.axvspan(flat_from, n[-1], color=colour, alpha=0.06, lw=0)
        label = (f"GAN-trained {kind}: CAS {score['classification_accuracy_score']:.3f}, "
                 f"n_equiv {eq['text']} {interval_text(score)}")
        left.axhline(score["classification_accuracy_score"], color=colour, ls="--", lw=1.2, label=label)
        if eq["value"] is not None:
            left.plot([eq["value"]], [score["classification_accuracy_score"]], "x", color=colour, ms=10, mew=2)
        right.axhline(score["real_full_train_accuracy"], color=colour, ls=":", lw=1.2,
                      label=f"real full train split ({kind})")
    for kind, sat in result["saturation"].items():
        right.plot(sat["N"], sat["test_accuracy"], "o-", color=COLOURS.get(kind, "black"), label=f"GAN-trained {kind}")
    _log_ticks(left, sorted(real_table["n"].unique()))
    left.set_xlabel("n real training images (log)")
    left.set_ylabel("accuracy on real test images")
    left.legend(fontsize=7, loc="lower right")
    left.set_title("real sample-efficiency curve vs GAN-trained")
    if result["saturation"]:
        _log_ticks(right, sorted({n for sat in result["saturation"].values() for n in sat["N"]}))
    right.set_xlabel("N GAN training samples (log)")
    right.set_title("saturation in N (first seed)")
    if right.get_legend_handles_labels()[0]:
        right.legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)
