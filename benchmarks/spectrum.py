"""Benchmark: pixel-covariance spectrum of N x d uint8 samples (default 50,000 x 12,288).

    python benchmarks/spectrum.py                      # full size: ~10 min on 2 cores, < 8 GiB
    python benchmarks/spectrum.py --n 10000 --d 3072   # reduced size, ~1 min

1. Writes synthetic correlated data (rank-``--rank`` Gaussian factors with decaying scales plus
   isotropic noise around mid-grey, rounded to uint8) chunk by chunk into a temporary ``.npy``
   memmap, so the data never sits in RAM as floats.
2. In a fresh child process (so peak RSS is its own): ``audit.metrics.covariance.streaming_covariance``
   on the memmap, then ``eigenspectrum`` (eigenvalues). With ``--with-split`` a second child
   times what the spectrum test adds: ``centred_gram`` of ``--split-n`` rows (the
   stage's ``spectrum.test_samples``), the cross-fitted split, ``projected_covariance`` of all N
   rows (standing in for the GAN) along its m directions, and ``--null-draws`` null draws (the
   last ``--split-n`` rows standing in for the null split).
3. In another child: the plain numpy baseline ``np.cov(X / 255, rowvar=False)`` +
   ``np.linalg.eigvalsh`` on the first ``--baseline-n`` rows (float64 X and its centred copy must
   fit in RAM: 2 x 50,000 x 12,288 x 8 B = 9.8 GB would not). Its covariance time is
   extrapolated linearly to N (np.cov is one N x d x d product); its eigvalsh time is used as
   measured (it does not depend on N). The output says which figures are extrapolated.

Peak RSS is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of each child; it includes the
interpreter and torch (~0.3-0.4 GB) and the file-backed memmap pages read (N x d bytes).
Both sides use ``--threads`` threads (torch for ours, threadpoolctl-limited BLAS for numpy).
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


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def make_data(path: Path, n: int, d: int, rank: int, seed: int, chunk: int = 2000) -> None:
    """Low-rank + noise uint8 samples written into a .npy memmap, ``chunk`` rows at a time."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(rank, d)).astype(np.float32) / np.sqrt(d)  # ~orthonormal rows
    scales = (600.0 * np.exp(-np.arange(rank) / 10.0) + 60.0).astype(np.float32)  # grey levels
    mean = (128.0 + 40.0 * np.sin(np.linspace(0, 6 * np.pi, d))).astype(np.float32)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, d))
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        z = rng.standard_normal((rows, rank), dtype=np.float32) * scales
        x = mean + z @ basis + 6.0 * rng.standard_normal((rows, d), dtype=np.float32)
        out[start : start + rows] = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    out.flush()
    del out


def child_ours(args) -> dict:
    from audit.metrics import covariance as cv
    from audit.runtime import configure_torch

    configure_torch(args.threads)
    images = np.load(args.path, mmap_mode="r")
    t0 = time.perf_counter()
    cov = cv.streaming_covariance(images, chunk_size=args.chunk_size)
    t1 = time.perf_counter()
    eigs = cv.eigenspectrum(cov)
    t2 = time.perf_counter()
    np.save(args.eigs_out, eigs)
    return {"covariance_s": t1 - t0, "eig_s": t2 - t1, "total_s": t2 - t0, "peak_rss_gib": peak_rss_gib()}


