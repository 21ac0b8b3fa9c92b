"""Bootstrap intervals shared by every metric that resamples (skew, diversity): percentile, basic
(reverse percentile) and bias-corrected percentile."""

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


def basic_interval(estimate: float, replicates: np.ndarray, level: float = 0.95,
                   minimum: float | None = None, maximum: float | None = None) -> tuple[float, float]:
    """Basic (reverse-percentile) bootstrap interval ``[2 t - t*_(1-a/2), 2 t - t*_(a/2)]`` of an
    estimate ``t`` from (B,) finite ``replicates`` (Davison & Hinkley 1997, eq. 5.6): the bootstrap
    distribution of t* - t stands in for that of t - theta, so a bias of the estimator is
    subtracted once rather than added (as the percentile interval does). Bounds outside
    [``minimum``, ``maximum``] (a parameter's range: [0, 1] for a total variation) are clipped to it.
    """
    low_q, high_q = percentile_interval(_finite(replicates, "basic_interval"), level)
    return _clipped(2 * estimate - high_q, 2 * estimate - low_q, minimum, maximum)


def recentred_interval(estimate: float, replicates: np.ndarray, level: float = 0.95,
                       minimum: float | None = 0.0, maximum: float | None = None) -> tuple[float, float]:
    """Interval for the value a statistic is *expected* to take at these sample sizes (its
    finite-sample bias included, as in the real-vs-real value it is compared with): the bootstrap
    distribution of ``t* - mean(t*)`` stands in for that of ``t - E[t]``, so the interval is
    ``[t - (q_hi - mean*), t - (q_lo - mean*)]``, clipped to [``minimum``, ``maximum``]. For FD a plain
    percentile interval would add the bias once more (resamples repeat rows) and a basic interval
    would subtract it: either moves the interval away from a real-vs-real value with the same
    bias (``FEATURE_METRICS.md``). Also used for the inception-style score, whose resamples are
    biased low near its ceiling K."""
    values = np.asarray(replicates, dtype=np.float64)
    low_q, high_q = percentile_interval(values, level)
    centre = float(values.mean())
    return _clipped(estimate - (high_q - centre), estimate - (low_q - centre), minimum, maximum)


def _clipped(low: float, high: float, minimum: float | None, maximum: float | None) -> tuple[float, float]:
    """(low, high) with both bounds clipped to [``minimum``, ``maximum``] (None: no bound)."""
    if minimum is not None:
        low, high = max(low, minimum), max(high, minimum)
    if maximum is not None:
        low, high = min(low, maximum), min(high, maximum)
    return float(low), float(high)


def bias_corrected_interval(estimate: float, replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Bias-corrected (BC) percentile interval (Efron 1987): percentiles ``Phi(2 z0 + z_a/2)`` and
    ``Phi(2 z0 + z_1-a/2)`` of (B,) finite ``replicates``, with ``z0 = Phi^-1(share of replicates
    below the estimate, ties counted half)``, the share kept within [1/(2B), 1 - 1/(2B)]."""
    from scipy.stats import norm

    values = _finite(replicates, "bias_corrected_interval")
    share = (np.count_nonzero(values < estimate) + 0.5 * np.count_nonzero(values == estimate)) / values.size
    z0 = norm.ppf(np.clip(share, 0.5 / values.size, 1 - 0.5 / values.size))
    z = norm.ppf((1 - level) / 2)
    low, high = np.quantile(values, [norm.cdf(2 * z0 + z), norm.cdf(2 * z0 - z)], method="inverted_cdf")
    return float(low), float(high)


def _finite(replicates: np.ndarray, who: str) -> np.ndarray:
    values = np.asarray(replicates, dtype=np.float64).ravel()
    if values.size == 0 or not np.isfinite(values).all():
        raise ValueError(f"{who}: need a non-empty array of finite replicates")
    return values
