"""Stage ``support_vs_discriminator``: the birthday-test support of one GAN retrained with discriminators of several widths.

    python -m audit.support_vs_discriminator --names x0.5 x1 x2 x4 \
        --searches results/digits/support_vs_discriminator/x0.5/search.json ... \
        --generators results/digits/support_vs_discriminator/x0.5/generator.pt ... \
        --alpha 0.05 --bootstrap 1000 --seed 0 \
        --out-csv results/digits/support_vs_discriminator/support.csv \
        --out-png results/digits/support_vs_discriminator/support.png

Arora & Zhang (2017) found the support of DCGANs on CelebA growing roughly linearly with the
discriminator's size. For each variant (one ``--searches`` and ``--generators`` file per
``--names`` entry, same order): the discriminator's parameter count (rebuilt from the
generator file's training configuration), and the support from the ``support_pairs`` draws
exactly as the support stage computes the rule's estimate (:mod:`audit.metrics.birthday`):
a number with its 95% interval when the verdict finds more duplicates than real draws hold,
else the birthday lower bound. Outputs: one CSV row per variant, and the plot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit.cli import add_outputs, run_cli, stage_parser
from audit.io import AuditInputError, load_json, save_table


def discriminator_parameters(generator_path: str) -> tuple[int, int]:
    """(discriminator width, parameter count) of the GAN whose generator file is given."""
    import torch

    from audit.models.gan import Discriminator

    try:
        config = torch.load(generator_path, map_location="cpu", weights_only=False)["config"]
    except (FileNotFoundError, KeyError, RuntimeError) as err:
        raise AuditInputError(f"{generator_path}: not a trained generator file ({err})") from None
    width = config.get("disc_width", config["width"])
    disc = Discriminator(tuple(config["image_shape"]), width, batch_norm=config["loss"] == "dcgan")
    return int(width), int(sum(p.numel() for p in disc.parameters()))


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser("audit.support_vs_discriminator", __doc__, threads=False, device=False)
    parser.add_argument("--names", nargs="+", required=True, help="variant names, in plot order")
    parser.add_argument("--searches", nargs="+", required=True, help="per variant: support_pairs draws (.json)")
    parser.add_argument("--generators", nargs="+", required=True, help="per variant: the trained generator (.pt)")
    parser.add_argument("--alpha", type=float, required=True, help="level of the verdict (config support.alpha)")
    parser.add_argument("--bootstrap", type=int, required=True, help="bootstrap replicates (config support.bootstrap)")
    add_outputs(parser, out_csv="one row per variant (.csv)", out_png="support against discriminator size (.png)")
    args = parser.parse_args(argv)
    for flag in ("searches", "generators"):
        if len(getattr(args, flag)) != len(args.names):
            raise AuditInputError(f"--{flag}: {len(getattr(args, flag))} file(s) for {len(args.names)} name(s)")

    from audit.metrics import birthday as bd

    rows = []
    for name, search_path, generator in zip(args.names, args.searches, args.generators):
        search = load_json(search_path)
        if "counts" not in search:
            raise AuditInputError(f"{search_path}: not a support_pairs output (no 'counts')")
        counts = {int(s): np.asarray(c, dtype=np.int64) for s, c in search["counts"].items()}
        table = bd.per_size_table(counts, args.bootstrap, args.seed)
        verdict = bd.birthday_verdict(table, search["quantile"], args.alpha, "", search["n_samples"])
        summary = bd.summarise(counts, table, bool(verdict.rejected), args.bootstrap, args.seed, search["n_samples"])
        width, parameters = discriminator_parameters(generator)
        value = summary["estimate"] if summary["kind"] == "estimate" else summary["bound"]
        rows.append({"variant": name, "disc_width": width, "disc_parameters": parameters, "kind": summary["kind"],
                     "value": value, "low": summary["low"], "high": summary["high"], "text": summary["text"],
                     "p_value": verdict.p_value})
    table = pd.DataFrame(rows)
    save_table(args.out_csv, table)

    from audit.plots.support import plot_support_vs_discriminator

    plot_support_vs_discriminator(table, args.out_png)
    print(table.to_string(index=False))


if __name__ == "__main__":
    run_cli(main)
