"""CelebA loader on a small copy written in the official file formats, run through the
prepare stage (``audit.prepare.main``) the way the pipeline runs it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image
from torchvision import transforms

from audit.data.celeba import centre_box
from audit.data.store import PreparedDataset
from audit.data.synthetic import CELEBA_ATTRIBUTES, write_celeba as write_official_celeba
from tests.conftest import assert_cli_error
from audit.io import AuditInputError
from audit.prepare import main

N_IMAGES = 36
#: Official partition is contiguous in file order: here rows 0..23 train, 24..29 valid, 30..35 test.
PARTITION = np.repeat([0, 1, 2], [24, 6, 6])
SPLITS = ["train=0.5", "val=0.1", "pool=0.2", "test=0.2"]


def write_celeba(root, n=N_IMAGES, seed=0):
    """The official formats (audit/data/synthetic.py), CRLF partition file, fixed partition."""
    return write_official_celeba(root, n, seed, partition=PARTITION, crlf=True)


@pytest.fixture(scope="module")
def celeba_master(tmp_path_factory):
    root = tmp_path_factory.mktemp("celeba_master")
    return root, write_celeba(root)


@pytest.fixture
def celeba(celeba_master, tmp_path):
    """A private copy each test may damage."""
    master, values = celeba_master
    root = tmp_path / "celeba"
    shutil.copytree(master, root)
    return root, values


def prepare_args(root, out, *options):
    return ["--dataset", "celeba", "--out", str(out), "--seed", "0", "--splits", *SPLITS,
            "--option", f"root={root}", *options]


def test_prepare_labels_official_splits_and_pixels(celeba, tmp_path):
    root, values = celeba
    out = tmp_path / "prepared"
    main(prepare_args(root, out, 'attributes=["Male","Smiling"]'))
    data = PreparedDataset.open(out)

    assert data.images.shape == (N_IMAGES, 64, 64, 3) and data.images.dtype == np.uint8
    male = values[:, CELEBA_ATTRIBUTES.index("Male")] == 1
    smiling = values[:, CELEBA_ATTRIBUTES.index("Smiling")] == 1
    np.testing.assert_array_equal(data.labels, 2 * male + smiling)
    assert data.labels.tolist()[:4] == [0, 1, 2, 3]
    assert data.class_names == ("not Male & not Smiling", "not Male & Smiling",
                                "Male & not Smiling", "Male & Smiling")
    # The official partition is kept: test stays test, valid becomes val, train is cut in
    # train/pool 0.5:0.2 within each class (6 train images per class -> 4 + 2 by largest remainder).
    assert (data.split[PARTITION == 2] == "test").all()
    assert (data.split[PARTITION == 1] == "val").all()
    assert set(data.split[PARTITION == 0]) == {"train", "pool"}
    assert data.meta["split_sizes"] == {"train": 16, "val": 6, "pool": 8, "test": 6}
    assert data.meta["options"]["crop"] == 108 and data.meta["options"]["size"] == 64

    # Pixels: the documented rule is torchvision CenterCrop(108) then bicubic Resize to 64.
    reference = transforms.Compose([transforms.CenterCrop(108),
                                    transforms.Resize((64, 64), transforms.InterpolationMode.BICUBIC)])
    for row in (0, 17, 35):
        with Image.open(root / "img_align_celeba" / f"{row + 1:06d}.jpg") as image:
            expected = np.asarray(reference(image.convert("RGB")))
        np.testing.assert_array_equal(data.images[row], expected)


def test_centre_box_of_aligned_images():
    assert centre_box(178, 218, 108) == (35, 55, 143, 163)


def test_three_attributes_from_command_line_string(celeba, tmp_path):
    root, values = celeba
    out = tmp_path / "prepared"
    main(prepare_args(root, out, "attributes=Eyeglasses,Smiling,Male", "size=32", "crop=150"))
    data = PreparedDataset.open(out)
    bits = [values[:, CELEBA_ATTRIBUTES.index(a)] == 1 for a in ("Eyeglasses", "Smiling", "Male")]
    np.testing.assert_array_equal(data.labels, 4 * bits[0] + 2 * bits[1] + bits[2])
    assert len(data.class_names) == 8
    assert data.class_names[5] == "Eyeglasses & not Smiling & Male"
    assert data.images.shape == (N_IMAGES, 32, 32, 3)


def test_unknown_attribute_lists_valid_names(celeba, tmp_path, capsys):
    root, _ = celeba
    argv = prepare_args(root, tmp_path / "out", 'attributes=["Male","Beard"]')
    assert_cli_error(main, argv, capsys, "list_attr_celeba.txt", "unknown attribute(s) ['Beard']",
                     "5_o_Clock_Shadow", "No_Beard", "Young")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("remove, fragment", [
    ("", "CelebA root directory not found"),
    ("img_align_celeba", "img_align_celeba: directory not found"),
    ("list_attr_celeba.txt", "list_attr_celeba.txt: file not found"),
    ("list_eval_partition.txt", "list_eval_partition.txt: file not found"),
])
def test_missing_layout(celeba, tmp_path, capsys, remove, fragment):
    root, _ = celeba
    target = root / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    assert_cli_error(main, prepare_args(root, tmp_path / "out"), capsys, str(root), fragment)


def test_attribute_line_with_wrong_column_count(celeba, tmp_path, capsys):
    root, _ = celeba
    path = root / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    lines[6] = lines[6].rsplit(" ", 1)[0]  # file line 7 loses its last value
    path.write_text("\n".join(lines) + "\n")
    assert_cli_error(main, prepare_args(root, tmp_path / "out"), capsys,
                     str(path), "line 7 has 40 columns, expected 41")


def test_truncated_attribute_file_fails_on_count(celeba, tmp_path, capsys):
    root, _ = celeba
    path = root / "list_attr_celeba.txt"
    path.write_text("\n".join(path.read_text().splitlines()[:-3]) + "\n")
    assert_cli_error(main, prepare_args(root, tmp_path / "out"), capsys,
                     str(path), f"declares {N_IMAGES} images but {N_IMAGES - 3} are listed")


def test_bad_partition_code_and_missing_image(celeba, tmp_path, capsys):
    root, _ = celeba
    partition = root / "list_eval_partition.txt"
    partition.write_text(partition.read_text().replace("000003.jpg 0", "000003.jpg 3"))
    assert_cli_error(main, prepare_args(root, tmp_path / "out"), capsys, str(partition), "line 3")
    partition.write_text(partition.read_text().replace("000003.jpg 3", "000003.jpg 0"))
    (root / "img_align_celeba" / "000009.jpg").unlink()
    assert_cli_error(main, prepare_args(root, tmp_path / "out"), capsys,
                     str(root / "img_align_celeba" / "000009.jpg"), "file not found")


def test_truncated_jpeg_names_file_and_leaves_nothing(celeba, tmp_path, capsys):
    root, _ = celeba
    bad = root / "img_align_celeba" / "000020.jpg"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    out = tmp_path / "out"
    assert_cli_error(main, prepare_args(root, out), capsys, str(bad), "cannot decode image", "truncated")
    # The error came mid-stream (image 20 of 36): the atomic write left no partial file.
    assert list(out.iterdir()) == []
    with pytest.raises(AuditInputError, match="000020.jpg"):
        main(prepare_args(root, out))


def test_unknown_option(celeba, tmp_path, capsys):
    root, _ = celeba
    assert_cli_error(main, prepare_args(root, tmp_path / "out", "resolution=64"), capsys, "resolution")
