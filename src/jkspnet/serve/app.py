"""``jkspnet serve``: a small local web app and HTTP API that colorizes photos.

The model is loaded once. A request's upload is read first: it must arrive within
``upload_timeout_s`` (else 408), one client address may send at most ``uploads_per_client`` at
once (else 429), and uploads are refused by their declared size before the body is read, and
counted while it is read. Only once its body has arrived is a request admitted to the work: while
fewer than ``queue`` requests wait beside those being worked on, and while the photos admitted
hold fewer than ``max_pixels_in_flight`` pixels (their headers' sizes; a bigger photo only
alone), else 503; so slow clients cannot lock others out, and memory stays bounded under load
whatever the photos' sizes. Photos are refused by the pixel count their header declares, before
decoding. Decoding, preparing and PNG encoding
run in a small thread pool; the network runs in ``workers`` batcher threads, each of which groups
the photos that wait within a few milliseconds (same temperature and size) into one forward pass.
A request with colour hints or a reference photo, and an uncertainty map, run whole in the thread
pool (their work needs the network's full distribution, not just its ab).

FastAPI, uvicorn and python-multipart (the ``[web]`` extra) are imported only when the server is
built, so the rest of the command line works without them.
"""

import asyncio
import io
import os
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MissingExtraError, require_extra
from ..pipeline.spec import check_reference_strength
from .api import (
    MAX_REFERENCE_STRENGTH,
    NOTE_HEADER,
    SIZE_HEADER,
    SUGGEST_OPENAPI,
    UNCERTAINTY_OPENAPI,
    ApiError,
    GuidedOptions,
    colorize_openapi,
    is_not_image,
    parse_coordinate,
    parse_hints_field,
    parse_number,
    parse_preview,
    parse_size,
    parse_temperature,
)
from .batcher import Batcher
from .work import PhotoWork

if TYPE_CHECKING:  # pragma: no cover
    from ..pipeline.colorizer import Colorizer

DEFAULT_MAX_BYTES = 25_000_000
DEFAULT_SERVER_MAX_PIXELS = 50_000_000
DEFAULT_PIXELS_IN_FLIGHT = 64_000_000
"""Pixels of the photos admitted at once. A photo's work peaks at about 27 bytes a pixel
(benchmarks/bench_photo_memory.py), so this bounds the work's memory to about 1.7 GB."""
DEFAULT_UPLOAD_TIMEOUT_S = 60.0
DEFAULT_UPLOADS_PER_CLIENT = 8
_FIELD_BYTES = 256 * 1024  # the largest form field (the hints' JSON)
_ENVELOPE_BYTES = _FIELD_BYTES + 64 * 1024  # room for the boundaries and the form fields


class _TooLarge(Exception):
    """Raised from inside the body stream when an upload passes its byte limit."""


def require_web() -> None:
    """FastAPI, python-multipart and uvicorn, or one line naming the web extra."""
    require_extra("web", "jkspnet serve needs the web extra", "fastapi", "multipart", "uvicorn")


class _TooSlow(Exception):
    """Raised from inside the body stream when an upload passes its time limit."""


def _header_pixels(upload: Any) -> int:
    """Pixels an uploaded photo's header declares (0 if it has none that PIL reads: its load
    will say why), read from the spooled file without decoding."""
    from ..media.photos import spooled_pixels

    return spooled_pixels(upload.file)


def _favicon() -> bytes:
    """A 32x32 icon, drawn here: grey on the left, colour on the right, as the app does."""
    from PIL import Image, ImageDraw

    icon = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    draw = ImageDraw.Draw(icon)
    draw.rounded_rectangle((1, 1, 30, 30), radius=7, fill=(181, 83, 42, 255))
    draw.rectangle((2, 2, 15, 29), fill=(140, 140, 140, 255))
    draw.rounded_rectangle((1, 1, 30, 30), radius=7, outline=(60, 30, 20, 255), width=2)
    buffer = io.BytesIO()
    icon.save(buffer, format="ICO", sizes=[(16, 16), (32, 32)])
    return buffer.getvalue()


