"""The photos a studio server holds: prepared once, found by random ids, evicted least recently used.

Memory is bounded by pixels, not by count: a prepared photo keeps its full-resolution pixels as
float32 (12 bytes a pixel) for the full-size download, plus a small preview. Ids are 128-bit random
tokens (`secrets`), so one client cannot guess another's photo.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from cunet.colorizer import PreparedPhoto
from cunet.io import Photo
from cunet.join import Luminance

#: Pixels of all open photos together: about 1.2 GB of float32 pixels.
MAX_HELD_PIXELS = 100_000_000


@dataclass
class OpenPhoto:
    """An uploaded photo: prepared for the network, and a preview-sized copy (with its luminance,
    the photo's part of the join, computed once) for fast previews."""

    prepared: PreparedPhoto
    preview: Photo
    name: str = "photo"
    digest: str = ""  # the file's SHA-256 (16 hex digits): the page keeps each photo's hints under it
    preview_luminance: Luminance = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.preview_luminance = Luminance.of(self.preview.rgb)

    @property
    def pixels(self) -> int:
        width, height = self.prepared.size
        return width * height


class PhotoStore:
    """Thread-safe LRU of open photos; adding one evicts the least recently used beyond the budget."""

    def __init__(self, max_pixels: int = MAX_HELD_PIXELS) -> None:
        self.max_pixels = max_pixels
        self._photos: OrderedDict[str, OpenPhoto] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, photo: OpenPhoto) -> str:
        key = secrets.token_urlsafe(16)
        with self._lock:
            self._photos[key] = photo
            while len(self._photos) > 1 and sum(p.pixels for p in self._photos.values()) > self.max_pixels:
                self._photos.popitem(last=False)
        return key

    def get(self, key: str) -> OpenPhoto | None:
        with self._lock:
            photo = self._photos.get(key)
            if photo is not None:
                self._photos.move_to_end(key)
            return photo

    def remove(self, key: str) -> bool:
        with self._lock:
            return self._photos.pop(key, None) is not None

    def __len__(self) -> int:
        with self._lock:
            return len(self._photos)


def preview_photo(photo: Photo, long_side: int) -> Photo:
    """The photo shrunk (area-averaged) so that its long side is at most `long_side`."""
    import torch
    import torch.nn.functional as F

    height, width = photo.rgb.shape[:2]
    scale = long_side / max(height, width)
    if scale >= 1:
        return photo
    shape = (max(1, round(height * scale)), max(1, round(width * scale)))
    rgb = torch.from_numpy(photo.rgb).permute(2, 0, 1)[None]
    small = F.interpolate(rgb, size=shape, mode="area")[0].permute(1, 2, 0).contiguous().numpy()
    return Photo(np.ascontiguousarray(small), None)
