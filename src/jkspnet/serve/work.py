"""The per-photo steps around the network that the server runs in its thread pool: decoding an
upload, preparing it, finishing it, and encoding the PNG."""

import dataclasses
import io
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import JKSPNetError, PhotoError, PhotoTooLargeError
from ..media.hints import Hint, HintError, Stroke, check_hints
from .api import ApiError, GuidedOptions, one_line, plain_reason

if TYPE_CHECKING:  # pragma: no cover
    from ..pipeline.colorizer import Colorizer


class PhotoWork:
    """The per-photo steps around the network, run in worker threads."""

    def __init__(self, colorizer: "Colorizer", max_pixels: int) -> None:
        self.colorizer = colorizer
        self.max_pixels = max_pixels

    def load(self, upload_file: Any, what: str = "photo"):
        """Decode an uploaded (spooled) file; a bad one is a 400 (413 past the pixel limit)."""
        import shutil

        from ..media.photos import load_photo

        with tempfile.TemporaryDirectory(prefix="jkspnet-") as folder:
            path = Path(folder) / "upload"
            upload_file.seek(0)
            with open(path, "wb") as stream:
                shutil.copyfileobj(upload_file, stream, 1 << 20)
            try:  # the pixel limit is checked from the header, before decoding
                photo = load_photo(path, max_pixels=self.max_pixels)
            except PhotoTooLargeError as error:
                raise ApiError(413, f"{what} too large: {error.reason}") from None
            except PhotoError as error:
                raise ApiError(400, f"not a usable {what}: {plain_reason(error.reason)}") from None
        return dataclasses.replace(photo, source=what)  # messages name it, not a server path

    def prepare(self, upload_file: Any, size: int, preview: int | None = None):
        """Decode an uploaded file (shrunk to ``preview`` pixels a side, if given) and compute the
        network input at ``size``: (prepared, the photo's own size)."""
        photo = self.load(upload_file)
        small, _, _ = shrunk(photo, preview)
        return self.colorizer.prepare(small, size), photo.size

    def guided(self, upload_file: Any, reference_file: Any, options: "GuidedOptions"):
        """Colorize with hints and/or a reference photo, whole, or at ``options.preview``
        pixels a side with the hints scaled to it: (PNG, note, the photo's own size)."""
        photo = self.load(upload_file)
        reference = self.load(reference_file, "reference photo") if reference_file else None
        try:
            check_hints(options.hints, *photo.size)  # in the photo's own pixels, whatever is sent
            small, sx, sy = shrunk(photo, options.preview)
            image = self.colorizer.colorize(
                small,
                options.temperature,
                hints=scaled(options.hints, sx, sy) or None,
                reference=reference,
                reference_strength=options.reference_strength,
            )
        except HintError as error:  # a hint outside the photo: named as the field is
            raise ApiError(422, f"hints: {one_line(str(error))}") from None
        except JKSPNetError as error:  # a grey reference: the request's, and what to do
            message = one_line(str(error))
            if reference is not None and "no colour" in message:
                message += "; choose a colour photo as the reference, or remove it"
            raise ApiError(422, message) from None
        return encode_png(image), photo.note, photo.size

    def uncertainty(self, upload_file: Any) -> bytes:
        """The uncertainty map of an uploaded photo, as an 8-bit grey PNG of its size."""
        return encode_png(self.colorizer.uncertainty(self.load(upload_file)))

    def suggest(
        self, upload_file: Any, x: float, y: float, preview: int | None = None
    ) -> dict[str, Any]:
        """The network's distinct likely colours at (x, y) of an uploaded photo, as JSON; on a
        copy ``preview`` pixels a side if given (the network sees a small copy anyway, so the
        page's editing need not wait on a 12 MP photo's full-resolution L)."""
        from ..pipeline.suggest import check_point

        photo = self.load(upload_file)
        try:
            check_point(x, y, *photo.size)  # in the photo's own pixels
            small, sx, sy = shrunk(photo, preview)
            suggestions = self.colorizer.suggest(small, x * sx, y * sy)
        except JKSPNetError as error:  # a point outside the photo: the request's mistake
            raise ApiError(422, one_line(str(error))) from None
        return {"x": x, "y": y, "suggestions": [one.to_json() for one in suggestions]}

    def finish(self, prepared, ab) -> bytes:
        return encode_png(self.colorizer.finish(prepared, ab))


def shrunk(photo, longest: int | None):
    """The photo at most ``longest`` pixels a side, and its scale (x, y); as it is if smaller
    already, or if ``longest`` is None."""
    width, height = photo.size
    if longest is None or max(width, height) <= longest:
        return photo, 1.0, 1.0
    from PIL import Image

    scale = longest / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))

    def resized(array):
        return np.asarray(Image.fromarray(array).resize(size, Image.Resampling.BILINEAR))

    alpha = None if photo.alpha is None else resized(photo.alpha)
    small = dataclasses.replace(photo, pixels=resized(photo.pixels), alpha=alpha)
    return small, size[0] / width, size[1] / height


def scaled(hints: list, sx: float, sy: float) -> list:
    """Hints in a photo's pixels moved to a copy of it scaled by (sx, sy): sizes by sx."""
    if sx == sy == 1.0:
        return hints
    out: list = []
    for hint in hints:
        if isinstance(hint, Stroke):
            points = tuple((x * sx, y * sy) for x, y in hint.points)
            out.append(Stroke(points, hint.color, hint.width * sx))
        else:
            radius = None if hint.radius is None else hint.radius * sx
            out.append(Hint(hint.x * sx, hint.y * sy, hint.color, radius))
    return out


def encode_png(image) -> bytes:
    """PNG, fast: zlib level 1 writes a 2 MP photo in 0.5 s where level 3 took 0.8 s, for about
    8 % more bytes, which a local page's re-render after each colour point is glad to trade."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


__all__ = ["PhotoWork", "encode_png", "scaled", "shrunk"]
