"""Benchmark: exact pair search of audit.metrics.neighbours against scikit-learn and faiss.

    python benchmarks/pair_search.py                 # full size (default), a few minutes on 2 cores
    python benchmarks/pair_search.py --n-pairs 5000 --n-queries 2000 --n-references 20000   # quick

Two tasks, float32, d = 512 (the size of a ResNet-18 embedding), unit-length rows (like the
annotator's embeddings) drawn around 1,000 random centres:

* **pairs**: the 20 closest pairs among S = 20,000 rows (the birthday test at CelebA scale).
  ganaudit: ``closest_pairs`` (upper triangle only, chunked). scikit-learn and faiss have no
  closest-pairs call: each row's 21 nearest rows (itself included), then the 20 smallest pairs
  (a pair in the global top 20 is among either row's 20 nearest, so this is exact).
* **nearest**: the nearest of 160,000 references (a CelebA-sized training set) for each of
  10,000 queries: ``nearest(q, r, 1)``; ``NearestNeighbors(n_neighbors=1, algorithm="brute")``;
  ``faiss.IndexFlatL2``.

ganaudit runs twice: ``ganaudit`` with its default path (the bf16 prefilter where a bf16 GEMM is
timed 2x faster than float32, with the blocks it scored, rescored entries and float32 fallback
blocks printed) and ``ganaudit-fp32`` (``fast=False``); the two must give identical pairs,
indices and float64 distances.

Each (task, library) runs in a fresh child process (``python benchmarks/pair_search.py --child
...``) on the same ``.npy`` files, so its peak RSS (``ru_maxrss``, including the interpreter,
the library and the data: 330 MB of references) is its own; every library gets ``--threads``
threads (torch threads, faiss OpenMP, threadpoolctl for scikit-learn). Wall time and CPU time
(user + system, all threads) are both printed: on a machine shared with other jobs the wall
time depends on the load, the CPU time much less (an OpenMP spin-wait still counts). The parent checks that
the three agree (same pairs; same nearest index, or a distance equal to 1e-5) and prints the
times, speed-ups and peak RSS. faiss is a benchmark-only dependency (requirements-bench.txt);
without it that column is skipped.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("ganaudit", "ganaudit-fp32", "sklearn", "faiss")


def make_rows(n: int, d: int, seed: int) -> np.ndarray:
    """Unit-length float32 rows around 1,000 random centres (an embedding-like cloud)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, d), dtype=np.float32)
    x = centres[rng.integers(0, 1000, n)] + 0.8 * rng.standard_normal((n, d), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def pairs_from_neighbours(index: np.ndarray, distance: np.ndarray, k: int):
    """The k closest pairs (i < j) from each row's nearest rows (self excluded)."""
    rows = np.repeat(np.arange(index.shape[0]), index.shape[1])
    cols, dist = index.ravel(), distance.ravel()
    keep = rows != cols
    i, j = np.minimum(rows, cols)[keep], np.maximum(rows, cols)[keep]
    order = np.lexsort((j, i, dist[keep]))
    i, j, dist = i[order], j[order], dist[keep][order]
    first = np.ones(i.size, dtype=bool)
    first[1:] = (i[1:] != i[:-1]) | (j[1:] != j[:-1])  # each pair appears from both of its rows
    return i[first][:k], j[first][:k], dist[first][:k]


def child(args) -> dict:
    """One (task, library) run: time, peak RSS and the result (saved for the agreement check)."""
    if args.library == "faiss":
        import faiss

        faiss.omp_set_num_threads(args.threads)
    from threadpoolctl import threadpool_limits

    import torch

    torch.set_num_threads(args.threads)
    data = {name: np.load(Path(args.dir) / f"{name}.npy") for name in
            (("pairs",) if args.task == "pairs" else ("queries", "references"))}
    k = args.k
    fast = {"ganaudit": None, "ganaudit-fp32": False}.get(args.library)
    with threadpool_limits(args.threads):
        start, cpu_start = time.perf_counter(), time.process_time()
        if args.task == "pairs":
            x = data["pairs"]
            if args.library.startswith("ganaudit"):
                from audit.metrics.neighbours import closest_pairs

                found = closest_pairs(x, k, fast=fast)
                i, j, d = found.i, found.j, found.distance
            else:
                index, distance = search(args.library, x, x, k + 1)
                i, j, d = pairs_from_neighbours(index, distance, k)
            result = {"i": i, "j": j, "d": d}
        else:
            if args.library.startswith("ganaudit"):
                from audit.metrics.neighbours import nearest

                index, distance = nearest(data["queries"], data["references"], 1, fast=fast)
            else:
                index, distance = search(args.library, data["queries"], data["references"], 1)
            result = {"index": index[:, 0], "d": distance[:, 0]}
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    np.savez(Path(args.dir) / f"{args.task}_{args.library}.npz", **result)
    path = ""
    if args.library.startswith("ganaudit"):
        from audit.metrics import neighbours_bf16

        stats = neighbours_bf16.STATS
        path = "bf16 prefilter: " + ", ".join(f"{v:,} {n}" for n, v in stats.items()) if stats else "float32"
    return {"seconds": seconds, "cpu_seconds": cpu, "path": path,
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def search(library: str, queries: np.ndarray, references: np.ndarray, k: int):
    """(index, Euclidean distance) of the k nearest references, with scikit-learn or faiss."""
    if library == "sklearn":
        from sklearn.neighbors import NearestNeighbors

        distance, index = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(references).kneighbors(queries)
        return index, distance
    import faiss

    flat = faiss.IndexFlatL2(references.shape[1])
    flat.add(references)
    distance, index = flat.search(queries, k)
    return index, np.sqrt(np.maximum(distance, 0))


def run_child(task: str, library: str, args, workdir: str) -> dict | None:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--task", task, "--library", library,
               "--dir", workdir, "--threads", str(args.threads), "--k", str(args.k)]
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": str(Path(sys.executable).parent)})
    if out.returncode != 0:
        print(f"{task} / {library}: failed ({out.stderr.strip().splitlines()[-1] if out.stderr else out.returncode})")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def agreement(task: str, library: str, workdir: str) -> str:
    ours, other = (np.load(Path(workdir) / f"{task}_{name}.npz") for name in ("ganaudit", library))
    if task == "pairs":
        same = np.array_equal(ours["i"], other["i"]) and np.array_equal(ours["j"], other["j"])
        if same and library == "ganaudit-fp32":
            same = np.array_equal(ours["d"], other["d"])
        return "same pairs" if same else f"pairs differ (max |d| gap {np.abs(ours['d'] - other['d']).max():.2e})"
    if library == "ganaudit-fp32":  # the two paths: identical indices and float64 distances
        identical = (ours["index"] == other["index"]) & (ours["d"] == other["d"])
        return f"{identical.mean():.4%} identical (index and distance)"
    same = (ours["index"] == other["index"]) | (np.abs(ours["d"] - other["d"]) <= 1e-5)
    return f"{same.mean():.4%} same nearest"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sizes = {"n-pairs": (20000, "S: rows of the closest-pairs task"), "n-queries": (10000, "queries"),
             "n-references": (160000, "references"), "d": (512, "dimension"),
             "k": (20, "closest pairs of the pairs task"), "threads": (2, "threads of every library"),
             "seed": (0, "seed of the data")}
    for name, (default, text) in sizes.items():
        parser.add_argument(f"--{name}", type=int, default=default, help=f"{text} (default {default})")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--library", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    with tempfile.TemporaryDirectory(prefix="pair_search_") as workdir:
        np.save(Path(workdir) / "pairs.npy", make_rows(args.n_pairs, args.d, args.seed))
        np.save(Path(workdir) / "queries.npy", make_rows(args.n_queries, args.d, args.seed + 1))
        np.save(Path(workdir) / "references.npy", make_rows(args.n_references, args.d, args.seed + 2))
        print(f"pairs: top {args.k} of S = {args.n_pairs:,}; nearest: {args.n_queries:,} queries x "
              f"{args.n_references:,} references; d = {args.d}, float32, {args.threads} threads")
        for task in ("pairs", "nearest"):
            results = {lib: run_child(task, lib, args, workdir) for lib in LIBRARIES}
            ours = results["ganaudit"]
            print(f"\n{task}:")
            for lib, r in results.items():
                if r is None:
                    continue
                ratio = "" if lib == "ganaudit" or ours is None else \
                    (f"  ganaudit {r['seconds'] / ours['seconds']:.2f}x faster (CPU time "
                     f"{r['cpu_seconds'] / ours['cpu_seconds']:.2f}x), {agreement(task, lib, workdir)}")
                print(f"  {lib:13s} {r['seconds']:8.2f} s (CPU {r['cpu_seconds']:7.1f} s)   peak RSS "
                      f"{r['peak_rss_gib']:.2f} GiB{ratio}{'  [' + r['path'] + ']' if r['path'] else ''}")


if __name__ == "__main__":
    main()
