"""Stage ``label``: the annotator's calibrated class probabilities for every GAN sample.

    python -m audit.label --annotator results/digits/annotator/model.pt \
        --samples results/digits/samples/dcgan --out results/digits/labels/dcgan.csv

Output: one row per sample: row, predicted (argmax class), confidence (its calibrated
probability), p_0 .. p_{K-1}, and planted_label when the generator planted one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from audit.annotator import prediction_table
from audit.io import AuditInputError, load_images, run_cli, save_table
from audit.runtime import configure_torch, resolve_device


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m audit.label", description=__doc__.splitlines()[0])
    parser.add_argument("--annotator", required=True, help="model.pt written by the annotator stage")
    parser.add_argument("--samples", required=True, help="directory written by the sample stage")
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    configure_torch(args.threads, 0)
    from audit.models.classifier import calibrated_probabilities, load_classifier

    device = resolve_device(args.device)
    model, meta = load_classifier(args.annotator, device)
    samples_dir = Path(args.samples)
    images = load_images(samples_dir / "samples.npy")
    if list(images.shape[1:]) != list(meta["image_shape"]):
        raise AuditInputError(f"{samples_dir / 'samples.npy'}: images of shape {images.shape[1:]}, "
                              f"the annotator expects {tuple(meta['image_shape'])}")
    probabilities = calibrated_probabilities(model, meta["temperature"], images, device)
    table = prediction_table(np.arange(images.shape[0]), None, probabilities)
    planted = np.load(samples_dir / "planted_labels.npy") if (samples_dir / "planted_labels.npy").is_file() else None
    if planted is not None and (planted >= 0).any():
        table.insert(1, "planted_label", planted)
    save_table(args.out, table)
    print(f"labelled {len(table)} samples; mean confidence {table['confidence'].mean():.3f}")


if __name__ == "__main__":
    run_cli(main)
