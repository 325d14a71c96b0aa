"""Reading photos of every kind users have, and writing outputs atomically.

Grayscale, RGB-that-is-gray, sepia, 16-bit and alpha images all become float sRGB in [0, 1]
(plus the alpha channel, kept aside); EXIF orientation is applied so that (x, y) hints refer to
the picture as a person sees it.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cunet.errors import CunetError, ImageTooLarge

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
#: The types cunet writes (one list for `-o NAME.ext`, `--format` and the API): colour in full, no palette.
OUTPUT_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
OUTPUT_TYPES = ".png, .jpg, .webp or .tif"
#: The one pixel limit for photos cunet colours: 150 MP holds a 14000 x 10000 scan and stays within
#: about 3 GB of memory (the photo as float plus strips of the full-resolution join).
MAX_PIXELS = 150_000_000


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
    frames: int = 1  # frames in the file it came from (animated GIF, multi-page TIFF); this is one of them

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
    check_pixel_count(array.shape[1], array.shape[0], "image array")
    if array.dtype in (np.uint8, np.uint16):
        values = array.astype(np.float32)  # scaled in place: a 96 MP photo has no room for a second float copy
        values *= np.float32(1.0 / np.iinfo(array.dtype).max)
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


def check_pixel_count(width: int, height: int, name: str, limit: int = MAX_PIXELS, whose: str = "the") -> None:
    """A pixel limit (cunet's MAX_PIXELS, or a server's own, named by `whose`), for files (checked from
    the header, before decoding) and arrays alike."""
    if width * height > limit:
        raise ImageTooLarge(f"{name}: image too large ({width * height / 1e6:.0f} MP, {width}x{height}; "
                            f"{whose} limit is {limit / 1e6:.0f} MP)")


def _from_pil(image: Image.Image) -> Photo:
    check_pixel_count(image.width, image.height, "image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's notes on odd EXIF or palettes are not the user's business
            return _convert_pil(ImageOps.exif_transpose(image))
    except CunetError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, KeyError) as error:
        raise CunetError(f"image of mode {image.mode}: cannot be read as a photo ({error})") from None


def _convert_pil(image: Image.Image) -> Photo:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(image, dtype=np.float32)
        top = 65535.0 if mode.startswith("I;16") or values.max() > 255 else 255.0
        return _from_array(np.clip(values / top, 0.0, 1.0))
    if mode == "F":
        return _from_array(np.asarray(image, dtype=np.float32))
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info)
    target = "RGBA" if has_alpha else "RGB"
    return _from_array(np.asarray(image if mode == target else image.convert(target)))


def unreadable_reason(error: Exception) -> str:
    """Why a file is not a photo, in plain words (a message for people, not a Python class name)."""
    if isinstance(error, UnidentifiedImageError):
        return "not a format cunet reads, or not an image at all"
    return "the file is damaged or cut short"  # PIL's OSError, SyntaxError, EOFError, ValueError on a bad file


def existing_file(path: str | os.PathLike, kind: str) -> Path:
    """`path` as a Path, or a CunetError saying that it is a folder or missing (`kind` names what was wanted)."""
    path = Path(path)
    if path.is_dir():
        raise CunetError(f"{path}: is a folder, not a {kind}")
    if not path.is_file():
        raise CunetError(f"{path}: no such {kind}")
    return path


def open_image(source: str | os.PathLike | bytes, name: str | None = None, limit: int = MAX_PIXELS,
               whose: str = "the") -> Image.Image:
    """Open a photo file (or its bytes) lazily, refusing one over `limit` pixels from its header alone
    (`whose` names the limit in the message: "the studio's").

    PIL's own decompression-bomb warning is silenced for this call only (its global limit is left
    as it is for other code in the process): cunet's limit is the one users see.
    """
    name = name or (f"{len(source)}-byte image" if isinstance(source, (bytes, bytearray)) else str(source))
    handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's bomb warning among them: cunet's limit is checked below
            image = Image.open(handle)
    except Image.DecompressionBombError as error:  # PIL's own hard stop, at twice its warning size
        pixels = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(pixels.group(1)) / 1e6:.0f} MP" if pixels else "too many pixels"
        raise ImageTooLarge(f"{name}: image too large ({size}; {whose} limit is {limit / 1e6:.0f} MP)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise CunetError(f"{name}: not a readable image ({unreadable_reason(error)})") from None
    try:
        check_pixel_count(image.width, image.height, name, limit, whose)
    except CunetError:
        image.close()
        raise
    return image


def load_photo(source, frame: int = 0, name: str | None = None) -> Photo:
    """A path, encoded bytes, PIL image or numpy array -> Photo. Unreadable input raises CunetError.

    Files with several frames (animated GIF, multi-page TIFF) give `frame` (the first by default);
    `Photo.frames` says how many there are. `name` is what messages call encoded bytes (an upload's
    file name).
    """
    if isinstance(source, Photo):
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, Image.Image):
        return _from_pil(source)
    if isinstance(source, (bytes, bytearray)):
        name = name or f"{len(source)}-byte image"
    elif isinstance(source, (str, os.PathLike)):
        name = str(existing_file(source, "photo file"))
    else:
        raise CunetError(f"a photo must be a path, bytes, PIL image or numpy array, got {type(source).__name__}")
    image = open_image(source, name)
    try:
        with image:
            frames = getattr(image, "n_frames", 1)
            if not 0 <= frame < frames:
                raise CunetError(f"{name}: has no frame {frame + 1} (it has {frames})")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if frame:
                    image.seek(frame)
                image.load()
            photo = _from_pil(image)
            photo.frames = frames
            return photo
    except CunetError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise CunetError(f"{name}: not a readable image ({unreadable_reason(error)})") from None


def load_rgb8(path: str | os.PathLike, max_short_side: int | None = None) -> np.ndarray:
    """A photo file -> uint8 (H, W, 3), EXIF-oriented, optionally shrunk so its short side <= max_short_side.

    The fast path for training data: JPEG draft mode decodes at a reduced scale directly.
    """
    with open_image(path) as image:
        if max_short_side is not None:
            image.draft("RGB", (max_short_side, max_short_side))
        image = ImageOps.exif_transpose(image).convert("RGB")
        if max_short_side is not None and min(image.size) > max_short_side:
            scale = max_short_side / min(image.size)
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
        return np.asarray(image)


#: zlib level for PNG outputs: on colourised 1024-px photos level 1 encodes 4.1x faster than PIL's
#: default 6 for files of the same total size (benchmarks/png_levels.py, png_levels.json).
PNG_COMPRESS_LEVEL = 1
#: JPEG quality when a .jpg output is asked for without one.
JPEG_QUALITY = 95


def save_image_atomic(image: Image.Image, path: str | os.PathLike, quality: int | None = None) -> None:
    """Write an image so that `path` either keeps its old content or holds the complete new file.

    PNG is written with a fast zlib level (PNG_COMPRESS_LEVEL); JPEG and WebP take `quality`
    (JPEG_QUALITY by default)."""
    path = Path(path)
    suffix = path.suffix.lower()
    check_output_suffix(path)
    if suffix in (".jpg", ".jpeg") and image.mode == "RGBA":
        image = image.convert("RGB")
    image_format = OUTPUT_SUFFIXES[suffix]
    options = {"PNG": {"compress_level": PNG_COMPRESS_LEVEL},
               "JPEG": {"quality": quality or JPEG_QUALITY},
               "WEBP": {"quality": quality or JPEG_QUALITY}}.get(image_format, {})
    write_atomic(path, lambda handle: image.save(handle, format=image_format, **options))


def check_output_suffix(path: Path) -> None:
    """An output name's type must be one cunet writes (OUTPUT_SUFFIXES); GIF and BMP are read, not written."""
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise CunetError(f"{path}: cunet does not write {path.suffix or 'files without a type'}; use {OUTPUT_TYPES}")


def prepare_output_folder(folder: str | os.PathLike) -> None:
    """Create an output folder (and its parents) and check that files can be written there, so that
    a bad output place is reported before any work, not after it."""
    folder = Path(folder) if str(folder) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise CunetError(f"{folder}: is a file, not a folder") from None
    except OSError as error:
        raise CunetError(f"{folder}: cannot create the output folder ({error.strerror})") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".cunet-write-check.", suffix=".tmp", dir=folder)
    except OSError as error:
        raise CunetError(f"{folder}: cannot write there ({error.strerror})") from None
    os.close(fd)
    Path(probe).unlink(missing_ok=True)


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
