"""The HTTP API's words: its errors, the parsing of its form fields, and its OpenAPI schema.

FastAPI is not imported here."""

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import JKSPNetError
from ..pipeline.spec import (
    check_size,
    check_temperature,
    read_number,
)

MAX_SIZE = 256
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.01, 10.0
MAX_REFERENCE_STRENGTH = 4.0
NOTE_HEADER = "X-JKSPNet-Note"  # e.g. that an animated GIF's first frame was colorized
SIZE_HEADER = "X-JKSPNet-Photo-Size"  # the photo's own WxH (as displayed), e.g. of a preview's
MIN_PREVIEW = 64
_NOT_IMAGE_TYPES = ("text/", "application/pdf", "application/json", "application/zip")


class ApiError(Exception):
    """An error the API answers with ``{"error": message}`` and the given status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


@dataclass
class GuidedOptions:
    """What steers one colorization beyond its temperature."""

    temperature: float
    hints: list = field(default_factory=list)
    reference_strength: float = 1.0
    preview: int | None = None  # the result's longest side while a page edits (None: full)


def one_line(message: str) -> str:
    return " ".join(message.split())[:300]


# A decoder's own words ("image file is truncated (19 bytes not processed)", a class name)
# mean nothing to someone who uploaded a photo: keep ours, drop theirs.
_DECODER_DETAIL = re.compile(r"^(truncated or corrupt image|cannot decode) \(.*\)$", re.S)


_PLAIN_DECODER_REASONS = {
    "truncated or corrupt image": "truncated or corrupt image: the file ends early or is "
    "damaged; try the original file again",
    "cannot decode": "cannot decode this file: it may be damaged; try the original file again",
}


def plain_reason(reason: str) -> str:
    """A photo's failure reason as a person reads it: without the decoder's wording."""
    match = _DECODER_DETAIL.match(reason)
    return _PLAIN_DECODER_REASONS[match.group(1)] if match else reason


def parse_number(
    text: Any, default: float, name: str, check: Callable[[float], float], low: float, high: float
) -> float:
    """A form field's number: read and checked as everywhere (:mod:`jkspnet.pipeline.spec`),
    then held to this server's limits; a bad one is a 422 that names the field."""
    if text is None or text == "":
        return default
    try:
        value = check(read_number(text, name))
    except JKSPNetError as error:
        message = one_line(str(error))
        raise ApiError(422, message if name in message else f"{name}: {message}") from None
    if not low <= value <= high:
        raise ApiError(422, f"{name} must be from {low} to {high} on this server, got {value}")
    return value


def parse_temperature(text: Any, default: float) -> float:
    return parse_number(
        text, default, "temperature", check_temperature, MIN_TEMPERATURE, MAX_TEMPERATURE
    )


def parse_size(text: Any, default: int) -> int:
    if text is None or text == "":
        return default
    try:
        value = check_size(int(read_number(text, "size", whole=True)))
    except JKSPNetError as error:
        raise ApiError(422, one_line(str(error))) from None
    if value > MAX_SIZE:
        raise ApiError(422, f"size must be at most {MAX_SIZE} on this server, got {value}")
    return value


def parse_preview(text: Any) -> int | None:
    """The ``preview`` field: the longest side, in pixels, of a smaller and quicker result for a
    page to show while a person edits (hints stay in the photo's own pixels); absent: full
    size. Issue 21: a 12 MP re-render spent most of its 3 s sending and decoding a 5 MB PNG."""
    if text is None or text == "":
        return None
    try:
        value = int(read_number(text, "preview", whole=True))
    except JKSPNetError as error:
        raise ApiError(422, one_line(str(error))) from None
    if value < MIN_PREVIEW:
        raise ApiError(422, f"preview must be at least {MIN_PREVIEW} pixels, got {value}")
    return value


def parse_hints_field(text: Any) -> list:
    """The ``hints`` field (a JSON list of points) as Hints; absent or empty is none."""
    if text is None or not str(text).strip():
        return []
    from ..media.hints import parse_hints

    try:
        return parse_hints(str(text))
    except JKSPNetError as error:
        raise ApiError(422, f"hints: {one_line(str(error))}") from None


def is_not_image(content_type: str | None) -> bool:
    kind = (content_type or "").split(";")[0].strip().lower()
    if not kind or kind == "application/octet-stream" or kind.startswith("image/"):
        return False
    return kind.startswith(_NOT_IMAGE_TYPES) or kind.startswith(("audio/", "video/"))


_ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}


_IMAGE_FIELD = {
    "type": "string",
    "format": "binary",
    "description": "the photo (JPEG, PNG, WebP, TIFF, BMP, GIF...)",
}


