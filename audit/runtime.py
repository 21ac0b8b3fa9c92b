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
