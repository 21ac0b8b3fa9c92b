"""Stage ``gan_dynamics``: GAN dynamics on a two-Gaussian mixture (Li, Madry, Peebles, Schmidt 2017).

    python -m audit.gan_dynamics --seed 0 --runs 10000 --steps 1000 --eta-g 0.1 0.3 --eta-d 0.1 0.3 1.0 \\
        --true-means -2 2 --gen-range 3 --disc-range 6 --threads 2 \\
        --figure1 results/dynamics/figure1.png --figure2 results/dynamics/figure2.png \\
        --sweep results/dynamics/sweep.csv --heatmap results/dynamics/sweep_heatmap.png \\
        --summary results/dynamics/summary.json

Outputs: ``--figure1`` and ``--figure2`` (the paper's Figures 1 and 2 from hand-picked starts),
``--sweep`` (one row per dynamics x step size: outcome fractions with 95% Wilson intervals),
``--heatmap`` and ``--summary``. Same arguments, same bytes. The numerics are in
:mod:`audit.dynamics` (see its README), the figures in :mod:`audit.plots.dynamics`.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from audit.cli import add_outputs, run_cli, stage_parser
from audit.dynamics.simulate import (CONV_TOL, DYNAMICS, EMPTY_TOL, FIGURE_1, FIGURE_2, GRAD_TOL, MODE_TOL, OUTCOMES,
                                     classify, run_figure, sweep)
from audit.io import AuditInputError, save_json, save_table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The stage's options, validated (one-line :class:`AuditInputError` naming the flag)."""
    parser = stage_parser("audit.gan_dynamics", __doc__, device=False)
    parser.add_argument("--runs", type=int, required=True, help="initial states per step-size cell")
    parser.add_argument("--steps", type=int, required=True, help="steps per run in the sweep")
    parser.add_argument("--eta-g", type=float, nargs="+", required=True, help="generator step sizes")
    parser.add_argument("--eta-d", type=float, nargs="+", required=True,
                        help="discriminator step sizes (first-order dynamics only)")
    parser.add_argument("--true-means", type=float, nargs=2, required=True, metavar=("MU1", "MU2"),
                        help="true means mu* of the sweep")
    parser.add_argument("--gen-range", type=float, required=True, help="initial mu ~ U[-r, r]^2")
    parser.add_argument("--disc-range", type=float, required=True, help="initial interval ends ~ U[-r, r], sorted")
    # outcome tolerances: technical knobs, not in the config; defaults in audit.dynamics.simulate
    parser.add_argument("--conv-tol", type=float, default=CONV_TOL,
                        help="converged: max |mu - mu*| (up to order)")
    parser.add_argument("--mode-tol", type=float, default=MODE_TOL, help="mode collapse: |mu1 - mu2|")
    parser.add_argument("--grad-tol", type=float, default=GRAD_TOL, help="vanishing gradient: |dL/dmu|")
    parser.add_argument("--empty-tol", type=float, default=EMPTY_TOL, help="discriminator collapse: r - l")
    add_outputs(parser, figure1="the paper's Figure 1 (.png)", figure2="the paper's Figure 2 (.png)",
                sweep="one row per cell (.csv)", heatmap="outcome shares per cell (.png)",
                summary="settings, pooled outcomes, checks (.json)")
    args = parser.parse_args(argv)
    _validate(args)
    return args


