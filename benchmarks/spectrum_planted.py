"""Planted spectra: the spectrum test's kept directions and error rates on planted generators.

    python benchmarks/spectrum_planted.py                                  # digits and scenes, 20 seeds
    python benchmarks/spectrum_planted.py --datasets digits --seeds 50 --out spectrum_planted.json

For each dataset (prepared as the tests prepare it: splits train .45 / val .1 / pool .2 /
test .25, seed 0) it runs :func:`audit.metrics.spectrum.analyse_spectra` as the stage does (real:
the test split; null stand-ins: the train split) on

* ``lowrank`` projections onto the top r pool principal components, r in {5, 10, 20}, with
  ``out_of_range: rescale`` and ``clip``, for ``--lowrank-seeds`` seeds each;
* the pool resampler (``resample``, real class mix), for ``--seeds`` seeds: it keeps every
  direction as an independent real sample of its size would, so H0 holds;
* the H0 boundary: the same resampler's samples shrunk towards their mean by sqrt(threshold).
  Every rank ratio scales exactly by the variance factor (tests/test_spectrum_properties.py), so
  its statistic is threshold * T and its p-value (1 + #{T* <= T}) / (1 + B) comes from the
  resampler's own run; its rejection rate is the test's size at the boundary.

Seed s drives the sampler, the real split and the null draws. Tolerances, stated before any run:
every lowrank run keeps r directions within 10% of r (|kept - r| <= 0.1 r) and is flagged
(p < alpha); the resampler drops 0 directions in at least 95% of seeds and is flagged in at most
5%; the boundary rejection rate is at most alpha (with its Clopper-Pearson 95% interval). Prints
one line per run and a PASS/FAIL line per tolerance; asserts nothing (tests/test_spectrum.py
asserts a CI-sized version).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit.gans import SamplerContext, make_sampler  # noqa: E402
from audit.metrics import covariance as cv  # noqa: E402
from audit.metrics import spectrum as sp  # noqa: E402
from audit.runtime import configure_torch  # noqa: E402

SPLITS = {"train": 0.45, "val": 0.1, "pool": 0.2, "test": 0.25}


def prepare(name: str, root: Path):
    from importlib import import_module

    from audit.data.store import prepare as store_prepare

    return store_prepare(import_module(f"audit.data.{name}").load(), root / name, SPLITS, seed=0, progress=False)


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    from scipy.stats import beta

    tail = (1 - level) / 2
    low = 0.0 if k == 0 else float(beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - tail, k + 1, n - k))
    return low, high


def run(data, spec: dict, seed: int, args) -> dict:
    real = cv.RowSubset(data.images, data.rows("test"))
    null = cv.RowSubset(data.images, data.rows("train"))
    images = make_sampler("planted", spec, SamplerContext(data=data)).sample(args.n, seed).images
    t0 = time.perf_counter()
    result = sp.analyse_spectra(real, images, null, threshold=args.threshold, alpha=args.alpha,
                                null_draws=args.null_draws, test_samples=args.test_samples, seed=seed)
    s, v = result.summary, result.verdict
    row = {"spec": spec, "seed": seed, "m": s["significant_real_directions"], "kept": s["kept_directions"],
           "dropped": s["dropped_directions"], "T": s["worst_rank_ratio"], "p": v.p_value, "flagged": v.rejected,
           "stand_in": s["stand_in_size"], "seconds": time.perf_counter() - t0}
    if result.null is not None:  # the resampler shrunk by sqrt(threshold): statistic threshold * T
        row["boundary_p"] = float((1 + np.count_nonzero(result.null <= s["worst_rank_ratio"])) / (1 + result.null.size))
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "scenes"])
    parser.add_argument("--seeds", type=int, default=20, help="pool resampler seeds (>= 20)")
    parser.add_argument("--lowrank-seeds", type=int, default=2)
    parser.add_argument("--ranks", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--n", type=int, default=2000, help="samples per planted GAN")
    parser.add_argument("--threshold", type=float, default=0.1)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--null-draws", type=int, default=200)
    parser.add_argument("--test-samples", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="also write every run as JSON here")
    args = parser.parse_args(argv)
    configure_torch(args.threads, 0)
    report, checks = {}, []
    with tempfile.TemporaryDirectory(prefix="spectrum-planted-") as tmp:
        for name in args.datasets:
            data = prepare(name, Path(tmp))
            rows = []
            for r in args.ranks:
                for mode in ("rescale", "clip"):
                    for seed in range(args.lowrank_seeds):
                        rows.append(run(data, {"type": "lowrank", "rank": r, "out_of_range": mode}, seed, args))
                        print(name, json.dumps(rows[-1]), flush=True)
            for seed in range(args.seeds):
                rows.append(run(data, {"type": "resample", "class_probs": "real"}, seed, args))
                print(name, json.dumps(rows[-1]), flush=True)
            report[name] = rows
            low = [x for x in rows if x["spec"]["type"] == "lowrank"]
            res = [x for x in rows if x["spec"]["type"] == "resample"]
            within = [abs(x["kept"] - x["spec"]["rank"]) <= 0.1 * x["spec"]["rank"] for x in low]
            zero = sum(x["dropped"] == 0 for x in res)
            flagged = sum(bool(x["flagged"]) for x in res)
            boundary = sum(x["boundary_p"] < args.alpha for x in res)
            low_cp, high_cp = clopper_pearson(boundary, len(res))
            checks += [
                (f"{name}: lowrank kept within 10% of r in {sum(within)}/{len(low)} runs "
                 f"(kept {[x['kept'] for x in low]})", all(within)),
                (f"{name}: lowrank flagged in {sum(bool(x['flagged']) for x in low)}/{len(low)} runs",
                 all(x["flagged"] for x in low)),
                (f"{name}: resampler drops 0 in {zero}/{len(res)} seeds (>= 95%)", zero >= 0.95 * len(res)),
                (f"{name}: resampler flagged in {flagged}/{len(res)} seeds (<= 5%)", flagged <= 0.05 * len(res)),
                (f"{name}: boundary rejection rate {boundary}/{len(res)} (95% CI [{low_cp:.3f}, {high_cp:.3f}]), "
                 f"<= alpha {args.alpha}", boundary <= args.alpha * len(res)),
            ]
            seconds = [x["seconds"] for x in rows]
            print(f"{name}: analyse_spectra {np.median(seconds):.1f} s median, {max(seconds):.1f} s max per run")
    for text, ok in checks:
        print(("PASS " if ok else "FAIL ") + text)
    if args.out:
        Path(args.out).write_text(json.dumps({"settings": vars(args), "runs": report,
                                              "checks": [{"check": t, "pass": ok} for t, ok in checks]}, indent=1))


if __name__ == "__main__":
    main()
