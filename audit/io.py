"""Files in and out: atomic writes, validated reads and the one-line error for bad input.

Every stage writes its outputs through :func:`atomic_path`, so a killed or failed job never
leaves a half-written file for Snakemake (or a user) to mistake for a result.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd


class AuditInputError(ValueError):
    """A user-facing input is wrong. The message is one line naming the file or key."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The temporary file keeps the destination's suffix (``np.save``, ``savefig`` and PIL pick
    the format from it). On any exception the temporary file is removed and nothing appears
    at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def save_array(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write one array as ``.npy`` atomically (readable later as a memmap)."""
    with atomic_path(path) as tmp:
        np.save(tmp, array)


def save_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented JSON atomically; numpy scalars and arrays are converted."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def load_json(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise AuditInputError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise AuditInputError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None


def save_table(path: str | os.PathLike, table: pd.DataFrame) -> None:
    """Write a table as CSV atomically, without the pandas index."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def load_table(path: str | os.PathLike, required_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise AuditInputError(f"{path}: file not found")
    table = pd.read_csv(path)
    missing = [c for c in required_columns if c not in table.columns]
    if missing:
        raise AuditInputError(f"{path}: missing column(s) {', '.join(missing)}")
    return table


def load_images(path: str | os.PathLike, mmap: bool = True) -> np.ndarray:
    """Read a uint8 image array of shape (N, H, W, C) saved with :func:`save_array`.

    With ``mmap`` the pixels stay on disk until touched, so 200k images cost no RAM.
    """
    path = Path(path)
    if not path.is_file():
        raise AuditInputError(f"{path}: file not found")
    try:
        images = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as err:
        raise AuditInputError(f"{path}: not a .npy array ({err})") from None
    check_images(images, str(path))
    return images


def check_images(images: np.ndarray, where: str) -> None:
    """Raise :class:`AuditInputError` unless ``images`` is uint8 of shape (N, H, W, C), C in {1, 3}."""
    if images.dtype != np.uint8:
        raise AuditInputError(f"{where}: expected uint8 images, got dtype {images.dtype}")
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise AuditInputError(
            f"{where}: expected images of shape (N, H, W, C) with C in (1, 3), got {images.shape}"
        )
    if images.shape[0] == 0:
        raise AuditInputError(f"{where}: no images")


def run_cli(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> None:
    """Run a stage's ``main``; turn bad input into one line on stderr and exit status 2."""
    try:
        main(argv)
    except AuditInputError as err:
        print(f"ganaudit: error: {err}", file=sys.stderr)
        sys.exit(2)
