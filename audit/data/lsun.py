"""LSUN scene categories from local lmdb databases or image folders; class = category.

For each category ``c`` the images come from (first match wins):

* ``<root>/<c>_train_lmdb/`` -- an lmdb database as the LSUN authors distribute it: key =
  image id (ASCII bytes), value = the encoded image (WEBP in the current release, JPEG in
  older ones). Keys are taken in lmdb key order (sorted bytes), so subsets are deterministic.
* ``<root>/<c>/`` -- a folder of ``*.jpg``/``*.jpeg``/``*.png``/``*.webp`` files, in sorted
  file-name order.

Preprocessing, as torchvision's ``Resize(size)`` then ``CenterCrop(size)`` (the DCGAN LSUN
pipeline) but with PIL's bicubic filter: decode to RGB; resize so the shorter side is
``size`` and the longer side ``int(size * long / short)``, with PIL bicubic (antialiased when
shrinking); cut the centred ``size`` x ``size`` square, top-left corner
``(round((W - size) / 2), round((H - size) / 2))``. Result: uint8 (size, size, 3).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from audit.data.base import SourceDataset
from audit.data.imaging import RESAMPLE, centre_box, decode_rgb, name_list, positive_int
from audit.io import AuditInputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
LMDB_SUFFIX = "_train_lmdb"


def load(root=None, categories=None, size=64, max_per_category=None, **unknown) -> SourceDataset:
    """Open the LSUN ``categories`` under ``root``; label ``i`` is ``categories[i]``.

    Parameters
    ----------
    root : folder holding ``<category>_train_lmdb/`` databases or ``<category>/`` folders.
    categories : list of category names, e.g. ``["bedroom", "church_outdoor"]``.
    size : side in pixels of the output images (64 by default).
    max_per_category : keep only the first N images of each category (key or file-name
        order); ``None`` keeps all.

    Keys (or file names) are listed once here; ``read(indices)`` decodes just those images.
    """
    if unknown:
        raise AuditInputError(f"dataset.options: unknown LSUN option(s) {sorted(unknown)}, "
                              "expected root, categories, size, max_per_category")
    if root is None or root == "":
        raise AuditInputError("dataset.options.root: required for LSUN (folder of <category>_train_lmdb/)")
    root = Path(str(root)).expanduser()
    if not root.is_dir():
        raise AuditInputError(f"{root}: LSUN root directory not found")
    categories = name_list(categories, "categories")
    size = positive_int(size, "size")
    if max_per_category is not None:
        max_per_category = positive_int(max_per_category, "max_per_category")

    sources = [_open_category(root, c, max_per_category) for c in categories]
    counts = np.asarray([len(s) for s in sources])
    labels = np.repeat(np.arange(len(categories), dtype=np.int64), counts)
    # Position of every image inside its category's key (or file) list.
    positions = np.arange(labels.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)

    def read(indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices)
        out = np.empty((indices.shape[0], size, size, 3), dtype=np.uint8)
        with contextlib.ExitStack() as stack:
            getters = {}  # category -> get(position); one lmdb read transaction per call
            for i, index in enumerate(indices):
                label = labels[index]
                if label not in getters:
                    getters[label] = sources[label].getter(stack)
                data, where = getters[label](positions[index])
                out[i] = _resize_centre_crop(decode_rgb(data, where), size)
        return out

    return SourceDataset(
        name="lsun",
        labels=labels,
        class_names=categories,
        image_shape=(size, size, 3),
        read=read,
        description=f"LSUN from {root}: " + ", ".join(f"{c} {n}" for c, n in zip(categories, counts))
        + f" images; shorter side resized to {size} (bicubic), centre crop {size}x{size}",
        extra={"options": {"root": str(root), "categories": list(categories), "size": size,
                           "max_per_category": max_per_category},
               "sources": [s.describe() for s in sources],
               "preprocessing": f"PIL bicubic resize of the shorter side to {size}, centre crop "
                                f"{size}x{size} (torchvision Resize + CenterCrop rules)"},
    )


def _resize_centre_crop(image, size: int) -> np.ndarray:
    """PIL RGB image of any shape -> uint8 (size, size, 3), by the rule in the module docstring."""
    width, height = image.size
    # torchvision Resize(int): the shorter side becomes size, the longer one is truncated.
    if width <= height:
        new_size = (size, int(size * height / width))
    else:
        new_size = (int(size * width / height), size)
    image = image.resize(new_size, RESAMPLE)
    return np.asarray(image.crop(centre_box(*new_size, size)), dtype=np.uint8)


#: path -> (process id, lmdb environment). py-lmdb allows one environment per database per
#: process, so every loader in the process shares it. LMDB handles must not be used across
#: ``fork``: a forked child (e.g. a DataLoader worker) closes its inherited copy -- which
#: only unmaps the child's view -- and opens its own.
_ENVIRONMENTS: dict[Path, tuple[int, object]] = {}


def _environment(path: Path):
    import lmdb

    pid, env = _ENVIRONMENTS.get(path, (None, None))
    if pid != os.getpid():
        if env is not None:
            env.close()
        try:
            # Read-only without the lock file, so read-only copies on shared storage work.
            env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False, subdir=True)
        except lmdb.Error as err:
            raise AuditInputError(f"{path}: cannot open lmdb database ({err})") from None
        _ENVIRONMENTS[path] = (os.getpid(), env)
    return env


class _LmdbCategory:
    """One ``<category>_train_lmdb`` database: keys listed once, images fetched by key."""

    def __init__(self, path: Path, limit: int | None):
        self.path = path
        with _environment(path).begin() as txn:
            keys = []
            for key in txn.cursor().iternext(keys=True, values=False):
                if limit is not None and len(keys) >= limit:
                    break
                keys.append(bytes(key))
        if not keys:
            raise AuditInputError(f"{path}: LSUN database is empty")
        self.keys = keys

    def __len__(self) -> int:
        return len(self.keys)

    def describe(self) -> str:
        return f"lmdb {self.path} ({len(self.keys)} keys)"

    def getter(self, stack: contextlib.ExitStack):
        """``get(position) -> (encoded image bytes, where)`` inside one read transaction that
        ``stack`` closes."""
        txn = stack.enter_context(_environment(self.path).begin())

        def get(position: int) -> tuple[bytes, str]:
            key = self.keys[position]
            where = f"{self.path}[{key.decode('ascii', errors='replace')}]"
            data = txn.get(key)
            if data is None:
                raise AuditInputError(f"{where}: key vanished from the database")
            return data, where

        return get


class _FolderCategory:
    """One ``<category>/`` folder of image files, in sorted file-name order."""

    def __init__(self, path: Path, limit: int | None):
        self.path = path
        files = sorted(p.name for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise AuditInputError(f"{path}: no {'/'.join(IMAGE_SUFFIXES)} images in the folder")
        self.files = files[:limit]

    def __len__(self) -> int:
        return len(self.files)

    def describe(self) -> str:
        return f"folder {self.path} ({len(self.files)} files)"

    def getter(self, stack: contextlib.ExitStack):
        """``get(position) -> (file path, where)``; ``stack`` is unused (no handle to hold)."""

        def get(position: int) -> tuple[Path, str]:
            path = self.path / self.files[position]
            return path, str(path)

        return get


def _open_category(root: Path, category: str, limit: int | None):
    if (root / f"{category}{LMDB_SUFFIX}").is_dir():
        return _LmdbCategory(root / f"{category}{LMDB_SUFFIX}", limit)
    if (root / category).is_dir():
        return _FolderCategory(root / category, limit)
    available = sorted(
        p.name[: -len(LMDB_SUFFIX)] if p.name.endswith(LMDB_SUFFIX) else p.name
        for p in root.iterdir() if p.is_dir()
    )
    raise AuditInputError(f"{root}: unknown LSUN category '{category}' (no {category}{LMDB_SUFFIX}/ or "
                          f"{category}/ here), available: {available}")