_COLORIZE_FIELDS = {
    "image": _IMAGE_FIELD,
    "temperature": {
        "type": "number",
        "minimum": MIN_TEMPERATURE,
        "maximum": MAX_TEMPERATURE,
        "description": "colour temperature T: lower is more vivid (default: the weights')",
    },
    "size": {
        "type": "integer",
        "minimum": 8,
        "maximum": MAX_SIZE,
        "multipleOf": 8,
        "description": "the network's input side (default: the weights'); not with hints "
        "or a reference photo",
    },
    "hints": {
        "type": "string",
        "description": "colour points, a JSON list of "
        '`{"x": 120, "y": 340, "color": "#8a3b2a"}` (optional `"radius"`), in the photo\'s '
        "own pixels as displayed (after its EXIF orientation). Each colour spreads over the "
        "region it is in and stops at its edges. A brush stroke is "
        '`{"points": [[x, y], ...], "color": "#rrggbb", "width": 12}` in the same list.',
    },
    "reference": {
        "type": "string",
        "format": "binary",
        "description": "a colour photo of a similar scene, whose palette the result takes",
    },
    "reference_strength": {
        "type": "number",
        "minimum": 0,
        "maximum": MAX_REFERENCE_STRENGTH,
        "description": "how much the reference's palette counts (default 1)",
    },
    "preview": {
        "type": "integer",
        "minimum": MIN_PREVIEW,
        "description": "a quicker, smaller result while editing: its longest side in pixels "
        "(hints stay in the photo's own pixels; the header " + SIZE_HEADER + " gives the "
        "photo's size). Leave empty for the full-size result.",
        "example": 1600,
    },
}


def _photo_operation(
    fields: dict[str, Any], result: str, errors: tuple[tuple[int, str], ...]
) -> dict[str, Any]:
    """OpenAPI for a multipart POST of a photo that answers a PNG (or a JSON error)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "required": ["image"], "properties": fields}
                }
            },
        },
        "responses": {
            "200": {
                "description": result,
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
                    (408, "the upload took longer than the server's time limit"),
                    (415, "the upload's declared type is not an image"),
                    *errors,
                    (429, "too many uploads at once from this address; try again"),
                    (503, "the work queue is full (requests or pixels); try again"),
                )
            },
        },
    }


def colorize_openapi(size: int, temperature: float) -> dict[str, Any]:
    """OpenAPI for /api/colorize, whose examples work on any photo as /docs' "Try it out"
    pre-fills them: the served weights' own size and temperature (a size of their own cannot be
    combined with hints), a hint at pixel (0, 0), which every photo has, and strength 1."""
    fields = {name: dict(spec) for name, spec in _COLORIZE_FIELDS.items()}
    fields["size"]["example"] = size
    fields["temperature"]["example"] = temperature
    fields["hints"]["example"] = '[{"x": 0, "y": 0, "color": "#8a3b2a"}]'
    fields["reference_strength"]["example"] = 1
    return _photo_operation(
        fields,
        "the colorized photo, PNG, of exactly the input's dimensions",
        ((422, "bad temperature, size, hints (malformed, a point outside the photo) or strength"),),
    )


UNCERTAINTY_OPENAPI = _photo_operation(
    {"image": _IMAGE_FIELD},
    "where the network is guessing: an 8-bit grey PNG of the photo's dimensions, the "
    "normalised entropy of its colour distribution per pixel (255: no idea, 0: sure)",
    (),
)


def parse_coordinate(text: Any, name: str) -> float:
    """A required pixel coordinate (``x`` or ``y``) of a form, as a finite number, or a 422."""
    if text is None or not str(text).strip():
        raise ApiError(
            422, f"suggest: no {name}: send the point's pixel {name} in the field {name!r}"
        )
    try:
        value = float(str(text))
    except ValueError:
        raise ApiError(422, f"suggest: {name} must be a number, got {str(text)[:40]!r}") from None
    if not math.isfinite(value):
        raise ApiError(422, f"suggest: {name} must be a finite number, got {value}")
    return value


_SUGGESTIONS_SCHEMA = {
    "type": "object",
    "properties": {
        "x": {"type": "number"},
        "y": {"type": "number"},
        "suggestions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "color": {"type": "string", "example": "#8a3b2a"},
                    "probability": {"type": "number", "example": 0.42},
                },
            },
        },
    },
}

SUGGEST_OPENAPI = _photo_operation(
    {
        "image": _IMAGE_FIELD,
        "x": {"type": "number", "description": "the point's column, pixels from the left"},
        "y": {"type": "number", "description": "the point's row, pixels from the top"},
        "preview": {
            "type": "integer",
            "minimum": MIN_PREVIEW,
            "description": "look on a copy this many pixels a side (quicker on a large photo; "
            "x and y stay in the photo's own pixels)",
            "example": 1600,
        },
    },
    "",
    ((422, "x or y missing, not a number, or outside the photo"),),
)
SUGGEST_OPENAPI["requestBody"]["content"]["multipart/form-data"]["schema"]["required"] = [
    "image",
    "x",
    "y",
]
SUGGEST_OPENAPI["responses"]["200"] = {
    "description": "3 to 6 distinct colours the network finds likely at the point, most "
    "likely first, each with the share of its colour distribution there",
    "content": {"application/json": {"schema": _SUGGESTIONS_SCHEMA}},
}


def json_errors_protocol() -> type:
    """uvicorn's h11 HTTP protocol, answering what it refuses before the app sees a request (a
    malformed request line or header, a bogus ``Content-Length``) with a JSON error as the app
    does, ``{"error": "..."}``, instead of uvicorn's plain text."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class JsonErrorsProtocol(H11Protocol):
        def send_400_response(self, msg: str) -> None:
            body = json.dumps({"error": f"malformed HTTP request: {msg.rstrip('.')}"}).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ]
            for event in (
                h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                h11.Data(data=body),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event))
            self.transport.close()

    return JsonErrorsProtocol


__all__ = [
    "ApiError",
    "GuidedOptions",
    "json_errors_protocol",
    "one_line",
    "parse_coordinate",
    "parse_preview",
    "plain_reason",
]
