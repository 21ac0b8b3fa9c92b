"""Stage ``sample``: draw N samples from one GAN entry of the config.

    python -m audit.sample --name skewed --spec '{"type": "resample", "dominant_prob": 0.3}' \
        --data results/digits/data --n 10000 --seed 0 --threads 1 --device auto \
        --samples results/digits/samples/skewed/samples.npy \
        --planted-labels results/digits/samples/skewed/planted_labels.npy \
        --truth results/digits/samples/skewed/truth.json --preview results/digits/samples/skewed/preview.png

Input: ``--generator``, the trained generator file of a ``dcgan`` / ``wgan-gp`` entry (other
types name their files in the spec). Outputs: ``--samples`` (uint8 (N, H, W, C), same shape
as the real images), ``--truth`` (what a planted generator planted, ``{}`` otherwise, plus N,
seed and type), ``--planted-labels`` ((N,) int64 class each sample was drawn from, -1 where
the generator does not know it), ``--preview`` (an 8x8 grid of the first 64 samples), and
``--interpolation`` (8 latent interpolation strips of 10 steps), required exactly for the
external types that may load a generator module (:data:`audit.gans.GENERATOR_MODULE_TYPES`;
trained GANs get theirs from ``train_gan``). A ``python`` target that returns a sampling
function has no latent space: its ``--interpolation`` is a one-line image saying so, since
whether a target returns a module or a function is only known once it runs.
"""

from __future__ import annotations

import json

import numpy as np

from audit.cli import add_outputs, run_cli, stage_parser
from audit.data.store import PreparedDataset
from audit.gans import GENERATOR_MODULE_TYPES, SamplerContext, make_sampler
from audit.io import AuditInputError, check_images, save_array, save_json
from audit.plots import save_grid, save_note
from audit.runtime import configure_torch, resolve_device

PREVIEW = 64


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser("audit.sample", __doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--spec", required=True, help="the GAN's config entry as JSON")
    parser.add_argument("--data", required=True, help="prepared dataset directory")
    parser.add_argument("--n", type=int, required=True, help="number of samples")
    parser.add_argument("--generator", default=None, help="trained generator (.pt) of a dcgan / wgan-gp entry")
    add_outputs(parser, samples="uint8 (N, H, W, C) images (.npy)", planted_labels="(N,) int64 planted classes (.npy)",
                truth="the planted answer (.json)", preview="grid of the first samples (.png)")
    parser.add_argument("--interpolation", default=None,
                        help="output: latent interpolation strips (.png); exactly for the types "
                             f"{', '.join(GENERATOR_MODULE_TYPES)}")
    args = parser.parse_args(argv)
    if args.n < 1:
        raise AuditInputError(f"samples.n: must be >= 1, got {args.n}")
    configure_torch(args.threads, args.seed)
    data = PreparedDataset.open(args.data)
    spec = json.loads(args.spec)
    context = SamplerContext(data=data, checkpoint=args.generator, device=resolve_device(args.device))
    if (spec.get("type") in GENERATOR_MODULE_TYPES) != (args.interpolation is not None):
        raise AuditInputError(f"gans.{args.name}: --interpolation is required for the types "
                              f"{', '.join(GENERATOR_MODULE_TYPES)} and only for them, got type '{spec.get('type')}'")
    sampler = make_sampler(args.name, spec, context)
    batch = sampler.sample(args.n, args.seed)
    check_images(batch.images, f"gans.{args.name}")
    if batch.images.shape[1:] != data.images.shape[1:]:
        raise AuditInputError(f"gans.{args.name}: samples have shape {batch.images.shape[1:]}, "
                              f"the real images {data.images.shape[1:]}")
    if batch.images.shape[0] != args.n:
        raise AuditInputError(f"gans.{args.name}: asked for {args.n} samples, got {batch.images.shape[0]}")
    planted = np.full(args.n, -1) if batch.planted_labels is None else batch.planted_labels
    save_array(args.planted_labels, np.asarray(planted, dtype=np.int64))
    save_grid(batch.images[:PREVIEW], args.preview)
    if sampler.interpolate is not None:
        save_grid(sampler.interpolate(8, 10, args.seed), args.interpolation, nrow=10)
    elif args.interpolation is not None:
        save_note(f"{args.name}: a sampling function, no latent space to interpolate", args.interpolation)
    save_json(args.truth, {**sampler.truth, "n": args.n, "seed": args.seed, "type": spec["type"]})
    save_array(args.samples, batch.images)
    print(f"sampled {args.n} images from {args.name}: {batch.images.shape}")


if __name__ == "__main__":
    run_cli(main)
