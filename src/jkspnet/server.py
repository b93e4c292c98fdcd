"""``jkspnet serve``: a small local web app and HTTP API that colorizes photos.

The model is loaded once. Each request is admitted only while fewer than ``queue`` requests wait
beside those being worked on (else 503), so memory stays bounded under load. Uploads are refused
by their declared size before the body is read, and counted while it is read; photos are refused
by the pixel count their header declares, before decoding. Decoding, preparing and PNG encoding
run in a small thread pool; the network runs in ``workers`` batcher threads, each of which groups
the photos that wait within a few milliseconds (same temperature and size) into one forward pass.

FastAPI, uvicorn and python-multipart (the ``[web]`` extra) are imported only when the server is
built, so the rest of the command line works without them.
"""

import asyncio
import io
import math
import os
import queue
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import JKSPNetError, PhotoError, PhotoTooLargeError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .pipeline import Colorizer

WEB_EXTRA_MESSAGE = "jkspnet serve needs the web extra: pip install 'jkspnet[web]'"
DEFAULT_MAX_BYTES = 25_000_000
DEFAULT_SERVER_MAX_PIXELS = 50_000_000
MAX_SIZE = 256
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.01, 10.0
NOTE_HEADER = "X-JKSPNet-Note"  # e.g. that an animated GIF's first frame was colorized
_ENVELOPE_BYTES = 64 * 1024  # room for the multipart boundaries and the small form fields
_NOT_IMAGE_TYPES = ("text/", "application/pdf", "application/json", "application/zip")


