"""Stage ``features``: the annotator's embeddings of an image set, computed once and cached.

    python -m audit.features --model results/digits/annotator/model.pt \
        --images results/digits/samples/dcgan/samples.npy --out results/digits/features/dcgan.npy \
        --threads 1 --device auto
    python -m audit.features --model results/digits/annotator/model.pt --data results/digits/data \
        --splits train pool test --out results/digits/features/real_train.npy \
        results/digits/features/real_pool.npy results/digits/features/real_test.npy --threads 1 --device auto

Either ``--images`` (a GAN's uint8 (N, H, W, C) samples) with one ``--out``, or ``--data`` (a
prepared dataset directory) with ``--splits`` and one ``--out`` per split, in the same order.

Each output is a float32 ``.npy`` of shape (N, D): row i is the embedding of image i of the set
(for a real split: the i-th row of that split in ``index.csv`` order, i.e.
``PreparedDataset.rows(split)[i]``), the input of the annotator's final linear layer, L2-normalised
to unit length (:mod:`audit.models.embedding`; D = 128 for the small CNN, 512 for ResNet-18).
Distances between rows are chord distances in [0, 2]. The support, memorisation and
feature-space metrics all read these files; pixels are never cached (they are the uint8 images).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audit.cli import run_cli, stage_parser
from audit.io import AuditInputError, check_images, load_images, save_array


def load_vectors(path: str, split: str | None = None):
    """What the pair searches read (:mod:`audit.metrics.neighbours`): a prepared dataset
    directory's ``split`` as a lazy uint8 image view (pixel space), a uint8 (N, H, W, C)
    ``.npy`` (a GAN's samples, pixel space), or a float (N, D) ``.npy`` written by this stage
    (feature space); memory-mapped, validated with a one-line error naming the file."""
    if Path(path).is_dir():
        from audit.data.store import PreparedDataset
        from audit.metrics.covariance import RowSubset

        if split is None:
            raise AuditInputError(f"{path}: a prepared dataset directory needs a split")
        data = PreparedDataset.open(path)
        return RowSubset(data.images, data.rows(split))
    if not Path(path).is_file():
        raise AuditInputError(f"{path}: file not found")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as err:
        raise AuditInputError(f"{path}: not a .npy array ({err})") from None
    if array.dtype == np.uint8:
        check_images(array, path)
    elif not np.issubdtype(array.dtype, np.floating) or array.ndim != 2 or array.shape[0] == 0:
        raise AuditInputError(f"{path}: expected float (N, D) features or uint8 (N, H, W, C) images, "
                              f"got {array.dtype} {array.shape}")
    elif not np.isfinite(array).all():
        raise AuditInputError(f"{path}: features contain NaN or infinity")
    return array


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser("audit.features", __doc__, seed=False)
    parser.add_argument("--model", required=True, help="the annotator (.pt, from the annotator stage)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", help="uint8 (N, H, W, C) images (.npy), e.g. a GAN's samples")
    source.add_argument("--data", help="prepared dataset directory (with --splits)")
    parser.add_argument("--splits", nargs="+", help="splits of --data to embed, one --out each")
    parser.add_argument("--out", nargs="+", required=True, help="output: float32 (N, D) embeddings (.npy)")
    args = parser.parse_args(argv)
    if args.data is not None and not args.splits:
        raise AuditInputError("--data needs --splits (the splits to embed)")
    if args.images is not None and args.splits:
        raise AuditInputError("--splits applies to --data only")
    wanted = 1 if args.images is not None else len(args.splits)
    if len(args.out) != wanted:
        raise AuditInputError(f"--out: {len(args.out)} file(s) for {wanted} image set(s); give one per set")

    from audit.models.classifier import load_classifier
    from audit.models.embedding import embed
    from audit.runtime import configure_torch, resolve_device

    configure_torch(args.threads)
    device = resolve_device(args.device)
    model, meta = load_classifier(args.model, device=device)
    expected = tuple(meta["image_shape"])
    if args.images is not None:
        sets = [(load_images(args.images), args.images)]
    else:
        from audit.data.store import PreparedDataset
        from audit.metrics.covariance import RowSubset

        data = PreparedDataset.open(args.data)  # a lazy view per split: the images stay on disk
        sets = [(RowSubset(data.images, data.rows(split)), f"{args.data} ({split} split)") for split in args.splits]
    for images, name in sets:
        if tuple(images.shape[1:]) != expected:
            raise AuditInputError(f"{name}: images of shape {tuple(images.shape[1:])}, but the annotator "
                                  f"{args.model} was trained on {expected}")
    for (images, name), out in zip(sets, args.out):
        features = embed(model, images, device=device)
        save_array(out, features)
        print(f"{name}: {features.shape[0]} embeddings of dimension {features.shape[1]} -> {out}")


if __name__ == "__main__":
    run_cli(main)
