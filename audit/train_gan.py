"""Stage ``train_gan``: train a reference GAN (DCGAN or WGAN-GP) on the real ``train`` split.

    python -m audit.train_gan --data results/digits/data --loss dcgan --steps 2000 --batch-size 64 \
        --latent-dim 64 --width 64 --lr 0.0002 --critic-steps 1 --checkpoint-every 500 \
        --checkpoint results/digits/gans/dcgan/checkpoint.pt --generator results/digits/gans/dcgan/generator.pt \
        --losses results/digits/gans/dcgan/losses.csv --losses-plot results/digits/gans/dcgan/losses.png \
        --interpolation results/digits/gans/dcgan/interpolation.png --seed 0 --threads 2 --device auto

Outputs: ``--generator`` (the trained generator), ``--losses`` (CSV: step, d_loss, g_loss),
``--losses-plot``, ``--interpolation`` (8 latent interpolation strips of 10 steps). Training
state goes to ``--checkpoint`` every ``--checkpoint-every`` steps (with a grid of samples per
checkpoint beside it); the rule puts it beside the generator but does not declare it, so
Snakemake keeps it after a kill and the rerun resumes from it (a checkpoint of a different
configuration is ignored).
"""

from __future__ import annotations

import pandas as pd

from audit.cli import add_outputs, run_cli, stage_parser
from audit.data.store import PreparedDataset
from audit.io import AuditInputError, save_table
from audit.runtime import configure_torch, resolve_device


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser("audit.train_gan", __doc__)
    parser.add_argument("--data", required=True, help="prepared dataset directory")
    parser.add_argument("--loss", required=True, choices=["dcgan", "wgan-gp"])
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--latent-dim", type=int, required=True)
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--disc-width", type=int, default=None,
                        help="discriminator width (config disc_width); absent: --width, a default the schema "
                             "cannot state since it depends on another key")
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--critic-steps", type=int, required=True, help="critic updates per generator update")
    parser.add_argument("--checkpoint-every", type=int, required=True)
    parser.add_argument("--checkpoint", required=True, help="resume state (.pt): read if present, rewritten")
    add_outputs(parser, generator="the trained generator (.pt)", losses="step, d_loss, g_loss (.csv)",
                losses_plot="smoothed losses (.png)", interpolation="latent interpolation strips (.png)")
    args = parser.parse_args(argv)
    if args.disc_width is not None and args.disc_width < 2:
        raise AuditInputError(f"--disc-width: must be >= 2, got {args.disc_width}")
    for flag in ("steps", "batch_size", "latent_dim", "width", "critic_steps", "checkpoint_every"):
        if getattr(args, flag) < 1:
            raise AuditInputError(f"--{flag.replace('_', '-')}: must be >= 1, got {getattr(args, flag)}")
    configure_torch(args.threads, args.seed)
    from audit.models.gan import interpolation_strips, load_generator, save_generator, train_gan
    from audit.plots import plot_lines, save_grid

    data = PreparedDataset.open(args.data)
    train_images, _ = data.subset("train")
    history = train_gan(train_images, args.checkpoint, loss=args.loss, steps=args.steps,
                        batch_size=args.batch_size, latent_dim=args.latent_dim, width=args.width,
                        disc_width=args.disc_width, lr=args.lr,
                        critic_steps=args.critic_steps, checkpoint_every=args.checkpoint_every, seed=args.seed,
                        device=resolve_device(args.device))
    save_generator(args.checkpoint, args.generator)
    strips = interpolation_strips(load_generator(args.generator), n_rows=8, n_steps=10, seed=args.seed)
    save_grid(strips, args.interpolation, nrow=10)
    losses = pd.DataFrame(history)
    save_table(args.losses, losses)
    smooth = max(1, len(losses) // 100)
    long = losses.melt(id_vars="step", var_name="loss", value_name="value")
    long["value"] = long.groupby("loss")["value"].transform(lambda v: v.rolling(smooth, min_periods=1).mean())
    plot_lines(long, "step", "value", "loss", args.losses_plot,
               title=f"{args.loss} losses (rolling mean of {smooth})")
    print(f"trained {args.loss} for {args.steps} steps; final d_loss {history[-1]['d_loss']:.3f} "
          f"g_loss {history[-1]['g_loss']:.3f}")


if __name__ == "__main__":
    run_cli(main)
