"""Figures of the discriminators stage: one GAN against the capacity ladder, and the memoriser heat map."""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit.metrics.two_sample import LOG2, critical_accuracy, format_parameters
from audit.plots import plt, save_figure


def plot_ladder(records: list[dict], alpha: float, path, title: str = "") -> None:
    """Held-out accuracy (left) and the JS lower bound log 2 - CE (right, nats) against the
    discriminator's parameter count, each with its 95% bootstrap interval; the accuracy above
    which a rung's own binomial test rejects at ``alpha`` is dashed (before the Holm adjustment)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 3.4), gridspec_kw={"wspace": 0.3})
    tested = [r for r in records if r.get("p_value") is not None]
    if not tested:
        for ax in (left, right):
            ax.text(0.5, 0.5, records[0].get("reason", "no test ran") if records else "empty ladder",
                    ha="center", va="center", wrap=True, transform=ax.transAxes, fontsize=8)
        save_figure(fig, path)
        return
    x = np.array([r["parameters"] for r in tested], dtype=float)
    for ax, key, interval in ((left, "accuracy", "accuracy_interval"), (right, "js_bound", "js_interval")):
        y = np.array([r[key] for r in tested])
        low = np.maximum(0.0, [r[interval][0] for r in tested]) if key == "js_bound" else [r[interval][0] for r in tested]
        high = np.maximum(0.0, [r[interval][1] for r in tested]) if key == "js_bound" else [r[interval][1] for r in tested]
        ax.errorbar(x, y, yerr=[np.maximum(0, y - low), np.maximum(0, high - y)], fmt="o-", capsize=3, color="C0")
        for xi, yi, r in zip(x, y, tested):
            ax.annotate(r["label"], (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("discriminator parameters")
    left.axhline(0.5, color="grey", lw=0.8)
    left.axhline(critical_accuracy(tested[0]["n_test"], alpha), color="C3", ls="--", lw=0.8,
                 label=f"rejects at {alpha:g} (n = {tested[0]['n_test']})")
    left.set_ylim(0.4, 1.02)
    left.set_ylabel("held-out accuracy")
    left.legend(fontsize=7, loc="lower right")
    right.axhline(LOG2, color="grey", ls=":", lw=0.8, label="log 2 (disjoint supports)")
    right.set_ylim(-0.02, LOG2 * 1.05)
    right.set_ylabel("JS lower bound (nats)")
    right.legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def plot_demo(table: pd.DataFrame, alpha: float, path) -> None:
    """Left: held-out accuracy of each rung (rows, by capacity) against each memoriser (columns,
    k images), a star where the Holm-adjusted p is below ``alpha``. Right: the birthday test's
    support estimate for the same memorisers (dots with 95% intervals; a triangle: lower bound)
    against the planted k."""
    ks = sorted(table["k"].unique())
    rungs = table.drop_duplicates("label").sort_values("parameters")
    grid = np.full((len(rungs), len(ks)), np.nan)
    stars = np.zeros_like(grid, dtype=bool)
    for _, cell in table.iterrows():
        i, j = list(rungs["label"]).index(cell["label"]), ks.index(cell["k"])
        if cell["accuracy"] is not None and not pd.isna(cell["accuracy"]):
            grid[i, j] = cell["accuracy"]
            stars[i, j] = cell["p_holm"] < alpha
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.2 + 0.25 * len(rungs)),
                                      gridspec_kw={"width_ratios": [1.6, 1], "wspace": 0.45})
    image = left.imshow(grid, cmap="viridis", vmin=0.5, vmax=1.0, aspect="auto")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if not np.isnan(grid[i, j]):
                left.text(j, i, f"{grid[i, j]:.2f}{'*' if stars[i, j] else ''}", ha="center", va="center",
                          fontsize=8, color="white" if grid[i, j] < 0.8 else "black")
    left.set_xticks(range(len(ks)), [str(k) for k in ks])
    left.set_yticks(range(len(rungs)), [f"{label} ({format_parameters(p)})" for label, p in
                                        zip(rungs["label"], rungs["parameters"])], fontsize=8)
    left.set_xlabel("memorised images k")
    left.set_title(f"held-out accuracy (* Holm p < {alpha:g})", fontsize=9)
    fig.colorbar(image, ax=left, fraction=0.04)
    birthday = table.drop_duplicates("k").sort_values("k")
    for row in birthday.itertuples():
        if row.support_kind == "estimate":
            right.errorbar([row.k], [row.support_estimate], yerr=[[row.support_estimate - row.support_low],
                           [max(0.0, min(row.support_high, 1e12) - row.support_estimate)]], fmt="o", color="C0",
                           capsize=3)
        elif row.support_kind == "lower_bound":
            right.plot([row.k], [row.support_bound], marker="^", color="C1")
    right.plot(ks, ks, color="grey", lw=0.8, ls="--", label="planted k")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("memorised images k")
    right.set_ylabel("birthday support estimate")
    right.set_title("birthday test (o estimate, ^ lower bound)", fontsize=9)
    right.legend(fontsize=7)
    save_figure(fig, path)
