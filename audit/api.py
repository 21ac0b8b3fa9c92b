"""ganaudit on arrays: the audit's metrics as one-line calls from a notebook or a script
(``docs/API.md`` has a worked example on digits).

Every function wraps the library function the workflow's stage calls (named in its docstring)
with the same arguments, so the same arrays and options give the stage's numbers
(``tests/test_api.py``, and ``tests/test_package.py`` on a finished run). Each returns a frozen
dataclass: :class:`Result` (``value``, ``interval``, ``method``, the ``verdict`` where the stage
makes one, ``details``: the stage's JSON-ready figures) or a small group of them. An option left
at None takes the packaged default config.yaml's value (the schema's default where config.yaml
is silent): :func:`defaults`. Images are uint8 (N, H, W, C), features float (N, d), class
probabilities float (N, K), labels int (N,) in [0, K); anything else raises
:class:`audit.io.AuditInputError` (a ValueError) naming the argument. Never imports Snakemake.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from audit.io import AuditInputError
from audit.metrics.verdict import Verdict

__all__ = ["Result", "SkewResult", "FeatureMetrics", "defaults", "class_skew", "feature_metrics", "frechet_distance",
           "precision_recall", "vendi_score", "covariance_spectrum", "n_equiv",
           "memorisation", "support_size", "two_sample_test"]


@dataclass(frozen=True)
class Result:
    """One figure: ``value`` (None when undefined), its ``interval`` (low, high) or None (the
    stage reports none, or it is undefined: ``method`` or ``details`` says why), the ``method``
    behind both, the :class:`~audit.metrics.verdict.Verdict` when the stage makes one, and
    ``details``: the stage's JSON-ready figures (sample sizes, real-vs-real values, ...)."""

    name: str
    value: float | None
    interval: tuple[float, float] | None
    method: str
    verdict: Verdict | None = None
    details: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class SkewResult:
    """The three class-distribution estimates (``argmax``, ``confident``, ``corrected``: value =
    total variation to the real class mix) and the two chi-square tests (value = chi2), each a
    :class:`Result` with its verdict; ``details``: the skew stage's whole JSON dict."""

    estimates: dict[str, Result]
    chi_square: dict[str, Result]
    details: dict = field(repr=False)


@dataclass(frozen=True)
class FeatureMetrics:
    """FD, KID, the inception-style score, precision / recall / density / coverage and Vendi of
    one GAN, as the ``feature_metrics`` stage computes them (``details``: its JSON dict)."""

    fd: Result
    kid: Result
    inception_score: Result
    precision: Result
    recall: Result
    density: Result
    coverage: Result
    vendi: Result
    details: dict = field(repr=False)


# defaults and argument checks
@functools.lru_cache(maxsize=1)
def _default_config() -> dict:
    import yaml

    from audit.config import load_config_file
    from audit.workflow_files import default_config, schema

    properties = yaml.safe_load(schema().read_text())["properties"]
    config = load_config_file(default_config())
    merged = {}
    for section, spec in properties.items():
        if isinstance(spec, dict) and "properties" in spec:
            values = {key: sub["default"] for key, sub in spec["properties"].items() if "default" in sub}
            merged[section] = {**values, **(config.get(section) or {})}
        else:
            merged[section] = config.get(section, spec.get("default") if isinstance(spec, dict) else None)
    return merged


def defaults(section: str | None = None) -> Any:
    """The options every function here falls back to: the packaged default config.yaml, with
    the schema's defaults for keys it does not set (``defaults("skew")`` -> {"alpha": ...})."""
    config = _default_config()
    return dict(config) if section is None else config[section]


def _fill(section: str, given: dict) -> dict:
    """``given`` with None values replaced by ``defaults(section)``'s."""
    values = defaults(section)
    return {key: values[key] if value is None else value for key, value in given.items()}


def _seed(seed: int | None) -> int:
    return int(defaults("seed") if seed is None else seed)


