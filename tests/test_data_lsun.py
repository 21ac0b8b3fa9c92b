"""LSUN loader on small lmdb databases stored as the official ones (key = image id bytes,
value = WEBP or JPEG bytes) and on an image folder, run through ``audit.prepare.main``."""

from __future__ import annotations

import hashlib
import io
import multiprocessing

import lmdb
import numpy as np
import pytest
from PIL import Image
from torchvision import transforms

from audit.data import load_source
from audit.data.store import PreparedDataset
from tests.conftest import assert_cli_error
from audit.io import AuditInputError
from audit.prepare import main

SPLITS = ["train=0.5", "val=0.1", "pool=0.2", "test=0.2"]
#: The documented rule: torchvision Resize(64) (shorter side) then CenterCrop(64), bicubic.
REFERENCE = transforms.Compose([transforms.Resize(64, transforms.InterpolationMode.BICUBIC),
                                transforms.CenterCrop(64)])


def encode(rng, size, fmt):
    """Encoded bytes of a smooth random RGB image of ``size`` (W, H)."""
    coarse = rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, fmt, quality=90)
    return buffer.getvalue()


def write_lmdb(path, items):
    """``items``: {key bytes: value bytes}, inserted in the given (unsorted) order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    env = lmdb.open(str(path), map_size=1 << 24, subdir=True)
    with env.begin(write=True) as txn:
        for key, value in items.items():
            txn.put(key, value)
    env.close()


def image_id(category, i):
    # LSUN keys are 40-character hex ids; their lmdb order has nothing to do with insertion.
    return hashlib.sha1(f"{category}{i}".encode()).hexdigest().encode("ascii")


@pytest.fixture(scope="module")
def lsun_root(tmp_path_factory):
    """bedroom: 9 WEBP in lmdb; church_outdoor: 7 JPEG in lmdb; kitchen: 5 files in a folder.
    Returns (root, {category: [encoded bytes in expected order]})."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("lsun")
    expected = {}
    for category, n, fmt in (("bedroom", 9, "WEBP"), ("church_outdoor", 7, "JPEG")):
        items = {image_id(category, i): encode(rng, (96 + 8 * i, 80) if i % 2 else (80, 120), fmt)
                 for i in range(n)}
        write_lmdb(root / f"{category}_train_lmdb", items)
        expected[category] = [items[k] for k in sorted(items)]
    (root / "kitchen").mkdir()
    files = {f"k{i:02d}.{ext}": encode(rng, (100, 70), fmt)
             for i, (ext, fmt) in enumerate([("jpg", "JPEG"), ("png", "PNG"), ("webp", "WEBP"),
                                             ("JPG", "JPEG"), ("jpeg", "JPEG")])}
    for name, data in files.items():
        (root / "kitchen" / name).write_bytes(data)
    (root / "kitchen" / "notes.txt").write_text("not an image")
    expected["kitchen"] = [files[name] for name in sorted(files)]
    return root, expected


def prepare_args(root, out, *options):
    return ["--dataset", "lsun", "--out", str(out), "--seed", "1", "--splits", *SPLITS,
            "--option", f"root={root}", *options]


def reference(data):
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(REFERENCE(image.convert("RGB")))


def test_prepare_lmdb_and_folder_categories(lsun_root, tmp_path):
    root, expected = lsun_root
    out = tmp_path / "prepared"
    main(prepare_args(root, out, 'categories=["church_outdoor","bedroom","kitchen"]'))
    data = PreparedDataset.open(out)

    assert data.class_names == ("church_outdoor", "bedroom", "kitchen")
    assert data.images.shape == (21, 64, 64, 3) and data.images.dtype == np.uint8
    np.testing.assert_array_equal(data.labels, np.repeat([0, 1, 2], [7, 9, 5]))
    # Rows follow the category order, then lmdb key order (or sorted file names).
    encoded = expected["church_outdoor"] + expected["bedroom"] + expected["kitchen"]
    for row, data_bytes in enumerate(encoded):
        np.testing.assert_array_equal(data.images[row], reference(data_bytes), err_msg=f"row {row}")
    # Per class 7/9/5 images split 0.5/0.1/0.2/0.2 by largest remainder: 4+4+3, 1+1+0, 1+2+1, 1+2+1.
    assert data.meta["split_sizes"] == {"train": 11, "val": 2, "pool": 4, "test": 4}
    assert data.meta["options"]["max_per_category"] is None


