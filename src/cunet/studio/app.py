"""The studio's HTTP server: FastAPI, a small JSON API over `Colorizer`, and the static page.

Every answer that is not an image is JSON; every error is `{"error": "one line"}` with a fitting
status (404 unknown photo, 413 too large, 422 bad input with the CLI's own messages), and no
traceback ever reaches a client. Photos are decoded once at upload and held by random id in a
bounded LRU (`store.PhotoStore`); every tensor computation runs on one compute thread
(`compute.ComputeThread`: why), one request at a time, each on all cores.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

import numpy as np
from fastapi import Depends, FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from cunet.colorizer import Colorizer
from cunet.errors import CunetError, ImageTooLarge
from cunet.gamut import num_bins
from cunet.fields import shorten
from cunet.hints import HINT_KEYS, MAX_HINTS_BYTES, MAX_PATCH, MAX_STROKE_WIDTH, Hints, decode_json, hints_from_json
from cunet.io import load_photo, open_image
from cunet.join import join_full_resolution
from cunet.png import encode_png
from cunet.studio.compute import ComputeThread
from cunet.studio.guard import LOOPBACK_NAMES, LocalOnly, new_token
from cunet.studio.schedule import ClientGone, LatestWins, Superseded
from cunet.studio.store import MAX_HELD_PIXELS, OpenPhoto, PhotoStore, preview_photo

#: Largest upload accepted (a photo or a reference): bigger requests get 413 before being read.
MAX_UPLOAD_BYTES = 64 * 2**20
#: Largest photo accepted, from its header before decoding: 50 MP (a 8660 x 5773 scan).
MAX_PHOTO_PIXELS = 50_000_000
#: Long side of the preview the page shows while the user works.
PREVIEW_SIDE = 768
#: Long side of the variant thumbnails.
THUMBNAIL_SIDE = 192
#: Previews report what each point will show (header X-Point-Colors, ~80 bytes a point) up to this many points:
#: browsers refuse response headers past a few hundred KB.
MAX_REPORTED_POINTS = 500

log = logging.getLogger("cunet.studio")
STATIC = Path(str(resources.files("cunet.studio") / "static"))

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


class TooLarge(HTTPException):
    def __init__(self, message: str) -> None:
        super().__init__(413, message)


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413, whether its Content-Length says
    so (answered before reading) or it streams past the limit (stopped when it does)."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        message = f"upload too large: the limit is {self.limit // 2**20} MB"
        if length is not None and length.isdigit() and int(length) > self.limit:
            await JSONResponse({"error": message}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def limited_receive():
            nonlocal received
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > self.limit:
                    raise TooLarge(message)
            return event

        await self.app(scope, limited_receive, send)


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """A request's body, refused (413) from its Content-Length before reading, or once it streams past `limit`."""
    length = request.headers.get("content-length", "")
    message = f"{what} too large: the limit is {limit // 2**10:,} KB"
    if length.isdigit() and int(length) > limit:
        raise TooLarge(message)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(message)
    return bytes(body)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def expect_multipart(request: Request) -> None:
    """Uploads come as a form (multipart/form-data, what the page and `curl -F` send); anything else is 415."""
    if media_type(request) != "multipart/form-data":
        raise HTTPException(415, "send the photo as multipart/form-data (a form field named 'file')")


def _png(pixels: np.ndarray | Image.Image) -> bytes:
    """PNG bytes of 8-bit pixels by `cunet.png` (0.30x Pillow's time for a preview: benchmarks/png_encoders.py)."""
    return encode_png(np.asarray(pixels))


