"""Figures of every stage (matplotlib Agg + seaborn), each written atomically.

This package holds the figures shared by several stages; a stage with figures of its own has
its module here (:mod:`audit.plots.dynamics`, ...). Metric modules never plot.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from audit.io import atomic_path  # noqa: E402


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> None:
    """Write a matplotlib figure atomically (see :func:`audit.io.atomic_path`) and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def plot_confusion(confusion: np.ndarray, class_names, path, title: str = "") -> None:
    """Heatmap of C[i, j] = P(predicted i | true j), shown with true classes as rows."""
    size = max(4.0, 0.45 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    sns.heatmap(confusion.T, annot=len(class_names) <= 12, fmt=".2f", cmap="Blues", vmin=0, vmax=1,
                xticklabels=class_names, yticklabels=class_names, ax=ax, cbar=False)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    save_figure(fig, path)


def plot_class_distributions(table: pd.DataFrame, path, title: str = "") -> None:
    """Grouped bars: class frequency per source (``class``, ``source``, ``frequency``, optional
    ``low``/``high`` 95% interval columns drawn as error bars)."""
    sources = list(dict.fromkeys(table["source"]))
    classes = list(dict.fromkeys(table["class"]))
    fig, ax = plt.subplots(figsize=(min(16.0, max(6.0, 0.3 * len(classes) * len(sources))), 3.6))
    sns.barplot(data=table, x="class", y="frequency", hue="source", ax=ax, order=classes, hue_order=sources)
    if {"low", "high"} <= set(table.columns):
        width = 0.8 / len(sources)
        for i, source in enumerate(sources):
            part = table[table["source"] == source].set_index("class").reindex(classes)
            if part["low"].isna().all():
                continue
            x = np.arange(len(classes)) - 0.4 + width * (i + 0.5)
            lower = (part["frequency"] - part["low"]).clip(lower=0).fillna(0)
            upper = (part["high"] - part["frequency"]).clip(lower=0).fillna(0)
            ax.errorbar(x, part["frequency"], yerr=[lower, upper], fmt="none", ecolor="black", lw=0.8, capsize=2)
    ax.set_ylabel("fraction of images")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")
    save_figure(fig, path)


def plot_lines(table: pd.DataFrame, x: str, y: str, hue: str, path, title: str = "", logy: bool = False,
               logx: bool = False) -> None:
    """A line per ``hue`` value."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    sns.lineplot(data=table, x=x, y=y, hue=hue, ax=ax)
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    ax.set_title(title)
    save_figure(fig, path)


def save_grid(images: np.ndarray, path, nrow: int = 8) -> None:
    """A grid PNG of uint8 (N, H, W, C) images (torchvision ``save_image``), upscaled so 8x8 digits
    stay visible."""
    import torch
    import torch.nn.functional as F
    from torchvision.utils import save_image

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
    scale = max(1, 64 // x.shape[-1])
    if scale > 1:
        x = F.interpolate(x, scale_factor=scale, mode="nearest")
    with atomic_path(path) as tmp:
        save_image(x, tmp, nrow=nrow, padding=2, pad_value=1.0)


def save_note(text: str, path) -> None:
    """A small PNG holding one line of text: the declared figure of a case with nothing to draw
    (the interpolation strips of a ``python`` target that is a sampling function, with no latent
    space to walk)."""
    fig, ax = plt.subplots(figsize=(6, 0.6))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=10)
    save_figure(fig, path)
