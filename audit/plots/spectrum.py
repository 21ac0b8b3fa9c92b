"""The figure of stage ``spectrum``: normalised covariance spectra on a log axis."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import pyplot as plt

from audit.plots import save_figure


def plot_spectra(table: pd.DataFrame, path, title: str | None = None, floors: Mapping[str, float] | None = None) -> None:
    """Save normalised spectra (a :func:`audit.metrics.spectrum.spectrum_table`) on a log y-axis,
    one line per column.

    ``floors`` maps a column name to its normalised noise floor, drawn as a dotted line in the
    same colour; the y-axis then starts at 1/30 of the lowest floor. Non-positive values are not
    drawn (log axis). Written atomically to ``path``.
    """
    names = [c for c in table.columns if c != "index"]
    palette = dict(zip(names, sns.color_palette("colorblind", len(names))))
    with sns.axes_style("whitegrid"):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for name in names:
            values = table[name].to_numpy(dtype=float)
            ax.plot(table["index"], np.where(values > 0, values, np.nan), label=name, color=palette[name], lw=1.4)
            if floors and name in floors:
                ax.axhline(floors[name], color=palette[name], ls=":", lw=1)
        ax.set_yscale("log")
        # below the rounding floor is noise; do not let 1e-20 round-off set the scale
        bottom = min(floors.values()) / 30 if floors else 0.0
        if floors:
            ax.set_ylim(bottom=bottom)
        # spectra of fewer images than pixels end in zeros and round-off: stop the x-axis there
        shown = np.flatnonzero((table[names].to_numpy(dtype=float) > bottom).any(axis=1))
        if shown.size:
            ax.set_xlim(0, 1.03 * float(table["index"].iloc[shown[-1]]))
        ax.set_xlabel("principal direction (descending)")
        ax.set_ylabel("eigenvalue / total variance")
        ax.set_title(title or "Pixel-covariance spectrum")
        ax.legend(frameon=False)
        fig.tight_layout()
        save_figure(fig, path, dpi=120)
