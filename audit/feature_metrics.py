"""Stage ``feature_metrics``: the metrics people already use, beside the audit, for one GAN.

    python -m audit.feature_metrics --name dcgan \
        --real-features results/digits/features/real_test.npy \
        --features results/digits/features/dcgan.npy \
        --labels results/digits/labels/dcgan.csv \
        --annotator-test results/digits/annotator/test_predictions.csv \
        --k 5 --kid-subsets 100 --kid-subset-size 1000 --bootstrap 200 --permutations 200 \
        --alpha 0.05 --seed 0 --threads 1 \
        --out-json results/digits/feature_metrics/dcgan.json \
        --out-png results/digits/feature_metrics/dcgan.png

Every metric is computed in the annotator's feature space (its penultimate layer, L2-normalised;
the ``features`` stage), never in ImageNet Inception's, whose weights cannot be had offline and
which knows nothing of the user's domain: hence "FD (annotator features)", never "FID". The
inception-style score uses the annotator's calibrated softmax (the label stage's ``p_k``
columns; the annotator's test predictions for the real score).

The real reference is the ``test`` split. Metrics whose value depends on the sample size (FD,
precision/recall/density/coverage, Vendi) are compared at one size N = m: the test split is cut
(seeded) into two disjoint halves T1, T2 of m = min(n_gan, n_test // 2) rows each, the GAN's
features are subsampled to m rows G; then GAN = metric(G vs T2) and real vs real (the
perfect-generator value at the same N) = metric(T1 vs T2). KID is unbiased, so it uses every
row (GAN vs all of T; real vs real T1 vs T2). The one verdict: FD(G, T2) against the
permutation null of :func:`audit.metrics.frechet.permutation_null` (its error rate is in
``audit/metrics/FEATURE_METRICS.md``). Outputs: one JSON and one figure.
"""

from __future__ import annotations

import numpy as np

from audit.cli import add_inputs, add_outputs, run_cli, stage_parser
from audit.io import AuditInputError, load_table, save_json
from audit.metrics import frechet, inception_score as score, kid, prdc, vendi
from audit.metrics.bootstrap import recentred_interval
from audit.metrics.verdict import Verdict, empirical_p_value
from audit.runtime import run_seed

FEATURE_SPACE = "annotator's penultimate layer, L2-normalised"
#: sub-seeds of the stage's random choices: (config seed, role) -> run_seed
ROLES = {"split": 1, "subsample": 2, "fd_bootstrap": 3, "fd_permutation": 4, "kid": 5, "kid_real": 6,
         "is_bootstrap": 7}


def read_features(path: str) -> np.ndarray:
    """(N, d) float features of the ``features`` stage (a memmap, validated by
    :func:`audit.features.load_vectors`); one line naming the file for anything else."""
    from audit.features import load_vectors

    features = load_vectors(path)
    if not np.issubdtype(features.dtype, np.floating) or features.shape[1] == 0:
        raise AuditInputError(f"{path}: expected float (N, d) features of the features stage, "
                              f"got {features.dtype} {features.shape}")
    return features


def read_probabilities(path: str) -> np.ndarray:
    """(N, K) calibrated class probabilities from a table with columns p_0 .. p_{K-1}."""
    table = load_table(path)
    columns = [c for c in table.columns if c.startswith("p_") and c[2:].isdigit()]
    if len(columns) < 2 or sorted(int(c[2:]) for c in columns) != list(range(len(columns))):
        raise AuditInputError(f"{path}: expected probability columns p_0 .. p_(K-1), K >= 2")
    try:
        return score.check_probabilities(table[[f"p_{k}" for k in range(len(columns))]].to_numpy(), str(path))
    except ValueError as err:
        raise AuditInputError(str(err)) from None


