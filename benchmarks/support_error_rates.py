"""Error rates of the birthday test and of its support interval, measured by simulation (SUPPORT.md).

    python benchmarks/support_error_rates.py            # every study, ~15 min on one core
    python benchmarks/support_error_rates.py --study coverage --sims 40

The 'real' distribution is continuous and known (10 Gaussian clusters of different scales in
8-d, as in tests/test_birthday.py), so fresh real draws are unlimited:

* ``rule``: calibrated on 225 real points (the size of half of digits' test split), the share
  of fresh real draws of S points holding a pair below t_S, for S up to 3,200 (14x the
  calibration set, the extrapolated tail); 20 calibrations x 100 draws per S;
* ``verdict``: a GAN equal to the real distribution, N = 10,000 samples, the default grid and
  20 draws per S as the stage draws them: the share of audits whose verdict rejects at 0.05;
* ``coverage``: uniform supports of k points (plus 1e-3 noise), N = 10,000 iid samples, the
  default grid, a threshold that only same-point pairs pass: how often the 95% interval holds
  k, for the headline (R S <= N sizes pooled) and for every size pooled;
* ``tail``: on digits' real test split (pixels), the false-duplicate rate per S for several
  numbers of tail pairs the power law is fitted on (the choice of TAIL_PAIRS).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from audit.metrics import birthday as bd

GRID = [25, 50, 100, 200, 400, 800, 1600, 3200]


def mixture(n: int, rng: np.random.Generator) -> np.ndarray:
    centres = np.random.default_rng(99).normal(scale=4.0, size=(10, 8))
    scales = np.linspace(0.5, 1.5, 10)
    which = rng.integers(0, 10, n)
    return (centres[which] + scales[which, None] * rng.normal(size=(n, 8))).astype(np.float32)


def pair_stats(x: np.ndarray, t: float) -> tuple[float, int]:
    """(closest pair distance, pairs below t) by brute force."""
    d = torch.cdist(torch.from_numpy(x).double(), torch.from_numpy(x).double()).fill_diagonal_(float("inf"))
    return float(d.min()), int((d < t).sum()) // 2


def study_rule(sims: int) -> None:
    flagged = {s: 0 for s in GRID}
    for c in range(sims):
        rng = np.random.default_rng(c)
        cal = bd.calibrate(mixture(225, rng), 0.01, GRID)
        for s in GRID:
            t = cal.threshold(s)[0]
            flagged[s] += sum(pair_stats(mixture(s, rng), t)[0] < t for _ in range(100 if s <= 800 else 20))
    for s in GRID:
        draws = sims * (100 if s <= 800 else 20)
        low, high = bd.wilson(flagged[s], draws)
        print(f"rule  S = {s:5d}: {flagged[s] / draws:.4f} of {draws} fresh real draws flagged [{low:.4f}, {high:.4f}]")


def study_verdict(sims: int, n: int = 10000) -> None:
    rejected = 0
    for run in range(sims):
        rng = np.random.default_rng(5000 + run)
        cal = bd.calibrate(mixture(225, rng), 0.01, GRID)
        samples = mixture(n, rng)
        counts = {s: np.array([pair_stats(samples[bd.draw_rows(n, s, run, r)], cal.threshold(s)[0])[1]
                               for r in range(20)]) for s in GRID if 20 * s <= n}
        rejected += bool(bd.birthday_verdict(bd.per_size_table(counts, 10, run), 0.01, 0.05, "", n).rejected)
    low, high = bd.wilson(rejected, sims)
    print(f"verdict: rejected {rejected} of {sims} audits of a GAN equal to the real distribution "
          f"({rejected / sims:.3f} [{low:.3f}, {high:.3f}], alpha 0.05)")


def study_coverage(sims: int, n: int = 10000) -> None:
    for k in (50, 359, 2000):
        held = {"headline": 0, "every size": 0}
        for seed in range(sims):
            rng = np.random.default_rng(seed)
            points = rng.normal(size=(k, 16)).astype(np.float32)
            x = points[rng.integers(0, k, n)] + rng.normal(scale=1e-3, size=(n, 16)).astype(np.float32)
            counts, _ = bd.search_draws(x, {s: 0.05 for s in GRID}, 20, 1, seed)
            headline = bd.pooled_estimate({s: counts[s] for s in bd.estimate_sizes(counts, n)[0]}, 1000, seed)
            every = bd.pooled_estimate(counts, 1000, seed)
            held["headline"] += headline["low"] <= k <= headline["high"]
            held["every size"] += every["low"] <= k <= every["high"]
        print(f"coverage k = {k}: " + ", ".join(f"{name} {v / sims:.3f}" for name, v in held.items())
              + f" of {sims} simulated audits (95% intervals)")


def study_tail(halvings: int) -> None:
    from audit.data.digits import load
    from audit.data.store import prepare
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        data = prepare(load(), tmp, {"train": 0.45, "val": 0.1, "pool": 0.2, "test": 0.25}, seed=0, progress=False)
        test = data.images[data.rows("test")]
    default = bd.TAIL_PAIRS
    for tail in (30, 50, 100, 250):
        bd.TAIL_PAIRS = tail
        _, _, table = bd.false_duplicate_rates(test, 0.01, GRID, halvings, 50, 0)
        print(f"tail pairs {tail:3d}: " + ", ".join(f"S={r.size} {r.rate:.4f}" for r in table.itertuples()))
    bd.TAIL_PAIRS = default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", choices=["rule", "verdict", "coverage", "tail", "all"], default="all")
    parser.add_argument("--sims", type=int, default=None, help="simulations (default per study: 20, 400, 40, 20)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name, fn, default in (("rule", study_rule, 20), ("verdict", study_verdict, 400),
                              ("coverage", study_coverage, 40), ("tail", study_tail, 20)):
        if args.study in (name, "all"):
            start = time.perf_counter()
            fn(args.sims or default)
            print(f"({name}: {time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