def _array(x, name: str, ndim: int, kind: str = "float", min_rows: int = 1) -> np.ndarray:
    """``x`` as an array of ``ndim`` dimensions and at least ``min_rows`` rows, of ``kind``
    (float: any real numbers, finite; int: integers; bool: booleans or 0/1; uint8: images)."""
    a = np.asarray(x)
    if a.ndim != ndim or a.shape[0] < min_rows:
        raise AuditInputError(f"{name}: expected {ndim} dimensions and >= {min_rows} rows, got shape {a.shape}")
    if kind == "int" and not np.issubdtype(a.dtype, np.integer):
        raise AuditInputError(f"{name}: expected integer class indices, got {a.dtype}")
    if kind == "bool" and not (a.dtype == bool or (np.issubdtype(a.dtype, np.integer) and np.isin(a, (0, 1)).all())):
        raise AuditInputError(f"{name}: expected booleans (was each image classified right), got {a.dtype}")
    if kind == "uint8" and a.dtype != np.uint8:
        raise AuditInputError(f"{name}: expected uint8 images (N, H, W, C), got {a.dtype}")
    if kind == "float" and not (np.issubdtype(a.dtype, np.number) and np.isfinite(a).all()):
        raise AuditInputError(f"{name}: expected finite numbers, got {a.dtype}" + ("" if not np.issubdtype(
            a.dtype, np.number) else " with NaN or inf"))
    return a


