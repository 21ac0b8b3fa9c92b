"""Benchmark: prepare a CelebA-sized dataset, report images/s, peak RSS and size on disk.

    python -m benchmarks.prepare_celeba --n 5000     # quick check, from the repository root
    python -m benchmarks.prepare_celeba              # the full 200,000 images

Writes ``n`` synthetic 178x218 JPEGs (smooth random colour fields plus noise, ~5-10 KB each
like the real aligned faces) and the official ``list_attr_celeba.txt`` /
``list_eval_partition.txt`` into a temporary directory, then runs the CelebA loader and
:func:`audit.data.store.prepare` on it, exactly as ``python -m audit.prepare`` would. Exits
with status 1 if the peak resident set size reaches the 4 GiB budget.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from audit.data import load_source
from audit.data.store import prepare

#: Line 2 of the official list_attr_celeba.txt.
ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard "
    "Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair "
    "Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()
RSS_BUDGET = 4 * 2**30  # bytes
WIDTH, HEIGHT = 178, 218


def write_celeba(root: Path, n: int, seed: int) -> None:
    """Write ``n`` JPEGs and the two annotation files in the official formats."""
    rng = np.random.default_rng(seed)
    image_dir = root / "img_align_celeba"
    image_dir.mkdir(parents=True)
    # A bank of noise tiles, sliced at random offsets: texture without a per-image RNG cost.
    noise = rng.normal(0, 5, size=(2 * HEIGHT, 2 * WIDTH, 3)).astype(np.float32)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for name in names:
        coarse = Image.fromarray(rng.integers(0, 256, size=(7, 6, 3), dtype=np.uint8))
        base = np.asarray(coarse.resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC), dtype=np.float32)
        dy, dx = rng.integers(0, HEIGHT), rng.integers(0, WIDTH)
        pixels = np.clip(base + noise[dy:dy + HEIGHT, dx:dx + WIDTH], 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(image_dir / name, quality=90)
    values = rng.choice(np.array([-1, 1], dtype=np.int8), size=(n, len(ATTRIBUTES)))
    with open(root / "list_attr_celeba.txt", "w") as handle:
        handle.write(f"{n}\n" + " ".join(ATTRIBUTES) + " \n")
        for name, row in zip(names, values):
            handle.write(name + "".join(f" {v:2d}" for v in row) + "\n")
    # Official proportions: 162,770 / 19,867 / 19,962 of 202,599, contiguous in file order.
    cuts = np.rint(np.array([162770, 162770 + 19867]) / 202599 * n).astype(int)
    partition = np.searchsorted(cuts, np.arange(n), side="right")
    with open(root / "list_eval_partition.txt", "w") as handle:
        handle.writelines(f"{name} {p}\n" for name, p in zip(names, partition))


def disk_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="number of images (default 200000)")
    parser.add_argument("--workdir", default=None, help="where to put the temporary data (default: system temp)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench_celeba_", dir=args.workdir))
    try:
        start = time.perf_counter()
        write_celeba(work / "celeba", args.n, args.seed)
        written = time.perf_counter()
        source = load_source("celeba", root=str(work / "celeba"))
        loaded = time.perf_counter()
        prepared = prepare(source, work / "prepared", {"train": 0.45, "val": 0.1, "pool": 0.2, "test": 0.25},
                           seed=args.seed, progress=False)
        done = time.perf_counter()
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
        print(f"images            {args.n}  -> {prepared.images.shape} {prepared.images.dtype}")
        print(f"write JPEGs       {written - start:8.1f} s   ({args.n / (written - start):.0f} images/s)")
        print(f"load (parse)      {loaded - written:8.2f} s")
        print(f"prepare (decode)  {done - loaded:8.1f} s   ({args.n / (done - loaded):.0f} images/s)")
        print(f"peak RSS          {peak_rss / 2**20:8.0f} MiB (budget {RSS_BUDGET / 2**20:.0f} MiB)")
        print(f"input on disk     {disk_size(work / 'celeba') / 2**20:8.1f} MiB")
        print(f"prepared on disk  {disk_size(work / 'prepared') / 2**20:8.1f} MiB")
        print(f"split sizes       {prepared.meta['split_sizes']}")
        return 0 if peak_rss < RSS_BUDGET else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