def _docs_assets() -> Path | None:
    """Swagger UI's files, bundled by fastapi-offline (the web extra), so /docs needs no CDN."""
    try:
        folder = Path(str(resources.files("fastapi_offline").joinpath("static")))
    except ModuleNotFoundError:
        return None
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


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
    max_pixels_in_flight: int = DEFAULT_PIXELS_IN_FLIGHT,
    upload_timeout_s: float = DEFAULT_UPLOAD_TIMEOUT_S,
    uploads_per_client: int = DEFAULT_UPLOADS_PER_CLIENT,
):
    """The FastAPI app: the page at ``/``, ``POST /api/colorize``, ``POST /api/uncertainty``,
    ``POST /api/suggest``, ``GET /api/health`` and the API's docs at ``/docs``. Admission: see
    the module docstring."""
    require_web()
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import FileResponse, JSONResponse, Response
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.formparsers import MultiPartException, MultiPartParser
    from starlette.requests import ClientDisconnect

    from .. import __version__

    max_pixels = colorizer.max_pixels if max_pixels is None else max_pixels
    work = PhotoWork(colorizer, max_pixels)
    capacity = queue_size + workers * max_batch
    state = {"in_flight": 0, "pixels_in_flight": 0, "rejected": 0, "uploading": 0}
    uploading: dict[str, int] = {}  # uploads being received, by client address
    static = Path(str(resources.files("jkspnet").joinpath("static")))
    docs_assets = _docs_assets()
    favicon = _favicon()
    # a photo and a reference photo, each up to max_bytes
    request_limit = 2 * max_bytes + _ENVELOPE_BYTES

    @asynccontextmanager
    async def lifespan(app):
        yield
        app.state.batcher.close()
        app.state.pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="JKSPNet",
        version=__version__,
        description="Colorize black-and-white photos with JKSPNet, steered by colour points "
        "and a reference photo if you like. Everything runs locally.",
        lifespan=lifespan,
        docs_url=None,  # served below from local files: FastAPI's own pages load from a CDN
        redoc_url=None,
    )
    app.state.colorizer = colorizer
    app.state.batcher = Batcher(
        colorizer, workers=workers, max_batch=max_batch, wait_s=batch_wait_s
    )
    app.state.pool = ThreadPoolExecutor(
        max_workers=prep_threads or min(4, os.cpu_count() or 1), thread_name_prefix="jkspnet-io"
    )
    app.state.limits = {
        "capacity": capacity,
        "max_bytes": max_bytes,
        "max_pixels": max_pixels,
        "max_pixels_in_flight": max_pixels_in_flight,
        "upload_timeout_s": upload_timeout_s,
        "uploads_per_client": uploads_per_client,
    }
    app.state.counters = state

    def error(status: int, message: str, headers: dict[str, str] | None = None):
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error(exc.status, exc.message, exc.headers)

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

    types = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}

    def asset_response(folder: Path | None, name: str):
        path = None if folder is None else folder / name
        if path is None or "/" in name or name.startswith(".") or path.suffix not in types:
            return error(404, "not found")
        if not path.is_file():
            return error(404, "not found")
        return FileResponse(path, media_type=types[path.suffix])

    @app.get("/static/{name}", include_in_schema=False)
    async def asset(name: str):
        return asset_response(static, name)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon_ico():
        return Response(
            favicon, media_type="image/x-icon", headers={"Cache-Control": "max-age=86400"}
        )

    @app.get("/docs", include_in_schema=False)
    async def docs():
        if docs_assets is None:
            return error(404, str(MissingExtraError("web", "the API's docs need the web extra")))
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="JKSPNet API",
            swagger_js_url="/docs/swagger-ui-bundle.js",
            swagger_css_url="/docs/swagger-ui.css",
            swagger_favicon_url="/favicon.ico",
            swagger_ui_parameters={"validatorUrl": None},  # else it asks swagger.io
        )

    @app.get("/docs/{name}", include_in_schema=False)
    async def docs_asset(name: str):
        return asset_response(docs_assets, name)

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
        seen = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + upload_timeout_s

        async def counted():
            nonlocal seen
            chunks = request.stream().__aiter__()
            while True:
                try:
                    async with asyncio.timeout(max(deadline - loop.time(), 0.0)):
                        chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise _TooSlow from None
                seen += len(chunk)
                if seen > request_limit:
                    raise _TooLarge
                yield chunk

        parser = MultiPartParser(
            request.headers, counted(), max_files=2, max_fields=8, max_part_size=_FIELD_BYTES
        )
        try:
            return await parser.parse()
        except _TooLarge:
            raise ApiError(
                413, f"upload is over this server's limit of {max_bytes:,} bytes a photo"
            ) from None
        except _TooSlow:
            raise ApiError(
                408,
                f"the upload took longer than this server's limit of {upload_timeout_s:g} s; "
                "send it again",
                {"Connection": "close"},
            ) from None
        except MultiPartException as exc:
            raise ApiError(400, f"malformed upload: {exc.message}") from None
        except ClientDisconnect:
            raise ApiError(400, "the upload was interrupted") from None

    def photo_field(form, name: str, what: str, required: bool = True):
        """The uploaded file in field ``name``, checked; None if optional and absent."""
        upload = form.get(name)
        empty = upload in (None, "") or (isinstance(upload, UploadFile) and not upload.filename)
        if empty and not required:  # a form's empty file field (Swagger's) counts as absent
            return None
        if not isinstance(upload, UploadFile):
            raise ApiError(400, f"no {what}: send it as a file in the form field '{name}'")
        if is_not_image(upload.content_type):
            raise ApiError(
                415,
                f"that file is not a picture (it says it is {upload.content_type}); "
                f"choose a {what}: JPEG, PNG, WebP, TIFF, BMP or GIF",
            )
        if upload.size is not None and upload.size > max_bytes:
            raise ApiError(413, f"{what} is over this server's limit of {max_bytes:,} bytes")
        if not upload.size:
            raise ApiError(400, f"not a usable {what}: empty file (0 bytes)")
        return upload

    async def received(request: Request):
        """The request's form once its whole body has arrived: within the time limit, and
        with at most ``uploads_per_client`` uploads from one address arriving at once."""
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise ApiError(400, "invalid Content-Length")
            if int(declared) > request_limit:
                raise ApiError(413, f"upload is over this server's limit of {max_bytes:,} bytes")
        client = request.client.host if request.client else ""
        if uploading.get(client, 0) >= uploads_per_client:
            raise ApiError(
                429,
                f"more than {uploads_per_client} uploads at once from this address; "
                "try again shortly",
                {"Retry-After": "1"},
            )
        uploading[client] = uploading.get(client, 0) + 1
        state["uploading"] += 1
        try:
            return await read_form(request)
        finally:
            state["uploading"] -= 1
            uploading[client] -= 1
            if not uploading[client]:
                del uploading[client]

    @asynccontextmanager
    async def admitted(request: Request):
        """The request's form, once it has arrived, if the server has room for its work (else
        503); the room is always given back."""
        form = await received(request)
        try:
            pixels = 0
            for name in ("image", "reference"):
                upload = form.get(name)
                if isinstance(upload, UploadFile):
                    declared = _header_pixels(upload)
                    pixels += declared if declared <= max_pixels else 0  # refused unread
            busy = state["in_flight"] >= capacity or (
                state["in_flight"] and state["pixels_in_flight"] + pixels > max_pixels_in_flight
            )
            if busy:
                state["rejected"] += 1
                raise ApiError(503, "the server is busy; try again shortly", {"Retry-After": "1"})
            state["in_flight"] += 1
            state["pixels_in_flight"] += pixels
            try:
                yield form
            finally:
                state["in_flight"] -= 1
                state["pixels_in_flight"] -= pixels
        finally:
            await form.close()

    def png_response(png: bytes, note: str | None = None, size: tuple[int, int] | None = None):
        headers = {"Cache-Control": "no-store"}
        if size:
            headers[SIZE_HEADER] = "{}x{}".format(*size)
        if note:
            headers[NOTE_HEADER] = note
        return Response(png, media_type="image/png", headers=headers)

    @app.post(
        "/api/colorize",
        summary="Colorize one photo",
        description="Multipart field `image` (a photo); optional `temperature` and `size`; "
        "optional `hints` (colour points, JSON) and `reference` (a colour photo whose palette "
        "to take) with `reference_strength`. Returns a PNG of exactly the photo's dimensions "
        '(with its alpha, if it had one). Errors are JSON `{"error": "..."}`.',
        response_class=Response,
        openapi_extra=colorize_openapi(colorizer.config.size, colorizer.config.temperature),
    )
    async def colorize(request: Request):
        loop = asyncio.get_running_loop()
        async with admitted(request) as form:
            upload = photo_field(form, "image", "photo")
            reference = photo_field(form, "reference", "reference photo", required=False)
            temperature = parse_temperature(form.get("temperature"), colorizer.config.temperature)
            size = parse_size(form.get("size"), colorizer.config.size)
            options = GuidedOptions(
                temperature,
                parse_hints_field(form.get("hints")),
                parse_number(
                    form.get("reference_strength"),
                    1.0,
                    "reference_strength",
                    check_reference_strength,
                    0.0,
                    MAX_REFERENCE_STRENGTH,
                ),
                preview=parse_preview(form.get("preview")),
            )
            guided = bool(options.hints) or reference is not None
            if guided and size != colorizer.config.size:
                raise ApiError(422, "size cannot be combined with hints or a reference photo")
            if guided:
                png, note, full = await loop.run_in_executor(
                    app.state.pool, work.guided, upload.file, reference and reference.file, options
                )
                return png_response(png, note, full)
            prepared, full = await loop.run_in_executor(
                app.state.pool, work.prepare, upload.file, size, options.preview
            )
            await upload.close()
            ab = await asyncio.wrap_future(
                app.state.batcher.submit(prepared.network_input, temperature)
            )
            png = await loop.run_in_executor(app.state.pool, work.finish, prepared, ab)
            return png_response(png, prepared.note, full)

    @app.post(
        "/api/uncertainty",
        summary="Where the network is guessing",
        description="Multipart field `image` (a photo). Returns an 8-bit grey PNG of the "
        "photo's dimensions: bright where the network's colour distribution is flat (it is "
        "guessing; a colour point helps most there), dark where it is sure.",
        response_class=Response,
        openapi_extra=UNCERTAINTY_OPENAPI,
    )
    async def uncertainty(request: Request):
        async with admitted(request) as form:
            upload = photo_field(form, "image", "photo")
            png = await asyncio.get_running_loop().run_in_executor(
                app.state.pool, work.uncertainty, upload.file
            )
            return png_response(png)

    @app.post(
        "/api/suggest",
        summary="Colours the network finds likely at a point",
        description="Multipart fields `image` (a photo), `x` and `y` (a pixel of the photo as "
        "displayed). Returns JSON: 3 to 6 distinct colours the network finds likely there "
        "(the modes of its colour distribution), most likely first, each with its "
        'probability: `{"x": .., "y": .., "suggestions": [{"color": "#rrggbb", '
        '"probability": 0.42}, ...]}`. A point outside the photo is a 422.',
        openapi_extra=SUGGEST_OPENAPI,
    )
    async def suggest(request: Request):
        async with admitted(request) as form:
            upload = photo_field(form, "image", "photo")
            x, y = parse_coordinate(form.get("x"), "x"), parse_coordinate(form.get("y"), "y")
            preview = parse_preview(form.get("preview"))
            answer = await asyncio.get_running_loop().run_in_executor(
                app.state.pool, work.suggest, upload.file, x, y, preview
            )
            return JSONResponse(answer, headers={"Cache-Control": "no-store"})

    return app


__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_PIXELS_IN_FLIGHT",
    "DEFAULT_SERVER_MAX_PIXELS",
    "DEFAULT_UPLOADS_PER_CLIENT",
    "DEFAULT_UPLOAD_TIMEOUT_S",
    "create_app",
]
