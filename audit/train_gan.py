"""Stage ``train_gan``: train a reference GAN (DCGAN or WGAN-GP) on the real ``train`` split.

    python -m audit.train_gan --data results/digits/data --out results/digits/gans/dcgan \
        --loss dcgan --steps 2000 --seed 0 --threads 2

Outputs in ``--out``: ``generator.pt`` (the trained generator), ``losses.csv`` (step, d_loss,
g_loss), ``losses.png``, ``interpolation.png`` (8 latent interpolation strips of 10 steps). Training state goes to ``checkpoint.pt`` every ``--checkpoint-every``
steps; it is not a declared output, so Snakemake keeps it after a kill and the rerun resumes
from it (a checkpoint of a different configuration is ignored).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from audit.data.store import PreparedDataset
from audit.io import AuditInputError, run_cli, save_table
from audit.runtime import configure_torch, resolve_device


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m audit.train_gan", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--loss", default="dcgan", choices=["dcgan", "wgan-gp"])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--latent-dim", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--critic-steps", type=int, default=1)
    parser.add_argument("--checkpoint-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    for flag in ("steps", "batch_size", "latent_dim", "width", "critic_steps", "checkpoint_every"):
        if getattr(args, flag) < 1:
            raise AuditInputError(f"--{flag.replace('_', '-')}: must be >= 1, got {getattr(args, flag)}")
    configure_torch(args.threads, args.seed)
    from audit.models.gan import interpolation_strips, load_generator, save_generator, train_gan
    from audit.plots import save_grid
    from audit.plots import plot_lines

    data = PreparedDataset.open(args.data)
    train_images, _ = data.subset("train")
    out = Path(args.out)
    history = train_gan(train_images, out / "checkpoint.pt", loss=args.loss, steps=args.steps,
                        batch_size=args.batch_size, latent_dim=args.latent_dim, width=args.width, lr=args.lr,
                        critic_steps=args.critic_steps, checkpoint_every=args.checkpoint_every, seed=args.seed,
                        device=resolve_device(args.device))
    save_generator(out / "checkpoint.pt", out / "generator.pt")
    strips = interpolation_strips(load_generator(out / "generator.pt"), n_rows=8, n_steps=10, seed=args.seed)
    save_grid(strips, out / "interpolation.png", nrow=10)
    losses = pd.DataFrame(history)
    save_table(out / "losses.csv", losses)
    smooth = max(1, len(losses) // 100)
    long = losses.melt(id_vars="step", var_name="loss", value_name="value")
    long["value"] = long.groupby("loss")["value"].transform(lambda v: v.rolling(smooth, min_periods=1).mean())
    plot_lines(long, "step", "value", "loss", out / "losses.png", title=f"{args.loss} losses (rolling mean of {smooth})")
    print(f"trained {args.loss} for {args.steps} steps; final d_loss {history[-1]['d_loss']:.3f} "
          f"g_loss {history[-1]['g_loss']:.3f}")


if __name__ == "__main__":
    run_cli(main)