def create_app(colorizer: Colorizer, gallery=None, *, max_upload_bytes: int = MAX_UPLOAD_BYTES,
               max_photo_pixels: int = MAX_PHOTO_PIXELS, max_held_pixels: int = MAX_HELD_PIXELS,
               preview_side: int = PREVIEW_SIDE, compute: ComputeThread | None = None,
               hosts: tuple[str, ...] = LOOPBACK_NAMES, token: str | None = None) -> FastAPI:
    """The studio server for one colouriser (and gallery: the bundled one when None).

    `compute` is the thread that runs its tensor work; pass the one that loaded the colouriser (see
    `compute.ComputeThread`), else the app starts its own. The app closes it when it shuts down.
    `hosts` are the names it answers to (`guard.LocalOnly`: loopback, plus a `--host` given);
    `token` is the per-launch secret its page sends (a new one when None: `app.state.token`).
    """
    compute = compute or ComputeThread()
    token = token or new_token()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        compute.close()

    # FastAPIOffline: the /docs page with Swagger UI's files from the fastapi-offline wheel, not a CDN.
    app = FastAPIOffline(title="cunet studio", version="1", docs_url="/docs", redoc_url=None, lifespan=lifespan,
                         favicon_url="data:,", static_url="/docs-static",
                         description="Colour a black-and-white photo interactively: upload it, send hints, get PNGs. "
                                     "Requests that change state need this server's Origin header (or the page's "
                                     "X-Cunet-Token); every error is {\"error\": \"...\"}.")
    store = PhotoStore(max_held_pixels)
    previews = LatestWins(compute)  # per photo: one preview computing, one waiting (`schedule`)
    app.state.store, app.state.token, app.state.previews = store, token, previews
    app.add_middleware(BodyLimit, limit=max_upload_bytes)
    app.add_middleware(LocalOnly, hosts=hosts, token=token)  # added last: runs first

    @app.exception_handler(CunetError)
    async def bad_input(request: Request, error: CunetError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=413 if isinstance(error, ImageTooLarge) else 422)

    @app.exception_handler(StarletteHTTPException)  # FastAPI's HTTPException, and Starlette's 404 and 405
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = str(error.detail)
        if message in ("Not Found", "Method Not Allowed"):  # Starlette's own words for a route that does not exist
            message = f"{message.lower()}: {request.method} {shorten(request.url.path, 40)}"
        return JSONResponse({"error": message}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "request"
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"}, status_code=422)

    @app.exception_handler(Exception)
    async def internal(request: Request, error: Exception) -> JSONResponse:
        log.exception("studio: %s %s failed", request.method, request.url.path)
        return JSONResponse({"error": "internal error (details are in the server's log)"}, status_code=500)

    def open_photo(photo_id: str) -> OpenPhoto:
        photo = store.get(photo_id)
        if photo is None:
            raise HTTPException(404, f"no open photo {shorten(photo_id, 40)} (it may have been closed to free memory)")
        return photo

    def decode(data: bytes, what: str):
        if not data:
            raise CunetError(f"{what}: the upload is empty")
        with open_image(data, what, max_photo_pixels, "the studio's"):
            pass  # refused from its header alone when it is over the studio's limit
        return load_photo(data, name=what)

    def hints_of(body: bytes) -> Hints:
        if not body.strip():
            return Hints()
        data = decode_json(body, "hints")
        if isinstance(data, dict) and "reference" in data:
            raise CunetError("hints: the server opens no file paths; upload the reference photo to /api/histogram "
                             "and send its histogram")
        return hints_from_json(data, "hints")

    page_html = (STATIC / "index.html").read_text(encoding="utf-8").replace("{{token}}", token)

    @app.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        """The page, carrying this launch's token (`guard`): only a page from this server knows it."""
        return HTMLResponse(page_html, headers={"Cache-Control": "no-store"})

    @app.get("/api/info")
    def info() -> dict:
        """The model, its working size, whether it suggests colours from its own distribution, the limits."""
        return {"working_size": colorizer.working_size, "decode": colorizer.decode,
                "distribution_head": colorizer.model.distribution is not None, "hint_keys": list(HINT_KEYS),
                "max_upload_bytes": max_upload_bytes, "max_photo_pixels": max_photo_pixels,
                "preview_side": preview_side, "max_point_size": MAX_PATCH}

    @app.post("/api/photos", status_code=201, dependencies=[Depends(expect_multipart)])
    def upload(file: UploadFile = File(..., description="A photo (JPEG, PNG, TIFF, WebP, ...)")) -> dict:
        """Open a photo: returns its id (random) and size. Too large: 413; not an image: 422."""
        name = upload_name(file, "upload")
        return add_photo(decode(file.file.read(), name), name)

    def upload_name(file: UploadFile, fallback: str) -> str:
        """An upload's file name as messages quote it: its last part, cut short."""
        name = Path(file.filename or fallback).name or fallback
        return name if len(name) <= 60 else name[:57] + "..."

    def add_photo(photo, name: str) -> dict:
        """Prepare a decoded photo, hold it, and describe it (the CLI's PHOTO argument comes this way too)."""

        def opened() -> OpenPhoto:
            prepared = colorizer.prepare(photo)
            prepared.working(colorizer.working_size)
            return OpenPhoto(prepared, preview_photo(prepared.photo, preview_side), Path(name).name)

        return describe(store.add(compute(opened)))

    def describe(photo_id: str) -> dict:
        photo = open_photo(photo_id)
        width, height = photo.prepared.size
        return {"id": photo_id, "width": width, "height": height, "name": photo.name,
                "preview_width": photo.preview.size[0], "preview_height": photo.preview.size[1]}

    app.state.add_photo = add_photo

    @app.get("/api/photos/{photo_id}")
    def photo_info(photo_id: str) -> dict:
        """An open photo's size and name."""
        return describe(photo_id)

    @app.get("/api/photos/{photo_id}/gray", response_class=Response,
             responses={200: {"content": {"image/png": {}}, "description": "The photo as uploaded, preview size"}})
    def gray(photo_id: str) -> Response:
        """The photo itself at the preview size: the "before" of the compare slider."""
        rgb = open_photo(photo_id).preview.rgb
        pixels = np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)
        return Response(_png(pixels), media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.post("/api/photos/{photo_id}/colorize", response_class=Response,
              responses={200: {"content": {"image/png": {}}, "description": "The colourised photo"},
                         409: {"description": "Superseded (previews only): a newer preview request of the same "
                                              "photo replaced this one while it waited, or its client left; "
                                              "body {\"error\": \"superseded: ...\"}. Only the newest matters."}},
              openapi_extra={"requestBody": {"required": False, "content": {"application/json": {"schema": HINTS_SCHEMA}}}})
    async def colorize(photo_id: str, request: Request,
                       full: bool = Query(False, description="Full resolution (else the preview size)")) -> Response:
        """Colour the photo with the hints in the body: a PNG preview, or the full-resolution PNG with ?full=1.

        Previews of one photo: one computes, one waits; a newer request replaces the waiting one, which
        gets 409 at once (`studio.schedule`)."""
        body = await read_body(request, MAX_HINTS_BYTES, "hints")
        if body.strip() and media_type(request) != "application/json":
            raise HTTPException(415, "send the hints as application/json")
        photo = open_photo(photo_id)
        hints = await run_in_threadpool(hints_of, body)
        if full:  # a download is never superseded by a preview
            png = await asyncio.wrap_future(compute.submit(
                lambda: _png(colorizer.finish(photo.prepared, colorizer.predict_ab(photo.prepared, hints)))))
            return Response(png, media_type="image/png", headers={
                "Cache-Control": "no-store", "Content-Disposition": 'attachment; filename="colorized.png"'})

        def render() -> tuple[bytes, str | None]:
            ab = colorizer.predict_ab(photo.prepared, hints)
            shown = None
            if len(hints.points) <= MAX_REPORTED_POINTS:
                shown = json.dumps([colour.to_json() for colour in colorizer.point_colours(photo.prepared, hints)])
            preview = photo.preview_luminance
            field = colorizer.colour_field(photo.prepared, ab, preview.shape)
            return _png(join_full_resolution(preview, field, threads=1)), shown

        try:
            png, shown = await previews.run(photo_id, render, request.is_disconnected)
        except (Superseded, ClientGone) as stopped:
            reason = "a newer update of this photo replaced it" if isinstance(stopped, Superseded) else "the client left"
            return JSONResponse({"error": f"superseded: {reason}"}, status_code=409)
        # What each point will show (its colour fitted to the gamut at its lightness): the page's markers.
        headers = {"Cache-Control": "no-store"} | ({"X-Point-Colors": shown} if shown is not None else {})
        return Response(png, media_type="image/png", headers=headers)

    @app.get("/api/photos/{photo_id}/suggest")
    def suggest(photo_id: str, x: float = Query(..., description="Pixel column in the photo"),
                y: float = Query(..., description="Pixel row in the photo"),
                top: int = Query(8, ge=1, le=64)) -> dict:
        """The most likely colours at a pixel, most likely first, and where they come from ("model": the
        network's colour distribution; "gallery": the nearest gallery photos, for a model without one)."""
        photo = open_photo(photo_id)
        suggestions, source = compute(colorizer.suggest, photo.prepared, x, y, top, gallery=gallery)
        return {"source": source, "suggestions": [s.to_json() for s in suggestions]}

    @app.get("/api/photos/{photo_id}/variants")
    def variants(photo_id: str, k: int = Query(4, ge=1, le=12)) -> dict:
        """k colourings from the gallery's nearest distinct photos: each one's gallery id, its a*b*
        histogram (send it as the hints' "histogram" to use it) and a PNG thumbnail (data URL)."""
        photo = open_photo(photo_id)

        def variants_of() -> list[dict]:
            thumbnail = preview_photo(photo.preview, THUMBNAIL_SIDE)
            results = []
            chosen = colorizer.match_references(photo.prepared, k, gallery)
            histograms = colorizer_gallery().histograms
            for index in chosen:
                histogram = histograms[index].float()
                ab = colorizer.predict_ab(photo.prepared, Hints(histogram=histogram))
                field = colorizer.colour_field(photo.prepared, ab, thumbnail.rgb.shape[:2])
                image = join_full_resolution(thumbnail.rgb, field, threads=1)
                results.append({"id": int(index), "histogram": [round(float(v), 6) for v in histogram],
                                "thumbnail": "data:image/png;base64," + base64.b64encode(_png(image)).decode()})
            return results

        return {"variants": compute(variants_of)}

    def colorizer_gallery():
        from cunet.gallery import bundled_gallery

        return gallery if gallery is not None else bundled_gallery()

    @app.post("/api/histogram", dependencies=[Depends(expect_multipart)])
    def reference_histogram(file: UploadFile = File(..., description="A colour photo to take colours from")) -> dict:
        """A reference photo's a*b* histogram, to send as the hints' "histogram"."""
        photo = decode(file.file.read(), upload_name(file, "reference"))
        histogram = compute(colorizer.histogram_of, photo)
        return {"histogram": [round(float(v), 6) for v in np.asarray(histogram)]}

    @app.delete("/api/photos/{photo_id}", status_code=204, response_class=Response)
    def close(photo_id: str) -> Response:
        """Close a photo and free its memory."""
        if not store.remove(photo_id):
            raise HTTPException(404, f"no open photo {shorten(photo_id, 40)}")
        return Response(status_code=204)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