def child_split(args) -> dict:
    """The spectrum test's own cost: Gram matrix, split, the N rows along m directions, null draws."""
    from audit.metrics import covariance as cv
    from audit.metrics import spectrum as sp
    from audit.runtime import configure_torch

    configure_torch(args.threads)
    images = np.load(args.path, mmap_mode="r")
    n_t = min(args.split_n, images.shape[0] // 2)
    t0 = time.perf_counter()
    gram, mean = cv.centred_gram(images[:n_t], chunk_size=args.chunk_size)
    n_a = n_t - n_t // 2
    split = sp.fit_split(gram[:n_a, :n_a], gram[n_a:, :n_a])
    t1 = time.perf_counter()
    directions = cv.combine_rows(images[:n_a], split.coef, mean, args.chunk_size)
    cv.projected_covariance(images, directions, args.chunk_size)
    t2 = time.perf_counter()
    cross = cv.cross_products(images[-n_t:], images[:n_t], mean, args.chunk_size)
    sp.null_statistics(gram, cross, n_a, n_t // 2, args.null_draws, np.random.default_rng(0))
    t3 = time.perf_counter()
    return {"split_rows": n_t, "m": split.m, "split_s": t1 - t0, "project_all_s": t2 - t1,
            "null_s": t3 - t2, "peak_rss_gib": peak_rss_gib()}


def child_baseline(args) -> dict:
    from threadpoolctl import threadpool_limits

    images = np.load(args.path, mmap_mode="r")
    with threadpool_limits(args.threads):
        x = np.asarray(images[: args.baseline_n], dtype=np.float64) / 255.0
        t0 = time.perf_counter()
        cov = np.cov(x, rowvar=False)
        t1 = time.perf_counter()
        eigs = np.linalg.eigvalsh(cov)[::-1]
        t2 = time.perf_counter()
    np.save(args.eigs_out, eigs)
    return {"covariance_s": t1 - t0, "eig_s": t2 - t1, "peak_rss_gib": peak_rss_gib()}


def run_child(kind: str, args, eigs_out: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--path", str(args.path), "--eigs-out", str(eigs_out),
           "--threads", str(args.threads), "--chunk-size", str(args.chunk_size),
           "--baseline-n", str(args.baseline_n), "--split-n", str(args.split_n),
           "--null-draws", str(args.null_draws)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}  # fmt: skip
    done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--d", type=int, default=12_288)
    parser.add_argument("--rank", type=int, default=64, help="rank of the synthetic signal")
    parser.add_argument("--baseline-n", type=int, default=10_000, help="rows for the numpy baseline")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--with-split", action="store_true", help="also time the spectrum test's own steps")
    parser.add_argument("--split-n", type=int, default=1000, help="real rows of the test (spectrum.test_samples)")
    parser.add_argument("--null-draws", type=int, default=200, help="null draws (spectrum.null_draws)")
    parser.add_argument("--tmpdir", default=None, help="where the temporary .npy goes")
    parser.add_argument("--out", default=None, help="also write the report as JSON here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--path", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--eigs-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        child = {"baseline": child_baseline, "ours": child_ours, "ours-split": child_split}[args.child]
        result = child(args)
        print(json.dumps(result))
        return

    args.baseline_n = min(args.baseline_n, args.n)
    with tempfile.TemporaryDirectory(dir=args.tmpdir, prefix="spectrum-bench-") as tmp:
        tmp = Path(tmp)
        args.path = tmp / "samples.npy"
        t0 = time.perf_counter()
        make_data(args.path, args.n, args.d, args.rank, args.seed)
        gen_s = time.perf_counter() - t0
        print(f"data: {args.n} x {args.d} uint8 ({args.n * args.d / 2**30:.2f} GiB on disk), "
              f"generated in {gen_s:.1f} s", flush=True)  # fmt: skip

        ours = run_child("ours", args, tmp / "ours.npy")
        print(f"ours: covariance {ours['covariance_s']:.1f} s + eigvalsh {ours['eig_s']:.1f} s = "
              f"{ours['total_s']:.1f} s, peak RSS {ours['peak_rss_gib']:.2f} GiB", flush=True)  # fmt: skip
        split = None
        if args.with_split:
            split = run_child("ours-split", args, tmp / "unused.npy")
            print(f"spectrum test: Gram matrix + split of {split['split_rows']} rows (m = {split['m']}) "
                  f"{split['split_s']:.1f} s, all {args.n} rows along m directions {split['project_all_s']:.1f} s, "
                  f"{args.null_draws} null draws {split['null_s']:.1f} s, peak RSS {split['peak_rss_gib']:.2f} GiB",
                  flush=True)  # fmt: skip

        base = run_child("baseline", args, tmp / "base.npy")
        scale = args.n / args.baseline_n
        extrapolated = scale != 1
        base_cov_s = base["covariance_s"] * scale
        base_total = base_cov_s + base["eig_s"]
        note = (f"np.cov measured on {args.baseline_n} rows ({base['covariance_s']:.1f} s) and "
                f"extrapolated x{scale:.2f} to {args.n} rows" if extrapolated
                else f"measured on all {args.n} rows")  # fmt: skip
        print(f"numpy baseline: np.cov {base_cov_s:.1f} s ({note}) + eigvalsh {base['eig_s']:.1f} s = "
              f"{base_total:.1f} s, peak RSS {base['peak_rss_gib']:.2f} GiB at {args.baseline_n} rows",
              flush=True)  # fmt: skip
        ratio = base_total / ours["total_s"]
        print(f"speed-up vs numpy baseline: {ratio:.2f}x" + (" (baseline partly extrapolated)" if extrapolated else ""))

        report = {
            "n": args.n, "d": args.d, "rank": args.rank, "threads": args.threads,
            "chunk_size": args.chunk_size, "generate_s": gen_s, "ours": ours, "split_test": split,
            "baseline": {**base, "rows": args.baseline_n, "covariance_s_extrapolated": base_cov_s,
                         "total_s": base_total, "extrapolated": extrapolated, "note": note},
            "speedup": ratio,
        }  # fmt: skip
        if not extrapolated:
            a, b = np.load(tmp / "ours.npy"), np.load(tmp / "base.npy")
            report["max_eig_abs_diff_rel_top"] = float(np.abs(a - b).max() / b[0])
            print(f"eigenvalues agree with numpy: max |diff| / top = {report['max_eig_abs_diff_rel_top']:.1e}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
