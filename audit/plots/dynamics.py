"""Figures for the GAN-dynamics audit (matplotlib Agg + seaborn), each written atomically.

* :func:`plot_trajectories` - Figures 1 and 2 of Li et al. (2017): the generator means and the
  discriminator intervals over time, optimal-discriminator dynamics next to first-order
  dynamics from the same start.
* :func:`plot_sweep_heatmap` - outcome fractions of the sweep per step size.
"""

from __future__ import annotations


import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from audit.dynamics.simulate import OUTCOMES, Trajectory  # noqa: E402
from audit.plots import save_figure  # noqa: E402


def plot_trajectories(panels: list[tuple[str, Trajectory]], mu_star, path, title: str = "") -> None:
    """One panel per (label, single-run recorded :class:`Trajectory`), sharing the y-axis.

    Shaded bands are the discriminator's intervals [l_i, r_i] at each step, lines the generator
    means, dashed lines the true means. The y-axis spans the means +- 2.5 standard deviations;
    interval ends beyond (including infinite ones) are clipped to it.
    """
    mu_star = np.asarray(mu_star, float)
    means = np.concatenate([np.ravel(t.mu_path) for _, t in panels] + [mu_star])
    low, high = means.min() - 2.5, means.max() + 2.5
    colours = sns.color_palette("colorblind", 4)
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), sharey=True, squeeze=False)
        for ax, (label, trajectory) in zip(axes[0], panels):
            steps = np.arange(trajectory.mu_path.shape[0])
            ends = np.clip(trajectory.ends_path[:, 0, :], low, high)
            for i, colour in zip(range(2), (colours[2], colours[3])):
                ax.fill_between(steps, ends[:, 2 * i], ends[:, 2 * i + 1], step="post", color=colour, alpha=0.25,
                                lw=0, label=f"D interval {i + 1}")
            for j in range(2):
                ax.axhline(mu_star[j], color="0.3", ls="--", lw=1, label="true means" if j == 0 else None)
                ax.plot(steps, trajectory.mu_path[:, 0, j], color=colours[j], lw=1.8, label=f"$\\mu_{j + 1}$")
            ax.set_xlim(0, steps[-1])
            ax.set_ylim(low, high)
            ax.set_xlabel("step")
            ax.set_title(label, fontsize=10)
        axes[0, 0].set_ylabel("position")
        axes[0, -1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False, fontsize=9)
        if title:
            fig.suptitle(title, fontsize=11)
        fig.tight_layout()
        save_figure(fig, path, dpi=120)


def plot_sweep_heatmap(table: pd.DataFrame, path, title: str = "") -> None:
    """One heatmap per outcome: fraction of runs, rows eta_g, columns eta_d plus ``optimal D``.

    ``table`` is :func:`audit.dynamics.simulate.sweep` output; the optimal-discriminator
    dynamics have no eta_d and get their own column.
    """
    table = table.copy()
    table["discriminator"] = np.where(table["dynamics"] == "optimal", "optimal D",
                                      table["eta_d"].map(lambda v: f"{v:g}"))
    columns = [f"{v:g}" for v in sorted(table["eta_d"].dropna().unique())] + ["optimal D"]
    with sns.axes_style("white"):
        fig, axes = plt.subplots(1, len(OUTCOMES), figsize=(3.3 * len(OUTCOMES), 0.5 * table["eta_g"].nunique() + 2.2),
                                 squeeze=False)
        for ax, outcome in zip(axes[0], OUTCOMES):
            grid = table.pivot(index="eta_g", columns="discriminator", values=outcome).reindex(columns=columns)
            sns.heatmap(grid, ax=ax, vmin=0, vmax=1, cmap="viridis", annot=grid * 100, fmt=".1f", cbar=False,
                        annot_kws={"fontsize": 8}, linewidths=0.5, linecolor="white")
            ax.set_title(outcome.replace("_", " ") + " (%)", fontsize=10)
            ax.set_xlabel("discriminator step $\\eta_d$")
            ax.set_ylabel("generator step $\\eta_g$" if ax is axes[0, 0] else "")
        if title:
            fig.suptitle(title, fontsize=11)
        fig.tight_layout()
        save_figure(fig, path, dpi=120)
