"""Routes about photos: the page, the server's facts, opening, describing, showing and closing photos."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
from fastapi import APIRouter, Depends, File, UploadFile
from fastapi.exceptions import HTTPException
from fastapi.responses import HTMLResponse, Response

from cunet.fields import shorten
from cunet.hints import HINT_KEYS, MAX_PATCH
from cunet.studio.context import Studio, png
from cunet.studio.previews import view_of
from cunet.studio.requests import expect_multipart, file_digest, upload_name
from cunet.studio.view import MAX_VIEW_PIXELS, View, render_gray

STATIC = Path(str(resources.files("cunet.studio") / "static"))


def routes(studio: Studio, token: str, max_upload_bytes: int) -> APIRouter:
    router = APIRouter()
    page_html = (STATIC / "index.html").read_text(encoding="utf-8").replace("{{token}}", token)

    @router.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        """The page, carrying this launch's token (`guard`): only a page from this server knows it."""
        return HTMLResponse(page_html, headers={"Cache-Control": "no-store"})

    @router.get("/api/info")
    def info() -> dict:
        """The model, its working size and decoding, whether it suggests colours from its own distribution, the limits."""
        colorizer = studio.colorizer
        return {"working_size": colorizer.working_size, "decode": colorizer.decode, "chroma_gain": colorizer.chroma_gain,
                "distribution_head": colorizer.model.distribution is not None, "hint_keys": list(HINT_KEYS),
                "max_upload_bytes": max_upload_bytes, "max_photo_pixels": studio.max_photo_pixels,
                "preview_side": studio.preview_side, "max_point_size": MAX_PATCH, "max_view_pixels": MAX_VIEW_PIXELS}

    @router.post("/api/photos", status_code=201, dependencies=[Depends(expect_multipart)])
    def upload(file: UploadFile = File(..., description="A photo (JPEG, PNG, TIFF, WebP, ...)")) -> dict:
        """Open a photo: returns its id (random), size, name and digest (its bytes' SHA-256, 16 hex
        digits: the same file has the same digest). Too large: 413; not an image: 422."""
        name = upload_name(file, "upload")
        data = file.file.read()
        return studio.add_photo(studio.decode(data, name), name, file_digest(data))

    @router.get("/api/photos/{photo_id}")
    def photo_info(photo_id: str) -> dict:
        """An open photo's size, name and digest."""
        return studio.describe(photo_id)

    @router.get("/api/photos/{photo_id}/gray", response_class=Response,
                responses={200: {"content": {"image/png": {}}, "description": "The photo as uploaded, preview size"}})
    def gray(photo_id: str, view: View | None = Depends(view_of(studio))) -> Response:
        """The photo itself at the preview size (or over a view, as colorize takes it): the "before" of
        the compare control."""
        if view is not None:
            pixels = studio.compute(render_gray, studio.open_photo(photo_id).prepared, view)
        else:
            rgb = studio.open_photo(photo_id).preview.rgb
            pixels = np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)
        return Response(png(pixels), media_type="image/png", headers={"Cache-Control": "no-store"})

    @router.delete("/api/photos/{photo_id}", status_code=204, response_class=Response)
    def close(photo_id: str) -> Response:
        """Close a photo and free its memory."""
        if not studio.store.remove(photo_id):
            raise HTTPException(404, f"no open photo {shorten(photo_id, 40)}")
        return Response(status_code=204)

    return router
