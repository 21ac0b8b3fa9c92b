"""External sample sources: any GAN, trained anywhere, audited without touching its code.

``folder``       a directory of PNG/JPEG images (its samples, already generated)
``array``        a ``.npy`` / ``.npz`` array of samples
``torchscript``  a TorchScript generator file, sampled here from seeded latents
``python``       ``package.module:function`` returning a generator module or a sampling function

Every source ends as uint8 (n, H, W, C) images of the real images' shape. Conversion rules:

* float images (N, C, H, W) in a declared range ``[-1,1]`` or ``[0,1]`` -> uint8 by
  ``rint((x - lo) * 255 / (hi - lo))`` in float64 (``[-1,1]``: ``rint((x + 1) * 127.5)``, as
  the reference GANs), after clipping overshoots of at most ``RANGE_TOLERANCE`` (float
  round-off); a value further outside the declared range, NaN or inf is an error. When
  ``[-1,1]`` is declared but no value is negative a warning is printed (probably ``[0,1]``).
* image files -> RGB or L (``PIL.Image.convert``: grey to RGB copies the channel, RGB to L is
  ITU-R 601 luma, an alpha channel is dropped) to match the real channel count; if the size
  differs from the real images', scaled (PIL bicubic) by max(W / w, H / h) so that the image
  covers the target, then centre-cropped. Files of the target size are not resampled.
* fixed sample sets (folder, array) of N samples asked for n: N >= n takes a seeded choice of
  n without replacement, kept in file order (N == n takes them all, in order). N < n is an
  error unless ``replace: true``: then every sample is used n // N times and a seeded choice
  of n % N of them once more.

Every problem is an :class:`AuditInputError` of one line naming the GAN (``gans.<name>``) and
the file or target, raised inside the factory or ``sample()``, i.e. before the sample stage
writes anything.
"""

from __future__ import annotations

import errno
import inspect
import os
import re
import stat
import sys
import traceback
import warnings
from importlib import import_module
from pathlib import Path

import numpy as np

from audit.gans import SampleBatch, Sampler, SamplerContext
from audit.gans.planted import check_option_names, choice_option, int_option
from audit.io import AuditInputError

#: declared value ranges of float samples: name -> (lo, hi)
RANGES = {"[-1,1]": (-1.0, 1.0), "[0,1]": (0.0, 1.0)}
#: overshoot of the declared range tolerated as float round-off (clipped); beyond it, an error
RANGE_TOLERANCE = 1e-3
LAYOUTS = ("NHWC_uint8", "NCHW_float")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
LATENTS = ("normal", "uniform")
CHUNK = 1024


