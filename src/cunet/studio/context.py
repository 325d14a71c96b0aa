"""What every route of a studio server shares: the colouriser and its gallery, the compute thread,
the open photos, the preview scheduler and the limits, with the few steps routes have in common
(find an open photo, decode an upload, read a hints body)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from fastapi import Request
from fastapi.exceptions import HTTPException
from PIL import Image
from starlette.concurrency import run_in_threadpool

from cunet.colorizer import Colorizer
from cunet.errors import CunetError
from cunet.fields import shorten
from cunet.hints import MAX_HINTS_BYTES, Hints, decode_json, hints_from_json
from cunet.io import Photo, load_photo, open_image
from cunet.png import encode_png
from cunet.studio.compute import ComputeThread
from cunet.studio.requests import media_type, read_body
from cunet.studio.schedule import LatestWins
from cunet.studio.store import OpenPhoto, PhotoStore, preview_photo


def png(pixels: np.ndarray | Image.Image) -> bytes:
    """PNG bytes of 8-bit pixels by `cunet.png` (0.30x Pillow's time for a preview: benchmarks/png_encoders.py)."""
    return encode_png(np.asarray(pixels))


@dataclass(eq=False)
class Studio:
    """One server's shared state. `gallery` None: the bundled gallery."""

    colorizer: Colorizer
    gallery: object | None
    compute: ComputeThread
    store: PhotoStore
    max_photo_pixels: int
    preview_side: int
    previews: LatestWins = field(init=False)

    def __post_init__(self) -> None:
        self.previews = LatestWins(self.compute)  # per photo: one preview computing, one waiting

    def open_photo(self, photo_id: str) -> OpenPhoto:
        photo = self.store.get(photo_id)
        if photo is None:
            raise HTTPException(404, f"no open photo {shorten(photo_id, 40)} (it may have been closed to free memory)")
        return photo

    def decode(self, data: bytes, what: str) -> Photo:
        if not data:
            raise CunetError(f"{what}: the upload is empty")
        with open_image(data, what, self.max_photo_pixels, "the studio's"):
            pass  # refused from its header alone when it is over the studio's limit
        return load_photo(data, name=what)

    def add_photo(self, photo: Photo, name: str, digest: str = "") -> dict:
        """Prepare a decoded photo, hold it, and describe it (the CLI's PHOTO argument comes this way too)."""

        def opened() -> OpenPhoto:
            prepared = self.colorizer.prepare(photo)
            prepared.working(self.colorizer.working_size)
            return OpenPhoto(prepared, preview_photo(prepared.photo, self.preview_side), Path(name).name, digest)

        return self.describe(self.store.add(self.compute(opened)))

    def describe(self, photo_id: str) -> dict:
        photo = self.open_photo(photo_id)
        width, height = photo.prepared.size
        return {"id": photo_id, "width": width, "height": height, "name": photo.name, "digest": photo.digest,
                "preview_width": photo.preview.size[0], "preview_height": photo.preview.size[1]}

    @staticmethod
    def hints_of(body: bytes) -> Hints:
        if not body.strip():
            return Hints()
        data = decode_json(body, "hints")
        if isinstance(data, dict) and "reference" in data:
            raise CunetError("hints: the server opens no file paths; upload the reference photo to /api/histogram "
                             "and send its histogram")
        return hints_from_json(data, "hints")

    async def photo_and_hints(self, photo_id: str, request: Request) -> tuple[OpenPhoto, Hints]:
        """The open photo and the request's hints (JSON, at most MAX_HINTS_BYTES, refused unread beyond)."""
        body = await read_body(request, MAX_HINTS_BYTES, "hints")
        if body.strip() and media_type(request) != "application/json":
            raise HTTPException(415, "send the hints as application/json")
        return self.open_photo(photo_id), await run_in_threadpool(self.hints_of, body)

    def gallery_in_use(self):
        from cunet.gallery import bundled_gallery

        return self.gallery if self.gallery is not None else bundled_gallery()
