"""Stage ``memorisation``: does a GAN copy its training images? Nearest training image of every sample, in two spaces.

    python -m audit.memorisation --data results/digits/data --samples results/digits/samples/dcgan/samples.npy \
        --gan-features results/digits/features/dcgan.npy --train-features results/digits/features/real_train.npy \
        --test-features results/digits/features/real_test.npy --quantile 0.01 --alpha 0.05 --shown 8 \
        --seed 0 --threads 1 --device auto --out-json results/digits/memorisation/dcgan.json \
        --nearest results/digits/memorisation/dcgan_nearest.csv --plot results/digits/memorisation/dcgan.png

In each space, annotator features (the features stage's files) and pixels (x / 255, read from
``--samples`` and the prepared dataset's train and test splits): every sample's distance to its
nearest training image, and every real test image's (:mod:`audit.metrics.memorisation` for the
threshold, the test and why the test split is halved). Pixel L2 is fragile (a one-pixel shift
of a copy is far in pixels), which is why both spaces are reported and tested.

Outputs: ``--out-json`` (per space: threshold, copy fractions with intervals, Fisher p-value;
``verdicts``: one Bonferroni-combined verdict); ``--nearest`` (one row per sample: sample,
train_row_<space> (row of the prepared dataset), distance_<space>); ``--plot`` (in each space the
``--shown`` training images closest to a sample, each with its closest sample, distances printed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit.cli import add_inputs, add_outputs, run_cli, stage_parser
from audit.io import AuditInputError, save_json, save_table

SPACES = ("features", "pixels")
#: sample / training pairs per row of the figure
PAIRS_PER_ROW = 4


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser("audit.memorisation", __doc__)
    add_inputs(parser, data="prepared dataset directory (train and test images)",
               samples="the GAN's uint8 (N, H, W, C) samples (.npy)",
               gan_features="the GAN's embeddings (.npy, features stage)",
               train_features="the real train split's embeddings (.npy)",
               test_features="the real test split's embeddings (.npy)")
    parser.add_argument("--quantile", type=float, required=True,
                        help="copy threshold: this quantile of real test distances (config memorisation.quantile)")
    parser.add_argument("--alpha", type=float, required=True, help="level of the test (config memorisation.alpha)")
    parser.add_argument("--shown", type=int, required=True, help="closest pairs shown per space (config memorisation.shown)")
    add_outputs(parser, out_json="copy fractions, tests and the verdict (.json)",
                nearest="each sample's nearest training image (.csv)", plot="the closest pairs (.png)")
    args = parser.parse_args(argv)
    if not 0 < args.quantile < 0.5:
        raise AuditInputError(f"memorisation.quantile: must be in (0, 0.5), got {args.quantile}")
    if not 0 < args.alpha < 1:
        raise AuditInputError(f"memorisation.alpha: must be in (0, 1), got {args.alpha}")

    from audit.data.store import PreparedDataset
    from audit.features import load_vectors
    from audit.metrics import memorisation as mm
    from audit.metrics.birthday import halves
    from audit.runtime import configure_torch, resolve_device

    configure_torch(args.threads, args.seed)
    device = resolve_device(args.device)
    data = PreparedDataset.open(args.data)
    train_rows, test_rows = data.rows("train"), data.rows("test")
    samples = load_vectors(args.samples)
    if samples.dtype != np.uint8 or samples.shape[1:] != data.images.shape[1:]:
        raise AuditInputError(f"{args.samples}: expected uint8 images of shape {data.images.shape[1:]}, "
                              f"got {samples.dtype} {samples.shape[1:]}")
    sets = {"features": (load_vectors(args.gan_features), load_vectors(args.train_features),
                         load_vectors(args.test_features)),
            "pixels": (samples, load_vectors(args.data, "train"), load_vectors(args.data, "test"))}
    for name, expected in ((args.gan_features, samples.shape[0]), (args.train_features, train_rows.size),
                           (args.test_features, test_rows.size)):
        rows = load_vectors(name).shape[0]
        if rows != expected:
            raise AuditInputError(f"{name}: {rows} rows, expected {expected} (one per image of its set)")
    if test_rows.size < 4:
        raise AuditInputError(f"{args.data}: the test split has {test_rows.size} images; the copy test needs >= 4")
    part_a, part_b = halves(test_rows.size, args.seed)
    nearest_table = pd.DataFrame({"sample": np.arange(samples.shape[0])})
    results, shown_rows, captions = {}, [], []
    for space in SPACES:
        gan, train, test = sets[space]
        results[space], index, distance = mm.nearest_training_test(gan, train, test, part_a, part_b,
                                                                   args.quantile, device=device)
        threshold = results[space]["threshold"]
        nearest_table[f"train_row_{space}"] = train_rows[index]
        nearest_table[f"distance_{space}"] = distance
        # the closest sample of each training image, closest first: `shown` distinct training images
        order = np.lexsort((np.arange(distance.shape[0]), distance))
        _, first = np.unique(index[order], return_index=True)
        picked = order[np.sort(first)][: args.shown]
        for start in range(0, picked.size, PAIRS_PER_ROW):
            row = picked[start:start + PAIRS_PER_ROW]
            shown_rows.append([image for s in row for image in
                               (np.asarray(samples[s]), np.asarray(data.images[train_rows[index[s]]]))])
            captions.append([text for s in row for text in
                             (f"{space}: sample {s}", f"train {train_rows[index[s]]}: d = {distance[s]:.3g}"
                              + (" copy" if distance[s] < threshold else ""))])
    verdict = mm.memorisation_verdict(results, args.alpha)
    save_json(args.out_json, {"samples": args.samples, "n_samples": int(samples.shape[0]),
                              "n_train": int(train_rows.size), "n_test": int(test_rows.size),
                              "threshold_images": int(part_a.size), "measure_images": int(part_b.size),
                              "quantile": args.quantile, "seed": args.seed, "spaces": results,
                              "verdicts": [verdict.to_json()]})
    save_table(args.nearest, nearest_table)

    from audit.plots.support import plot_image_rows

    summary = "; ".join(f"{s}: {r['copy_fraction']:.1%} copies (real {r['real_copy_fraction']:.1%})"
                        for s, r in results.items())
    plot_image_rows(shown_rows, captions, args.plot, column_titles=["GAN sample", "nearest training image"] * PAIRS_PER_ROW,
                    title=f"Closest sample / training pairs (one per training image): {summary}")
    print(f"{verdict.text} (p = {verdict.p_value:.3g})")


if __name__ == "__main__":
    run_cli(main)
