"""The figure of stage ``spectrum``: normalised covariance spectra, and the GAN's rank ratios."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import pyplot as plt

from audit.plots import save_figure

#: spectra below this share of the total variance are round-off (Gram-route spectra end in zeros)
SHOWN_FLOOR = 1e-12


def plot_spectra(table: pd.DataFrame, path, title: str | None = None, ratio: np.ndarray | None = None,
                 threshold: float | None = None) -> None:
    """Save normalised spectra (a :func:`audit.metrics.spectrum.spectrum_table`) on a log y-axis,
    one line per column; with ``ratio`` (m,), the rank ratios mu_k / nu_k of
    :func:`audit.metrics.spectrum.analyse_spectra` in a second panel, ``threshold`` dashed (a
    rank below it is a dropped direction). Non-positive values are not drawn. Written atomically.
    """
    names = [c for c in table.columns if c != "index"]
    palette = dict(zip(names, sns.color_palette("colorblind", len(names))))
    panels = 2 if ratio is not None else 1
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(1, panels, figsize=(6.0 * panels, 4.2), squeeze=False)
        ax = axes[0, 0]
        values = table[names].to_numpy(dtype=float)
        for name in names:
            column = table[name].to_numpy(dtype=float)
            ax.plot(table["index"], np.where(column > SHOWN_FLOOR, column, np.nan), label=name, color=palette[name],
                    lw=1.4)
        ax.set_yscale("log")
        shown = np.flatnonzero((values > SHOWN_FLOOR).any(axis=1))
        if shown.size:  # stop the x-axis where every spectrum has reached round-off
            ax.set_xlim(0, 1.03 * float(table["index"].iloc[shown[-1]]))
        ax.set_xlabel("principal direction (descending)")
        ax.set_ylabel("eigenvalue / total variance")
        ax.set_title("pixel-covariance spectra")
        ax.legend(frameon=False)
        if ratio is not None:
            ax = axes[0, 1]
            r = np.asarray(ratio, dtype=float)
            rank = np.arange(1, r.size + 1)
            floor = 1e-4
            ax.plot(rank, np.clip(r, floor, None), marker=".", lw=1, color=palette[names[-1]], label=names[-1])
            ax.axhline(1.0, color="0.5", lw=1, label="as a real sample")
            if threshold is not None:
                ax.axhline(threshold, color="k", ls="--", lw=1, label=f"dropped below {threshold:g}")
            ax.set_yscale("log")
            ax.set_ylim(floor / 2, max(2.0, float(np.nanmax(np.where(np.isfinite(r), r, 1.0), initial=1.0)) * 1.5))
            ax.set_xlabel("significant real direction (rank)")
            ax.set_ylabel("GAN / real variance, whitened, rank by rank")
            ax.set_title("rank ratios mu_k / nu_k")
            ax.legend(frameon=False, fontsize=8)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        save_figure(fig, path, dpi=120)
