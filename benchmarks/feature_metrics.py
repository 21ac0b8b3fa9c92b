"""Benchmark: precision / recall / density / coverage at scale, and the FD test's error rates.

    python benchmarks/feature_metrics.py prdc          # 50,000 x 50,000, d = 512 (+ the 10k ratio)
    python benchmarks/feature_metrics.py prdc --n 20000 --ratio-n 5000     # reduced size
    python benchmarks/feature_metrics.py calibration   # FD test and interval error rates (~10 min)
    python benchmarks/feature_metrics.py real --features-a results/digits/features/real_train.npy \
        --features-reference results/digits/features/real_pool.npy \
        --features-b results/digits/features/real_test.npy --reps 200 --permutations 99
    python benchmarks/feature_metrics.py real --resample \
        --features-reference results/digits/features/real_pool.npy \
        --features-b results/digits/features/real_test.npy --reps 200 --permutations 99

``prdc``: seeded features (N(0, I) in d dimensions, L2-normalised like the annotator's, real and
fake drawn alike) are written to ``.npy`` files; each computation runs in a fresh child process
so its peak RSS (``ru_maxrss``, interpreter, numpy and torch included, ~0.3 GB) is its own:

1. ``audit.metrics.prdc.prdc`` at N x N (default 50,000), k = 5: time and peak RSS;
2. the same and prdc 0.2's ``compute_prdc`` at ``--ratio-n`` x ``--ratio-n`` (default 10,000),
   in the same run: the time and memory ratios, and whether the four numbers agree (prdc uses
   float32 distances, so a few comparisons may flip at float32 ties).

``calibration``: the stage's design on seeded unit vectors (``--m`` GAN rows G and reference rows
R, each against ``--n-test`` test rows T; digits: 359 and 450): the rejection rate of the FD
permutation test under H0 (all sets from one distribution), its power against a small shift, the
coverage of the recentred bootstrap interval of E[FD] at these sizes, how often a perfect
generator's interval contains the real-vs-real value, and the same two rates for a *resampler of
the reference* (G = m rows drawn with replacement from R: the planted ``uniform`` control when
m = n_pool), over ``--reps`` seeded data sets, with Wilson 95% intervals. ``real``: the stage's
design on real features over seeds: ``--features-a`` (a real split, the train split) or, with
``--resample``, a with-replacement draw of the reference's m rows, as the generator; the pool as
the reference; the test split. The numbers are recorded in ``audit/metrics/FEATURE_METRICS.md``.

Both sides use ``--threads`` threads (threadpoolctl for BLAS, torch for the neighbour search).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def make_features(path: Path, n: int, d: int, seed: int, chunk: int = 10000) -> None:
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    for start in range(0, n, chunk):
        x = rng.standard_normal((min(chunk, n - start), d), dtype=np.float32)
        out[start:start + x.shape[0]] = x / np.linalg.norm(x, axis=1, keepdims=True)
    out.flush()
    del out


def child(which: str, real: str, fake: str, k: int, threads: int) -> None:
    """Run one computation and print a JSON line: seconds, peak RSS (GiB), the four numbers."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    x, y = np.load(real, mmap_mode="r"), np.load(fake, mmap_mode="r")
    with threadpool_limits(limits=threads):
        start = time.perf_counter()
        if which == "ours":
            from audit.metrics.prdc import prdc

            result = prdc(x, y, k)
        else:
            import contextlib
            import io

            from prdc import compute_prdc

            with contextlib.redirect_stdout(io.StringIO()):
                result = {key: float(v) for key, v in compute_prdc(np.asarray(x), np.asarray(y), k).items()}
        seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"seconds": seconds, "peak_rss_gib": rss, **result}))


