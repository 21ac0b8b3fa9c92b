"""Stage ``modes``: mode coverage of one GAN on a stacked dataset (Stacked MNIST, 1,000 modes).

    python -m audit.modes --name dcgan --labels results/stacked_mnist/labels/dcgan.csv \
        --annotator-test results/stacked_mnist/annotator/test_predictions.csv \
        --data results/stacked_mnist/data --truth results/stacked_mnist/samples/dcgan/truth.json \
        --literature-n 26000 --min-samples 10 --fdr 0.05 --bootstrap 500 --floor-draws 200 --seed 0 \
        --out-json results/stacked_mnist/modes/dcgan.json \
        --out-csv results/stacked_mnist/modes/dcgan_classes.csv --out-png results/stacked_mnist/modes/dcgan.png

Beside each other (:mod:`audit.metrics.modes`; method and error rates in ``MODES.md``):

* the literature's numbers at ``--literature-n`` samples (the first ones; VEEGAN and PacGAN use
  26,000): modes with at least one sample and KL(label frequencies || uniform), nats, with the
  KL a perfect generator scores at that N (labelled without error, and labelled by this
  annotator), and the published rows to stand beside;
* ganaudit's, from all N samples: the modes detected (more labels than the other modes'
  misreads explain, Kronecker confusion, Benjamini-Hochberg at ``--fdr``), the modes with at least
  ``--min-samples`` labels, and the corrected class distribution with per-class intervals and
  its KL to uniform over the detected modes.

Outputs: the JSON, a table with one row per mode (label count, corrected count, p-value of "empty",
detected, corrected frequency and its interval, planted probability) and a figure of the sorted
counts.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from audit.cli import add_inputs, add_outputs, run_cli, stage_parser
from audit.data.store import PreparedDataset
from audit.io import AuditInputError, load_json, save_json, save_table
from audit.metrics import kronecker as kr
from audit.metrics import modes as md
from audit.skew import INPUTS, annotator_outputs

#: what the literature's numbers are, as the JSON and the report name them
LITERATURE_NOTE = ("modes with at least one sample and KL(label frequencies || uniform) in nats of the first {n} "
                   "samples' annotator labels (Metz et al. 2017; VEEGAN and PacGAN protocol: 26,000 samples)")
#: how ganaudit's mode count is made
DETECTION_METHOD = ("per mode, H0 'empty: its labels are the other modes' misreads': Poisson tail of its label count "
                    "given the leak N sum_j C_kj q_j from the corrected distribution q, C the Kronecker cube of the "
                    "per-digit confusion drawn from the test digits' posterior (one pseudo-count per cell) and a "
                    "finite generator source "
                    "(posterior predictive p-value); Benjamini-Hochberg over the 1,000 modes")

#: why the stage makes no verdict (MODES.md, Limits)
NO_VERDICT = ("no test: a 'modes missing' verdict needs its own null with the detection replayed in every draw, and "
              "its error rate has not been measured; the skew stage's verdicts test the 1,000-class mix against "
              "uniform, with measured error rates")


def perfect_through_annotator(test: pd.DataFrame, n: int, draws: int, seed: int) -> dict:
    """The literature's numbers of ``draws`` simulated perfect generators (uniform over the 1,000
    modes, per-channel annotator outputs drawn from the held-out digits; :func:
    `audit.metrics.kronecker.simulate_generator`) at N = ``n``: means and 95th percentiles."""
    rng = np.random.default_rng([seed, 18])
    groups = kr.digit_groups(test["label"].to_numpy(), test["predicted"].to_numpy(), test["confidence"].to_numpy())
    uniform = np.full(kr.N_CLASSES, 1.0 / kr.N_CLASSES)
    scores = [md.literature_scores(kr.simulate_generator(rng, groups, uniform, n)[0]) for _ in range(draws)]
    modes = np.array([s["modes"] for s in scores])
    kl = np.array([s["kl_to_uniform"] for s in scores])
    return {"n": n, "draws": draws, "modes_mean": float(modes.mean()), "modes_q05": float(np.quantile(modes, 0.05)),
            "kl_mean": float(kl.mean()), "kl_q95": float(np.quantile(kl, 0.95))}


def audit_modes(predicted: np.ndarray, test: pd.DataFrame, literature_n: int, min_samples: int, fdr: float,
                n_bootstrap: int, floor_draws: int, seed: int, planted: np.ndarray | None = None) -> tuple[dict, dict]:
    """(the JSON of one GAN, the corrected result of :func:`audit.metrics.modes.corrected_modes`)."""
    counts = np.bincount(predicted, minlength=kr.N_CLASSES)
    n_lit = min(literature_n, predicted.size)
    corrected = md.corrected_modes(counts, test["label"].to_numpy(), test["predicted"].to_numpy(), fdr, n_bootstrap,
                                   seed)
    digit_accuracy = float((test["label"] == test["predicted"]).mean())
    result = {
        "n_samples": int(predicted.size), "n_classes": kr.N_CLASSES,
        "literature": {**md.literature_scores(predicted[:n_lit]), "note": LITERATURE_NOTE.format(n=n_lit),
                       "at_protocol_n": n_lit == md.LITERATURE_N},
        "literature_floor": md.kl_floor(n_lit, draws=floor_draws, seed=seed),
        "perfect_generator_this_annotator": perfect_through_annotator(test, n_lit, max(1, floor_draws // 4), seed),
        "modes_at_least_k": {"k": min_samples, "modes": md.modes_with_at_least(counts, min_samples)},
        "corrected": {key: corrected[key] for key in ("modes_detected", "smallest_detected_count", "kl_to_uniform",
                                                      "fdr", "bootstrap")},
        "method": DETECTION_METHOD,
        # the report's verdict table reads every stage's "verdicts"; this stage has none (NO_VERDICT)
        "verdicts": [], "verdicts_note": NO_VERDICT,
        "annotator": {"digit_test_accuracy": digit_accuracy, "digit_test_n": int(len(test)),
                      "triple_accuracy_kronecker_uniform": float(np.mean(np.diagonal(corrected["confusion"])) ** 3)},
        "published": [{"model": m, "modes": k, "kl": kl, "source": src} for m, k, kl, src in md.PUBLISHED],
    }
    if planted is not None:
        result["planted"] = {"modes": int(np.count_nonzero(planted)),
                             "kl_to_uniform": md.kl_divergence(planted, np.full(planted.size, 1.0 / planted.size))}
    return result, corrected


def trained_parameters(spec: dict, image_shape) -> dict:
    """``{"parameters": {"generator": .., "discriminator": ..}}`` of a GAN trained in the DAG (its
    networks rebuilt from the spec, as :func:`audit.models.gan.train_gan` builds them), else {}."""
    from audit.gans import TRAINED_TYPES

    if spec.get("type") not in TRAINED_TYPES:
        return {}
    from audit.models.gan import Discriminator, Generator

    shape = tuple(int(v) for v in image_shape)
    width = spec["width"]
    gen = Generator(shape, spec["latent_dim"], width)
    disc = Discriminator(shape, spec.get("disc_width", width), batch_norm=spec["type"] == "dcgan")
    return {"parameters": {"generator": sum(p.numel() for p in gen.parameters()),
                           "discriminator": sum(p.numel() for p in disc.parameters())}}


def mode_table(counts: np.ndarray, corrected: dict, planted: np.ndarray | None) -> pd.DataFrame:
    table = pd.DataFrame({"class": [f"{k:03d}" for k in range(kr.N_CLASSES)], "count": counts,
                          "corrected_count": corrected["corrected_counts"], "p_value_empty": corrected["p_values"],
                          "detected": corrected["detected"],
                          "corrected_frequency": corrected["distribution"], "low": corrected["distribution_low"],
                          "high": corrected["distribution_high"]})
    if planted is not None:
        table["planted"] = planted
    return table


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser("audit.modes", __doc__, threads=False, device=False)
    add_inputs(parser, **INPUTS)
    parser.add_argument("--name", required=True, help="the GAN's name")
    parser.add_argument("--spec", required=True, help="the GAN's config entry as JSON (a trained GAN's setting)")
    parser.add_argument("--literature-n", type=int, required=True, help="modes.literature_n")
    parser.add_argument("--min-samples", type=int, required=True, help="modes.min_samples")
    parser.add_argument("--fdr", type=float, required=True, help="modes.fdr")
    parser.add_argument("--bootstrap", type=int, required=True, help="modes.bootstrap")
    parser.add_argument("--floor-draws", type=int, required=True, help="modes.floor_draws")
    add_outputs(parser, out_json="every figure (.json)", out_csv="one row per mode (.csv)",
                out_png="sorted counts (.png)")
    args = parser.parse_args(argv)
    for key, value, low in (("literature_n", args.literature_n, 1), ("min_samples", args.min_samples, 1),
                            ("bootstrap", args.bootstrap, 10), ("floor_draws", args.floor_draws, 1)):
        if value < low:
            raise AuditInputError(f"modes.{key}: must be >= {low}, got {value}")
    if not 0 < args.fdr < 1:
        raise AuditInputError(f"modes.fdr: must be in (0, 1), got {args.fdr}")
    try:
        spec = json.loads(args.spec)
    except json.JSONDecodeError as err:
        raise AuditInputError(f"--spec: not valid JSON ({err.msg})") from None
    data = PreparedDataset.open(args.data)
    if "stacked" not in data.meta or data.n_classes != kr.N_CLASSES:
        raise AuditInputError(f"{args.data}: the modes stage needs a stacked dataset of {kr.N_CLASSES} classes "
                              f"(stacked_mnist), got '{data.name}'")
    labels = annotator_outputs(args.labels, kr.N_CLASSES, with_label=False)
    test = annotator_outputs(args.annotator_test, kr.BASE_CLASSES, with_label=True)
    truth = load_json(args.truth)
    planted = np.asarray(truth["class_distribution"], float) if "class_distribution" in truth else None
    if planted is not None and planted.shape != (kr.N_CLASSES,):
        raise AuditInputError(f"{args.truth}: class_distribution has {planted.size} classes, the data {kr.N_CLASSES}")
    predicted = labels["predicted"].to_numpy()
    result, corrected = audit_modes(predicted, test, args.literature_n, args.min_samples, args.fdr, args.bootstrap,
                                    args.floor_draws, args.seed, planted)
    result = {"gan": args.name, "gan_spec": spec, **trained_parameters(spec, data.images.shape[1:]), **result}
    table = mode_table(np.bincount(predicted, minlength=kr.N_CLASSES), corrected, planted)
    save_table(args.out_csv, table)
    from audit.plots.modes import plot_sorted_frequencies

    n = predicted.size
    lines = [("labels (literature)", table["count"]), ("corrected", table["corrected_count"].clip(lower=0))]
    if planted is not None:
        lines.append(("planted (expected)", planted * n))
    long = pd.concat([pd.DataFrame({"class": table["class"], "source": s, "count": v}) for s, v in lines])
    plot_sorted_frequencies(long, args.out_png, value="count", ylabel="samples",
                            title=f"{args.name}: {result['literature']['modes']} modes with >= 1 label, "
                                  f"{result['corrected']['modes_detected']} detected after correction")
    save_json(args.out_json, result)
    lit, cor = result["literature"], result["corrected"]
    print(f"{args.name}: literature {lit['modes']} modes, KL {lit['kl_to_uniform']:.3f} at n={lit['n']}; corrected "
          f"{cor['modes_detected']} modes detected, KL {cor['kl_to_uniform']}")


if __name__ == "__main__":
    run_cli(main)
