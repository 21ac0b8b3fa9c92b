"""Stage ``spectrum``: pixel-covariance spectra of real vs GAN samples; tests for dropped real directions.

    python -m audit.spectrum --real results/digits/data --real-split test \
        --null-real results/digits/data --null-split train \
        --gan results/digits/samples/dcgan/samples.npy --label dcgan \
        --max-samples 50000 --threshold 0.1 --alpha 0.05 --null-draws 200 --test-samples 1000 \
        --seed 0 --threads 1 --device auto \
        --out-json results/digits/spectrum/dcgan.json --out-csv results/digits/spectrum/dcgan.csv \
        --out-png results/digits/spectrum/dcgan.png

See :mod:`audit.metrics.spectrum` for the figures and the test, :mod:`audit.metrics.covariance`
for the numerics. ``--real`` and ``--null-real`` are prepared dataset directories, of which
``--real-split`` / ``--null-split`` are used (read lazily from the memmap), or uint8
(N, H, W, C) ``.npy`` files; ``--gan`` a uint8 (N, H, W, C) ``.npy``. The null real images only
stand in for the GAN in the test's null draws. Each set is subsampled to at most
``--max-samples`` images (seeded). Outputs, each written atomically: the JSON summary (with the
test under ``"verdicts"``), the CSV of normalised spectra (``index``, ``real``, ``<label>``) and
the figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audit.cli import add_inputs, add_outputs, run_cli, stage_parser
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


def parse_args(argv: list[str] | None = None):
    parser = stage_parser("audit.spectrum", __doc__)
    add_inputs(parser, real="real images: a prepared dataset directory, or uint8 (N, H, W, C) .npy",
               null_real="real images for the test's null stand-ins: a prepared dataset directory or .npy",
               gan="GAN samples, uint8 (N, H, W, C) .npy")
    parser.add_argument("--real-split", required=True, help="split of --real when it is a directory (test)")
    parser.add_argument("--null-split", required=True, help="split of --null-real when it is a directory (train)")
    parser.add_argument("--label", required=True, help="GAN column name in the CSV and plot")
    #: flag -> (type, config key under spectrum:, check, what the check says)
    options = {"max_samples": (int, "max_samples", lambda v: v >= 2, ">= 2"),
               "threshold": (float, "dropped_ratio", lambda v: 0 < v <= 1, "in (0, 1]"),
               "alpha": (float, "alpha", lambda v: 0 < v < 1, "in (0, 1)"),
               "null_draws": (int, "null_draws", lambda v: v >= 1, ">= 1"),
               "test_samples": (int, "test_samples", lambda v: v >= 4, ">= 4")}
    for name, (kind, key, _, _) in options.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, required=True, help=f"config spectrum.{key}")
    add_outputs(parser, out_json="summary and verdict (.json)", out_csv="normalised spectra (.csv)",
                out_png="spectra and rank ratios (.png)")
    parser.add_argument("--chunk-size", type=int, default=cv.CHUNK_SIZE, help="rows read at a time")
    parser.add_argument("--k", type=int, default=sp.TOP_K, help=f"top-k eigenvalues when d > {cv.MAX_FULL_D}")
    args = parser.parse_args(argv)
    for name, (_, key, check, bound) in options.items():
        if not check(getattr(args, name)):
            raise AuditInputError(f"spectrum.{key}: must be {bound}, got {getattr(args, name)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from audit.runtime import configure_torch, resolve_device

    configure_torch(args.threads, args.seed)
    device = resolve_device(args.device)
    if device == "mps":  # the covariance numerics are float64, which MPS does not have
        print("spectrum: float64 is not available on MPS; computing on the CPU")
        device = "cpu"
    real, real_name = read_real(args.real, args.real_split)
    null, null_name = read_real(args.null_real, args.null_split)
    same_file = not Path(args.real).is_dir() and Path(args.real).resolve() == Path(args.null_real).resolve()
    if real_name == null_name or same_file:
        raise AuditInputError(f"--null-real {null_name}: the null stand-ins must be real images independent of "
                              f"--real {real_name} (the rule passes the train split)")
    gan = load_images(args.gan)
    for images, name in ((gan, args.gan), (null, null_name)):
        if images.shape[1:] != real.shape[1:]:
            raise AuditInputError(f"{real_name} has images of shape {real.shape[1:]} but {name} has {images.shape[1:]}")
    for images, name in ((real, real_name), (gan, args.gan), (null, null_name)):
        if images.shape[0] < 2:
            raise AuditInputError(f"{name}: need at least 2 images for a covariance, got {images.shape[0]}")
    rng = np.random.default_rng(args.seed)
    real_s, gan_s = cv.subsample(real, args.max_samples, rng), cv.subsample(gan, args.max_samples, rng)
    result = sp.analyse_spectra(real_s, gan_s, null, threshold=args.threshold, alpha=args.alpha,
                                null_draws=args.null_draws, test_samples=args.test_samples,
                                chunk_size=args.chunk_size, device=device, k=args.k, seed=args.seed)
    s = result.summary
    summary = {"real": str(real_name), "gan": str(args.gan), "null_real": str(null_name),
               "max_samples": args.max_samples, "seed": args.seed, **s}
    table = sp.spectrum_table(result.real_eigs, {args.label: result.gan_eigs}, s["total_variance_real"],
                              {args.label: s["total_variance_gan"]})
    save_json(args.out_json, summary)
    save_table(args.out_csv, table)

    from audit.plots.spectrum import plot_spectra

    plot_spectra(table, args.out_png, ratio=result.ratio, threshold=args.threshold,
                 title=f"{args.label}: {result.verdict.text}")


if __name__ == "__main__":
    run_cli(main)
