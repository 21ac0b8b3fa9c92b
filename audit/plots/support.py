"""Figures of the support and memorisation stages: the birthday curve, doppelganger and
closest-pair sheets, and support against discriminator size."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt

from audit.plots import save_figure


def _show(ax, image: np.ndarray) -> None:
    """A uint8 (H, W, C) image on ``ax`` without axes (grey for C = 1)."""
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_support_curve(table: pd.DataFrame, path, *, quantile: float, false_rates: pd.DataFrame | None = None,
                       headline: str = "", title: str = "") -> None:
    """Left: P(a draw of S holds a duplicate) with 95% Wilson intervals, the rule's real
    false-duplicate rate measured on held-out images (where S allows) and q. Right: N_hat(S)
    with its bootstrap interval (log-log; sizes without duplicates drawn as open markers at the
    top). ``table``: :func:`audit.metrics.birthday.per_size_table` rows."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    size = table["size"].to_numpy(float)
    p = table["p_duplicate"].to_numpy(float)
    left.errorbar(size, p, yerr=[p - table["p_low"], table["p_high"] - p], marker="o", capsize=3, label="GAN draws")
    if false_rates is not None and not false_rates.empty:
        left.plot(false_rates["size"], false_rates["rate"], "s--", color="grey", label="real held-out draws")
    left.axhline(quantile, color="grey", lw=0.8, ls=":", label=f"q = {quantile:g}")
    left.axhline(0.5, color="black", lw=0.6, ls=":")
    left.set_xscale("log")
    left.set_ylim(-0.03, 1.03)
    left.set_xlabel("draw size S")
    left.set_ylabel("P(draw holds a duplicate)")
    left.legend(fontsize=8, frameon=False)
    finite = np.isfinite(table["n_hat"].to_numpy(float))
    if finite.any():
        t = table[finite]
        high = np.where(np.isfinite(t["n_hat_high"]), t["n_hat_high"], t["n_hat"] * 10)
        right.errorbar(t["size"], t["n_hat"], yerr=[t["n_hat"] - t["n_hat_low"], high - t["n_hat"]], marker="o",
                       capsize=3)
        right.set_yscale("log")
    empty = table[~finite]
    if not empty.empty:
        right.scatter(empty["size"], (empty["size"] * (empty["size"] - 1) / 2).clip(lower=1), marker="^",
                      facecolors="none", edgecolors="C3", label="no duplicate: above C(S, 2)")
        right.set_yscale("log")
        right.legend(fontsize=8, frameon=False)
    right.set_xscale("log")
    right.set_xlabel("draw size S")
    right.set_ylabel("N_hat = C(S, 2) / mean duplicate pairs")
    fig.suptitle(f"{title}: {headline}" if headline else title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def plot_image_rows(rows: list[list[np.ndarray]], captions: list[list[str]], path, *, column_titles: list[str],
                    title: str = "", note: str = "") -> None:
    """A sheet of image rows (each a list of uint8 (H, W, C) images) with a caption under
    every image; ``note`` is the whole figure when there is no row."""
    if not rows:
        fig, ax = plt.subplots(figsize=(7, 0.9))
        ax.axis("off")
        ax.text(0.5, 0.5, note or "nothing to show", ha="center", va="center", fontsize=10, wrap=True)
        ax.set_title(title, fontsize=10)
        save_figure(fig, path)
        return
    n_cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(1.7 * n_cols, 1.75 * len(rows) + 0.6), squeeze=False)
    for r, (images, texts) in enumerate(zip(rows, captions)):
        for c in range(n_cols):
            ax = axes[r, c]
            if c < len(images):
                _show(ax, images[c])
                ax.set_xlabel(texts[c], fontsize=7)
            else:
                ax.axis("off")
            if r == 0 and c < len(column_titles):
                ax.set_title(column_titles[c], fontsize=8)
    fig.tight_layout()
    height = fig.get_figheight()  # inches: room for the title above the column titles
    fig.subplots_adjust(top=1 - 0.75 / height)
    fig.suptitle(title, fontsize=9, y=1 - 0.12 / height, va="top")
    save_figure(fig, path)


def plot_support_vs_discriminator(table: pd.DataFrame, path, title: str = "") -> None:
    """Support estimate (or lower bound, open marker) against discriminator parameters, log-log.
    ``table``: disc_parameters, value, low, high, kind (estimate | lower_bound | undetermined)."""
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    est = table[table["kind"] == "estimate"]
    if not est.empty:
        high = np.where(np.isfinite(est["high"]), est["high"], est["value"] * 10)
        ax.errorbar(est["disc_parameters"], est["value"], yerr=[est["value"] - est["low"], high - est["value"]],
                    marker="o", capsize=3, label="support estimate (95% CI)")
    bound = table[table["kind"] == "lower_bound"]
    if not bound.empty:
        ax.scatter(bound["disc_parameters"], bound["value"], marker="^", facecolors="none", edgecolors="C3",
                   label="lower bound")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("discriminator parameters")
    ax.set_ylabel("support (effective number of images)")
    ax.set_title(title or "Support against discriminator size (Arora & Zhang 2017)", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    save_figure(fig, path)
