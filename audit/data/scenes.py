"""Offline RGB set: patches cut from eight colour photographs bundled with scikit-image.

Class = source photograph. The photos ship inside the scikit-image wheel (``skimage/data/``),
so nothing is downloaded. Each class gets ``patches_per_class`` patches drawn from a fixed
internal seed: a square of side ``s``, uniform in ``[size, 2 * size]`` pixels, at a uniform
position inside the photo's region of interest, resized to ``size`` x ``size`` with PIL
bicubic (antialiased). Patches of one photo overlap, so held-out patches share pixels with
training patches: the set checks that a pipeline works on natural RGB images, not that a
classifier generalises to new scenes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from audit.data.base import SourceDataset
from audit.data.imaging import RESAMPLE, decode_rgb, positive_int
from audit.io import AuditInputError

#: class name -> (file in skimage/data/, region of interest as fractions (left, top, right,
#: bottom)). The retina region is the square inside the round fundus, which drops the
#: black mask around it (it would look like the galaxies' black sky).
PHOTOS = {
    "astronaut": ("astronaut.png", (0.0, 0.0, 1.0, 1.0)),
    "cat": ("chelsea.png", (0.0, 0.0, 1.0, 1.0)),
    "coffee": ("coffee.png", (0.0, 0.0, 1.0, 1.0)),
    "rocket": ("rocket.jpg", (0.0, 0.0, 1.0, 1.0)),
    "galaxies": ("hubble_deep_field.jpg", (0.0, 0.0, 1.0, 1.0)),
    "tissue": ("ihc.png", (0.0, 0.0, 1.0, 1.0)),
    "retina": ("retina.jpg", (0.15, 0.15, 0.85, 0.85)),
    "motorcycle": ("motorcycle_left.png", (0.0, 0.0, 1.0, 1.0)),
}
#: Fixed so the dataset is the same everywhere; the pipeline seed only drives the splits.
PATCH_SEED = 20240611


def load(size=64, patches_per_class=400, **unknown) -> SourceDataset:
    """Describe ``len(PHOTOS) * patches_per_class`` patches; ``read`` cuts only those asked for.

    Parameters
    ----------
    size : side in pixels of the output patches (64 by default); at most half the shortest
        region of interest (150 for the 300x451 cat photo).
    patches_per_class : patches per photograph (400 by default), all classes equal.
    """
    if unknown:
        raise AuditInputError(f"dataset.options: unknown scenes option(s) {sorted(unknown)}, "
                              "expected size, patches_per_class")
    size = positive_int(size, "size")
    per_class = positive_int(patches_per_class, "patches_per_class")
    photos = [_load_photo(file, roi) for file, roi in PHOTOS.values()]
    smallest = min(min(p.size) for p in photos)
    if 2 * size > smallest:
        raise AuditInputError(f"dataset.options.size: at most {smallest // 2} for scenes (patches up to "
                              f"2*size are cut from a {smallest}-pixel region), got {size}")
    # (N, 4) crop boxes (left, top, right, bottom); one generator per class so a class's
    # patches do not depend on the other classes, and patch i not on patches_per_class.
    boxes = np.concatenate([_boxes(photo.size, size, per_class, np.random.default_rng([PATCH_SEED, c]))
                            for c, photo in enumerate(photos)])
    labels = np.repeat(np.arange(len(photos), dtype=np.int64), per_class)

    def read(indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices)
        out = np.empty((indices.shape[0], size, size, 3), dtype=np.uint8)
        for i, index in enumerate(indices):
            patch = photos[labels[index]].crop(tuple(int(v) for v in boxes[index]))
            out[i] = np.asarray(patch.resize((size, size), RESAMPLE), dtype=np.uint8)
        return out

    return SourceDataset(
        name="scenes",
        labels=labels,
        class_names=tuple(PHOTOS),
        image_shape=(size, size, 3),
        read=read,
        description=f"{per_class} random {size}x{size} patches (squares of side {size}..{2 * size}, "
        f"bicubic resize) from each of the scikit-image photos "
        + ", ".join(f"{name}={file}" for name, (file, _) in PHOTOS.items()),
        extra={"options": {"size": size, "patches_per_class": per_class}, "patch_seed": PATCH_SEED},
    )


def _load_photo(file: str, roi: tuple[float, float, float, float]) -> Image.Image:
    """The bundled photo ``file`` as RGB, cut to its region of interest."""
    import skimage.data

    path = Path(skimage.data.__file__).parent / file
    if not path.is_file():
        raise AuditInputError(f"{path}: scikit-image sample photo not found (needs the scikit-image wheel)")
    image = decode_rgb(path, str(path))
    width, height = image.size
    left, top, right, bottom = roi
    return image.crop((round(left * width), round(top * height), round(right * width), round(bottom * height)))


def _boxes(photo_size: tuple[int, int], size: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 4) int64 boxes: side uniform in [size, 2 size], top-left uniform inside the photo."""
    width, height = photo_size
    # One row of uniforms per patch, so the first n boxes are the same whatever n is.
    u = rng.random((n, 3))
    side = size + np.floor(u[:, 0] * (size + 1)).astype(np.int64)
    left = np.floor(u[:, 1] * (width - side + 1)).astype(np.int64)
    top = np.floor(u[:, 2] * (height - side + 1)).astype(np.int64)
    return np.stack([left, top, left + side, top + side], axis=1)
