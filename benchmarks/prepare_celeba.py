"""Benchmark: prepare a CelebA-sized dataset, report images/s, peak RSS and size on disk.

    python -m benchmarks.prepare_celeba --n 5000     # quick check, from the repository root
    python -m benchmarks.prepare_celeba              # the full 200,000 images

Writes ``n`` synthetic 178x218 JPEGs (smooth random colour fields plus noise, ~5-10 KB each
like the real aligned faces) and the official ``list_attr_celeba.txt`` /
``list_eval_partition.txt`` (audit/data/synthetic.py) into a temporary directory, then runs the CelebA loader and
:func:`audit.data.store.prepare` on it, exactly as ``python -m audit.prepare`` would. Exits
with status 1 if the peak resident set size reaches the 4 GiB budget.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path


from audit.data import load_source
from audit.data.store import prepare
from audit.data.synthetic import write_celeba

RSS_BUDGET = 4 * 2**30  # bytes
def disk_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="number of images (default 200000)")
    parser.add_argument("--workdir", default=None, help="where to put the temporary data (default: system temp)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench_celeba_", dir=args.workdir))
    try:
        start = time.perf_counter()
        write_celeba(work / "celeba", args.n, args.seed, noise=5.0)
        written = time.perf_counter()
        source = load_source("celeba", root=str(work / "celeba"))
        loaded = time.perf_counter()
        prepared = prepare(source, work / "prepared", {"train": 0.45, "val": 0.1, "pool": 0.2, "test": 0.25},
                           seed=args.seed, progress=False)
        done = time.perf_counter()
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
        print(f"images            {args.n}  -> {prepared.images.shape} {prepared.images.dtype}")
        print(f"write JPEGs       {written - start:8.1f} s   ({args.n / (written - start):.0f} images/s)")
        print(f"load (parse)      {loaded - written:8.2f} s")
        print(f"prepare (decode)  {done - loaded:8.1f} s   ({args.n / (done - loaded):.0f} images/s)")
        print(f"peak RSS          {peak_rss / 2**20:8.0f} MiB (budget {RSS_BUDGET / 2**20:.0f} MiB)")
        print(f"input on disk     {disk_size(work / 'celeba') / 2**20:8.1f} MiB")
        print(f"prepared on disk  {disk_size(work / 'prepared') / 2**20:8.1f} MiB")
        print(f"split sizes       {prepared.meta['split_sizes']}")
        return 0 if peak_rss < RSS_BUDGET else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
