"""Image decoding and option parsing shared by the dataset loaders.

All resizing is PIL bicubic (antialiased when shrinking); crops follow torchvision's
``CenterCrop`` rounding, so the geometry matches torchvision pipelines exactly.
"""

from __future__ import annotations

import io
import os

from PIL import Image

from audit.io import AuditInputError

RESAMPLE = Image.Resampling.BICUBIC


def decode_rgb(source: str | os.PathLike | bytes, where: str) -> Image.Image:
    """Fully decode an image file or its bytes to an RGB PIL image.

    Decoding is forced here (``convert`` loads the pixels) so a truncated or corrupt file
    raises :class:`AuditInputError` naming ``where`` instead of surfacing later. This relies on
    PIL's default ``ImageFile.LOAD_TRUNCATED_IMAGES = False``: with it, a JPEG cut short
    raises ``OSError`` rather than decoding to a grey-filled image.
    """
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise AuditInputError(f"{where}: cannot decode image ({err})") from None


def centre_box(width: int, height: int, side: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the centred ``side`` square, rounded as torchvision's
    ``CenterCrop`` rounds: ``left = round((width - side) / 2)`` (Python's round-half-even)."""
    left, top = int(round((width - side) / 2.0)), int(round((height - side) / 2.0))
    return left, top, left + side, top + side


def name_list(value, key: str) -> tuple[str, ...]:
    """Validate option ``key`` as a non-empty list of distinct names.

    A bare string is split on commas: that is what ``--option attributes=Male,Smiling`` gives.
    """
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v for v in value):
        raise AuditInputError(f"dataset.options.{key}: expected a non-empty list of names, got {value!r}")
    if len(set(value)) != len(value):
        raise AuditInputError(f"dataset.options.{key}: duplicate names in {list(value)}")
    return tuple(value)


def positive_int(value, key: str) -> int:
    """Validate option ``key`` as an integer >= 1 (JSON booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AuditInputError(f"dataset.options.{key}: expected a positive integer, got {value!r}")
    return value
