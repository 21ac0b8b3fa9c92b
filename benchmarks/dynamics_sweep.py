"""Time the GAN-dynamics sweep (Li et al. 2017 model) and print its key figures.

    python benchmarks/dynamics_sweep.py                       # config.yaml: 10,000 runs x 1,000 steps
    python benchmarks/dynamics_sweep.py --threads 1 --eta-g 0.1 --eta-d 0.1

Runs :func:`audit.dynamics.simulate.sweep` with the default configuration's ``dynamics`` block
(config.yaml, schema defaults filled in) parsed by the ``gan_dynamics`` stage's own parser, one
dynamics at a time (the stage runs them one after the other too), and prints the wall time and
run-steps per second of each, the total, and the outcome fractions. Stage flags given on the
command line override the config. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from snakemake.utils import validate  # noqa: E402

from audit.dynamics.simulate import DYNAMICS, OUTCOMES, sweep  # noqa: E402
from audit.gan_dynamics import parse_args  # noqa: E402


def config_flags() -> list[str]:
    """The stage flags of config.yaml's ``dynamics`` block, defaults from the schema filled in."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    validate(config, str(REPO / "rules" / "config.schema.yaml"))
    flags = []
    for key, value in config["dynamics"].items():
        flags += [f"--{key.replace('_', '-')}", *map(str, value if isinstance(value, list) else [value])]
    return flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="worker processes (default 2)")
    known, rest = parser.parse_known_args()
    # The stage's parser on the default config, so the benchmark measures what the pipeline runs;
    # the outputs are never written.
    outputs = [arg for flag in ("figure1", "figure2", "sweep", "heatmap", "summary") for arg in (f"--{flag}", "unused")]
    args = parse_args(config_flags() + outputs + ["--threads", str(known.threads)] + rest)
    tolerances = {"conv_tol": args.conv_tol, "mode_tol": args.mode_tol, "grad_tol": args.grad_tol,
                  "empty_tol": args.empty_tol}
    common = dict(runs=args.runs, steps=args.steps, seed=args.seed, threads=args.threads, gen_range=args.gen_range,
                  disc_range=args.disc_range, **tolerances)

    print(f"{args.runs} runs x {args.steps} steps per cell, eta_g {args.eta_g}, eta_d {args.eta_d}, "
          f"mu* {args.true_means}, {args.threads} worker process(es)")
    parts, seconds = [], {}
    for dynamics in DYNAMICS:
        start = time.perf_counter()
        parts.append(sweep(args.true_means, args.eta_g, args.eta_d, dynamics=(dynamics,), **common))
        seconds[dynamics] = time.perf_counter() - start
    table = pd.concat(parts, ignore_index=True)
    for dynamics, part in zip(DYNAMICS, parts):
        rate = len(part) * args.runs * args.steps / seconds[dynamics]
        print(f"  {dynamics:11s}: {len(part)} cells in {seconds[dynamics]:6.1f} s ({rate / 1e6:.2f} M run-steps/s)")
    total = sum(seconds.values())
    print(f"  full sweep : {len(table)} cells in {total:6.1f} s ({'under' if total < 60 else 'OVER'} a minute)")
    columns = ["dynamics", "eta_g", "eta_d"] + list(OUTCOMES)
    print(table[columns].to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
