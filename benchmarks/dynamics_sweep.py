"""Time the GAN-dynamics sweep (Li et al. 2017 model) and print its key figures.

    python benchmarks/dynamics_sweep.py                       # stage defaults: 10,000 runs x 1,000 steps
    python benchmarks/dynamics_sweep.py --threads 1 --eta-g 0.1 --eta-d 0.1

Runs :func:`audit.dynamics.simulate.sweep` with the stage's defaults, one dynamics at a time
(the stage runs them one after the other too), and prints the wall time and run-steps per
second of each, the total, and the outcome fractions. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from audit.dynamics.__main__ import parse_args  # noqa: E402
from audit.dynamics.simulate import DYNAMICS, OUTCOMES, sweep  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="worker processes (default 2)")
    known, rest = parser.parse_known_args()
    # Reuse the stage's parser so the benchmark measures the stage's defaults.
    args = parse_args(["--out-dir", "unused", "--threads", str(known.threads)] + rest)
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
