"""The studio's HTTP server: FastAPI, a small JSON API over `Colorizer`, and the static page.

The routes are grouped by concern — `photos` (the page, opening and closing photos), `previews`
(colouring: previews with latest wins, downloads, checking hints) and `colours` (suggestions,
variants, a reference's histogram) — over one shared `context.Studio`; this module puts them
together with the request guards (`guard`, `requests`) and the one error shape. Every answer that
is not an image is JSON; every error is `{"error": "one line"}` with a fitting status (404 unknown
photo, 409 superseded preview, 413 too large, 415 wrong content type, 421/403 not this server's
page, 422 bad input with the CLI's own messages), and no traceback ever reaches a client. Photos are
decoded once at upload and held by random id in a bounded LRU (`store.PhotoStore`); every tensor
computation runs on one compute thread (`compute.ComputeThread`: why), each on all cores.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from cunet.colorizer import Colorizer
from cunet.errors import CunetError, ImageTooLarge
from cunet.fields import shorten
from cunet.studio import colours, photos, previews
from cunet.studio.compute import ComputeThread
from cunet.studio.context import Studio
from cunet.studio.guard import LOOPBACK_NAMES, LocalOnly, new_token
from cunet.studio.requests import MAX_UPLOAD_BYTES, BodyLimit
from cunet.studio.store import MAX_HELD_PIXELS, PhotoStore

#: Largest photo accepted, from its header before decoding: 50 MP (a 8660 x 5773 scan).
MAX_PHOTO_PIXELS = 50_000_000
#: Long side of the preview the page shows while the user works.
PREVIEW_SIDE = 768

log = logging.getLogger("cunet.studio")


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
    studio = Studio(colorizer, gallery, compute, PhotoStore(max_held_pixels), max_photo_pixels, preview_side)

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
    app.state.studio, app.state.store, app.state.previews = studio, studio.store, studio.previews
    app.state.token, app.state.add_photo = token, studio.add_photo
    app.add_middleware(BodyLimit, limit=max_upload_bytes)
    app.add_middleware(LocalOnly, hosts=hosts, token=token)  # added last: runs first
    add_error_handlers(app)
    app.include_router(photos.routes(studio, token, max_upload_bytes))
    app.include_router(previews.routes(studio))
    app.include_router(colours.routes(studio))
    app.mount("/static", StaticFiles(directory=photos.STATIC), name="static")
    return app


def add_error_handlers(app: FastAPI) -> None:
    """The one error shape, {"error": "one line"}, for every way a request can fail."""

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
