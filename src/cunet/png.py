"""Fast PNG encoding for images that are sent at once (the studio's previews and downloads).

Pillow's PNG writer tries all five row filters on every row and deflates on one core: at zlib
level 1 a 768-px colourised preview took 21 ms, more than the network that made it. Here every row
uses the "Up" filter (one numpy subtraction; a colourised photo's rows are alike, so files are only
2 % larger than Pillow's), and the filtered rows are deflated in bands on threads (zlib releases
the GIL), each band a raw deflate stream ended by a sync flush, joined into the one zlib stream
that PNG asks for, as pigz does. On the benchmark previews (`benchmarks/png_encoders.py`) that
takes 0.30x Pillow's time on 2 threads, 0.56x on one; imagecodecs (libpng, "Up" filter) 0.58x on
one, and it is a large binary package.
"""

from __future__ import annotations

import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: PNG colour type by channel count: gray, RGB, RGB with alpha.
COLOUR_TYPES = {1: 0, 3: 2, 4: 6}
#: Below this many bytes of image a single stream on the calling thread is faster.
BAND_MIN_BYTES = 256 * 1024
UP_FILTER = 2


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def up_filtered_rows(image: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 -> (H, 1 + W C) rows, each the filter byte 2 ("Up") then its bytes minus the
    row above's (modulo 256; the first row's "above" is zeros)."""
    height = image.shape[0]
    rows = image.reshape(height, -1)
    filtered = np.empty((height, rows.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = UP_FILTER
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    return filtered


@lru_cache(maxsize=None)
def _pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="cunet-png")


def _deflate_in_bands(data: np.ndarray, level: int, bands: int) -> bytes:
    """One zlib stream of `data` (rows), deflated in `bands` row bands on as many threads."""
    if bands <= 1:
        return zlib.compress(data, level)
    bounds = np.linspace(0, len(data), bands + 1).astype(int)

    def deflate(band: int) -> bytes:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15)  # raw deflate: no header, no checksum
        last = band == bands - 1
        return (compressor.compress(data[bounds[band]:bounds[band + 1]])
                + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH))

    pieces = list(_pool(bands).map(deflate, range(bands)))
    return b"\x78\x01" + b"".join(pieces) + struct.pack(">I", zlib.adler32(data))


def encode_png(image: np.ndarray, level: int = 1, threads: int = 2) -> bytes:
    """An 8-bit gray, RGB or RGBA image, (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 -> PNG bytes."""
    if image.dtype != np.uint8:
        raise ValueError(f"encode_png needs uint8 pixels, got {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in COLOUR_TYPES or 0 in image.shape:
        raise ValueError(f"encode_png needs an (H, W[, 1, 3 or 4]) image, got shape {image.shape}")
    height, width, channels = image.shape
    filtered = up_filtered_rows(np.ascontiguousarray(image))
    bands = min(threads, max(1, filtered.nbytes // BAND_MIN_BYTES), height)
    header = struct.pack(">IIBBBBB", width, height, 8, COLOUR_TYPES[channels], 0, 0, 0)
    return (PNG_SIGNATURE + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", _deflate_in_bands(filtered, level, bands)) + _chunk(b"IEND", b""))
