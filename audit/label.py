"""Stage ``label``: the annotator's calibrated class probabilities for every GAN sample.

    python -m audit.label --annotator results/digits/annotator/model.pt \
        --samples results/digits/samples/dcgan/samples.npy \
        --planted-labels results/digits/samples/dcgan/planted_labels.npy \
        --out results/digits/labels/dcgan.csv --threads 1 --device auto

Output: one row per sample: row, predicted (argmax class), confidence (its calibrated
probability), p_0 .. p_{K-1}, and planted_label when the generator planted one. A Stacked MNIST
annotator (saved with ``stacked_channels``) labels each channel: the table then holds the
1,000-class ``predicted`` and ``confidence`` and, instead of p_0 .. p_999, the channels' digit
probabilities p_r0 .. p_b9 (:mod:`audit.models.stacked`, "compact labels").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audit.cli import add_inputs, add_outputs, run_cli, stage_parser
from audit.io import AuditInputError, load_images, save_table
from audit.runtime import configure_torch, resolve_device


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser("audit.label", __doc__, seed=False)
    add_inputs(parser, annotator="model.pt written by the annotator stage",
               samples="uint8 (N, H, W, C) samples (.npy) of the sample stage",
               planted_labels="(N,) planted classes, -1 unknown (.npy)")
    add_outputs(parser, out="one row per sample (.csv)")
    args = parser.parse_args(argv)
    # inference only: nothing random, the seed is fixed
    configure_torch(args.threads, 0)
    from audit.models.classifier import calibrated_probabilities, load_classifier, prediction_table

    device = resolve_device(args.device)
    from audit.models import stacked

    model, meta = load_classifier(args.annotator, device)
    images = load_images(args.samples)
    channels = meta.get(stacked.STACKED_KEY, 1)
    expected = [*meta["image_shape"][:2], meta["image_shape"][2] * channels]
    if list(images.shape[1:]) != expected:
        raise AuditInputError(f"{args.samples}: images of shape {images.shape[1:]}, "
                              f"the annotator expects {tuple(expected)}")
    if channels > 1:
        probabilities = stacked.channel_probabilities(model, meta["temperature"], images, device)
        table = stacked.channel_table(np.arange(images.shape[0]), None, probabilities)
    else:
        probabilities = calibrated_probabilities(model, meta["temperature"], images, device)
        table = prediction_table(np.arange(images.shape[0]), None, probabilities)
    if not Path(args.planted_labels).is_file():
        raise AuditInputError(f"{args.planted_labels}: file not found")
    planted = np.load(args.planted_labels)
    if planted.shape != (images.shape[0],):
        raise AuditInputError(f"{args.planted_labels}: shape {planted.shape}, expected ({images.shape[0]},) "
                              f"like the samples")
    if (planted >= 0).any():
        table.insert(1, "planted_label", planted)
    save_table(args.out, table)
    print(f"labelled {len(table)} samples; mean confidence {table['confidence'].mean():.3f}")


if __name__ == "__main__":
    run_cli(main)