def _same_width(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    if a.shape[1:] != b.shape[1:]:
        raise AuditInputError(f"{name_b}: rows of shape {b.shape[1:]}, {name_a} has {a.shape[1:]}")


def _interval(pair) -> tuple[float, float] | None:
    return None if pair is None or None in tuple(pair) else (float(pair[0]), float(pair[1]))


def _verdict(entry: dict) -> Verdict:
    """A :class:`Verdict` back from its ``to_json()`` dict (the form the stages return)."""
    names = Verdict.__dataclass_fields__
    kept = {key: value for key, value in entry.items() if key in names}
    return Verdict(**{**kept, "interval": _interval(kept.get("interval"))})


# class skew (audit.skew / audit.metrics.skew)
def class_skew(predicted, confidence, real_true, real_predicted, real_confidence, reference, *,
               threshold: float | None = None, alpha: float | None = None, null_draws: int | None = None,
               bootstrap: int | None = None, seed: int | None = None, class_names=None,
               planted=None) -> SkewResult:
    """Class-distribution skew of a GAN from an annotator's outputs: three estimates of its class
    mix (argmax labels; confident labels only; confusion-corrected), each with its total
    variation to the real mix, a bootstrap interval and a Monte Carlo test against perfect
    generators, plus chi-square tests (:func:`audit.skew.audit_skew`, the skew stage's function).

    predicted, confidence : (N,) int classes in [0, K) and float calibrated confidences in [0, 1]
        the annotator gave the N GAN samples (the label stage's ``predicted``, ``confidence``).
    real_true, real_predicted, real_confidence : (T,) the real test images' true classes and the
        annotator's outputs on them (its error rates; ``annotator/test_predictions.csv``).
    reference : (K,) the real class mix (sums to 1; the prepared dataset's class distribution).
    threshold : label.confidence_threshold; alpha, null_draws, bootstrap : skew.*; seed : seed.
    class_names : K names for the key numbers (default "0" .. "K-1"); planted : (K,) a planted
        generator's true mix, adding ``tv_to_planted`` to each estimate's details.
    """
    from audit.metrics import skew as sk
    from audit.skew import audit_skew

    options = _fill("skew", {"alpha": alpha, "null_draws": null_draws, "bootstrap": bootstrap})
    threshold = defaults("label")["confidence_threshold"] if threshold is None else threshold
    reference = _array(reference, "reference", 1)
    k = reference.size
    if abs(reference.sum() - 1) > 1e-6 or (reference < 0).any():
        raise AuditInputError(f"reference: must be a class distribution (non-negative, sum 1), sums to {reference.sum():g}")
    arrays = {}
    for name, value, kind in (("predicted", predicted, "int"), ("confidence", confidence, "float"),
                              ("real_true", real_true, "int"), ("real_predicted", real_predicted, "int"),
                              ("real_confidence", real_confidence, "float")):
        arrays[name] = _array(value, name, 1, kind)
        if kind == "int" and (arrays[name].min() < 0 or arrays[name].max() >= k):
            raise AuditInputError(f"{name}: class indices must be in [0, {k}) (K from reference)")
        if kind == "float" and ((arrays[name] < 0).any() or (arrays[name] > 1).any()):
            raise AuditInputError(f"{name}: confidences must be in [0, 1]")
    for a, b in (("predicted", "confidence"), ("real_true", "real_predicted"), ("real_true", "real_confidence")):
        if arrays[a].shape != arrays[b].shape:
            raise AuditInputError(f"{b}: {arrays[b].shape[0]} rows, {a} has {arrays[a].shape[0]}")
    names = [str(c) for c in range(k)] if class_names is None else list(class_names)
    result = audit_skew(arrays["predicted"], arrays["confidence"], arrays["real_true"], arrays["real_predicted"],
                        arrays["real_confidence"], reference, threshold, options["alpha"], options["null_draws"],
                        options["bootstrap"], _seed(seed), names,
                        None if planted is None else np.asarray(planted, dtype=np.float64))
    verdicts = {v["test"]: _verdict(v) for v in result["verdicts"]}
    estimates = {name: Result(name=f"skew.{name}", value=entry["tv"], interval=_interval(
        (entry["tv_ci"]["low"], entry["tv_ci"]["high"])), method=f"{entry['tv_ci']['method']}; {sk.NULL_METHOD}",
        verdict=verdicts[f"skew.{name}"], details=entry) for name, entry in result["estimates"].items()}
    chi_square = {name: Result(name=f"skew.chi2_{name}", value=test.get("chi2"), interval=None,
                               method=verdicts[f"skew.chi2_{name}"].method, verdict=verdicts[f"skew.chi2_{name}"],
                               details=test) for name, test in result["chi_square_vs_real_test"].items()}
    return SkewResult(estimates=estimates, chi_square=chi_square, details=result)


# feature metrics (audit.feature_metrics / audit.metrics.frechet, kid, inception_score, prdc, vendi)
def _features(real, fake, min_rows: int = 2) -> tuple[np.ndarray, np.ndarray]:
    real, fake = _array(real, "real", 2, min_rows=min_rows), _array(fake, "fake", 2, min_rows=min_rows)
    _same_width("real", real, "fake", fake)
    return real, fake


def _probabilities(probs, name: str) -> np.ndarray:
    from audit.metrics import inception_score as score

    try:
        return score.check_probabilities(_array(probs, name, 2), name)
    except ValueError as err:
        raise AuditInputError(str(err)) from None


def feature_metrics(real, fake, real_probs, fake_probs, *, k: int | None = None, kid_subsets: int | None = None,
                    kid_subset_size: int | None = None, bootstrap: int | None = None,
                    permutations: int | None = None, alpha: float | None = None,
                    seed: int | None = None, reference=None) -> FeatureMetrics:
    """The metrics peer tools print, as the ``feature_metrics`` stage computes them
    (:func:`audit.feature_metrics.audit_features`), each beside the real-vs-real value at the
    same sample size (``details``).

    real : (T, d) float features of real held-out images; fake : (N, d) the GAN samples'.
    real_probs, fake_probs : (T', K), (N, K) class probabilities (the inception-style score).
    reference : (P, d) features of other real held-out images (the run's pool split), or None.
    With ``reference`` (as the stage runs): FD, precision / recall / density / coverage and Vendi
    compare m = min(N, T, P) GAN rows with every real row, and m reference rows with the same real
    rows give the real-vs-real value; KID uses every row. Without: m = min(N, T // 2) GAN rows
    against one half of the real rows, the other half giving the real-vs-real value. Options
    (None: feature_metrics.* of the default config): ``k`` neighbours, KID subsets and their
    size, bootstrap replicates of the intervals, FD permutations and ``alpha``.
    """
    from audit.feature_metrics import audit_features, same_n

    real, fake = _features(real, fake)
    reference = _reference(reference, real)
    real_probs, fake_probs = _probabilities(real_probs, "real_probs"), _probabilities(fake_probs, "fake_probs")
    if fake_probs.shape[0] != fake.shape[0] or real_probs.shape[1] != fake_probs.shape[1]:
        raise AuditInputError(f"fake_probs: shape {fake_probs.shape}, expected ({fake.shape[0]}, K) with the K of "
                              f"real_probs {real_probs.shape}")
    options = _fill("feature_metrics", {"k": k, "kid_subsets": kid_subsets, "kid_subset_size": kid_subset_size,
                                        "bootstrap": bootstrap, "permutations": permutations, "alpha": alpha})
    m = same_n(fake.shape[0], real.shape[0], None if reference is None else reference.shape[0])
    if m <= options["k"]:
        raise AuditInputError(f"real: m = {m} rows a side (GAN, real{'' if reference is None else ', reference'}); "
                              f"k = {options['k']} needs m > k")
    result = audit_features(real, fake, real_probs, fake_probs, k=options["k"], kid_subsets=options["kid_subsets"],
                            kid_subset_size=options["kid_subset_size"], n_bootstrap=options["bootstrap"],
                            n_permutations=options["permutations"], alpha=options["alpha"], seed=_seed(seed),
                            reference=reference)
    fd, kid, score, prdc, vendi = (result[key] for key in ("fd", "kid", "inception_score", "prdc", "vendi"))
    verdict = _verdict(result["verdicts"][0])
    at_n = f"at N = {fd['n'][0]} vs {fd['n'][1]} test rows; real vs real in details"
    return FeatureMetrics(
        fd=Result("fd", fd["value"], _interval(fd["interval"]), f"{verdict.method}; interval: recentred bootstrap "
                  f"({fd['bootstrap']} replicates) {at_n}", verdict, fd),
        kid=Result("kid", kid["value"], None, f"KID, {kid['subsets']} subsets of {kid['subset_size']}, cubic "
                   "polynomial kernel; no interval (details: std over subsets)", None, kid),
        inception_score=Result("inception_score", score["value"], _interval(score["interval"]),
                               "exp(mean KL(p(y|x) || p(y))) on the whole set; recentred bootstrap interval", None, score),
        **{name: Result(name, prdc["gan"][name], None, f"{name} with k = {prdc['k']} (Naeem et al. 2020) {at_n}; "
                        "no interval", None, {"value": prdc["gan"][name], "real_vs_real": prdc["real_vs_real"][name],
                                              "n": prdc["n"], "k": prdc["k"]})
           for name in ("precision", "recall", "density", "coverage")},
        vendi=Result("vendi", vendi["value"], None, f"Vendi score, cosine similarity, at N = {vendi['n']} (the real value at the same N in details); "
                     "no interval", None, vendi),
        details=result)


def _reference(reference, real: np.ndarray) -> np.ndarray | None:
    """The optional (P, d) real reference set, checked against ``real``'s width."""
    if reference is None:
        return None
    reference = _array(reference, "reference", 2, min_rows=2)
    _same_width("real", real, "reference", reference)
    return reference


def frechet_distance(real, fake, *, bootstrap: int | None = None, permutations: int | None = None,
                     alpha: float | None = None, seed: int | None = None, reference=None) -> Result:
    """FD between (T, d) ``real`` and (N, d) ``fake`` float features as the feature_metrics
    stage reports it, with a recentred bootstrap interval, the real-vs-real value at the same N
    and the permutation test's verdict (:func:`audit.feature_metrics.frechet_section`,
    ``frechet_verdict``). With ``reference`` ((P, d) other real held-out features, the run's pool
    split, as the stage runs): m = min(N, T, P) GAN rows and m reference rows, each against every
    real row; without: m = min(N, T // 2) GAN rows against one real half, the other half giving
    the real-vs-real value. ``details["full"]``: FD on every row, the number a peer tool prints."""
    from audit.feature_metrics import comparison_sets, frechet_section, frechet_verdict, same_n

    real, fake = _features(real, fake)
    reference = _reference(reference, real)
    if same_n(fake.shape[0], real.shape[0], None if reference is None else reference.shape[0]) < 2:
        raise AuditInputError(f"real: {real.shape[0]} rows; FD needs >= 2 rows a side (without a reference: "
                              ">= 4 real rows, two halves of >= 2)")
    options = _fill("feature_metrics", {"bootstrap": bootstrap, "permutations": permutations, "alpha": alpha})
    seed = _seed(seed)
    g, r, t, _, design = comparison_sets(real, fake, reference, seed)
    fd = frechet_section(g, r, t, real, fake, options["bootstrap"], options["permutations"], seed, design)
    verdict = frechet_verdict(fd, options["alpha"])
    return Result("fd", fd["value"], _interval(fd["interval"]), verdict.method, verdict, fd)


def precision_recall(real, fake, *, k: int | None = None) -> dict[str, Result]:
    """Precision, recall, density and coverage (Naeem et al. 2020; strict k-NN balls, chunked
    neighbour search) of (N, d) ``real`` and (M, d) ``fake`` features on every row
    (:func:`audit.metrics.prdc.prdc`); no intervals. Compare with real vs real at the same N."""
    from audit.metrics import prdc

    real, fake = _features(real, fake)
    k = _fill("feature_metrics", {"k": k})["k"]
    if k >= min(real.shape[0], fake.shape[0]):
        raise AuditInputError(f"k: {k} must be below the smaller set's rows ({min(real.shape[0], fake.shape[0])})")
    values = prdc.prdc(np.asarray(real, np.float64), np.asarray(fake, np.float64), k)
    return {name: Result(name, value, None, f"{name} with k = {k}; no interval", None, {"n": [len(real), len(fake)]})
            for name, value in values.items()}


def vendi_score(features) -> Result:
    """Vendi score (Friedman & Dieng 2022) of (n, d) features with cosine similarity, in
    [1, min(n, d + 1)]: an effective number of distinct samples; it grows with n, so compare at
    equal n (:func:`audit.metrics.vendi.vendi_score`)."""
    from audit.metrics import vendi

    features = _array(features, "features", 2)
    return Result("vendi", vendi.vendi_score(features), None, "Vendi score, cosine similarity; no interval", None,
                  {"n": int(features.shape[0])})


# covariance spectrum (audit.spectrum / audit.metrics.spectrum, covariance)
def covariance_spectrum(real, fake, null_real, *, threshold: float | None = None, alpha: float | None = None,
                        null_draws: int | None = None, test_samples: int | None = None,
                        max_samples: int | None = None, seed: int | None = None, device: str = "cpu") -> Result:
    """Pixel-covariance spectra of real vs GAN images and the test for dropped real directions
    (:func:`audit.metrics.spectrum.analyse_spectra`, as the spectrum stage calls it).

    real, fake, null_real : uint8 (N, H, W, C) images of one shape; ``null_real`` are real
        images used for nothing else (the workflow passes the train split, ``real`` the test split).
    Value: the directions the GAN keeps of the significant real ones (the verdict's estimate);
    ``details``: effective ranks, n90 / n99, rank ratios, total variances (pixels in [0, 1]).
    Options (None: spectrum.*): dropped_ratio ``threshold``, ``alpha``, ``null_draws``,
    ``test_samples``, ``max_samples`` (each set subsampled, seeded, as the stage does).
    """
    from audit.metrics import covariance as cv
    from audit.metrics import spectrum as sp

    real, fake, null_real = (_array(a, name, 4, "uint8", min_rows=2)
                             for a, name in ((real, "real"), (fake, "fake"), (null_real, "null_real")))
    _same_width("real", real, "fake", fake)
    _same_width("real", real, "null_real", null_real)
    options = _fill("spectrum", {"dropped_ratio": threshold, "alpha": alpha, "null_draws": null_draws,
                                 "test_samples": test_samples, "max_samples": max_samples})
    seed = _seed(seed)
    rng = np.random.default_rng(seed)
    real_s, fake_s = cv.subsample(real, options["max_samples"], rng), cv.subsample(fake, options["max_samples"], rng)
    result = sp.analyse_spectra(real_s, fake_s, null_real, threshold=options["dropped_ratio"], alpha=options["alpha"],
                                null_draws=options["null_draws"], test_samples=options["test_samples"],
                                device=device, seed=seed)
    summary = {**result.summary, "real_eigenvalues": result.real_eigs.tolist(),
               "gan_eigenvalues": result.gan_eigs.tolist()}
    return Result("spectrum", result.verdict.estimate, None,
                  f"{result.verdict.method}; spectra: {summary['method']}", result.verdict, summary)


# diversity: n_equiv (audit.metrics.diversity)
def n_equiv(n_grid, real_correct, gan_correct, *, n_train: int | None = None, kind: str = "deep",
            bootstrap: int | None = None, alpha: float | None = None, seed: int | None = None) -> Result:
    """n_equiv: how many real training images the GAN's samples are worth to a classifier, from
    the real learning curve and the GAN-trained classifiers' accuracy (CAS), with its bootstrap
    interval and the test of H0 "n_equiv >= n_train" (:func:`audit.metrics.diversity.n_equiv_analysis`
    and ``low_diversity_verdict``).

    n_grid : (G,) increasing real training-set sizes (images), the last the real train split.
    real_correct : bool (S, G, T): per seed, grid size and real test image, was the real-trained
        classifier right. gan_correct : bool (S', T): the same for classifiers trained on GAN samples.
    n_train : the train split's size in the verdict's wording (default: the last grid size).
    Value: n_equiv in images (censored values: ``details["point"]["censored"]``).
    """
    from audit.metrics import diversity as dv

    grid = _array(n_grid, "n_grid", 1)
    if (np.diff(grid) <= 0).any():
        raise AuditInputError("n_grid: sizes must increase")
    real, gan = _array(real_correct, "real_correct", 3, "bool"), _array(gan_correct, "gan_correct", 2, "bool")
    if real.shape[1] != grid.size or real.shape[2] != gan.shape[1]:
        raise AuditInputError(f"real_correct: shape {real.shape}, expected (S, {grid.size}, T) with the T = "
                              f"{gan.shape[1]} of gan_correct")
    options = _fill("diversity", {"bootstrap": bootstrap, "alpha": alpha})
    analysis = dv.n_equiv_analysis(grid, real.astype(bool), gan.astype(bool), n_bootstrap=options["bootstrap"],
                                   seed=_seed(seed))
    verdict = dv.low_diversity_verdict(kind, analysis, int(grid[-1] if n_train is None else n_train), options["alpha"])
    return Result(f"diversity.{kind}", analysis["point"]["value"], _interval(
        (analysis["ci_low"]["value"], analysis["ci_high"]["value"])), analysis["ci_method"], verdict, analysis)


# memorisation (audit.memorisation / audit.metrics.memorisation, neighbours)
def memorisation(spaces: dict, *, quantile: float | None = None, alpha: float | None = None,
                 seed: int | None = None, device: str = "cpu") -> Result:
    """Does the GAN copy its training images? In each space, every sample's distance to its
    nearest training image against real held-out images' (copy threshold: the ``quantile`` of
    one half of the held-out distances; one-sided Fisher test on the other half), Bonferroni
    over the spaces (:mod:`audit.metrics.memorisation`, as the memorisation stage).

    spaces : {name: (gan, train, test)} with (N, d), (R, d), (T, d) float vectors per space, e.g.
        {"features": (...), "pixels": (samples / 255 flattened, ...)}; T >= 4.
    Value: the copy fraction of the space with the smallest p-value, with its Wilson interval.
    """
    from audit.metrics import memorisation as mm
    from audit.metrics.birthday import halves

    options = _fill("memorisation", {"quantile": quantile, "alpha": alpha})
    if not spaces:
        raise AuditInputError("spaces: give at least one {name: (gan, train, test)}")
    tests = {}
    for space, (gan, train, test) in spaces.items():
        gan, train, test = (_array(a, f"spaces[{space!r}].{role}", 2, min_rows=4 if role == "test" else 1)
                            for a, role in ((gan, "gan"), (train, "train"), (test, "test")))
        part_a, part_b = halves(test.shape[0], _seed(seed))
        tests[space] = mm.nearest_training_test(gan, train, test, part_a, part_b, options["quantile"], device=device)[0]
    verdict = mm.memorisation_verdict(tests, options["alpha"])
    return Result("memorisation", verdict.estimate, verdict.interval, verdict.method, verdict, tests)


# support size by the birthday paradox (audit.metrics.birthday)
def support_size(samples, real, *, grid=None, repeats: int | None = None, quantile: float | None = None,
                 alpha: float | None = None, bootstrap: int | None = None, seed: int | None = None,
                 device: str = "cpu") -> Result:
    """The GAN's support size by the birthday paradox (Arora & Zhang 2017), with its near-duplicate
    rule calibrated on real held-out vectors and no human review (:mod:`audit.metrics.birthday`).

    samples : (N, d) float vectors (or uint8 images) of the GAN's samples; real : (T, d) real
        held-out vectors in the same space, T >= 14 (the rule is calibrated on one half, as
        the support_calibration stage calibrates it on half A of its first halving).
    Per draw size S of ``grid`` (those <= N), ``repeats`` seeded draws; the rule calls a pair a
    duplicate below t_S, the distance that real draws of S images cross with probability
    ``quantile``. Value: the pooled support estimate with its bootstrap interval when the test
    finds more duplicates than real draws hold, else None (``details["support"]`` then gives
    the birthday lower bound). Options (None: support.*).
    """
    from audit.metrics import birthday as bd

    flat = [np.asarray(a) for a in (samples, real)]
    samples, real = _features(*(a.reshape(len(a), -1) if a.ndim > 2 else a for a in flat))
    options = _fill("support", {"grid": grid, "repeats": repeats, "quantile": quantile, "alpha": alpha,
                                "bootstrap": bootstrap})
    seed, n = _seed(seed), samples.shape[0]
    sizes = sorted(int(s) for s in options["grid"] if 2 <= int(s) <= n)
    if not sizes:
        raise AuditInputError(f"samples: {n} rows; the smallest draw size of grid {options['grid']} needs more")
    part_a, _ = bd.halves(real.shape[0], seed)
    try:
        rule = bd.calibrate(real[part_a], options["quantile"], sizes, device=device)
    except ValueError as err:
        raise AuditInputError(f"real: {err}") from None
    counts, _ = bd.search_draws(samples, {s: rule.threshold(s)[0] for s in sizes}, options["repeats"], 1, seed,
                                device=device)
    table, head, verdict = bd.estimate_from_counts(counts, options["quantile"], options["alpha"],
                                                   options["bootstrap"], seed, n)
    return Result("support", head["estimate"], _interval(verdict.interval), verdict.method, verdict,
                  {"support": head, "per_size": table.to_dict(orient="records"), "rule": rule.to_json(sizes)})


# classifier two-sample test (audit.metrics.two_sample)
def two_sample_test(prob_fake, is_fake, *, bootstrap: int | None = None, alpha: float | None = None,
                    seed: int | None = None, label: str = "discriminator", parameters: int = 0) -> Result:
    """Can a discriminator tell the GAN's samples from real images? (Lopez-Paz & Oquab 2017) From
    its calibrated outputs on held-out images it never trained on:

    prob_fake : (N,) or (S, N) float P(GAN | x) in [0, 1] of one discriminator (or of S
        training seeds of it, averaged into one ensemble, as the discriminators stage does).
    is_fake : (N,) bool, True for the GAN's samples (balanced sets: as many real as fake).
    Value: the held-out accuracy, with a joint bootstrap interval (seeds and images); verdict:
    the exact one-sided binomial test (:func:`audit.metrics.two_sample.ladder_verdict` with one
    rung, ``label`` and ``parameters`` naming it); ``details["js_bound"]``: the lower bound on
    JS(P_real, P_gan) in nats, log 2 - cross-entropy, clipped at 0, and its interval.
    """
    from audit.discriminators import ROLE_BOOT
    from audit.metrics import two_sample as ts
    from audit.runtime import run_seed

    probs = np.atleast_2d(_array(prob_fake, "prob_fake", np.ndim(prob_fake)))
    is_fake = _array(is_fake, "is_fake", 1, "bool").astype(bool)
    if probs.ndim != 2 or probs.shape[1] != is_fake.size or (probs < 0).any() or (probs > 1).any():
        raise AuditInputError(f"prob_fake: expected probabilities of shape (N,) or (S, N) with N = {is_fake.size}, "
                              f"got {np.shape(prob_fake)}")
    if is_fake.all() or not is_fake.any():
        raise AuditInputError("is_fake: needs both real (False) and GAN (True) images")
    options = _fill("discriminators", {"bootstrap": bootstrap, "alpha": alpha})
    ensemble = probs.mean(axis=0)
    test = ts.accuracy_test(ensemble, is_fake)
    boot = ts.bootstrap_ladder_rung(probs, is_fake, options["bootstrap"],
                                    np.random.default_rng(run_seed(_seed(seed), ROLE_BOOT, 0)))
    js = float(ts.js_lower_bound(ensemble, is_fake))
    rung = {"label": label, "parameters": parameters, **test, "accuracy_interval": list(boot["accuracy_interval"]),
            "js_bound": max(0.0, js), "js_bound_unclipped": js, "js_interval": list(boot["js_interval"])}
    verdict = ts.ladder_verdict([rung], options["alpha"])
    return Result("two_sample", test["accuracy"], _interval(boot["accuracy_interval"]), verdict.method, verdict, rung)