def same_size_sets(n_gan: int, n_real: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices (G, T1, T2) of the same-N comparisons: m = min(n_gan, n_real // 2) GAN rows
    and two disjoint halves of the real rows, m each, all drawn with ``seed`` (sorted)."""
    m = min(n_gan, n_real // 2)
    split = np.random.default_rng(run_seed(seed, ROLES["split"])).permutation(n_real)
    gan = np.random.default_rng(run_seed(seed, ROLES["subsample"])).permutation(n_gan)[:m]
    return np.sort(gan), np.sort(split[:m]), np.sort(split[m:2 * m])


def frechet_section(gan: np.ndarray, t1: np.ndarray, t2: np.ndarray, real: np.ndarray, full_gan: np.ndarray,
                    n_bootstrap: int, n_permutations: int, seed: int) -> dict:
    """FD at the same N with its interval, the real-vs-real value with its own, the permutation
    p-value, and FD on every row (the number a peer tool would print on these features)."""
    value = frechet.frechet_distance(gan, t2)
    real_vs_real = frechet.frechet_distance(t1, t2)
    rng = np.random.default_rng(run_seed(seed, ROLES["fd_bootstrap"]))
    gan_boot = frechet.bootstrap_replicates(gan, t2, n_bootstrap, rng)
    real_boot = frechet.bootstrap_replicates(t1, t2, n_bootstrap, rng)
    observed, null = frechet.permutation_null(gan, t1, t2, n_permutations,
                                              np.random.default_rng(run_seed(seed, ROLES["fd_permutation"])))
    return {"value": value, "interval": list(recentred_interval(value, gan_boot)),
            "real_vs_real": real_vs_real, "real_vs_real_interval": list(recentred_interval(real_vs_real, real_boot)),
            "n": [int(gan.shape[0]), int(t2.shape[0])], "bootstrap": n_bootstrap,
            "p_value": empirical_p_value(observed, null), "permutations": n_permutations,
            "null_median": float(np.median(null)), "null_95": float(np.percentile(null, 95)),
            "full": frechet.frechet_distance(full_gan, real), "n_full": [int(full_gan.shape[0]), int(real.shape[0])]}


def frechet_verdict(fd: dict, alpha: float) -> Verdict:
    m = fd["n"][0]
    return Verdict(
        test="feature_metrics.fd", title="FD (annotator features)", alpha=alpha, p_value=fd["p_value"],
        hypothesis=f"the GAN's annotator features come from the real distribution: FD between {m} GAN samples and "
                   f"{m} real test images is no larger than between {m} other real test images and the same {m}",
        finding="farther from the real images than real images are", null_finding="consistent with real",
        key_number=f"FD {fd['value']:.4g} [{fd['interval'][0]:.4g}, {fd['interval'][1]:.4g}], real vs real "
                   f"{fd['real_vs_real']:.4g} (N = {m} vs {m})",
        estimate=fd["value"], interval=tuple(fd["interval"]),
        method=f"permutation test: FD(X, T2) for X drawn from the GAN's and T1's pooled rows, B = {fd['permutations']}, "
               "p = (1 + #{null >= observed}) / (1 + B) (audit.metrics.frechet.permutation_null; rejection rate "
               "under H0 measured in audit/metrics/FEATURE_METRICS.md)",
        extra={"real_vs_real": fd["real_vs_real"], "null_95": fd["null_95"]})


def audit_features(real: np.ndarray, gan: np.ndarray, real_probs: np.ndarray, gan_probs: np.ndarray, *, k: int,
                   kid_subsets: int, kid_subset_size: int, n_bootstrap: int, n_permutations: int, alpha: float,
                   seed: int) -> dict:
    """Every figure of one GAN as a JSON-ready dict: ``real`` (n_test, d) and ``gan`` (n, d)
    features, ``real_probs`` (n_test', K) and ``gan_probs`` (n, K) calibrated probabilities."""
    g_rows, t1_rows, t2_rows = same_size_sets(gan.shape[0], real.shape[0], seed)
    g, t1, t2 = (np.asarray(a[rows], dtype=np.float64) for a, rows in ((gan, g_rows), (real, t1_rows), (real, t2_rows)))
    m = g.shape[0]
    fd = frechet_section(g, t1, t2, real, gan, n_bootstrap, n_permutations, seed)
    kid_gan = kid.kernel_distance(gan, real, kid_subsets, kid_subset_size, np.random.default_rng(run_seed(seed, ROLES["kid"])))
    kid_real = kid.kernel_distance(t1, t2, kid_subsets, kid_subset_size, np.random.default_rng(run_seed(seed, ROLES["kid_real"])))
    rng = np.random.default_rng(run_seed(seed, ROLES["is_bootstrap"]))
    is_gan, is_real = score.inception_score(gan_probs)[0], score.inception_score(real_probs)[0]
    bounds = {"minimum": 1.0, "maximum": float(gan_probs.shape[1])}  # the score lies in [1, K]
    is_gan_interval = recentred_interval(is_gan, score.bootstrap_replicates(gan_probs, n_bootstrap, rng), **bounds)
    is_real_interval = recentred_interval(is_real, score.bootstrap_replicates(real_probs, n_bootstrap, rng), **bounds)
    return {
        "feature_space": FEATURE_SPACE, "d": int(real.shape[1]), "n_gan": int(gan.shape[0]),
        "n_real_test": int(real.shape[0]), "n_same": m,
        "fd": fd,
        "kid": {"value": kid_gan["kid"], "std": kid_gan["kid_std"], "subset_size": kid_gan["subset_size"],
                "subsets": kid_subsets, "n": [int(gan.shape[0]), int(real.shape[0])],
                "real_vs_real": kid_real["kid"], "real_vs_real_std": kid_real["kid_std"],
                "real_vs_real_subset_size": kid_real["subset_size"]},
        "inception_score": {"value": is_gan, "interval": list(is_gan_interval), "real": is_real,
                            "real_interval": list(is_real_interval),
                            "ratio_to_real": is_gan / is_real, "n": int(gan_probs.shape[0]), "n_real": int(real_probs.shape[0]),
                            "classes": int(gan_probs.shape[1])},
        "prdc": {"k": k, "n": [m, m], "gan": prdc.prdc(t2, g, k), "real_vs_real": prdc.prdc(t2, t1, k)},
        "vendi": {"value": vendi.vendi_score(g), "real": vendi.vendi_score(t1), "n": m},
        "verdicts": [frechet_verdict(fd, alpha).to_json()],
    }


def undefined_result(n_gan: int, n_real: int, k: int, alpha: float) -> dict:
    """The stage's result when the GAN has too few samples for the same-N comparisons
    (m = min(n_gan, n_real // 2) <= k): no number, a verdict that could not run and why."""
    m = min(n_gan, n_real // 2)
    reason = (f"{n_gan} GAN samples: the same-N comparisons need m = min(n_gan, n_test // 2) = {m} > k = {k} "
              "rows a side")
    verdict = Verdict(test="feature_metrics.fd", title="FD (annotator features)", alpha=alpha, p_value=None,
                      hypothesis="the GAN's annotator features come from the real distribution",
                      finding="farther from the real images than real images are", null_finding="consistent with real",
                      reason=reason)
    return {"feature_space": FEATURE_SPACE, "n_gan": n_gan, "n_real_test": n_real, "n_same": m, "undefined": reason,
            "verdicts": [verdict.to_json()]}


def check_inputs(args, real: np.ndarray, gan: np.ndarray, real_probs: np.ndarray, gan_probs: np.ndarray) -> None:
    """One line naming the file or the option for every input the metrics cannot use."""
    if real.shape[1] != gan.shape[1]:
        raise AuditInputError(f"{args.features}: features of width {gan.shape[1]}, the real ones "
                              f"({args.real_features}) have {real.shape[1]}")
    if gan_probs.shape[1] != real_probs.shape[1]:
        raise AuditInputError(f"{args.labels}: {gan_probs.shape[1]} classes, {args.annotator_test} has {real_probs.shape[1]}")
    if gan_probs.shape[0] != gan.shape[0]:
        raise AuditInputError(f"{args.labels}: {gan_probs.shape[0]} rows, the GAN's features ({args.features}) "
                              f"have {gan.shape[0]}")
    if real.shape[0] // 2 <= args.k:
        raise AuditInputError(f"{args.real_features}: the same-N comparisons use half of the {real.shape[0]} real rows a "
                              f"side; feature_metrics.k = {args.k} needs more than k")
    for name, value, low in (("k", args.k, 1), ("kid_subsets", args.kid_subsets, 1), ("kid_subset_size", args.kid_subset_size, 2),
                             ("bootstrap", args.bootstrap, 10), ("permutations", args.permutations, 10)):
        if value < low:
            raise AuditInputError(f"feature_metrics.{name}: must be >= {low}, got {value}")
    if not 0 < args.alpha < 1:
        raise AuditInputError(f"feature_metrics.alpha: must be in (0, 1), got {args.alpha}")


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser("audit.feature_metrics", __doc__, device=False)
    add_inputs(parser, real_features="(n_test, d) features of the real test split (.npy)",
               features="(n, d) features of the GAN's samples (.npy)",
               labels="the label stage's table of the GAN (.csv, p_0 .. p_(K-1))",
               annotator_test="the annotator's test predictions (.csv, p_0 .. p_(K-1))")
    parser.add_argument("--name", required=True, help="the GAN's name")
    for flag, what in (("k", "nearest neighbours of precision/recall/density/coverage"),
                       ("kid-subsets", "KID subsets"), ("kid-subset-size", "KID subset size (capped at the smaller set)"),
                       ("bootstrap", "bootstrap replicates of every interval"),
                       ("permutations", "permutations of the FD test")):
        parser.add_argument(f"--{flag}", type=int, required=True, help=what)
    parser.add_argument("--alpha", type=float, required=True, help="level of the FD test")
    add_outputs(parser, out_json="every figure (.json)", out_png="the metrics beside their real-vs-real values (.png)")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    from audit.runtime import configure_torch

    configure_torch(args.threads)  # the neighbour search of precision / recall runs in torch
    real, gan = read_features(args.real_features), read_features(args.features)
    real_probs, gan_probs = read_probabilities(args.annotator_test), read_probabilities(args.labels)
    check_inputs(args, real, gan, real_probs, gan_probs)
    if min(gan.shape[0], real.shape[0] // 2) <= args.k:
        from audit.plots import save_note

        result = {"gan": args.name, **undefined_result(gan.shape[0], real.shape[0], args.k, args.alpha)}
        save_note(f"{args.name}: feature metrics undefined ({result['undefined']})", args.out_png)
        save_json(args.out_json, result)
        print(f"{args.name}: feature metrics undefined: {result['undefined']}")
        return
    with threadpool_limits(limits=max(1, args.threads)):
        result = audit_features(real, gan, real_probs, gan_probs, k=args.k, kid_subsets=args.kid_subsets,
                                kid_subset_size=args.kid_subset_size, n_bootstrap=args.bootstrap,
                                n_permutations=args.permutations, alpha=args.alpha, seed=args.seed)
    result = {"gan": args.name, **result}
    from audit.plots.feature_metrics import plot_feature_metrics

    plot_feature_metrics(result, args.out_png)
    save_json(args.out_json, result)
    fd, p = result["fd"], result["prdc"]["gan"]
    print(f"{args.name}: FD {fd['value']:.4g} [{fd['interval'][0]:.4g}, {fd['interval'][1]:.4g}] vs real {fd['real_vs_real']:.4g} "
          f"(N = {result['n_same']}), p = {fd['p_value']:.3g}; KID {result['kid']['value']:.3g}; "
          f"IS {result['inception_score']['value']:.3f} (real {result['inception_score']['real']:.3f}); "
          f"P {p['precision']:.3f} R {p['recall']:.3f} D {p['density']:.3f} C {p['coverage']:.3f}; "
          f"Vendi {result['vendi']['value']:.2f} (real {result['vendi']['real']:.2f})")


if __name__ == "__main__":
    run_cli(main)
