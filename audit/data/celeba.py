"""CelebA aligned faces from a local copy in the official layout; classes from attribute bits.

Expected files under ``root`` (exactly as distributed by the CelebA authors)::

    img_align_celeba/000001.jpg ...   178x218 (W x H) aligned and cropped faces
    list_attr_celeba.txt              line 1: image count; line 2: the 40 attribute names;
                                      then "000001.jpg -1  1 ..." (one 1/-1 per attribute)
    list_eval_partition.txt           "000001.jpg 0" with 0/1/2 = train/valid/test

The text files are parsed directly rather than through ``torchvision.datasets.CelebA``:
that class md5-checks every annotation file (identities, boxes, landmarks too) and wants
them under ``<root>/celeba/``, so it rejects partial copies and small test fixtures.

Preprocessing (changes every pixel value downstream, so it is fixed and recorded in the
metadata): decode to RGB; centre-crop a ``crop`` x ``crop`` square whose top-left corner is
``(round((W - crop) / 2), round((H - crop) / 2))`` (torchvision ``CenterCrop``'s rounding) --
for the 178x218 aligned images and the default ``crop=108`` the box (left, top, right,
bottom) is (35, 55, 143, 163), the crop of the DCGAN era; then resize to ``size`` x ``size``
with PIL's bicubic filter, which widens its kernel by the reduction factor when shrinking
(antialiased). Equal to torchvision ``CenterCrop(crop)`` then ``Resize((size, size),
BICUBIC)`` on the PIL image. Result: uint8 (size, size, 3).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from audit.data.base import SourceDataset
from audit.data.imaging import RESAMPLE, centre_box, decode_rgb, name_list, positive_int
from audit.io import AuditInputError

IMAGE_DIR = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
#: list_eval_partition.txt codes -> the names :func:`audit.data.store.assign_splits` expects.
PARTITION_CODES = {"0": "train", "1": "val", "2": "test"}
DEFAULT_ATTRIBUTES = ("Male", "Smiling")
_ATTR_VALUES = frozenset({"1", "-1"})
#: Resampling filter of every resize in the real-data loaders (CelebA and LSUN).


def load(root=None, attributes=DEFAULT_ATTRIBUTES, crop=108, size=64, **unknown) -> SourceDataset:
    """Open CelebA at ``root``; labels are the ``2**k`` combinations of ``k`` attributes.

    Parameters
    ----------
    root : folder holding ``img_align_celeba/``, ``list_attr_celeba.txt`` and
        ``list_eval_partition.txt`` (for a torchvision download: ``<its root>/celeba``).
    attributes : k attribute names from line 2 of ``list_attr_celeba.txt``. The class index
        reads the attribute bits (1 = present) as a binary number, first attribute most
        significant: with ``["Male", "Smiling"]`` a smiling woman is ``0b01 = 1``.
    crop : side in pixels of the centre square cut before resizing (108 by default).
    size : side in pixels of the output images (64 by default).

    Only file names and labels are read here; ``read(indices)`` decodes just those images.
    """
    if unknown:
        raise AuditInputError(f"dataset.options: unknown CelebA option(s) {sorted(unknown)}, "
                              "expected root, attributes, crop, size")
    root = _check_root(root)
    attributes = name_list(attributes, "attributes")
    crop, size = positive_int(crop, "crop"), positive_int(size, "size")
    names, values = _read_attributes(root / ATTR_FILE, attributes)
    official_split = _read_partition(root / PARTITION_FILE, names)
    image_dir = root / IMAGE_DIR
    _check_images_exist(image_dir, names)

    k = len(attributes)
    # values holds the k requested columns as 0/1 bits; weights make the first one the MSB.
    labels = (values.astype(np.int64) << np.arange(k - 1, -1, -1)).sum(axis=1)
    class_names = tuple(_class_name(attributes, c) for c in range(2 ** k))

    def read(indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices)
        out = np.empty((indices.shape[0], size, size, 3), dtype=np.uint8)
        for i, index in enumerate(indices):
            path = image_dir / names[index]
            out[i] = _centre_crop_resize(decode_rgb(path, str(path)), crop, size, str(path))
        return out

    return SourceDataset(
        name="celeba",
        labels=labels,
        class_names=class_names,
        image_shape=(size, size, 3),
        read=read,
        official_split=official_split,
        description=f"CelebA img_align_celeba from {root}: {len(names)} images, classes = "
        f"bits of {list(attributes)}, centre crop {crop} then bicubic resize to {size}x{size}",
        extra={"options": {"root": str(root), "attributes": list(attributes), "crop": crop, "size": size},
               "preprocessing": f"centre crop {crop}x{crop} (torchvision CenterCrop rounding), "
                                f"PIL bicubic resize to {size}x{size}"},
    )


def _centre_crop_resize(image: Image.Image, crop: int, size: int, where: str) -> np.ndarray:
    width, height = image.size
    if crop > min(width, height):
        raise AuditInputError(f"{where}: image is {width}x{height}, smaller than crop={crop}")
    image = image.crop(centre_box(width, height, crop))
    return np.asarray(image.resize((size, size), RESAMPLE), dtype=np.uint8)


def _check_root(root) -> Path:
    layout = f"(root must hold {IMAGE_DIR}/, {ATTR_FILE} and {PARTITION_FILE})"
    if root is None or root == "":
        raise AuditInputError(f"dataset.options.root: required for CelebA {layout}")
    root = Path(str(root)).expanduser()
    if not root.is_dir():
        raise AuditInputError(f"{root}: CelebA root directory not found {layout}")
    if not (root / IMAGE_DIR).is_dir():
        raise AuditInputError(f"{root / IMAGE_DIR}: directory not found {layout}")
    for name in (ATTR_FILE, PARTITION_FILE):
        if not (root / name).is_file():
            raise AuditInputError(f"{root / name}: file not found {layout}")
    return root


def _read_attributes(path: Path, attributes: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    """Parse list_attr_celeba.txt -> (N file names, (N, k) uint8 bits of ``attributes``).

    Every line is checked (column count, values 1/-1) and the count on line 1 must match the
    number of image lines, so a truncated download fails here with the line number.
    """
    with open(path) as handle:
        lines = handle.read().splitlines()
    if len(lines) < 2:
        raise AuditInputError(f"{path}: expected a count line and an attribute-name line")
    try:
        declared = int(lines[0].strip())
    except ValueError:
        raise AuditInputError(f"{path}: line 1 should be the image count, got '{lines[0].strip()[:40]}'") from None
    header = lines[1].split()
    unknown = [a for a in attributes if a not in header]
    if unknown:
        raise AuditInputError(f"{path}: unknown attribute(s) {unknown}, expected names from {header}")
    columns = [1 + header.index(a) for a in attributes]
    n_fields = 1 + len(header)
    names: list[str] = []
    bits = []
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != n_fields:
            raise AuditInputError(f"{path}: line {number} has {len(fields)} columns, expected {n_fields} "
                                  f"(file name + {len(header)} attributes)")
        if not _ATTR_VALUES.issuperset(fields[1:]):
            raise AuditInputError(f"{path}: line {number}: attribute values must be 1 or -1")
        names.append(fields[0])
        bits.append([fields[c] == "1" for c in columns])
    if len(names) != declared:
        raise AuditInputError(f"{path}: line 1 declares {declared} images but {len(names)} are listed")
    if len(set(names)) != len(names):
        raise AuditInputError(f"{path}: an image file name is listed twice")
    return names, np.asarray(bits, dtype=np.uint8).reshape(len(names), len(attributes))


def _read_partition(path: Path, names: list[str]) -> np.ndarray:
    """Parse list_eval_partition.txt -> (N,) ``train``/``val``/``test`` aligned with ``names``."""
    split_of = {}
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or fields[1] not in PARTITION_CODES:
                raise AuditInputError(f"{path}: line {number}: expected '<file name> 0|1|2'")
            split_of[fields[0]] = PARTITION_CODES[fields[1]]
    missing = [n for n in names if n not in split_of]
    if missing:
        raise AuditInputError(f"{path}: no partition for {missing[0]} ({len(missing)} image(s) missing)")
    return np.asarray([split_of[n] for n in names])


def _check_images_exist(image_dir: Path, names: list[str]) -> None:
    # One directory listing instead of 200k stat calls.
    present = set(os.listdir(image_dir))
    missing = [n for n in names if n not in present]
    if missing:
        raise AuditInputError(f"{image_dir / missing[0]}: file not found ({len(missing)} image(s) listed in "
                              f"{ATTR_FILE} are missing)")


def _class_name(attributes: tuple[str, ...], index: int) -> str:
    """``("Male", "Smiling"), 1`` -> ``"not Male & Smiling"``."""
    k = len(attributes)
    bits = [(index >> (k - 1 - j)) & 1 for j in range(k)]
    return " & ".join(a if b else f"not {a}" for a, b in zip(attributes, bits))
