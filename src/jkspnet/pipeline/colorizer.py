"""The colour pipeline: a photo of any size in, a colour photo of the same size out.

The network sees only a small square (``size`` x ``size``, 128 by default) of the photo's L
channel, resized with antialiasing. Its ab prediction is upsampled bilinearly to the full
resolution and joined to the photo's own, full-resolution L, so every detail of the original
tones survives. Full-resolution work runs in bands of rows so memory stays bounded for very large
photos, on the model's device.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..colour.decoding import aspect_shape, confident_ab
from ..colour.spaces import lab_to_srgb8, luminance_to_l, normalize_l, srgb_to_linear
from ..colour.upsample import apply_coefficients, check_upsample, grid_shape, guided_coefficients
from ..errors import JKSPNetError, WeightsError
from ..media.hints import ABTarget, Hint
from ..media.photos import DEFAULT_MAX_PIXELS, Photo, load_photo
from ..nn.inference import InferenceNet
from ..nn.model import JKSPNet
from ..nn.weights import ModelConfig, bundled_weights, load_into, load_weights, save_weights
from .checks import (
    check_confidence,
    check_reference_strength,
    check_shape,
    check_size,
    check_temperature,
    resolve_device,
    resolve_precision,
)

PhotoInput = str | os.PathLike[str] | Image.Image
_BAND_PIXELS = 1 << 20  # full-resolution work in bands of about a million pixels


def _version_of(tensor: torch.Tensor) -> tuple[int, int]:
    """Where a tensor's data lives and how often it was changed in place (tensors made under
    inference_mode count no changes)."""
    return tensor.data_ptr(), 0 if tensor.is_inference() else tensor._version


def _bands(height: int, width: int) -> list[tuple[int, int]]:
    rows = max(1, _BAND_PIXELS // max(width, 1))
    return [(top, min(top + rows, height)) for top in range(0, height, rows)]


def _per_shape(
    tensors: Sequence[torch.Tensor], predict: Callable[[torch.Tensor], list[torch.Tensor]]
) -> list[list[torch.Tensor]]:
    """``predict`` (a batch in, one batch out per temperature) on ``tensors`` stacked by shape,
    its outputs given back per temperature in the order of ``tensors``."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, tensor in enumerate(tensors):
        groups.setdefault(tuple(tensor.shape), []).append(index)
    results: list[list[torch.Tensor | None]] = []
    for indices in groups.values():
        outputs = predict(torch.stack([tensors[i] for i in indices]))
        results = results or [[None] * len(tensors) for _ in outputs]
        for at_t, batch in zip(results, outputs, strict=True):
            for index, one in zip(indices, batch, strict=True):
                at_t[index] = one
    return results  # type: ignore[return-value]


def _row_upsampler(small: torch.Tensor, height: int, width: int):
    """``rows(top, bottom)``: rows top..bottom of ``small`` (C, h, w) bilinearly upsampled to
    (C, height, width), as ``F.interpolate(align_corners=False)`` gives them.

    Bilinear upsampling is separable: all rows are widened once (small), then each band of
    output rows blends the two nearest widened rows, so the full-size result never exists."""
    wide = F.interpolate(small[None].float(), size=(small.shape[-2], width), mode="bilinear")[0]
    src_rows = small.shape[-2]
    scale = src_rows / height

    def rows(top: int, bottom: int) -> torch.Tensor:
        index = torch.arange(top, bottom, device=wide.device, dtype=torch.float32)
        src = ((index + 0.5) * scale - 0.5).clamp(min=0)
        low = src.floor().long().clamp(max=src_rows - 1)
        high = (low + 1).clamp(max=src_rows - 1)
        weight = (src - low).view(1, -1, 1)
        return torch.lerp(wide.index_select(1, low), wide.index_select(1, high), weight)

    return rows


@dataclass
class ABCorrection:
    """What hints add to the network's ab: on the propagation's grid, either the correction
    itself (``guided`` False: the grid is the photo's own size) or the guided filter's
    coefficients A (2 channels) then B (2), applied as A * L + B to the full-resolution L."""

    values: torch.Tensor
    guided: bool


@dataclass
class PreparedPhoto:
    """A photo's full-resolution L (H, W) and the network's input (1, h, w): size x size, or
    short side size at the photo's aspect ratio (``Colorizer.shape``)."""

    lightness: torch.Tensor
    network_input: torch.Tensor
    alpha: np.ndarray | None
    source: str | None = None
    note: str | None = None  # what the user should know (an animated GIF's first frame...)
    metadata: dict[str, object] = field(default_factory=dict)  # EXIF, DPI: see Photo


