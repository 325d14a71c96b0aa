"""Reading photos of every kind users have, and writing outputs atomically.

Grayscale, RGB-that-is-gray, sepia, 16-bit and alpha images all become float sRGB in [0, 1]
(plus the alpha channel, kept aside); EXIF orientation is applied so that (x, y) hints refer to
the picture as a person sees it.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cunet.errors import CunetError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
Image.MAX_IMAGE_PIXELS = 200_000_000


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@dataclass
class Photo:
    """A decoded photo: sRGB float32 (H, W, 3) in [0, 1] and an optional alpha (H, W) in [0, 1]."""

    rgb: np.ndarray
    alpha: np.ndarray | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as PIL reports sizes."""
        return self.rgb.shape[1], self.rgb.shape[0]


def _from_array(array: np.ndarray) -> Photo:
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise CunetError(f"an image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {array.shape}")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise CunetError(f"image is empty: shape {array.shape}")
    if array.dtype == np.uint8:
        values = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        values = array.astype(np.float32) / 65535.0
    elif np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float32)
        if not np.isfinite(values).all():
            raise CunetError("image array contains NaN or infinite values")
        values = np.clip(values, 0.0, 1.0)
    else:
        raise CunetError(f"unsupported image array dtype {array.dtype}; use uint8, uint16 or float in [0, 1]")
    alpha = None
    if values.ndim == 3 and values.shape[2] == 4:
        values, alpha = values[:, :, :3], values[:, :, 3]
    if values.ndim == 2:
        values = np.repeat(values[:, :, None], 3, axis=2)
    return Photo(np.ascontiguousarray(values), alpha)


def _from_pil(image: Image.Image) -> Photo:
    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(image, dtype=np.float32)
        top = 65535.0 if mode.startswith("I;16") or values.max() > 255 else 255.0
        return _from_array(np.clip(values / top, 0.0, 1.0))
    if mode == "F":
        return _from_array(np.asarray(image, dtype=np.float32))
    has_alpha = mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info)
    converted = image.convert("RGBA" if has_alpha else "RGB")
    return _from_array(np.asarray(converted))


def load_photo(source: str | os.PathLike | Image.Image | np.ndarray) -> Photo:
    """A path, PIL image or numpy array -> Photo. Unreadable input raises CunetError."""
    if isinstance(source, Photo):
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, Image.Image):
        return _from_pil(source)
    path = Path(source)
    if not path.is_file():
        raise CunetError(f"{path}: no such file")
    try:
        with Image.open(path) as image:
            image.load()
            return _from_pil(image)
    except Image.DecompressionBombError:
        raise CunetError(f"{path}: image too large (over {Image.MAX_IMAGE_PIXELS:,} pixels)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise CunetError(f"{path}: not a readable image ({error.__class__.__name__})") from None


def load_rgb8(path: str | os.PathLike, max_short_side: int | None = None) -> np.ndarray:
    """A photo file -> uint8 (H, W, 3), EXIF-oriented, optionally shrunk so its short side <= max_short_side.

    The fast path for training data: JPEG draft mode decodes at a reduced scale directly.
    """
    with Image.open(path) as image:
        if max_short_side is not None:
            image.draft("RGB", (max_short_side, max_short_side))
        image = ImageOps.exif_transpose(image).convert("RGB")
        if max_short_side is not None and min(image.size) > max_short_side:
            scale = max_short_side / min(image.size)
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
        return np.asarray(image)


def to_pil(rgb: np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    """Float sRGB (H, W, 3) in [0, 1] (+ alpha) -> 8-bit PIL image (RGB or RGBA)."""
    data = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    if alpha is not None:
        data = np.dstack([data, np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)])
    return Image.fromarray(data)


def save_image_atomic(image: Image.Image, path: str | os.PathLike) -> None:
    """Write an image so that `path` either keeps its old content or holds the complete new file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise CunetError(f"{path}: unknown image type {suffix or '(none)'}; use .png, .jpg, .tif or .webp")
    if suffix in (".jpg", ".jpeg") and image.mode == "RGBA":
        image = image.convert("RGB")
    write_atomic(path, lambda handle: image.save(handle, format=Image.registered_extensions()[suffix]))


def write_atomic(path: str | os.PathLike, write) -> None:
    """Call write(file_handle) on a temp file beside `path`, then rename it into place."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise CunetError(f"{path}: folder {directory} does not exist")
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise CunetError(f"{path}: cannot write ({error.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(temp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; outputs should look like any other
        os.replace(temp, path)
    except OSError as error:
        Path(temp).unlink(missing_ok=True)
        raise CunetError(f"{path}: cannot write ({error.strerror})") from None
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
