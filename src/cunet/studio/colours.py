"""Routes about colours to choose from: suggestions at a pixel, variants from the gallery, and a
reference photo's histogram."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
from fastapi import APIRouter, Depends, File, Query, Request, UploadFile

from cunet.hints import Hints
from cunet.join import join_full_resolution
from cunet.studio.context import Studio, png
from cunet.studio.previews import hints_body
from cunet.studio.requests import expect_multipart, upload_name
from cunet.studio.store import OpenPhoto, preview_photo

#: Long side of the variant thumbnails.
THUMBNAIL_SIDE = 192


def routes(studio: Studio) -> APIRouter:
    router = APIRouter()

    @router.get("/api/photos/{photo_id}/suggest")
    def suggest(photo_id: str, x: float = Query(..., description="Pixel column in the photo"),
                y: float = Query(..., description="Pixel row in the photo"),
                top: int = Query(8, ge=1, le=64)) -> dict:
        """The most likely colours at a pixel, most likely first, and where they come from ("model": the
        network's colour distribution; "gallery": the nearest gallery photos, for a model without one)."""
        photo = studio.open_photo(photo_id)
        suggestions, source = studio.compute(studio.colorizer.suggest, photo.prepared, x, y, top, gallery=studio.gallery)
        return {"source": source, "suggestions": [s.to_json() for s in suggestions]}

    @router.get("/api/photos/{photo_id}/variants")
    def variants(photo_id: str, k: int = Query(4, ge=1, le=12)) -> dict:
        """k colourings from the gallery's nearest distinct photos: each one's gallery id, its a*b*
        histogram (send it as the hints' "histogram" to use it) and a PNG thumbnail (data URL)."""
        return {"variants": studio.compute(variants_of, studio.open_photo(photo_id), k, Hints())}

    @router.post("/api/photos/{photo_id}/variants",
                 openapi_extra=hints_body(required=False))
    async def variants_with_hints(photo_id: str, request: Request, k: int = Query(4, ge=1, le=12)) -> dict:
        """The variants with the user's hints (points, strokes, saturation) in each thumbnail: what the
        page shows, so that a thumbnail looks like the result of choosing it."""
        photo, hints = await studio.photo_and_hints(photo_id, request)
        return {"variants": await asyncio.wrap_future(studio.compute.submit(variants_of, photo, k, hints))}

    def variants_of(photo: OpenPhoto, k: int, hints: Hints) -> list[dict]:
        thumbnail = preview_photo(photo.preview, THUMBNAIL_SIDE)
        results = []
        histograms = studio.gallery_in_use().histograms
        for index in studio.colorizer.match_references(photo.prepared, k, studio.gallery):
            histogram = histograms[index].float()
            chosen = Hints(hints.points, histogram, hints.saturation, strokes=hints.strokes)
            ab = studio.colorizer.predict_ab(photo.prepared, chosen)
            field = studio.colorizer.colour_field(photo.prepared, ab, thumbnail.rgb.shape[:2])
            image = join_full_resolution(thumbnail.rgb, field, threads=1)
            results.append({"id": int(index), "histogram": [round(float(v), 6) for v in histogram],
                            "thumbnail": "data:image/png;base64," + base64.b64encode(png(image)).decode()})
        return results

    @router.post("/api/histogram", dependencies=[Depends(expect_multipart)])
    def reference_histogram(file: UploadFile = File(..., description="A colour photo to take colours from")) -> dict:
        """A reference photo's a*b* histogram, to send as the hints' "histogram"."""
        photo = studio.decode(file.file.read(), upload_name(file, "reference"))
        histogram = studio.compute(studio.colorizer.histogram_of, photo)
        return {"histogram": [round(float(v), 6) for v in np.asarray(histogram)]}

    return router