class Colorizer:
    """Colorizes photos with a JKSPNet.

    >>> colorizer = Colorizer.from_pretrained("weights/")      # doctest: +SKIP
    >>> colorizer.colorize("old.jpg").save("colour.png")        # doctest: +SKIP
    """

    def __init__(
        self,
        model: JKSPNet,
        config: ModelConfig | None = None,
        device: str | torch.device = "auto",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        precision: str = "auto",
        upsample: str = "guided",
        shape: str | None = None,
        confidence: float | None = None,
    ) -> None:
        self.config = config or ModelConfig()
        self.upsample = check_upsample(upsample)
        self.shape = check_shape(self.config.shape if shape is None else shape)
        self.confidence = check_confidence(
            self.config.confidence if confidence is None else confidence
        )
        check_size(self.config.size)
        check_temperature(self.config.temperature)
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.max_pixels = max_pixels
        self.model = model.to(self.device).eval()
        if self.device.type != "mps":
            self.model = self.model.to(memory_format=torch.channels_last)
        self._lut_cache: dict[str, torch.Tensor] = {}
        self._net: InferenceNet | None = None
        self._net_key: tuple = ()
        self._net_lock = threading.Lock()

    # ------------------------------------------------------------------ weights
    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str] | None = None,
        device: str | torch.device = "auto",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        precision: str = "auto",
        upsample: str = "guided",
        shape: str | None = None,
        confidence: float | None = None,
    ) -> Colorizer:
        """Load weights from a ``save_pretrained`` folder or a weights file.

        ``path=None`` takes the default weights bundled with the package, where they ship.
        ``precision``: the network's arithmetic, ``auto`` (see :func:`resolve_precision`),
        ``fp32`` or ``bf16``. ``upsample``: ``guided`` (edge-aware, see
        :mod:`jkspnet.colour.upsample`) or ``bilinear``. ``shape``: the network's input, ``square``
        (the photo squashed to size x size, as trained) or ``aspect`` (short side ``size``, the
        photo's aspect ratio; see :func:`jkspnet.colour.decoding.aspect_shape`). ``confidence``: the
        strength of confidence-aware decoding (:func:`jkspnet.colour.decoding.confident_ab`), 0 =
        off. ``shape`` and ``confidence`` default to the values stored with the weights.
        """
        if path is None:
            path = bundled_weights()
            if path is None:
                raise WeightsError(
                    "no default weights are bundled with this version yet; pass --weights PATH "
                    "(a folder written by save_pretrained or a .safetensors file)"
                )
        state, config = load_weights(path)
        model = JKSPNet()
        load_into(model, state, str(path))
        return cls(
            model,
            config,
            device=device,
            max_pixels=max_pixels,
            precision=precision,
            upsample=upsample,
            shape=shape,
            confidence=confidence,
        )

    def save_pretrained(
        self, folder: str | os.PathLike[str], dtype: torch.dtype = torch.float32
    ) -> Path:
        """Write ``model.safetensors`` and ``config.json``, loadable by :meth:`from_pretrained`."""
        return save_weights(self.model, folder, self.config, dtype=dtype)

    # ----------------------------------------------------------------- pipeline
    def _lut(self, name: str) -> torch.Tensor:
        """Per-byte lookup tables: linear light, and L of a grey byte."""
        if name not in self._lut_cache:
            codes = torch.arange(256, dtype=torch.float64) / 255.0
            linear = srgb_to_linear(codes)
            table = linear if name == "linear" else luminance_to_l(linear)
            self._lut_cache[name] = table.to(torch.float32).to(self.device)
        return self._lut_cache[name]

    def _lightness(self, pixels: np.ndarray) -> torch.Tensor:
        """Full-resolution L (H, W) on the device, in bands."""
        height, width = pixels.shape[:2]
        lightness = torch.empty((height, width), dtype=torch.float32, device=self.device)
        luma = torch.tensor((0.212671, 0.715160, 0.072169), device=self.device)
        for top, bottom in _bands(height, width):
            band = torch.tensor(
                pixels[top:bottom], device=self.device
            )  # decoded arrays are read-only
            if band.dtype == torch.uint8 and band.dim() == 3:
                lightness[top:bottom] = luminance_to_l(self._lut("linear")[band.long()] @ luma)
            elif band.dtype == torch.uint8:
                lightness[top:bottom] = self._lut("grey_l")[band.long()]
            else:
                lightness[top:bottom] = luminance_to_l(srgb_to_linear(band.float()))
        return lightness

    def prepare(self, photo: Photo | PhotoInput, size: int | None = None) -> PreparedPhoto:
        """Decode (if needed) and compute the full L and the network's small input.

        ``size`` overrides the network input side (default: the config's) for this photo.
        """
        if not isinstance(photo, Photo):
            photo = load_photo(photo, max_pixels=self.max_pixels)
        lightness = self._lightness(photo.pixels)
        size = self.config.size if size is None else check_size(size)
        shape = (size, size)
        if self.shape == "aspect":
            shape = aspect_shape(*lightness.shape, size)
        small = F.interpolate(lightness[None, None], size=shape, mode="bilinear", antialias=True)
        return PreparedPhoto(
            lightness, normalize_l(small[0]), photo.alpha, photo.source, photo.note, photo.metadata
        )

    def predict_ab(self, network_input: torch.Tensor, temperature: float | None = None):
        """ab (N, 2, size, size) for a batch of normalised L (N, 1, size, size)."""
        temperature = self.config.temperature if temperature is None else temperature
        return self.predict_ab_at(network_input, [temperature])[0]

    def predict_ab_list(
        self, network_inputs: Sequence[torch.Tensor], temperature: float | None = None
    ) -> list[torch.Tensor]:
        """ab (2, h, w) for each normalised L (1, h, w), in order; inputs of one shape share a
        pass through the network (aspect-shaped inputs differ from photo to photo)."""
        return _per_shape(network_inputs, lambda x: [self.predict_ab(x, temperature)])[0]

    def predict_ab_list_at(
        self, network_inputs: Sequence[torch.Tensor], temperatures: Sequence[float]
    ) -> list[list[torch.Tensor]]:
        """For each temperature, the ab (2, h, w) of each input, as :meth:`predict_ab_list`."""
        return _per_shape(network_inputs, lambda x: self.predict_ab_at(x, temperatures))

    def inference_net(self, rebuild: bool = False) -> InferenceNet:
        """The network's fast inference form (:mod:`jkspnet.nn.inference`) in this precision.

        Rebuilt when the precision changes or the model's weights are changed in place
        (``load_state_dict``, an optimiser step: PyTorch counts those). Edits made through
        ``.data`` are not counted: pass ``rebuild=True`` after them.
        """
        key = (self.precision, *(_version_of(t) for t in self.model.state_dict().values()))
        with self._net_lock:  # server threads: build once
            if rebuild or self._net is None or key != self._net_key:
                dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
                self._net, self._net_key = InferenceNet(self.model, dtype), key
            return self._net

    @torch.inference_mode()
    def predict_ab_at(
        self, network_input: torch.Tensor, temperatures: Sequence[float]
    ) -> list[torch.Tensor]:
        """ab (N, 2, size, size) at each temperature, from one pass through the network."""
        temperatures = [check_temperature(t) for t in temperatures]
        x = network_input.to(self.device, torch.float32)
        if self.device.type != "mps":
            x = x.contiguous(memory_format=torch.channels_last)
        if not self.confidence:
            return self.inference_net()(x, temperatures)
        outputs = self.inference_net()(x, temperatures, flatness=True)
        return [confident_ab(out[:, :2], out[:, 2], self.confidence) for out in outputs]

    def _full_resolution_maps(self, prepared: PreparedPhoto, ab: torch.Tensor) -> torch.Tensor:
        """What is upsampled bilinearly to full resolution: ab itself, or the guided filter's
        coefficient maps (:mod:`jkspnet.colour.upsample`), which put colour edges on L's edges."""
        if self.upsample == "bilinear":
            return ab.float()
        height, width = prepared.lightness.shape
        grid = grid_shape(height, width, max(ab.shape[-2:]))
        small_l = F.interpolate(
            prepared.lightness[None, None], size=grid, mode="bilinear", antialias=True
        )[0, 0]
        return guided_coefficients(ab, small_l)

    def finish(
        self,
        prepared: PreparedPhoto,
        ab: torch.Tensor,
        correction: ABCorrection | None = None,
    ) -> Image.Image:
        """Join a predicted ab (2, s, s) to the full-resolution L and return the 8-bit photo.

        ``correction`` (from :meth:`guide`) is added to the upsampled ab: the hints' colours."""
        lightness = prepared.lightness
        height, width = lightness.shape
        maps = self._full_resolution_maps(prepared, ab)
        guided = maps.shape[0] == 4
        map_rows = _row_upsampler(maps, height, width)
        if correction is not None:
            correction_rows = _row_upsampler(correction.values.to(self.device), height, width)
        out = np.empty((height, width, 3), dtype=np.uint8)
        out_view = torch.from_numpy(out)
        for top, bottom in _bands(height, width):
            band = map_rows(top, bottom)
            ab_band = apply_coefficients(band, lightness[top:bottom]) if guided else band
            if correction is not None:
                values = correction_rows(top, bottom)
                if correction.guided:  # the local linear model D = A L + B, on the fine L
                    values = values[:2] * lightness[top:bottom] + values[2:]
                ab_band += values
            lab = torch.cat([lightness[top:bottom][None], ab_band], dim=0)
            rgb = lab_to_srgb8(lab)
            out_view[top:bottom].copy_(rgb.permute(1, 2, 0))  # 4x faster than through numpy
        image = Image.fromarray(out, "RGB")
        if prepared.alpha is not None:
            image.putalpha(Image.fromarray(prepared.alpha, "L"))
        image.info.update(prepared.metadata)  # save_photo writes them where the format can
        return image

    # ----------------------------------------------------------------- guidance
    def predict_logits(self, network_input: torch.Tensor) -> torch.Tensor:
        """The 313 logits (N, 313, s, s) at T = 1 for a batch of normalised L (N, 1, s, s):
        the whole distribution, which guidance and the uncertainty map need."""
        if self.model is None:
            raise JKSPNetError(
                "colour hints, a reference photo and the uncertainty map need the torch backend"
            )
        x = network_input.to(self.device, torch.float32)
        if self.device.type != "mps":
            x = x.contiguous(memory_format=torch.channels_last)
        return self.inference_net().logits(x)

    def reference_histogram(self, reference: Photo | PhotoInput) -> torch.Tensor:
        """A reference photo's palette: its ab distribution over the 313 bins (smoothed).

        Measured at a small size (256 pixels on the long side): a palette does not need detail,
        and a 12 MP reference then costs no more than a small one."""
        from ..colour.spaces import rgb_to_lab
        from ..nn.distribution import ab_histogram

        if not isinstance(reference, Photo):
            reference = load_photo(reference, max_pixels=self.max_pixels)
        pixels = reference.pixels
        if pixels.ndim != 3 or pixels.dtype != np.uint8:
            raise JKSPNetError(f"{reference.source or 'the reference'}: has no colour (grey)")
        image = Image.fromarray(pixels, "RGB")
        image.thumbnail((256, 256), Image.Resampling.BILINEAR)
        rgb = torch.tensor(np.asarray(image)).permute(2, 0, 1).double() / 255.0
        ab = rgb_to_lab(rgb)[1:]
        if float(ab.abs().max()) < 1.0:
            raise JKSPNetError(f"{reference.source or 'the reference'}: has no colour (grey)")
        return ab_histogram(ab)

    def guide(
        self,
        prepared: PreparedPhoto,
        logits: torch.Tensor,
        targets: Sequence[ABTarget] = (),
        histogram: torch.Tensor | None = None,
        reference_strength: float = 1.0,
        temperature: float | None = None,
    ) -> tuple[torch.Tensor, ABCorrection | None]:
        """The guided prediction for one photo from its logits (313, s, s): the ab (2, s, s)
        decoded from the distribution re-weighted by a reference palette ``histogram``, and
        the hints' correction (None without hints); pass both to :meth:`finish`."""
        from ..nn.distribution import MAX_ENTROPY, entropy, expected_ab, log_probabilities, reweight
        from .propagation import grid_shape, guided_coefficients, propagate

        temperature = check_temperature(
            self.config.temperature if temperature is None else temperature
        )
        log_p = log_probabilities(logits[None])
        if histogram is not None:
            log_p = reweight(log_p, histogram, reference_strength)
        ab = expected_ab(log_p, temperature)[0]
        if not targets:
            return ab, None
        height, width = prepared.lightness.shape
        grid = grid_shape(height, width)
        confidence = 1.0 - entropy(log_p) / MAX_ENTROPY

        def on_grid(x: torch.Tensor, antialias: bool = False) -> torch.Tensor:
            x = x[None].float()
            return F.interpolate(x, size=grid, mode="bilinear", antialias=antialias)[0]

        lightness = on_grid(prepared.lightness[None], antialias=True)[0]
        correction = propagate(
            lightness.cpu().numpy(),
            on_grid(ab).cpu().numpy(),
            on_grid(confidence)[0].cpu().numpy(),
            targets,
            scale=(grid[0] / height, grid[1] / width),
        )
        values = torch.from_numpy(correction).float()
        if grid == (height, width):
            return ab, ABCorrection(values, guided=False)
        return ab, ABCorrection(guided_coefficients(lightness.cpu(), values), guided=True)

    def uncertainty(self, photo: Photo | PhotoInput | PreparedPhoto) -> Image.Image:
        """Where the network is guessing: an 8-bit 'L' image of the photo's size, each pixel
        its 313-bin distribution's entropy over a flat one's (0 sure, 255 a flat guess),
        upsampled bilinearly from the network's size. Hints help most where it is bright."""
        from ..nn.distribution import normalized_entropy

        prepared = photo if isinstance(photo, PreparedPhoto) else self.prepare(photo)
        logits = self.predict_logits(prepared.network_input[None])
        height, width = prepared.lightness.shape
        small = normalized_entropy(logits)[None]  # (1, 1, s, s)
        full = F.interpolate(small, size=(height, width), mode="bilinear")[0, 0]
        codes = full.mul_(255.0).add_(0.5).clamp_(0, 255).to(torch.uint8).cpu().numpy()
        return Image.fromarray(codes, "L")

    def suggest(self, photo: Photo | PhotoInput | PreparedPhoto, x: float, y: float) -> list:
        """3 to 6 distinct colours the network finds likely at pixel (x, y), most likely first
        (:class:`~jkspnet.pipeline.suggest.Suggestion`); outside the photo: a HintError."""
        from .suggest import suggest

        prepared = photo if isinstance(photo, PreparedPhoto) else self.prepare(photo)
        return suggest(self, prepared, x, y)

    def colorize_batch(
        self, photos: Sequence[Photo | PhotoInput], temperature: float | None = None
    ) -> list[Image.Image]:
        """Colorize several photos of any sizes in one pass through the network."""
        prepared = [self.prepare(photo) for photo in photos]
        if not prepared:
            return []
        ab = self.predict_ab_list([p.network_input for p in prepared], temperature)
        return [self.finish(p, a) for p, a in zip(prepared, ab, strict=True)]

    def colorize(
        self,
        photo: Photo | PhotoInput,
        temperature: float | None = None,
        *,
        hints: Sequence[Hint] | None = None,
        reference: Photo | PhotoInput | None = None,
        reference_strength: float = 1.0,
    ) -> Image.Image:
        """Colorize one photo (a path or a PIL image): 8-bit RGB (RGBA if it had alpha).

        ``hints``: colours the user vouches for at points of the photo (as displayed), spread
        over their regions (:mod:`jkspnet.pipeline.propagation`). ``reference``: a colour photo
        whose palette the result leans toward, ``reference_strength`` how much (0: not at all).
        Without either this is the automatic colorization, unchanged."""
        if not hints and reference is None:
            check_reference_strength(reference_strength)
            return self.colorize_batch([photo], temperature)[0]
        histogram = None if reference is None else self.reference_histogram(reference)
        return self.colorize_guided(
            self.prepare(photo), hints, histogram, reference_strength, temperature
        )

    def colorize_guided(
        self,
        prepared: PreparedPhoto,
        hints: Sequence[Hint] | None = None,
        histogram: torch.Tensor | None = None,
        reference_strength: float = 1.0,
        temperature: float | None = None,
    ) -> Image.Image:
        """:meth:`colorize` with hints and a reference palette (:meth:`reference_histogram`),
        for a photo already prepared (the CLI decodes photos ahead, in threads)."""
        from ..media.hints import check_hints, hint_targets

        check_reference_strength(reference_strength)
        hints = list(hints or [])
        height, width = prepared.lightness.shape
        check_hints(hints, width, height)
        logits = self.predict_logits(prepared.network_input[None])[0]
        ab, correction = self.guide(
            prepared, logits, hint_targets(hints), histogram, reference_strength, temperature
        )
        return self.finish(prepared, ab, correction)


__all__ = ["ABCorrection", "Colorizer", "PreparedPhoto"]
