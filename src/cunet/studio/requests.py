"""What the studio accepts from a request before any route works on it: bodies bounded as they are
read, the content types of uploads and hints, upload names as messages quote them."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import Request, UploadFile
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse

#: Largest upload accepted (a photo or a reference): bigger requests get 413 before being read.
MAX_UPLOAD_BYTES = 64 * 2**20


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


def upload_name(file: UploadFile, fallback: str) -> str:
    """An upload's file name as messages quote it: its last part, cut short."""
    name = Path(file.filename or fallback).name or fallback
    return name if len(name) <= 60 else name[:57] + "..."


def file_digest(data: bytes) -> str:
    """A photo file's identity for the page (its hints are kept under it): SHA-256, 16 hex digits."""
    return hashlib.sha256(data).hexdigest()[:16]
