"""Small synthetic copies of real datasets in their official file formats.

The tests and ``benchmarks/prepare_celeba.py`` run the real loaders on files written here, so
a format detail (the count line, the header's trailing space, CRLF partition files) is written
in one place. The pixels are smooth random colour fields: they exercise decoding, cropping and
resizing, not any visual content.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

#: The 40 attributes in the order of line 2 of the official list_attr_celeba.txt.
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard "
    "Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair "
    "Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()
#: Aligned CelebA images are 178 wide and 218 high.
CELEBA_WIDTH, CELEBA_HEIGHT = 178, 218
#: Official partition sizes (train, valid, test) of the 202,599 images, contiguous in file order.
CELEBA_PARTITION_SIZES = (162_770, 19_867, 19_962)


def official_partition(n: int) -> np.ndarray:
    """(n,) partition codes 0/1/2 in the official proportions, contiguous in file order."""
    cuts = np.rint(np.cumsum(CELEBA_PARTITION_SIZES[:2]) / sum(CELEBA_PARTITION_SIZES) * n).astype(int)
    return np.searchsorted(cuts, np.arange(n), side="right")


def write_celeba(root, n: int, seed: int = 0, partition: np.ndarray | None = None, noise: float = 0.0,
                 crlf: bool = False) -> np.ndarray:
    """Write ``root/img_align_celeba/000001.jpg ...``, ``list_attr_celeba.txt`` and
    ``list_eval_partition.txt`` for ``n`` images; return the (n, 40) attribute values (+-1).

    Attributes are random, except Male and Smiling, which cycle through their four combinations
    so that every (Male, Smiling) class appears in every partition part. ``partition``: (n,)
    codes, default :func:`official_partition`. ``noise``: standard deviation (grey levels) of a
    texture added to the smooth colour field, which brings JPEG sizes near the real ~5-10 KB.
    ``crlf``: write the partition file with CRLF endings, as some copies of it are.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    image_dir = root / "img_align_celeba"
    image_dir.mkdir(parents=True)
    values = rng.choice(np.array([-1, 1], dtype=np.int64), size=(n, len(CELEBA_ATTRIBUTES)))
    values[:, CELEBA_ATTRIBUTES.index("Male")] = np.where(np.arange(n) % 4 >= 2, 1, -1)
    values[:, CELEBA_ATTRIBUTES.index("Smiling")] = np.where(np.arange(n) % 2 == 1, 1, -1)
    # a bank of noise tiles sliced at random offsets: texture without a per-image RNG cost
    bank = rng.normal(0, noise, size=(2 * CELEBA_HEIGHT, 2 * CELEBA_WIDTH, 3)).astype(np.float32) if noise else None
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for name in names:
        coarse = Image.fromarray(rng.integers(0, 256, size=(11, 9, 3), dtype=np.uint8))
        image = coarse.resize((CELEBA_WIDTH, CELEBA_HEIGHT), Image.Resampling.BICUBIC)
        if bank is not None:
            dy, dx = rng.integers(0, CELEBA_HEIGHT), rng.integers(0, CELEBA_WIDTH)
            pixels = np.asarray(image, dtype=np.float32) + bank[dy:dy + CELEBA_HEIGHT, dx:dx + CELEBA_WIDTH]
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        image.save(image_dir / name, quality=90)
    # official spacing: values right-aligned in width 2, header with a trailing space
    with open(root / "list_attr_celeba.txt", "w") as handle:
        handle.write(f"{n}\n" + " ".join(CELEBA_ATTRIBUTES) + " \n")
        for name, row in zip(names, values):
            handle.write(name + "".join(f" {v:2d}" for v in row) + "\n")
    codes = official_partition(n) if partition is None else np.asarray(partition)[:n]
    ending = "\r\n" if crlf else "\n"
    (root / "list_eval_partition.txt").write_bytes(
        "".join(f"{name} {p}{ending}" for name, p in zip(names, codes)).encode())
    return values
