"""Figures of 1,000-class datasets (Stacked MNIST): class frequencies sorted, one line per source,
where a bar per class would be 1,000 bars."""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit.plots import plt, save_figure


def plot_sorted_frequencies(table: pd.DataFrame, path, title: str = "", value: str = "frequency",
                            ylabel: str = "fraction of images") -> None:
    """One line per ``source`` of the long ``table`` (``class``, ``source``, ``value``): its values
    sorted from largest to smallest against their rank, log y (zeros drawn at the axis bottom)."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    positive = table[value][table[value] > 0]
    floor = positive.min() / 2 if positive.size else 1e-6
    for source, part in table.groupby("source", sort=False):
        values = np.sort(part[value].to_numpy(dtype=float))[::-1]
        ax.plot(np.arange(1, values.size + 1), np.maximum(values, floor),
                label=f"{source} ({np.count_nonzero(values > 0)} > 0)", lw=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("class rank (sorted by the source's own value)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    save_figure(fig, path)
