"""Percentile bootstrap intervals shared by every metric that resamples (skew, diversity)."""

from __future__ import annotations

import numpy as np


def percentile_interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Two-sided percentile bootstrap interval of (B,) ``replicates`` at coverage ``level``.

    Percentiles use the inverted-CDF definition: each bound is an actual replicate, never an
    interpolation. Replicates may be ``-inf`` / ``+inf`` (a KL divergence with a missing class;
    a sample size censored below or above the curve it was read from): they keep their order,
    so a bound that lands among them is itself infinite rather than a made-up number, and a
    handful of them in a tail beyond the bound does not move it.
    """
    values = np.asarray(replicates, dtype=np.float64).ravel()
    if values.size == 0 or np.isnan(values).any():
        raise ValueError("percentile_interval: need a non-empty array of replicates without NaN")
    tail = round((1 - level) / 2 * 100, 9)  # (1 - 0.95) / 2 * 100 is 2.5000000000000022 in floats
    low, high = np.percentile(values, [tail, 100 - tail], method="inverted_cdf")
    return float(low), float(high)
