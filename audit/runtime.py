"""Device, threads and seeds: the three things that make a run reproducible and not oversubscribed."""

from __future__ import annotations

import os
import random

import numpy as np


def configure_torch(threads: int | None = None, seed: int | None = None):
    """Limit torch to ``threads`` CPU threads (Snakemake's ``threads:``) and seed every RNG.

    Returns the imported ``torch`` module so callers do not pay its import before they need it.
    """
    import torch

    if threads:
        # Snakemake grants threads from --cores, which may exceed the machine's cores
        # (`--cores 8` on a 2-core machine): more torch threads than cores only slows down.
        threads = max(1, min(int(threads), len(os.sched_getaffinity(0))))
        torch.set_num_threads(threads)
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return torch


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, then ``mps``, else ``cpu``."""
    import torch

    if device != "auto":
        if device.startswith("cuda") and not torch.cuda.is_available():
            from audit.io import AuditInputError

            raise AuditInputError(f"device: '{device}' requested but no CUDA device is visible")
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def run_seed(*parts: int) -> int:
    """A 31-bit seed derived from integers (base seed, sample size, role...)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


def configure_workers(threads: int, seed: int) -> int:
    """Seed every RNG, keep torch at one intra-op thread and return the number of worker
    processes for :func:`parallel_map`: ``threads`` (Snakemake's ``threads:``) capped at the
    machine's cores.

    For stages that train many small models: each trains single-threaded, in ``threads``
    parallel processes. Small networks gain little from intra-op threads, which on a shared,
    busy 2-core machine made the diversity real curve 5x slower (413 s against 81 s), and with
    one thread per model the results are the same for any ``threads``.
    """
    configure_torch(1, seed)
    return max(1, min(int(threads), len(os.sched_getaffinity(0))))


#: ``(fn, shared)`` of a forked :func:`parallel_map` worker, set by its initializer in the
#: worker process only (fork copies the arguments without pickling them); never in the caller
_FORKED: tuple = ()


def _forked_init(fn, shared) -> None:
    global _FORKED
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True, warn_only=True)
    _FORKED = (fn, shared)


def _forked_call(task):
    fn, shared = _FORKED
    return fn(shared, task)


def parallel_map(fn, tasks: list, shared, workers: int, *, device: str = "cpu", each=None) -> list:
    """``[fn(shared, task) for task in tasks]``, in ``workers`` forked processes when > 1.

    ``shared``: what every task reads (large arrays, memory maps); the processes are forked
    (Linux), so it is shared copy-on-write, never pickled; only tasks and results are. Each
    worker runs torch on one thread (see :func:`configure_workers`). Sequential, in this
    process, with one worker or one task, on a ``device`` other than ``cpu`` (one process owns
    a GPU), or where fork is unavailable. ``each(task, result)`` is called on every result in
    task order as it arrives (progress logs). Results come back in task order.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    tasks = list(tasks)
    parallel = (workers > 1 and len(tasks) > 1 and device == "cpu"
                and "fork" in multiprocessing.get_all_start_methods())
    if parallel:
        pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), initializer=_forked_init,
                                   initargs=(fn, shared), mp_context=multiprocessing.get_context("fork"))
        results = pool.map(_forked_call, tasks)
    else:
        pool, results = None, (fn(shared, task) for task in tasks)
    out = []
    try:
        for task, result in zip(tasks, results):
            out.append(result)
            if each is not None:
                each(task, result)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return out