def one_line(err: BaseException) -> str:
    """An exception as one short line (library messages often span many)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if len(lines) > 1 and "TorchScript interpreter" in lines[0]:
        text = lines[-1]  # TorchScript puts the Python-side error last, already "Type: message"
    else:
        text = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def user_code_error(what: str, err: Exception) -> AuditInputError:
    """An exception raised by the user's own code as one line (``what`` and the exception), with
    the traceback from the user's code down as its detail (the audit's own frame left out)."""
    detail = "".join(traceback.format_exception(type(err), err, err.__traceback__.tb_next))
    return AuditInputError(f"{what} {one_line(err)} (its traceback follows)", detail=detail)


def existing_path(name: str, options: dict, directory: bool = False) -> Path:
    """``options["path"]``, which must exist and be a directory (``directory``) or a file. A
    symlink loop or a broken symlink is named as such; called when the config is checked too."""
    raw = options.get("path")
    if not isinstance(raw, str) or not raw:
        raise AuditInputError(f"gans.{name}.path: required, the {'directory' if directory else 'file'} to read")
    path = Path(raw).expanduser()
    try:
        is_dir = stat.S_ISDIR(path.stat().st_mode)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise AuditInputError(f"gans.{name}.path: {path}: a symlink loop ({err.strerror})") from None
        if path.is_symlink():
            raise AuditInputError(f"gans.{name}.path: {path}: a broken symlink (to {os.readlink(path)})") from None
        is_dir = None
    if is_dir is None:
        raise AuditInputError(f"gans.{name}: {path}: {'directory' if directory else 'file'} not found")
    if is_dir != directory:
        raise AuditInputError(f"gans.{name}: {path}: {'not a directory' if directory else 'a directory, not a file'}")
    return path


def float_to_uint8(x: np.ndarray, value_range: str, where: str) -> np.ndarray:
    """Float (N, C, H, W) in ``value_range`` -> uint8 (N, H, W, C); see the module docstring."""
    lo, hi = RANGES[value_range]
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise AuditInputError(f"{where}: NaN or infinite values")
    low, high = float(x.min()), float(x.max())
    if low < lo - RANGE_TOLERANCE or high > hi + RANGE_TOLERANCE:
        raise AuditInputError(f"{where}: values in [{low:.4g}, {high:.4g}], outside the declared range {value_range}")
    scaled = np.rint((np.clip(x, lo, hi) - lo) * (255.0 / (hi - lo)))
    return scaled.astype(np.uint8).transpose(0, 2, 3, 1)


def warn_if_nonnegative(low: float, value_range: str, where: str) -> None:
    if value_range == "[-1,1]" and low >= 0:
        print(f"ganaudit: warning: {where}: no value below 0 although the declared range is [-1,1]; "
              "is it [0,1]?", file=sys.stderr)


def fixed_set_indices(n_available: int, n: int, seed: int, replace: bool, where: str) -> np.ndarray:
    """Which of a fixed set of ``n_available`` samples make up ``n`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    if n_available >= n:
        return np.sort(rng.choice(n_available, n, replace=False))
    if not replace:
        raise AuditInputError(f"{where}: holds {n_available} samples, the audit asks for {n}; "
                              "lower samples.n or set replace: true to reuse samples")
    repeats, extra = divmod(n, n_available)
    return np.sort(np.concatenate([np.repeat(np.arange(n_available), repeats),
                                   rng.choice(n_available, extra, replace=False)]))


# --- folder -------------------------------------------------------------------------------------

def read_image(path: Path, shape: tuple[int, int, int], where: str) -> np.ndarray:
    """One image file as uint8 (H, W, C) of ``shape``, by the module docstring's rule."""
    from PIL import Image, UnidentifiedImageError

    height, width, channels = shape
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode.startswith(("I", "F")):
                raise AuditInputError(f"{where}: {path}: {image.mode} (16-bit or float) images are not "
                                      "supported; save 8-bit PNG or JPEG")
            image = image.convert("RGB" if channels == 3 else "L")
    except AuditInputError:
        raise
    except UnidentifiedImageError:
        raise AuditInputError(f"{where}: {path}: cannot read image (not a format PIL recognises)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise AuditInputError(f"{where}: {path}: cannot read image ({one_line(err)})") from None
    w, h = image.size
    if (w, h) != (width, height):
        scale = max(width / w, height / h)
        size = (max(width, round(w * scale)), max(height, round(h * scale)))
        image = image.resize(size, Image.Resampling.BICUBIC)
        left, top = (size[0] - width) // 2, (size[1] - height) // 2
        image = image.crop((left, top, left + width, top + height))
    return np.asarray(image, dtype=np.uint8).reshape(height, width, channels)


def make_folder(name: str, kind: str, options: dict, context: SamplerContext) -> Sampler:
    """Samples already written as image files: ``path`` (a directory, searched recursively for
    .png/.jpg/.jpeg in any case, following symlinked subfolders: :func:`image_files`), ``replace``
    (default false).

    A folder is a fixed set of samples (see :func:`fixed_set_indices`). Only the chosen files
    are decoded, so an unreadable file is reported when it is chosen.
    """
    check_option_names(name, options, ("path", "replace"))
    root = existing_path(name, options, directory=True)
    replace = bool_option(name, options, "replace")
    files = image_files(root, f"gans.{name}")
    if not files:
        raise AuditInputError(f"gans.{name}: {root}: no PNG or JPEG images found (searched recursively)")
    shape = tuple(context.data.images.shape[1:])

    def sample(n: int, seed: int) -> SampleBatch:
        idx = fixed_set_indices(len(files), n, seed, replace, f"gans.{name}: {root}")
        images = np.empty((n, *shape), dtype=np.uint8)
        for i, j in enumerate(idx):
            images[i] = read_image(files[j], shape, f"gans.{name}")
        return SampleBatch(images)

    return Sampler(name, sample)


def image_files(root: Path, where: str) -> list[Path]:
    """Every .png/.jpg/.jpeg file under ``root`` (any case), sorted by path relative to ``root``.

    Symlinked subfolders are followed, each real folder once (a link to an ancestor is no loop, a
    second link to one folder adds nothing); an image name that is a broken symlink, and a
    folder that cannot be listed, are errors.
    """
    files, seen = [], set()

    def unreadable(err: OSError):
        raise AuditInputError(f"{where}: {err.filename}: cannot list the folder ({err.strerror})")

    for folder, subfolders, names in os.walk(root, followlinks=True, onerror=unreadable):
        info = os.stat(folder)
        if (info.st_dev, info.st_ino) in seen:
            subfolders.clear()
            continue
        seen.add((info.st_dev, info.st_ino))
        subfolders.sort()
        for entry in (Path(folder) / n for n in names if Path(n).suffix.lower() in IMAGE_SUFFIXES):
            if not entry.exists():
                raise AuditInputError(f"{where}: {entry}: a broken symlink or a symlink loop")
            if entry.is_file():
                files.append(entry)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def bool_option(name: str, options: dict, key: str, default: bool = False) -> bool:
    value = options.get(key, default)
    if not isinstance(value, bool):
        raise AuditInputError(f"gans.{name}.{key}: expected true or false, got {value!r}")
    return value


# --- array --------------------------------------------------------------------------------------

def load_array(name: str, path: Path, key: str | None) -> np.ndarray:
    """A .npy (memory-mapped) or one array of a .npz (``key``; default the only array, else
    ``samples``)."""
    where = f"gans.{name}: {path}"
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise AuditInputError(f"{where}: expected a .npy or .npz file")
    if suffix == ".npy" and key is not None:
        raise AuditInputError(f"gans.{name}.key: only applies to .npz files, {path} is .npy")
    try:
        if suffix == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False)
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            if key is None:
                key = names[0] if len(names) == 1 else "samples" if "samples" in names else None
                if key is None:
                    raise AuditInputError(f"{where}: holds arrays {names}; set gans.{name}.key to the samples")
            elif key not in names:
                raise AuditInputError(f"{where}: no array '{key}' (it holds {names})")
            return archive[key]
    except AuditInputError:
        raise
    except Exception as err:  # numpy raises ValueError, OSError, zipfile.BadZipFile, EOFError ...
        raise AuditInputError(f"{where}: not a readable {suffix} array ({one_line(err)})") from None


def make_array(name: str, kind: str, options: dict, context: SamplerContext) -> Sampler:
    """Samples saved as an array: ``path`` (.npy or .npz), ``key`` (.npz only), ``layout``
    (``NHWC_uint8``, the default, or ``NCHW_float``), ``range`` (``[-1,1]`` or ``[0,1]``;
    required with ``NCHW_float``, refused otherwise), ``replace`` (default false).

    The dtype must match the layout (uint8; any float), the shape the real images' (same H, W
    and channel count). A float array is checked whole (finite, inside the declared range) when
    the sampler is built; conversion rules in the module docstring. A fixed set of samples (see
    :func:`fixed_set_indices`).
    """
    check_option_names(name, options, ("path", "key", "layout", "range", "replace"))
    path = existing_path(name, options)
    where = f"gans.{name}: {path}"
    layout = choice_option(name, options, "layout", "NHWC_uint8", LAYOUTS)
    if layout == "NCHW_float":
        if "range" not in options:
            raise AuditInputError(f"gans.{name}.range: required with layout NCHW_float: '[-1,1]' or '[0,1]'")
        value_range = choice_option(name, options, "range", None, tuple(RANGES))
    elif "range" in options:
        raise AuditInputError(f"gans.{name}.range: only applies to layout NCHW_float")
    replace = bool_option(name, options, "replace")
    key = options.get("key")
    if key is not None and not isinstance(key, str):
        raise AuditInputError(f"gans.{name}.key: expected an array name, got {key!r}")
    array = load_array(name, path, key)
    height, width, channels = context.data.images.shape[1:]
    if layout == "NHWC_uint8":
        if array.dtype != np.uint8:
            raise AuditInputError(f"{where}: dtype {array.dtype}, layout NHWC_uint8 needs uint8 "
                                  "(float samples: layout NCHW_float with a range)")
        expected, channel_axis = (height, width, channels), 3
    else:
        if array.dtype.kind != "f":
            raise AuditInputError(f"{where}: dtype {array.dtype}, layout NCHW_float needs a float dtype")
        expected, channel_axis = (channels, height, width), 1
    if array.ndim != 4:
        raise AuditInputError(f"{where}: shape {array.shape}, expected {layout[:4]} (N, {', '.join(map(str, expected))})")
    if array.shape[channel_axis] != channels:
        raise AuditInputError(f"{where}: {array.shape[channel_axis]} channel(s) (shape {array.shape}, {layout[:4]}), "
                              f"the real images have {channels}")
    if array.shape[1:] != expected:
        raise AuditInputError(f"{where}: shape {array.shape}, expected {layout[:4]} (N, {', '.join(map(str, expected))}) "
                              "to match the real images")
    if array.shape[0] == 0:
        raise AuditInputError(f"{where}: no samples")
    if layout == "NCHW_float":
        low = np.inf
        for start in range(0, array.shape[0], CHUNK):
            block = np.asarray(array[start:start + CHUNK], dtype=np.float64)
            float_to_uint8(block, value_range, f"{where} (samples {start}..{start + block.shape[0] - 1})")
            low = min(low, float(block.min()))
        warn_if_nonnegative(low, value_range, where)

    def sample(n: int, seed: int) -> SampleBatch:
        idx = fixed_set_indices(array.shape[0], n, seed, replace, where)
        if layout == "NHWC_uint8":
            return SampleBatch(np.asarray(array[idx]))
        images = np.empty((n, height, width, channels), dtype=np.uint8)
        for start in range(0, n, CHUNK):
            images[start:start + CHUNK] = float_to_uint8(array[idx[start:start + CHUNK]], value_range, where)
        return SampleBatch(images)

    return Sampler(name, sample)


# --- generators: torchscript and python ---------------------------------------------------------

def generator_sampler(name: str, module, where: str, options: dict, context: SamplerContext) -> Sampler:
    """The sampler of a generator module, with latent interpolations. ``sample(n, seed)``: latents (n, latent_dim) drawn all at once on the
    CPU from ``torch.Generator().manual_seed(seed)`` (``normal``: N(0, 1); ``uniform``: U[-1, 1)),
    so samples do not depend on ``batch_size``; fed in batches of ``batch_size`` (default 500)
    on the context device under ``torch.no_grad()`` with the module in eval mode; each output
    must be a float tensor (batch, C, H, W) in ``output_range`` (default ``[-1,1]``)."""
    import torch

    latent_dim = options.get("latent_dim", getattr(module, "latent_dim", None))
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
        raise AuditInputError(f"gans.{name}.latent_dim: required (a positive integer) for a generator module, "
                              f"got {latent_dim!r}")
    distribution = choice_option(name, options, "latent_distribution", "normal", LATENTS)
    value_range = choice_option(name, options, "output_range", "[-1,1]", tuple(RANGES))
    batch_size = int_option(name, options, "batch_size", 500, minimum=1)
    height, width, channels = context.data.images.shape[1:]
    module.eval()

    def draw(n: int, rng: torch.Generator) -> torch.Tensor:
        return torch.randn(n, latent_dim, generator=rng) if distribution == "normal" \
            else torch.rand(n, latent_dim, generator=rng) * 2 - 1

    @torch.no_grad()
    def decode(z: torch.Tensor) -> np.ndarray:
        n = z.shape[0]
        images = np.empty((n, height, width, channels), dtype=np.uint8)
        low = np.inf
        for start in range(0, n, batch_size):
            batch = z[start:start + batch_size]
            try:
                x = module(batch.to(context.device))
            except Exception as err:
                raise AuditInputError(f"{where}: the generator failed on latents of shape {tuple(batch.shape)}, "
                                      f"is latent_dim right? ({one_line(err)})") from None
            if not isinstance(x, torch.Tensor) or not x.is_floating_point():
                raise AuditInputError(f"{where}: the generator returned {type(x).__name__}"
                                      f"{' of dtype ' + str(x.dtype) if isinstance(x, torch.Tensor) else ''}, "
                                      "expected a float tensor (N, C, H, W)")
            if tuple(x.shape) != (batch.shape[0], channels, height, width):
                raise AuditInputError(f"{where}: the generator returned shape {tuple(x.shape)}, expected "
                                      f"{(batch.shape[0], channels, height, width)} (N, C, H, W) to match the real images")
            x = x.detach().cpu().double().numpy()
            images[start:start + batch_size] = float_to_uint8(x, value_range, where)
            low = min(low, float(x.min()))
        warn_if_nonnegative(low, value_range, where)
        return images

    def sample(n: int, seed: int) -> SampleBatch:
        return SampleBatch(decode(draw(n, torch.Generator().manual_seed(seed))))

    def interpolate(n_rows: int, n_steps: int, seed: int) -> np.ndarray:
        from audit.models.gan import latent_paths

        ends = draw(2 * n_rows, torch.Generator().manual_seed(seed)).view(2, n_rows, -1)
        return decode(latent_paths(ends, n_steps))

    return Sampler(name, sample, interpolate=interpolate)


def make_torchscript(name: str, kind: str, options: dict, context: SamplerContext) -> Sampler:
    """A TorchScript generator: ``path`` (``torch.jit.save`` file, loaded with ``map_location``
    the context device), ``latent_dim`` (or a ``latent_dim`` attribute of the module),
    ``latent_distribution`` (normal | uniform), ``output_range`` ([-1,1] | [0,1]),
    ``batch_size``; sampling as in :func:`generator_sampler`."""
    import torch

    check_option_names(name, options, ("path", "latent_dim", "latent_distribution", "output_range", "batch_size"))
    path = existing_path(name, options)
    where = f"gans.{name}: {path}"
    try:
        with warnings.catch_warnings():
            # torch 2.14 deprecates TorchScript; the user's file still loads, and the warning
            # would precede the one line of any error
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=FutureWarning)
            module = torch.jit.load(str(path), map_location=context.device)
    except Exception as err:
        raise AuditInputError(f"{where}: not a loadable TorchScript file ({one_line(err)})") from None
    return generator_sampler(name, module, where, options, context)


TARGET = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def make_python(name: str, kind: str, options: dict, context: SamplerContext) -> Sampler:
    """Python code: ``target: package.module:function`` (importable: installed, on PYTHONPATH,
    or under the working directory), called once as ``function(**kwargs)`` (``kwargs``, default
    none). It returns either

    * a ``torch.nn.Module`` generator: moved to the context device and sampled like
      ``torchscript`` (``latent_dim`` required unless the module has the attribute;
      ``latent_distribution``, ``output_range``, ``batch_size``), or
    * a sampling function ``f(n, seed)`` returning n samples (numpy or torch): uint8
      (n, H, W, C), or float (n, C, H, W) in ``output_range`` (default ``[-1,1]``).

    Import errors, a missing attribute, kwargs the function does not accept or another return
    value are one-line errors naming the target; so is an exception raised by the function or
    the sampling function it returns, followed by the traceback of the user's code
    (:func:`user_code_error`).
    """
    import torch

    check_option_names(name, options, ("target", "kwargs", "latent_dim", "latent_distribution",
                                       "output_range", "batch_size"))
    target = options.get("target")
    if not isinstance(target, str) or not TARGET.match(target):
        raise AuditInputError(f"gans.{name}.target: expected 'package.module:function', got {target!r}")
    where = f"gans.{name}: target '{target}'"
    module_name, attribute = target.split(":")
    try:
        obj = import_module(module_name)
    except Exception as err:
        raise AuditInputError(f"{where}: cannot import {module_name} ({one_line(err)})") from None
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise AuditInputError(f"{where}: {module_name} has no attribute '{attribute}'")
        obj = getattr(obj, part)
    kwargs = options.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise AuditInputError(f"gans.{name}.kwargs: expected a mapping of keyword arguments, got {kwargs!r}")
    if not callable(obj):
        raise AuditInputError(f"{where}: is a {type(obj).__name__}, not callable")
    try:
        inspect.signature(obj).bind(**kwargs)
    except TypeError as err:
        raise AuditInputError(f"{where}: does not accept kwargs {sorted(kwargs)} ({err})") from None
    except ValueError:  # no signature (some builtins): let the call decide
        pass
    try:
        result = obj(**kwargs)
    except Exception as err:
        raise user_code_error(f"{where}: raised", err) from None
    if isinstance(result, torch.nn.Module):
        return generator_sampler(name, result.to(context.device), where, options, context)
    if not callable(result):
        raise AuditInputError(f"{where}: returned {type(result).__name__}, expected a torch.nn.Module "
                              "generator or a sampling function f(n, seed)")
    for key in ("latent_dim", "latent_distribution", "batch_size"):
        if key in options:
            raise AuditInputError(f"gans.{name}.{key}: only applies when the target returns a generator module")
    value_range = choice_option(name, options, "output_range", "[-1,1]", tuple(RANGES))
    height, width, channels = context.data.images.shape[1:]

    def sample(n: int, seed: int) -> SampleBatch:
        try:
            x = result(n, seed)
        except Exception as err:
            raise user_code_error(f"{where}: the sampling function raised", err) from None
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        if not isinstance(x, np.ndarray):
            raise AuditInputError(f"{where}: the sampling function returned {type(x).__name__}, expected an array")
        if x.dtype == np.uint8:
            expected, layout = (n, height, width, channels), "uint8 (N, H, W, C)"
        elif x.dtype.kind == "f":
            expected, layout = (n, channels, height, width), "float (N, C, H, W)"
        else:
            raise AuditInputError(f"{where}: the sampling function returned dtype {x.dtype}, "
                                  "expected uint8 (N, H, W, C) or float (N, C, H, W)")
        if x.shape != expected:
            raise AuditInputError(f"{where}: the sampling function returned shape {x.shape} for n={n}, "
                                  f"expected {layout} {expected}")
        if x.dtype == np.uint8:
            return SampleBatch(np.ascontiguousarray(x))
        images = np.empty((n, height, width, channels), dtype=np.uint8)
        for start in range(0, n, CHUNK):
            images[start:start + CHUNK] = float_to_uint8(x[start:start + CHUNK], value_range, where)
        warn_if_nonnegative(float(x.min()), value_range, where)
        return SampleBatch(images)

    return Sampler(name, sample)
