"""Stage ``sample``: draw N samples from one GAN entry of the config.

    python -m audit.sample --name skewed --spec '{"type": "resample", "dominant_prob": 0.3}' \
        --data results/digits/data --out results/digits/samples/skewed --n 10000 --seed 0

Outputs in ``--out``: ``samples.npy`` (uint8 (N, H, W, C), same shape as the real images),
``truth.json`` (what a planted generator planted, ``{}`` otherwise, plus N and seed),
``planted_labels.npy`` ((N,) int64 class each sample was drawn from, -1 where the generator
does not know it), ``preview.png``
(an 8x8 grid of the first 64 samples), and for external generator modules (torchscript,
python) ``interpolation.png`` (8 latent interpolation strips of 10 steps; trained GANs get
theirs from ``train_gan``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from audit.data.store import PreparedDataset
from audit.gans import SamplerContext, make_sampler
from audit.io import AuditInputError, check_images, run_cli, save_array, save_json
from audit.plots import save_grid
from audit.runtime import configure_torch, resolve_device

PREVIEW = 64


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m audit.sample", description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--spec", required=True, help="the GAN's config entry as JSON")
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.n < 1:
        raise AuditInputError(f"samples.n: must be >= 1, got {args.n}")
    configure_torch(args.threads, args.seed)
    data = PreparedDataset.open(args.data)
    context = SamplerContext(data=data, checkpoint=args.checkpoint, device=resolve_device(args.device))
    sampler = make_sampler(args.name, json.loads(args.spec), context)
    batch = sampler.sample(args.n, args.seed)
    check_images(batch.images, f"gans.{args.name}")
    if batch.images.shape[1:] != data.images.shape[1:]:
        raise AuditInputError(f"gans.{args.name}: samples have shape {batch.images.shape[1:]}, "
                              f"the real images {data.images.shape[1:]}")
    if batch.images.shape[0] != args.n:
        raise AuditInputError(f"gans.{args.name}: asked for {args.n} samples, got {batch.images.shape[0]}")
    out = Path(args.out)
    planted = np.full(args.n, -1) if batch.planted_labels is None else batch.planted_labels
    save_array(out / "planted_labels.npy", np.asarray(planted, dtype=np.int64))
    save_grid(batch.images[:PREVIEW], out / "preview.png")
    if sampler.interpolate is not None:
        save_grid(sampler.interpolate(8, 10, args.seed), out / "interpolation.png", nrow=10)
    save_json(out / "truth.json", {**sampler.truth, "n": args.n, "seed": args.seed, "type": json.loads(args.spec)["type"]})
    save_array(out / "samples.npy", batch.images)
    print(f"sampled {args.n} images from {args.name}: {batch.images.shape}")


if __name__ == "__main__":
    run_cli(main)