def run_child(which: str, real: Path, fake: Path, k: int, threads: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, __file__, "_child", which, str(real), str(fake), str(k), str(threads)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_prdc(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = []
        for n, sides in ((args.n, ("ours",)), (args.ratio_n, ("ours", "prdc"))):
            real, fake = tmp / f"real_{n}.npy", tmp / f"fake_{n}.npy"
            make_features(real, n, args.d, args.seed)
            make_features(fake, n, args.d, args.seed + 1)
            for side in sides:
                result = run_child(side, real, fake, args.k, args.threads)
                rows.append({"n": n, "side": side, **result})
                print(f"{side:>5} N = {n:>6} x {n}, d = {args.d}, k = {args.k}: {result['seconds']:8.1f} s, peak RSS "
                      f"{result['peak_rss_gib']:.2f} GiB; P {result['precision']:.4f} R {result['recall']:.4f} "
                      f"D {result['density']:.4f} C {result['coverage']:.4f}", flush=True)
    ours, theirs = (next(r for r in rows if r["n"] == args.ratio_n and r["side"] == s) for s in ("ours", "prdc"))
    print(f"at {args.ratio_n} x {args.ratio_n}: time ours / prdc = {ours['seconds'] / theirs['seconds']:.2f}, "
          f"peak RSS ours / prdc = {ours['peak_rss_gib'] / theirs['peak_rss_gib']:.2f}; largest difference in the "
          f"four numbers {max(abs(ours[m] - theirs[m]) for m in ('precision', 'recall', 'density', 'coverage')):.2e}")


def wilson(successes: int, trials: int) -> tuple[float, float]:
    """Wilson 95% interval of a rate (:func:`audit.dynamics.simulate.wilson_interval`)."""
    sys.path.insert(0, str(ROOT))
    from audit.dynamics.simulate import wilson_interval

    low, high = wilson_interval(np.array(successes), np.array(trials))
    return float(low), float(high)


def bench_calibration(args) -> None:
    sys.path.insert(0, str(ROOT))
    from audit.metrics import frechet
    from audit.metrics.bootstrap import recentred_interval
    from audit.metrics.verdict import empirical_p_value

    rng = np.random.default_rng(args.seed)
    m, n_test, d, reps = args.m, args.n_test, args.d_calibration, args.reps

    def draw(n, shift=0.0):
        x = rng.normal(size=(n, d)) + shift
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    fresh = np.array([frechet.frechet_distance(draw(m), draw(n_test)) for _ in range(args.reps_truth)])
    expected, bootstrap_sd = fresh.mean(), []
    counts = {"rejected_h0": 0, "rejected_shift": 0, "interval_covers_expected": 0, "interval_holds_real_vs_real": 0,
              "resampler_rejected": 0, "resampler_interval_holds_real_vs_real": 0}
    start = time.perf_counter()

    def rejected(candidate, t1, t2) -> bool:
        return empirical_p_value(*frechet.permutation_null(candidate, t1, t2, args.permutations, rng)) < 0.05

    for _ in range(reps):
        g, t1, t2 = draw(m), draw(m), draw(n_test)  # G, the reference R, the test rows T
        counts["rejected_h0"] += rejected(g, t1, t2)
        counts["rejected_shift"] += rejected(draw(m, args.shift), t1, t2)
        resampled = t1[np.sort(rng.integers(0, m, m))]
        counts["resampler_rejected"] += rejected(resampled, t1, t2)
        low, high = recentred_interval(frechet.frechet_distance(resampled, t2),
                                       frechet.bootstrap_replicates(resampled, t2, args.bootstrap, rng))
        counts["resampler_interval_holds_real_vs_real"] += low <= frechet.frechet_distance(t1, t2) <= high
        value = frechet.frechet_distance(g, t2)
        replicates = frechet.bootstrap_replicates(g, t2, args.bootstrap, rng)
        bootstrap_sd.append(replicates.std())
        low, high = recentred_interval(value, replicates)
        counts["interval_covers_expected"] += low <= expected <= high
        counts["interval_holds_real_vs_real"] += low <= frechet.frechet_distance(t1, t2) <= high
    print(f"N = {m} (GAN, reference) vs {n_test} (test), d = {d} (unit vectors), {reps} data sets, {args.permutations} permutations, "
          f"{args.bootstrap} bootstrap replicates, E[FD] at this N under H0 = {expected:.5f} "
          f"({args.reps_truth} draws); {time.perf_counter() - start:.0f} s")
    print(f"  sd of FD over fresh data sets {fresh.std():.5f}; mean sd of the bootstrap replicates {np.mean(bootstrap_sd):.5f}")
    for name, count in counts.items():
        low, high = wilson(count, reps)
        print(f"  {name}: {count}/{reps} = {count / reps:.3f} (Wilson 95% [{low:.3f}, {high:.3f}])")


def bench_real(args) -> None:
    """The FD test on real features with the stage's design (:func:`audit.feature_metrics.same_size_rows`:
    m rows of the generator and of ``--features-reference``, all of ``--features-b``), for each seed:
    the generator is ``--features-a`` (a real split: H0 true up to the split's own draw) or, with
    ``--resample``, m rows drawn with replacement from the reference's m rows (the uniform control);
    its permutation p-value and whether its FD interval holds the real-vs-real value; the rates."""
    sys.path.insert(0, str(ROOT))
    from audit.feature_metrics import same_size_rows
    from audit.metrics import frechet
    from audit.metrics.bootstrap import recentred_interval
    from audit.metrics.verdict import empirical_p_value

    reference, test = (np.load(path).astype(np.float64) for path in (args.features_reference, args.features_b))
    a = reference if args.resample else np.load(args.features_a).astype(np.float64)
    p_values, held = [], 0
    for seed in range(args.reps):
        g, r = same_size_rows(a.shape[0], test.shape[0], reference.shape[0], seed)
        rng = np.random.default_rng(seed)
        gan = reference[r][np.sort(rng.integers(0, len(r), len(r)))] if args.resample else a[g]
        p_values.append(empirical_p_value(*frechet.permutation_null(gan, reference[r], test, args.permutations, rng)))
        low, high = recentred_interval(frechet.frechet_distance(gan, test),
                                       frechet.bootstrap_replicates(gan, test, args.bootstrap, rng))
        held += low <= frechet.frechet_distance(reference[r], test) <= high
    rejected = int(np.sum(np.array(p_values) < 0.05))
    low, high = wilson(rejected, args.reps)
    generator = f"a resample of {args.features_reference}" if args.resample else args.features_a
    print(f"FD interval held the real-vs-real value in {held}/{args.reps}")
    print(f"{generator} as the generator, {args.features_reference} as the reference, against {args.features_b}: "
          f"{args.reps} seeds, m = {len(r)} vs {test.shape[0]}, "
          f"{args.permutations} permutations: rejected at 0.05 in {rejected}/{args.reps} = {rejected / args.reps:.3f} "
          f"(Wilson 95% [{low:.3f}, {high:.3f}]; seeds share the data, so this is the rate for these two splits)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        which, real, fake, k, threads = sys.argv[2:7]
        return child(which, real, fake, int(k), int(threads))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("prdc", "calibration", "real"))
    parser.add_argument("--features-a", help="real: a real split's features standing in for a GAN (real_train.npy)")
    parser.add_argument("--features-reference", help="real: the reference split's features (real_pool.npy)")
    parser.add_argument("--features-b", help="real: the real test split's features (real_test.npy)")
    parser.add_argument("--resample", action="store_true", help="real: the generator resamples the reference's rows")
    parser.add_argument("--n", type=int, default=50000)
    parser.add_argument("--ratio-n", type=int, default=10000)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--m", type=int, default=359, help="calibration: GAN and reference rows (digits: the 359 pool images)")
    parser.add_argument("--n-test", type=int, default=450, help="calibration: test rows (digits: 450)")
    parser.add_argument("--d-calibration", type=int, default=128, help="calibration: feature width (smallcnn: 128)")
    parser.add_argument("--reps", type=int, default=400)
    parser.add_argument("--reps-truth", type=int, default=2000)
    parser.add_argument("--permutations", type=int, default=200)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--shift", type=float, default=0.05, help="calibration: mean shift of the power check")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    {"prdc": bench_prdc, "calibration": bench_calibration, "real": bench_real}[args.part](args)


if __name__ == "__main__":
    main()
