"""Stage ``feature_metrics``: the metrics people already use, beside the audit, for one GAN.

    python -m audit.feature_metrics --name dcgan \
        --real-features results/digits/features/real_test.npy \
        --real-reference results/digits/features/real_pool.npy \
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

The real reference is the ``test`` split, and the perfect-generator value beside every metric is a
second real set, unseen by the annotator, against that same test split: the ``pool`` split's
features (``--real-reference``). Metrics whose value depends on the sample size (FD,
precision/recall/density/coverage, Vendi) are compared at one size: m = min(n_gan, n_test,
n_pool) GAN rows G and m pool rows R (seeded subsamples), each against every test row T; then
GAN = metric(G vs T) and real vs real = metric(R vs T), both m vs n_test. KID is unbiased, so it
uses every row (GAN vs T; pool vs T). The one verdict: FD(G, T) against the permutation null of
:func:`audit.metrics.frechet.permutation_null` (G and R pooled; its error rate is in
``audit/metrics/FEATURE_METRICS.md``). Without ``--real-reference`` (the API's case, one real
set) the test split is cut (seeded) into halves instead: R = T1, T = T2, m = min(n_gan, n_test // 2).
Outputs: one JSON and one figure.
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
#: what the real-vs-real value compares with the test rows, per design (see comparison_sets)
REFERENCES = {"pool": "real pool images", "halves": "other real test images"}
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


def same_n(n_gan: int, n_test: int, n_reference: int | None) -> int:
    """m, the rows of the GAN and of the reference in the same-N comparisons: min(n_gan, n_test,
    n_reference) with a reference split, min(n_gan, n_test // 2) without (halves of the test split)."""
    return min(n_gan, n_test // 2) if n_reference is None else min(n_gan, n_test, n_reference)


def same_size_rows(n_gan: int, n_test: int, n_reference: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (G, R) of the same-N comparisons with a reference split: m = min(n_gan, n_test,
    n_reference) GAN rows and m reference rows, drawn with ``seed`` (sorted); every test row is used."""
    m = same_n(n_gan, n_test, n_reference)
    reference = np.random.default_rng(run_seed(seed, ROLES["split"])).permutation(n_reference)[:m]
    gan = np.random.default_rng(run_seed(seed, ROLES["subsample"])).permutation(n_gan)[:m]
    return np.sort(gan), np.sort(reference)


def same_size_sets(n_gan: int, n_real: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices (G, T1, T2) of the same-N comparisons without a reference split (the API's case):
    m = min(n_gan, n_real // 2) GAN rows and two disjoint halves of the real rows, m each, all
    drawn with ``seed`` (sorted)."""
    m = same_n(n_gan, n_real, None)
    split = np.random.default_rng(run_seed(seed, ROLES["split"])).permutation(n_real)
    gan = np.random.default_rng(run_seed(seed, ROLES["subsample"])).permutation(n_gan)[:m]
    return np.sort(gan), np.sort(split[:m]), np.sort(split[m:2 * m])


def comparison_sets(real: np.ndarray, gan: np.ndarray, reference: np.ndarray | None,
                    seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray], str]:
    """(G, R, T, KID's real-vs-real pair, design) in float64: G the GAN's m rows, R the
    reference's m rows, T the test rows every comparison is made against. With ``reference``
    (the pool split): R its m-row subsample, T every row of ``real``, KID on the whole pool vs T;
    without: R, T the seeded halves T1, T2 of ``real`` (m rows each), KID on T1 vs T2."""
    if reference is None:
        g_rows, t1_rows, t2_rows = same_size_sets(gan.shape[0], real.shape[0], seed)
        g, r, t = (np.asarray(a[rows], dtype=np.float64) for a, rows in ((gan, g_rows), (real, t1_rows), (real, t2_rows)))
        return g, r, t, (r, t), "halves"
    g_rows, r_rows = same_size_rows(gan.shape[0], real.shape[0], reference.shape[0], seed)
    t = np.asarray(real, dtype=np.float64)
    return (np.asarray(gan[g_rows], dtype=np.float64), np.asarray(reference[r_rows], dtype=np.float64), t,
            (np.asarray(reference, dtype=np.float64), t), "pool")


def frechet_section(gan: np.ndarray, t1: np.ndarray, t2: np.ndarray, real: np.ndarray, full_gan: np.ndarray,
                    n_bootstrap: int, n_permutations: int, seed: int, design: str = "halves") -> dict:
    """FD at the same N with its interval, the real-vs-real value with its own, the permutation
    p-value, and FD on every row (the number a peer tool would print on these features).
    ``gan`` G and ``t1`` R (the reference, m rows each) are both compared with ``t2`` T;
    ``design`` names what R is (:data:`REFERENCES`)."""
    value = frechet.frechet_distance(gan, t2)
    real_vs_real = frechet.frechet_distance(t1, t2)
    rng = np.random.default_rng(run_seed(seed, ROLES["fd_bootstrap"]))
    gan_boot = frechet.bootstrap_replicates(gan, t2, n_bootstrap, rng)
    real_boot = frechet.bootstrap_replicates(t1, t2, n_bootstrap, rng)
    observed, null = frechet.permutation_null(gan, t1, t2, n_permutations,
                                              np.random.default_rng(run_seed(seed, ROLES["fd_permutation"])))
    return {"value": value, "interval": list(recentred_interval(value, gan_boot)),
            "real_vs_real": real_vs_real, "real_vs_real_interval": list(recentred_interval(real_vs_real, real_boot)),
            "n": [int(gan.shape[0]), int(t2.shape[0])], "reference": REFERENCES[design], "bootstrap": n_bootstrap,
            "p_value": empirical_p_value(observed, null), "permutations": n_permutations,
            "null_median": float(np.median(null)), "null_95": float(np.percentile(null, 95)),
            "full": frechet.frechet_distance(full_gan, real), "n_full": [int(full_gan.shape[0]), int(real.shape[0])]}


def frechet_verdict(fd: dict, alpha: float) -> Verdict:
    m, n_test = fd["n"]
    return Verdict(
        test="feature_metrics.fd", title="FD (annotator features)", alpha=alpha, p_value=fd["p_value"],
        hypothesis=f"the GAN's annotator features come from the real distribution: FD between {m} GAN samples and "
                   f"{n_test} real test images is no larger than between {m} {fd['reference']} and the same {n_test}",
        finding="farther from the real images than real images are", null_finding="consistent with real",
        key_number=f"FD {fd['value']:.4g} [{fd['interval'][0]:.4g}, {fd['interval'][1]:.4g}], real vs real "
                   f"{fd['real_vs_real']:.4g} (N = {m} vs {n_test})",
        estimate=fd["value"], interval=tuple(fd["interval"]),
        method=f"permutation test: FD(X, T) for X drawn from the pooled rows of the GAN and of the {fd['reference']}, "
               f"B = {fd['permutations']}, "
               "p = (1 + #{null >= observed}) / (1 + B) (audit.metrics.frechet.permutation_null; rejection rate "
               "under H0 measured in audit/metrics/FEATURE_METRICS.md)",
        extra={"real_vs_real": fd["real_vs_real"], "null_95": fd["null_95"]})


def audit_features(real: np.ndarray, gan: np.ndarray, real_probs: np.ndarray, gan_probs: np.ndarray, *, k: int,
                   kid_subsets: int, kid_subset_size: int, n_bootstrap: int, n_permutations: int, alpha: float,
                   seed: int, reference: np.ndarray | None = None) -> dict:
    """Every figure of one GAN as a JSON-ready dict: ``real`` (n_test, d) test, ``gan`` (n, d) and
    ``reference`` (n_pool, d) pool features (None: halves of the test split, :func:`comparison_sets`),
    ``real_probs`` (n_test', K) and ``gan_probs`` (n, K) calibrated probabilities."""
    g, r, t, kid_pair, design = comparison_sets(real, gan, reference, seed)
    m = g.shape[0]
    fd = frechet_section(g, r, t, real, gan, n_bootstrap, n_permutations, seed, design)
    kid_gan = kid.kernel_distance(gan, real, kid_subsets, kid_subset_size, np.random.default_rng(run_seed(seed, ROLES["kid"])))
    kid_real = kid.kernel_distance(*kid_pair, kid_subsets, kid_subset_size,
                                   np.random.default_rng(run_seed(seed, ROLES["kid_real"])))
    rng = np.random.default_rng(run_seed(seed, ROLES["is_bootstrap"]))
    is_gan, is_real = score.inception_score(gan_probs)[0], score.inception_score(real_probs)[0]
    bounds = {"minimum": 1.0, "maximum": float(gan_probs.shape[1])}  # the score lies in [1, K]
    is_gan_interval = recentred_interval(is_gan, score.bootstrap_replicates(gan_probs, n_bootstrap, rng), **bounds)
    is_real_interval = recentred_interval(is_real, score.bootstrap_replicates(real_probs, n_bootstrap, rng), **bounds)
    return {
        "feature_space": FEATURE_SPACE, "d": int(real.shape[1]), "n_gan": int(gan.shape[0]),
        "n_real_test": int(real.shape[0]), "n_same": m, "reference": REFERENCES[design],
        "n_reference": int(kid_pair[0].shape[0]), "n_test_compared": int(t.shape[0]),
        "fd": fd,
        "kid": {"value": kid_gan["kid"], "std": kid_gan["kid_std"], "subset_size": kid_gan["subset_size"],
                "subsets": kid_subsets, "n": [int(gan.shape[0]), int(real.shape[0])],
                "real_vs_real": kid_real["kid"], "real_vs_real_std": kid_real["kid_std"],
                "real_vs_real_n": [int(kid_pair[0].shape[0]), int(kid_pair[1].shape[0])],
                "real_vs_real_subset_size": kid_real["subset_size"]},
        "inception_score": {"value": is_gan, "interval": list(is_gan_interval), "real": is_real,
                            "real_interval": list(is_real_interval),
                            "ratio_to_real": is_gan / is_real, "n": int(gan_probs.shape[0]), "n_real": int(real_probs.shape[0]),
                            "classes": int(gan_probs.shape[1])},
        "prdc": {"k": k, "n": [m, int(t.shape[0])], "gan": prdc.prdc(t, g, k), "real_vs_real": prdc.prdc(t, r, k)},
        "vendi": {"value": vendi.vendi_score(g), "real": vendi.vendi_score(r), "n": m},
        "verdicts": [frechet_verdict(fd, alpha).to_json()],
    }


def undefined_result(n_gan: int, n_real: int, k: int, alpha: float, n_reference: int | None = None) -> dict:
    """The stage's result when the GAN has too few samples for the same-N comparisons
    (m = :func:`same_n` <= k): no number, a verdict that could not run and why."""
    m = same_n(n_gan, n_real, n_reference)
    rule = "min(n_gan, n_test // 2)" if n_reference is None else "min(n_gan, n_test, n_pool)"
    reason = f"{n_gan} GAN samples: the same-N comparisons need m = {rule} = {m} > k = {k} rows a side"
    verdict = Verdict(test="feature_metrics.fd", title="FD (annotator features)", alpha=alpha, p_value=None,
                      hypothesis="the GAN's annotator features come from the real distribution",
                      finding="farther from the real images than real images are", null_finding="consistent with real",
                      reason=reason)
    return {"feature_space": FEATURE_SPACE, "n_gan": n_gan, "n_real_test": n_real, "n_same": m, "undefined": reason,
            "verdicts": [verdict.to_json()]}


def check_inputs(args, real: np.ndarray, gan: np.ndarray, real_probs: np.ndarray, gan_probs: np.ndarray,
                 reference: np.ndarray | None) -> None:
    """One line naming the file or the option for every input the metrics cannot use."""
    for path, features in ((args.features, gan), (args.real_reference, reference)):
        if features is not None and real.shape[1] != features.shape[1]:
            raise AuditInputError(f"{path}: features of width {features.shape[1]}, the real ones "
                                  f"({args.real_features}) have {real.shape[1]}")
    if gan_probs.shape[1] != real_probs.shape[1]:
        raise AuditInputError(f"{args.labels}: {gan_probs.shape[1]} classes, {args.annotator_test} has {real_probs.shape[1]}")
    if gan_probs.shape[0] != gan.shape[0]:
        raise AuditInputError(f"{args.labels}: {gan_probs.shape[0]} rows, the GAN's features ({args.features}) "
                              f"have {gan.shape[0]}")
    if reference is None and real.shape[0] // 2 <= args.k:
        raise AuditInputError(f"{args.real_features}: the same-N comparisons use half of the {real.shape[0]} real rows a "
                              f"side; feature_metrics.k = {args.k} needs more than k")
    for path, features in ((args.real_features, real), (args.real_reference, reference)) if reference is not None else ():
        if features.shape[0] <= args.k:
            raise AuditInputError(f"{path}: {features.shape[0]} real rows; feature_metrics.k = {args.k} needs more than k")
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
    parser.add_argument("--real-reference", help="(n_pool, d) features of the real pool split (.npy), the "
                        "real-vs-real reference; absent (the API's design): halves of the test split")
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
    reference = read_features(args.real_reference) if args.real_reference else None
    real_probs, gan_probs = read_probabilities(args.annotator_test), read_probabilities(args.labels)
    check_inputs(args, real, gan, real_probs, gan_probs, reference)
    n_reference = None if reference is None else reference.shape[0]
    if same_n(gan.shape[0], real.shape[0], n_reference) <= args.k:
        from audit.plots import save_note

        result = {"gan": args.name, **undefined_result(gan.shape[0], real.shape[0], args.k, args.alpha, n_reference)}
        save_note(f"{args.name}: feature metrics undefined ({result['undefined']})", args.out_png)
        save_json(args.out_json, result)
        print(f"{args.name}: feature metrics undefined: {result['undefined']}")
        return
    with threadpool_limits(limits=max(1, args.threads)):
        result = audit_features(real, gan, real_probs, gan_probs, k=args.k, kid_subsets=args.kid_subsets,
                                kid_subset_size=args.kid_subset_size, n_bootstrap=args.bootstrap,
                                n_permutations=args.permutations, alpha=args.alpha, seed=args.seed,
                                reference=reference)
    result = {"gan": args.name, **result}
    from audit.plots.feature_metrics import plot_feature_metrics

    plot_feature_metrics(result, args.out_png)
    save_json(args.out_json, result)
    fd, p = result["fd"], result["prdc"]["gan"]
    print(f"{args.name}: FD {fd['value']:.4g} [{fd['interval'][0]:.4g}, {fd['interval'][1]:.4g}] vs real {fd['real_vs_real']:.4g} "
          f"(N = {fd['n'][0]} vs {fd['n'][1]}), p = {fd['p_value']:.3g}; KID {result['kid']['value']:.3g}; "
          f"IS {result['inception_score']['value']:.3f} (real {result['inception_score']['real']:.3f}); "
          f"P {p['precision']:.3f} R {p['recall']:.3f} D {p['density']:.3f} C {p['coverage']:.3f}; "
          f"Vendi {result['vendi']['value']:.2f} (real {result['vendi']['real']:.2f})")


if __name__ == "__main__":
    run_cli(main)