def _validate(args: argparse.Namespace) -> None:
    def positive_finite(flag: str, values) -> None:
        for value in np.atleast_1d(values):
            if not (math.isfinite(value) and value > 0):
                raise AuditInputError(f"--{flag}: must be a positive finite number, got {value}")

    for flag in ("runs", "steps", "threads"):
        if getattr(args, flag) < 1:
            raise AuditInputError(f"--{flag}: must be at least 1, got {getattr(args, flag)}")
    if args.seed < 0:
        raise AuditInputError(f"--seed: must be non-negative, got {args.seed}")
    for flag in ("eta_g", "eta_d", "gen_range", "disc_range", "conv_tol", "mode_tol", "grad_tol", "empty_tol"):
        positive_finite(flag.replace("_", "-"), getattr(args, flag))
    for name, values in (("eta-g", args.eta_g), ("eta-d", args.eta_d)):
        if len(set(values)) != len(values):
            raise AuditInputError(f"--{name}: step sizes must be distinct, got {values}")
    if not all(math.isfinite(v) for v in args.true_means):
        raise AuditInputError(f"--true-means: must be finite, got {args.true_means}")
    if abs(args.true_means[0] - args.true_means[1]) <= 2 * args.conv_tol:
        raise AuditInputError(f"--true-means: must be more than 2 * conv-tol apart to tell the modes apart, "
                              f"got {args.true_means}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from audit.plots.dynamics import plot_sweep_heatmap

    tolerances = {"conv_tol": args.conv_tol, "mode_tol": args.mode_tol, "grad_tol": args.grad_tol,
                  "empty_tol": args.empty_tol}
    figures = {spec.name: _paper_figure(spec, path, tolerances)
               for spec, path in ((FIGURE_1, args.figure1), (FIGURE_2, args.figure2))}

    start = time.perf_counter()
    table = sweep(args.true_means, args.eta_g, args.eta_d, args.runs, args.steps, seed=args.seed,
                  threads=args.threads, gen_range=args.gen_range, disc_range=args.disc_range, **tolerances)
    elapsed = time.perf_counter() - start
    save_table(args.sweep, table)
    title = f"Outcomes of {args.runs} runs x {args.steps} steps per cell, $\\mu^*$ = {tuple(args.true_means)}"
    plot_sweep_heatmap(table, args.heatmap, title)

    summary = {
        "settings": {"seed": args.seed, "runs": args.runs, "steps": args.steps, "eta_g": args.eta_g,
                     "eta_d": args.eta_d, "true_means": args.true_means, "gen_range": args.gen_range,
                     "disc_range": args.disc_range, "tolerances": tolerances},
        "sweep": _sweep_summary(table),
        "figures": figures,
    }
    optimal, first = summary["sweep"]["optimal"], summary["sweep"]["first_order"]
    summary["checks"] = {
        "optimal_converged_at_least_99pct_in_every_cell": optimal["converged_min_cell"] >= 0.99,
        "first_order_mode_collapse_seen": first["mode_collapse"] > 0,
        "first_order_vanishing_gradient_seen": first["vanishing_gradient"] > 0,
    }
    save_json(args.summary, summary)
    # Timing goes to the log only, so that the outputs are identical across runs.
    print(f"sweep: {len(table)} cells x {args.runs} runs x {args.steps} steps in {elapsed:.1f} s "
          f"({args.threads} worker(s))")
    for dynamics in DYNAMICS:
        print(dynamics, {k: round(v, 4) for k, v in summary["sweep"][dynamics].items()})
    print("checks", summary["checks"])


def _paper_figure(spec, path: str, tolerances: dict) -> dict:
    """Run, classify and plot (to ``path``) one of the paper's figures; its entry of summary.json."""
    from audit.plots.dynamics import plot_trajectories

    runs = run_figure(spec)
    outcomes = {
        "optimal": OUTCOMES[classify(runs["optimal"].mu, spec.mu_star, runs["optimal"].grad_norm, **tolerances)[0]],
        "first_order": OUTCOMES[classify(runs["first_order"].mu, spec.mu_star, runs["first_order"].grad_norm,
                                         runs["first_order"].ends, **tolerances)[0]],
    }
    labels = {"optimal": "optimal discriminator", "first_order": "first-order"}
    plot_trajectories([(f"{labels[name]}: {outcomes[name].replace('_', ' ')}", runs[name]) for name in DYNAMICS],
                      spec.mu_star, path,
                      f"$\\mu^*$ = {spec.mu_star}, step size {spec.eta}, start $\\mu_0$ = {spec.mu0}, "
                      f"D$_0$ = {spec.ends0}")
    return {
        "mu_star": spec.mu_star, "eta": spec.eta, "mu0": spec.mu0, "ends0": spec.ends0, "steps": spec.steps,
        "outcome": outcomes,
        "final_mu": {name: run.mu[0].round(6).tolist() for name, run in runs.items()},
        "final_ends_first_order": runs["first_order"].ends[0].round(6).tolist(),
    }


def _sweep_summary(table) -> dict:
    """Per dynamics: outcome fractions pooled over its cells, and the worst cell's convergence."""
    summary = {}
    for dynamics in DYNAMICS:
        part = table[table["dynamics"] == dynamics]
        total = part["runs"].sum()
        entry = {outcome: float(part[f"{outcome}_count"].sum() / total) for outcome in OUTCOMES}
        entry["converged_min_cell"] = float(part["converged"].min())
        summary[dynamics] = entry
    return summary


if __name__ == "__main__":
    run_cli(main)