# ------------------------------------------------------------------------------------ errors
class ApiError(Exception):
    """An error the API answers with ``{"error": message}`` and the given status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _TooLarge(Exception):
    """Raised from inside the body stream when an upload passes its byte limit."""


# ----------------------------------------------------------------------------------- batcher
@dataclass
class _Item:
    network_input: "torch.Tensor"  # (1, size, size)
    temperature: float
    future: Future = field(default_factory=Future)


class Batcher:
    """Runs ``predict_ab`` in ``workers`` threads, grouping photos that arrive together.

    A thread takes the first waiting photo, then collects more for up to ``wait_s`` seconds (or
    until ``max_batch``), and runs one forward pass per group of equal temperature and size.
    """

    def __init__(
        self, colorizer: "Colorizer", workers: int = 1, max_batch: int = 8, wait_s: float = 0.005
    ) -> None:
        self.colorizer = colorizer
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.batches_run = 0
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._run, name=f"jkspnet-model-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, network_input: "torch.Tensor", temperature: float) -> Future:
        item = _Item(network_input, temperature)
        self._queue.put(item)
        return item.future

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=10)

    def _collect(self, first: _Item) -> tuple[list[_Item], bool]:
        """The first photo and those that arrive within ``wait_s``; True if told to stop."""
        batch = [first]
        deadline = time.monotonic() + self.wait_s
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get(timeout=max(deadline - time.monotonic(), 0.0) or 1e-6)
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _run(self) -> None:
        import torch

        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._collect(first)
            groups: dict[tuple[float, tuple[int, ...]], list[_Item]] = {}
            for item in batch:
                if not item.future.set_running_or_notify_cancel():
                    continue  # its request went away
                key = (item.temperature, tuple(item.network_input.shape))
                groups.setdefault(key, []).append(item)
            for (temperature, _), items in groups.items():
                try:
                    stacked = torch.stack([item.network_input for item in items])
                    ab = self.colorizer.predict_ab(stacked, temperature)
                    self.batches_run += 1
                    for item, one in zip(items, ab, strict=True):
                        item.future.set_result(one)
                except Exception as error:  # reported to each waiting request
                    for item in items:
                        if not item.future.done():
                            item.future.set_exception(error)
            if stop:
                return


# ------------------------------------------------------------------------------ photo work
class PhotoWork:
    """The per-photo steps around the network, run in worker threads."""

    def __init__(self, colorizer: "Colorizer", max_pixels: int) -> None:
        self.colorizer = colorizer
        self.max_pixels = max_pixels

    def prepare(self, upload_file: Any, size: int):
        """Decode an uploaded (spooled) file and compute the network input at ``size``."""
        import shutil

        from .photos import load_photo

        with tempfile.TemporaryDirectory(prefix="jkspnet-") as folder:
            path = Path(folder) / "upload"
            upload_file.seek(0)
            with open(path, "wb") as stream:
                shutil.copyfileobj(upload_file, stream, 1 << 20)
            try:  # the pixel limit is checked from the header, before decoding
                photo = load_photo(path, max_pixels=self.max_pixels)
            except PhotoTooLargeError as error:
                raise ApiError(413, f"photo too large: {error.reason}") from None
            except PhotoError as error:
                raise ApiError(400, f"not a usable photo: {error.reason}") from None
        return self.colorizer.prepare(photo, size)

    def finish(self, prepared, ab) -> bytes:
        image = self.colorizer.finish(prepared, ab)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=3)
        return buffer.getvalue()


# -------------------------------------------------------------------------------- the app
def _require_web() -> None:
    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise JKSPNetError(WEB_EXTRA_MESSAGE) from None


def _parse_temperature(text: Any, default: float) -> float:
    if text is None or text == "":
        return default
    try:
        value = float(str(text))
    except ValueError:
        raise ApiError(422, f"temperature must be a number, got {str(text)[:40]!r}") from None
    if not (math.isfinite(value) and MIN_TEMPERATURE <= value <= MAX_TEMPERATURE):
        raise ApiError(
            422, f"temperature must be from {MIN_TEMPERATURE} to {MAX_TEMPERATURE}, got {value}"
        )
    return value


def _parse_size(text: Any, default: int) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(str(text))
    except ValueError:
        raise ApiError(422, f"size must be a whole number, got {str(text)[:40]!r}") from None
    if value < 8 or value > MAX_SIZE or value % 8:
        raise ApiError(422, f"size must be a multiple of 8 from 8 to {MAX_SIZE}, got {value}")
    return value


def _is_not_image(content_type: str | None) -> bool:
    kind = (content_type or "").split(";")[0].strip().lower()
    if not kind or kind == "application/octet-stream" or kind.startswith("image/"):
        return False
    return kind.startswith(_NOT_IMAGE_TYPES) or kind.startswith(("audio/", "video/"))


_ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}
_COLORIZE_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {
                            "type": "string",
                            "format": "binary",
                            "description": "the photo (JPEG, PNG, WebP, TIFF, BMP, GIF...)",
                        },
                        "temperature": {
                            "type": "number",
                            "minimum": MIN_TEMPERATURE,
                            "maximum": MAX_TEMPERATURE,
                            "description": "colour temperature T: lower is more vivid "
                            "(default: the weights')",
                        },
                        "size": {
                            "type": "integer",
                            "minimum": 8,
                            "maximum": MAX_SIZE,
                            "multipleOf": 8,
                            "description": "the network's input side (default: the weights')",
                        },
                    },
                }
            }
        },
    },
    "responses": {
        "200": {
            "description": "the colorized photo, PNG, of exactly the input's dimensions",
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
            "headers": {
                NOTE_HEADER: {
                    "description": "what to know about the result, if anything "
                    "(an animated GIF: only its first frame was colorized)",
                    "schema": {"type": "string"},
                }
            },
        },
        **{
            str(code): {
                "description": text,
                "content": {"application/json": {"schema": _ERROR_SCHEMA}},
            }
            for code, text in (
                (400, "not a usable photo, or a malformed form"),
                (413, "upload over the byte limit, or photo over the pixel limit"),
                (415, "the upload's declared type is not an image"),
                (422, "bad temperature or size"),
                (503, "the work queue is full; try again"),
            )
        },
    },
}


def create_app(
    colorizer: "Colorizer",
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int | None = None,
    workers: int = 1,
    queue_size: int = 16,
    max_batch: int = 8,
    batch_wait_s: float = 0.005,
    prep_threads: int | None = None,
):
    """The FastAPI app: the page at ``/``, ``POST /api/colorize`` and ``GET /api/health``."""
    _require_web()
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.formparsers import MultiPartException, MultiPartParser
    from starlette.requests import ClientDisconnect

    from . import __version__

    max_pixels = colorizer.max_pixels if max_pixels is None else max_pixels
    work = PhotoWork(colorizer, max_pixels)
    capacity = queue_size + workers * max_batch
    state = {"in_flight": 0, "rejected": 0}
    static = Path(str(resources.files("jkspnet").joinpath("static")))

    @asynccontextmanager
    async def lifespan(app):
        yield
        app.state.batcher.close()
        app.state.pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="JKSPNet",
        version=__version__,
        description="Colorize black-and-white photos with JKSPNet. Everything runs locally.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's docs pages load scripts from a CDN; nothing here does
        redoc_url=None,
    )
    app.state.colorizer = colorizer
    app.state.batcher = Batcher(
        colorizer, workers=workers, max_batch=max_batch, wait_s=batch_wait_s
    )
    app.state.pool = ThreadPoolExecutor(
        max_workers=prep_threads or min(4, os.cpu_count() or 1), thread_name_prefix="jkspnet-io"
    )
    app.state.limits = {"capacity": capacity, "max_bytes": max_bytes, "max_pixels": max_pixels}
    app.state.counters = state

    def error(status: int, message: str, headers: dict[str, str] | None = None):
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error(exc.status, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return error(422, f"{where}: {first.get('msg', 'invalid request')}".strip(": "))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):  # never a stack trace
        return error(500, "internal error while colorizing; see the server's log")

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(static / "index.html", media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    async def asset(name: str):
        types = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
        path = static / name
        if "/" in name or name.startswith(".") or path.suffix not in types or not path.is_file():
            return error(404, "not found")
        return FileResponse(path, media_type=types[path.suffix])

    @app.get("/api/health", summary="Which model and weights serve requests")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": colorizer.config.architecture,
            "version": __version__,
            "weights_sha256": colorizer.config.sha256,
            "device": str(colorizer.device),
            "precision": colorizer.precision,
            "size": colorizer.config.size,
            "temperature": colorizer.config.temperature,
            "max_bytes": max_bytes,
            "max_pixels": max_pixels,
        }

    async def read_form(request: Request):
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "multipart/form-data":
            raise ApiError(415, "send the photo as multipart/form-data, in a field named 'image'")
        limit = max_bytes + _ENVELOPE_BYTES
        seen = 0

        async def counted():
            nonlocal seen
            async for chunk in request.stream():
                seen += len(chunk)
                if seen > limit:
                    raise _TooLarge
                yield chunk

        parser = MultiPartParser(
            request.headers, counted(), max_files=1, max_fields=8, max_part_size=4096
        )
        try:
            return await parser.parse()
        except _TooLarge:
            raise ApiError(
                413, f"upload is over this server's limit of {max_bytes:,} bytes"
            ) from None
        except MultiPartException as exc:
            raise ApiError(400, f"malformed upload: {exc.message}") from None
        except ClientDisconnect:
            raise ApiError(400, "the upload was interrupted") from None

    @app.post(
        "/api/colorize",
        summary="Colorize one photo",
        description="Multipart field `image` (a photo); optional `temperature` and `size`. "
        "Returns a PNG of exactly the photo's dimensions (with its alpha, if it had one). "
        'Errors are JSON `{"error": "..."}`.',
        response_class=Response,
        openapi_extra=_COLORIZE_OPENAPI,
    )
    async def colorize(request: Request):
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise ApiError(400, "invalid Content-Length")
            if int(declared) > max_bytes + _ENVELOPE_BYTES:
                raise ApiError(413, f"upload is over this server's limit of {max_bytes:,} bytes")
        if state["in_flight"] >= capacity:
            state["rejected"] += 1
            return error(503, "the server is busy; try again shortly", {"Retry-After": "1"})
        state["in_flight"] += 1
        form = None
        try:
            form = await read_form(request)
            upload = form.get("image")
            if not isinstance(upload, UploadFile):
                raise ApiError(400, "no photo: send it as a file in the form field 'image'")
            if _is_not_image(upload.content_type):
                raise ApiError(415, f"{upload.content_type} is not an image type; send a photo")
            if upload.size is not None and upload.size > max_bytes:
                raise ApiError(413, f"photo is over this server's limit of {max_bytes:,} bytes")
            if not upload.size:
                raise ApiError(400, "not a usable photo: empty file (0 bytes)")
            temperature = _parse_temperature(form.get("temperature"), colorizer.config.temperature)
            size = _parse_size(form.get("size"), colorizer.config.size)
            loop = asyncio.get_running_loop()
            prepared = await loop.run_in_executor(app.state.pool, work.prepare, upload.file, size)
            await form.close()
            form = None
            ab = await asyncio.wrap_future(
                app.state.batcher.submit(prepared.network_input, temperature)
            )
            png = await loop.run_in_executor(app.state.pool, work.finish, prepared, ab)
            headers = {"Cache-Control": "no-store"}
            if prepared.note:
                headers[NOTE_HEADER] = prepared.note
            return Response(png, media_type="image/png", headers=headers)
        finally:
            state["in_flight"] -= 1
            if form is not None:
                await form.close()

    return app


__all__ = ["ApiError", "Batcher", "create_app"]
