"""Mode coverage on Stacked MNIST: the literature's two numbers and ganaudit's corrected ones.

The literature (Metz et al. 2017; VEEGAN; PacGAN) labels N = 26,000 samples with a pretrained
MNIST classifier, channel by channel, and reports

* **modes**: the number of the 1,000 classes with at least one sample (:func:`literature_scores`);
* **KL**: KL(p_gen || uniform) in nats, p_gen the samples' label frequencies.

Both count annotator errors as generated classes: a sample of mode j labelled i puts i among the
"covered" modes (a phantom mode) and spreads p_gen. Even a perfect generator has KL > 0 at finite
N (:func:`kl_floor`: about (K - 1) / 2N = 0.019 nats at N = 26,000, K = 1,000).

ganaudit's numbers (:func:`corrected_modes`) un-mix the label counts with the Kronecker
confusion of the annotator (:mod:`audit.metrics.kronecker`): corrected counts c = N C^-1 m and
the corrected distribution q (c / N projected onto the simplex), with per-class bootstrap
intervals, and its KL to uniform over the detected modes. A mode
is **detected** when it holds more labels than the other modes' misreads explain: per mode k a
posterior predictive p-value of H0_k "mode k is empty" (:func:`leak_p_values`: its label count
against Poisson(N sum_{j != k} C_kj q_j), with C drawn from what the test digits say about the
per-digit confusion, one pseudo-count per cell (:data:`CONFUSION_PRIOR`) included, so a
confusion seen in none of the ~125 test digits of a class still has mass), then Benjamini-Hochberg at level
``fdr`` over the 1,000 modes. The detected count estimates the modes covered: a mode too small
to stand out of its neighbours' misreads is missed (the smallest detected label count is
reported). ``MODES.md`` has the method, the rejected alternatives and the error rates measured
on planted generators of M modes.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from audit.metrics import kronecker as kr
from audit.metrics.skew import kl_divergence, project_to_simplex

#: samples of the literature's protocol (VEEGAN, PacGAN: 26,000 samples, a pretrained classifier)
LITERATURE_N = 26_000
#: pseudo-counts added to every cell of each per-digit confusion column in the detection's
#: predictive draws only (the uniform Dirichlet prior); point estimates use the raw counts.
#: Jeffreys' 1/2 was measured and rejected: MODES.md
CONFUSION_PRIOR = 1.0

#: published Stacked MNIST rows: (model, modes, KL nats, source)
PUBLISHED = (
    ("DCGAN", 99.0, 3.40, "PacGAN Table 2"),
    ("ALI", 16.0, 5.40, "PacGAN Table 2"),
    ("Unrolled GAN", 48.7, 4.32, "PacGAN Table 2"),
    ("VEEGAN", 150.0, 2.95, "PacGAN Table 2"),
    ("PacDCGAN2", 1000.0, 0.06, "PacGAN Table 2"),
    ("DCGAN, discriminator 1/4 of the generator", 30.6, 5.99, "PacGAN Table 3 (50 runs)"),
    ("PacDCGAN4, discriminator 1/4 of the generator", 667.0, 1.81, "PacGAN Table 3 (50 runs)"),
)


def literature_scores(predicted: np.ndarray, n_classes: int = kr.N_CLASSES) -> dict:
    """The literature's numbers of (N,) predicted classes: ``modes`` (classes with >= 1 sample)
    and ``kl_to_uniform`` (KL(label frequencies || uniform), nats), at ``n`` = N samples."""
    counts = np.bincount(np.asarray(predicted, dtype=np.int64), minlength=n_classes)
    return {"n": int(counts.sum()), "modes": int(np.count_nonzero(counts)),
            "kl_to_uniform": kl_divergence(counts / counts.sum(), np.full(n_classes, 1.0 / n_classes))}


def kl_floor(n: int, n_classes: int = kr.N_CLASSES, draws: int = 200, seed: int = 0) -> dict:
    """The literature KL of a perfect generator labelled by a perfect annotator at N = ``n``:
    KL(multinomial(n, uniform) / n || uniform) over ``draws`` seeded draws (mean and 95th
    percentile), beside its delta-method value (K - 1) / 2n."""
    rng = np.random.default_rng(seed)
    u = np.full(n_classes, 1.0 / n_classes)
    values = np.array([kl_divergence(c / n, u) for c in rng.multinomial(n, u, size=draws)])
    return {"n": n, "mean": float(values.mean()), "q95": float(np.quantile(values, 0.95)),
            "approximation": (n_classes - 1) / (2 * n), "draws": draws}


def modes_with_at_least(counts: np.ndarray, k: int) -> int:
    """Classes whose label count is >= ``k`` (k = 1: the literature's count)."""
    return int(np.count_nonzero(np.asarray(counts) >= k))


def benjamini_hochberg(p_values: np.ndarray, fdr: float) -> np.ndarray:
    """(..., K) boolean discoveries of the Benjamini-Hochberg step-up procedure at level ``fdr``
    on each row of (..., K) p-values."""
    p = np.asarray(p_values, dtype=np.float64)
    k = p.shape[-1]
    ordered = np.sort(p, axis=-1)
    below = ordered <= fdr * np.arange(1, k + 1) / k
    n_found = np.where(below.any(axis=-1), k - np.argmax(below[..., ::-1], axis=-1), 0)
    cut = np.take_along_axis(ordered, np.maximum(n_found - 1, 0)[..., None], axis=-1)
    return (p <= cut) & (n_found[..., None] > 0)


def leak_p_values(counts: np.ndarray, distribution: np.ndarray, test_true: np.ndarray, test_predicted: np.ndarray,
                  n_draws: int, rng: np.random.Generator, prior: float = CONFUSION_PRIOR) -> np.ndarray:
    """(1000,) p-value of H0_k "mode k is empty: its labels are the other modes' misreads".

    Under H0_k the label count of mode k is Poisson(lambda_k), lambda_k = N sum_{j != k} C_kj q_j,
    with q the corrected distribution and C = A (x) A (x) A. A is uncertain: ``n_draws``
    predictive draws (:func:`audit.metrics.kronecker.predictive_confusions`: the test digits'
    posterior with ``prior`` pseudo-counts per cell, then a finite generator source) give
    lambda_k's spread, and the p-value is the Poisson tail P(X >= count_k) averaged over them (a posterior predictive p-value; the
    averaged tail stays exact where a few hundred draws could not resolve p = 1e-5)."""
    counts = np.asarray(counts, dtype=np.float64)
    confusions = kr.predictive_confusions(test_true, test_predicted, n_draws, rng, prior=prior)
    leak = counts.sum() * (kr.kron_apply(confusions, distribution) - kr.kron_diagonal(confusions) * distribution)
    return stats.poisson.sf(counts - 1, np.maximum(leak, 0.0)).mean(axis=0)


def corrected_modes(counts: np.ndarray, test_true: np.ndarray, test_predicted: np.ndarray, fdr: float,
                    n_bootstrap: int, seed: int, level: float = 0.95, prior: float = CONFUSION_PRIOR) -> dict:
    """ganaudit's mode figures of one GAN (see the module docstring).

    ``counts`` (1000,) argmax label counts of the GAN's N samples; ``test_true``,
    ``test_predicted`` (M,) the annotator's held-out digits and its predictions. Returns the
    corrected counts N C^-1 m (not projected), each mode's p-value of H0 "empty"
    (:func:`leak_p_values`, ``n_bootstrap`` predictive draws, ``prior`` pseudo-counts),
    ``detected`` (Benjamini-Hochberg
    at ``fdr``) and their number, the corrected distribution (projected onto the simplex) with
    per-class 95% percentile bounds (bootstrap of the GAN's labels and of the test digits, as the
    skew stage's: :mod:`audit.metrics.kronecker`), and the KL to uniform of the corrected
    distribution restricted to the detected modes (None when none is).
    """
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum()
    confusion = kr.channel_confusion(test_true, test_predicted)
    corrected = n * kr.kron_solve(counts / n, confusion)
    distribution = project_to_simplex(corrected / n)
    detection_seed, bootstrap_seed = np.random.SeedSequence(seed).spawn(2)
    p_values = leak_p_values(counts, distribution, test_true, test_predicted, n_bootstrap,
                             np.random.default_rng(detection_seed), prior)
    detected = benjamini_hochberg(p_values, fdr)
    rng = np.random.default_rng(bootstrap_seed)
    boot_counts = rng.multinomial(int(n), counts / n, size=n_bootstrap)
    boot = kr.kron_corrected(boot_counts / n, kr.bootstrap_confusions(test_true, test_predicted, n_bootstrap, rng))
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2], axis=0, method="inverted_cdf")
    on_detected = distribution * detected
    return {
        "n": int(n), "confusion": confusion, "corrected_counts": corrected, "p_values": p_values,
        "detected": detected, "modes_detected": int(detected.sum()),
        "smallest_detected_count": float(counts[detected].min()) if detected.any() else None,
        "distribution": distribution, "distribution_low": low, "distribution_high": high,
        # KL of the corrected distribution kept on the detected modes: the projection leaves the
        # correction's noise on absent modes, which biases KL(distribution || uniform) low (MODES.md)
        "kl_to_uniform": (kl_divergence(on_detected / on_detected.sum(), np.full(counts.size, 1.0 / counts.size))
                          if on_detected.sum() > 0 else None),
        "fdr": fdr, "bootstrap": n_bootstrap,
    }
