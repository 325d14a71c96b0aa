"""Routes that colour: previews (latest wins, `schedule`), downloads, and checking a hints document."""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from cunet.gamut import num_bins
from cunet.hints import MAX_PATCH, MAX_STROKE_WIDTH
from cunet.join import join_full_resolution
from cunet.studio.context import Studio, png
from cunet.errors import CunetError
from cunet.studio.schedule import ClientGone, Superseded
from cunet.studio.view import View, render_view

#: Previews report what each point will show (header X-Point-Colors, ~80 bytes a point) up to this many points:
#: browsers refuse response headers past a few hundred KB.
MAX_REPORTED_POINTS = 500

HINTS_SCHEMA = {
    "type": "object",
    "description": "The same hints document that `cunet colorize --hints` reads, without 'reference' "
                   "(the server opens no paths: upload a reference to /api/histogram and send its histogram).",
    "properties": {
        "points": {"type": "array", "items": {
            "type": "object", "required": ["x", "y"],
            "properties": {"x": {"type": "number"}, "y": {"type": "number"},
                           "color": {"type": "string", "example": "#c03020"},
                           "a": {"type": "number"}, "b": {"type": "number"},
                           "size": {"type": "integer", "minimum": 1, "maximum": MAX_PATCH},
                           "strength": {"type": "number", "minimum": 0, "maximum": 1}}}},
        "strokes": {"type": "array", "items": {
            "type": "object", "required": ["points"],
            "properties": {"points": {"type": "array", "items": {"type": "array", "items": {"type": "number"},
                                                                  "minItems": 2, "maxItems": 2}},
                           "color": {"type": "string", "example": "#2050c0"},
                           "a": {"type": "number"}, "b": {"type": "number"},
                           "width": {"type": "integer", "minimum": 1, "maximum": MAX_STROKE_WIDTH},
                           "strength": {"type": "number", "minimum": 0, "maximum": 1}}}},
        "saturation": {"type": "number", "minimum": 0, "maximum": 1},
        "histogram": {"type": "array", "items": {"type": "number", "minimum": 0},
                      "minItems": num_bins(), "maxItems": num_bins()},
    },
    "additionalProperties": False,
}


def hints_body(required: bool) -> dict:
    """The OpenAPI request body of a route that takes a hints document."""
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": HINTS_SCHEMA}}}}


def view_of(studio: Studio):
    """A dependency reading an optional view from the query: all six of x0, y0, x1, y1, width, height, or none."""

    def view(photo_id: str, x0: float | None = Query(None, description="View: region's left, photo pixels"),
             y0: float | None = Query(None, description="View: region's top"),
             x1: float | None = Query(None, description="View: region's right"),
             y1: float | None = Query(None, description="View: region's bottom"),
             width: int | None = Query(None, description="View: rendered width, pixels"),
             height: int | None = Query(None, description="View: rendered height, pixels")) -> View | None:
        values = (x0, y0, x1, y1, width, height)
        if all(value is None for value in values):
            return None
        if any(value is None for value in values):
            raise CunetError("view: give all of x0, y0, x1, y1, width and height, or none")
        return View.checked(studio.open_photo(photo_id).prepared.size, *values)

    return view


def routes(studio: Studio) -> APIRouter:
    router = APIRouter()

    @router.post("/api/photos/{photo_id}/colorize", response_class=Response,
                 responses={200: {"content": {"image/png": {}}, "description": "The colourised photo"},
                            409: {"description": "Superseded (previews only): a newer preview request of the same "
                                                 "photo replaced this one while it waited, or its client "
                                                 "left; body {\"error\": \"superseded: ...\"}. Only the newest "
                                                 "matters."}},
                 openapi_extra=hints_body(required=False))
    async def colorize(photo_id: str, request: Request,
                       full: bool = Query(False, description="Full resolution (else the preview size)"),
                       view: View | None = Depends(view_of(studio)),
                       seq: int | None = Query(None, ge=0, description="The page's order of this preview: an "
                                               "older one arriving after a newer is superseded")) -> Response:
        """Colour the photo with the hints in the body: a PNG preview, or the full-resolution PNG with ?full=1.
        With x0, y0, x1, y1 (a region, in the photo's pixels) and width, height: that region rendered at
        that size from the full-resolution photo (what the page shows when it zooms, at its screen's size).

        Previews of one photo: one computes, one waits; a newer request replaces the waiting one, which
        gets 409 at once (`studio.schedule`)."""
        photo, hints = await studio.photo_and_hints(photo_id, request)
        if full:  # a download is never superseded by a preview
            colorizer = studio.colorizer
            encoded = await asyncio.wrap_future(studio.compute.submit(
                lambda: png(colorizer.finish(photo.prepared, colorizer.predict_ab(photo.prepared, hints)))))
            return Response(encoded, media_type="image/png", headers={
                "Cache-Control": "no-store", "Content-Disposition": 'attachment; filename="colorized.png"'})

        def render() -> tuple[bytes, str | None]:
            ab = studio.colorizer.predict_ab(photo.prepared, hints)
            shown = None
            if len(hints.points) <= MAX_REPORTED_POINTS:
                shown = json.dumps([colour.to_json() for colour in studio.colorizer.point_colours(photo.prepared, hints)])
            if view is not None:
                return png(render_view(studio.colorizer, photo.prepared, ab, view)), shown
            preview = photo.preview_luminance
            field = studio.colorizer.colour_field(photo.prepared, ab, preview.shape)
            return png(join_full_resolution(preview, field, threads=1)), shown

        try:
            encoded, shown = await studio.previews.run(photo_id, render, request.is_disconnected, seq)
        except (Superseded, ClientGone) as stopped:
            reason = "a newer update of this photo replaced it" if isinstance(stopped, Superseded) else "the client left"
            return JSONResponse({"error": f"superseded: {reason}"}, status_code=409)
        # What each point will show (its colour fitted to the gamut at its lightness): the page's markers.
        headers = {"Cache-Control": "no-store"} | ({"X-Point-Colors": shown} if shown is not None else {})
        return Response(encoded, media_type="image/png", headers=headers)

    @router.post("/api/photos/{photo_id}/check-hints",
                 openapi_extra=hints_body(required=True))
    async def check_hints(photo_id: str, request: Request) -> dict:
        """Check a hints document whole against this photo without colouring it (points and strokes
        inside, caps): 200 with its counts, or 422 saying what is wrong. The page checks a loaded
        hints file this way before anything changes."""
        photo, hints = await studio.photo_and_hints(photo_id, request)
        await asyncio.wrap_future(studio.compute.submit(studio.colorizer.check_hints, photo.prepared, hints))
        return {"points": len(hints.points), "strokes": len(hints.strokes)}

    return router
