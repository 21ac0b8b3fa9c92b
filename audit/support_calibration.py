"""Stage ``support_calibration``: the near-duplicate rule of the birthday test, fitted and checked on real images.

    python -m audit.support_calibration --real results/digits/features/real_test.npy \
        --grid 25 50 100 200 400 800 1600 3200 --quantile 0.01 --halvings 20 --draws 50 \
        --seed 0 --threads 1 --device auto --out results/digits/support/real_calibration.json

``--real``: the real held-out (test) images in the support space: the features stage's
``real_test.npy`` (feature space) or a prepared dataset directory with ``--real-split test``
(pixel space). Run once per dataset; every GAN's ``support_pairs`` job reads the rule from it.

The test images are split into seeded halves A and B. The rule the GANs are judged by is
calibrated on A of halving 0 (:func:`audit.metrics.birthday.calibrate`: per S the distance t_S
below which draws of S real images hold ``quantile`` duplicate pairs on average). Its
false-duplicate rate is measured on B, which it never saw: the share of draws of S images of B
with a pair below t_S, for every grid S that B holds and for S = |B|; and the same procedure
over ``--halvings`` random halvings (``rate``), so the figure is not one split's luck. Output
JSON: ``rule`` (thresholds per grid S with how each was found, the fitted tail), ``false_rates``
(one record per real S), the sizes and the settings.
"""

from __future__ import annotations

from audit.cli import run_cli, stage_parser
from audit.io import AuditInputError, save_json


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser("audit.support_calibration", __doc__)
    parser.add_argument("--real", required=True,
                        help="real test images: features (.npy) or a prepared dataset directory (pixels)")
    parser.add_argument("--real-split", default=None, help="split of a prepared dataset directory (pixels)")
    parser.add_argument("--grid", type=int, nargs="+", required=True, help="draw sizes S (config support.grid)")
    parser.add_argument("--quantile", type=float, required=True,
                        help="duplicate pairs a real draw may hold on average (config support.quantile)")
    parser.add_argument("--halvings", type=int, required=True, help="random halvings (config support.validation_halvings)")
    parser.add_argument("--draws", type=int, required=True, help="draws per S and halving (config support.validation_draws)")
    parser.add_argument("--out", required=True, help="output: the rule and its measured false-duplicate rates (.json)")
    args = parser.parse_args(argv)
    if not 0 < args.quantile < 0.5:
        raise AuditInputError(f"support.quantile: must be in (0, 0.5), got {args.quantile}")
    if min(args.grid) < 2:
        raise AuditInputError(f"support.grid: sizes must be >= 2, got {args.grid}")
    for key in ("halvings", "draws"):
        if getattr(args, key) < 1:
            raise AuditInputError(f"support.validation_{key}: must be >= 1, got {getattr(args, key)}")

    from audit.features import load_vectors
    from audit.metrics import birthday as bd
    from audit.runtime import configure_torch, resolve_device

    configure_torch(args.threads, args.seed)
    device = resolve_device(args.device)
    real = load_vectors(args.real, args.real_split)
    if real.shape[0] < 16:
        raise AuditInputError(f"{args.real}: the birthday rule needs at least 16 real test images, got {real.shape[0]}")
    grid = sorted(set(args.grid))
    try:
        rule, rule_rows, rates = bd.false_duplicate_rates(real, args.quantile, grid, args.halvings, args.draws,
                                                          args.seed, device=device)
    except ValueError as err:  # e.g. every real pair at distance zero
        raise AuditInputError(f"{args.real}: {err}") from None
    save_json(args.out, {
        "real": args.real, "real_split": args.real_split, "n_real": int(real.shape[0]),
        "n_calibration": int(rule_rows.size), "n_measurement": int(real.shape[0] - rule_rows.size),
        "quantile": args.quantile, "grid": grid, "halvings": args.halvings, "draws": args.draws, "seed": args.seed,
        "rule": rule.to_json(grid), "false_rates": rates.to_dict(orient="records"),
    })
    print(rates.to_string(index=False))


if __name__ == "__main__":
    run_cli(main)