def test_max_per_category_takes_first_keys(lsun_root, tmp_path):
    root, expected = lsun_root
    out = tmp_path / "prepared"
    main(prepare_args(root, out, "categories=bedroom,kitchen", "max_per_category=4", "size=32"))
    data = PreparedDataset.open(out)
    np.testing.assert_array_equal(data.labels, [0] * 4 + [1] * 4)
    assert data.images.shape == (8, 32, 32, 3)
    resize32 = transforms.Compose([transforms.Resize(32, transforms.InterpolationMode.BICUBIC),
                                   transforms.CenterCrop(32)])
    for row, data_bytes in enumerate(expected["bedroom"][:4] + expected["kitchen"][:4]):
        with Image.open(io.BytesIO(data_bytes)) as image:
            np.testing.assert_array_equal(data.images[row], np.asarray(resize32(image.convert("RGB"))))


_FORKED_SOURCE = None


def _read_in_child(indices):
    return _FORKED_SOURCE.read(indices)


def test_lmdb_reopened_after_fork(lsun_root):
    """The lmdb environment opened in the parent is not reused by a forked worker."""
    global _FORKED_SOURCE
    root, _ = lsun_root
    _FORKED_SOURCE = load_source("lsun", root=str(root), categories=["bedroom"])
    parent = _FORKED_SOURCE.read(np.arange(3))
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply(_read_in_child, (np.arange(3),))
    np.testing.assert_array_equal(parent, child)


def test_unknown_category_lists_available(lsun_root, tmp_path, capsys):
    root, _ = lsun_root
    assert_cli_error(main, prepare_args(root, tmp_path / "out", "categories=bedroom,tower"), capsys,
                     str(root), "unknown LSUN category 'tower'",
                     "available: ['bedroom', 'church_outdoor', 'kitchen']")
    assert not (tmp_path / "out").exists()


def test_empty_lmdb_names_database(lsun_root, tmp_path, capsys):
    root, _ = lsun_root
    empty_root = tmp_path / "lsun"
    write_lmdb(empty_root / "tower_train_lmdb", {})
    assert_cli_error(main, prepare_args(empty_root, tmp_path / "out", "categories=tower"), capsys,
                     f"{empty_root / 'tower_train_lmdb'}: LSUN database is empty")


def test_missing_root_and_bad_options(tmp_path, capsys):
    assert_cli_error(main, prepare_args(tmp_path / "nowhere", tmp_path / "out", "categories=bedroom"), capsys,
                     f"{tmp_path / 'nowhere'}: LSUN root directory not found")
    assert_cli_error(main, prepare_args(tmp_path, tmp_path / "out", "categories=bedroom", "max_per_category=0"),
                     capsys, "dataset.options.max_per_category")
    assert_cli_error(main, prepare_args(tmp_path, tmp_path / "out"), capsys, "dataset.options.categories")


def test_corrupt_value_names_key_and_leaves_nothing(lsun_root, tmp_path, capsys):
    root, expected = lsun_root
    bad_root = tmp_path / "lsun"
    rng = np.random.default_rng(1)
    items = {image_id("bridge", i): encode(rng, (90, 70), "JPEG") for i in range(6)}
    bad_key = sorted(items)[4]
    items[bad_key] = items[bad_key][:200]  # cut inside the compressed data
    write_lmdb(bad_root / "bridge_train_lmdb", items)
    out = tmp_path / "out"
    assert_cli_error(main, prepare_args(bad_root, out, "categories=bridge"), capsys,
                     f"{bad_root / 'bridge_train_lmdb'}[{bad_key.decode()}]: cannot decode image")
    assert list(out.iterdir()) == []
    with pytest.raises(AuditInputError, match="bridge_train_lmdb"):
        main(prepare_args(bad_root, out, "categories=bridge"))
    assert list(out.iterdir()) == []
