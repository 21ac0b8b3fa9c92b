"""Stage ``spectrum``: pixel-covariance spectra of real vs GAN samples; counts dropped real directions.

    python -m audit.spectrum --real results/digits/data --real-split test \
        --gan results/digits/samples/dcgan/samples.npy --label dcgan \
        --max-samples 50000 --threshold 0.1 --seed 0 --threads 1 --device auto \
        --out-json results/digits/spectrum/dcgan.json --out-csv results/digits/spectrum/dcgan.csv \
        --out-png results/digits/spectrum/dcgan.png

See :mod:`audit.metrics.spectrum` for the figures and :mod:`audit.metrics.covariance` for the
numerics. ``--real`` is a prepared dataset directory, of which ``--real-split`` is used (read
lazily from the memmap), or a uint8 (N, H, W, C) ``.npy``; ``--gan`` a uint8 (N, H, W, C)
``.npy``. Each set is subsampled to at most ``--max-samples`` images (seeded). Outputs, each
written atomically: the JSON summary, the CSV of normalised spectra (``index``, ``real``,
``<label>``) and their plot with each set's noise floor dotted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audit.cli import run_cli, stage_parser
from audit.io import AuditInputError, load_images, save_json, save_table
from audit.metrics import covariance as cv
from audit.metrics import spectrum as sp


def read_real(path: str, split: str):
    """(images, description): a lazy view of ``split`` of a prepared dataset directory, or a
    uint8 (N, H, W, C) ``.npy`` file."""
    if Path(path).is_dir():
        from audit.data.store import PreparedDataset

        dataset = PreparedDataset.open(path)
        return cv.RowSubset(dataset.images, dataset.rows(split)), f"{path} ({split} split)"
    return load_images(path), path


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser("audit.spectrum", __doc__)
    parser.add_argument("--real", required=True,
                        help="real images: a prepared dataset directory, or uint8 (N, H, W, C) .npy")
    parser.add_argument("--real-split", required=True, help="split of a prepared dataset directory")
    parser.add_argument("--gan", required=True, help="GAN samples, uint8 (N, H, W, C) .npy")
    parser.add_argument("--label", required=True, help="GAN column name in the CSV and plot")
    parser.add_argument("--max-samples", type=int, required=True,
                        help="subsample each set to at most M images (config spectrum.max_samples)")
    parser.add_argument("--threshold", type=float, required=True,
                        help="variance ratio below which a direction is dropped (config spectrum.dropped_ratio)")
    parser.add_argument("--out-json", required=True)
    parser.add_argument("--out-csv", required=True)
    parser.add_argument("--out-png", required=True)
    parser.add_argument("--chunk-size", type=int, default=cv.CHUNK_SIZE, help="rows read at a time")
    parser.add_argument("--k", type=int, default=sp.TOP_K, help=f"top-k eigenvalues when d > {cv.MAX_FULL_D}")
    args = parser.parse_args(argv)
    if args.max_samples < 2:
        raise AuditInputError(f"spectrum.max_samples: must be >= 2, got {args.max_samples}")
    if not 0 < args.threshold <= 1:
        raise AuditInputError(f"spectrum.dropped_ratio: must be in (0, 1], got {args.threshold}")

    from audit.runtime import configure_torch, resolve_device

    configure_torch(args.threads, args.seed)
    device = resolve_device(args.device)
    if device == "mps":  # the covariance numerics are float64, which MPS does not have
        print("spectrum: float64 is not available on MPS; computing on the CPU")
        device = "cpu"
    real, real_name = read_real(args.real, args.real_split)
    gan = load_images(args.gan)
    if real.shape[1:] != gan.shape[1:]:
        raise AuditInputError(f"{real_name} has images of shape {real.shape[1:]} but {args.gan} has {gan.shape[1:]}")
    for images, name in ((real, real_name), (gan, args.gan)):
        if images.shape[0] < 2:
            raise AuditInputError(f"{name}: need at least 2 images for a covariance, got {images.shape[0]}")
    rng = np.random.default_rng(args.seed)
    real_s, gan_s = cv.subsample(real, args.max_samples, rng), cv.subsample(gan, args.max_samples, rng)
    result = sp.analyse_spectra(real_s, gan_s, threshold=args.threshold, chunk_size=args.chunk_size,
                                device=device, k=args.k, seed=args.seed)
    s = result.summary
    summary = {"real": str(real_name), "gan": str(args.gan), "max_samples": args.max_samples, "seed": args.seed, **s}
    table = sp.spectrum_table(result.real_eigs, {args.label: result.gan_eigs}, s["total_variance_real"],
                              {args.label: s["total_variance_gan"]})
    save_json(args.out_json, summary)
    save_table(args.out_csv, table)

    from audit.plots.spectrum import plot_spectra

    floors = {"real": s["noise_floor_real"] / s["total_variance_real"]}
    if s["total_variance_gan"] > 0:
        floors[args.label] = s["noise_floor_gan"] / s["total_variance_gan"]
    plot_spectra(table, args.out_png, floors=floors,
                 title=f"Covariance spectrum: {s['dropped_directions']} of {s['significant_real_directions']} "
                       f"real directions dropped")


if __name__ == "__main__":
    run_cli(main)
