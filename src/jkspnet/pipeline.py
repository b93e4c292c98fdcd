"""The colour pipeline: a photo of any size in, a colour photo of the same size out.

The network sees only a small square (``size`` x ``size``, 128 by default) of the photo's L
channel, resized with antialiasing. Its ab prediction is upsampled bilinearly to the full
resolution and joined to the photo's own, full-resolution L, so every detail of the original
tones survives. Full-resolution work runs in bands of rows so memory stays bounded for very large
photos, on the model's device.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .color import lab_to_srgb8, luminance_to_l, normalize_l, srgb_to_linear
from .decoding import aspect_shape, confident_ab
from .errors import JKSPNetError, WeightsError
from .inference import InferenceNet
from .model import JKSPNet
from .photos import DEFAULT_MAX_PIXELS, Photo, load_photo
from .upsample import apply_coefficients, check_upsample, grid_shape, guided_coefficients
from .weights import ModelConfig, bundled_weights, load_into, load_weights, save_weights

PhotoInput = str | os.PathLike[str] | Image.Image
_BAND_PIXELS = 1 << 20  # full-resolution work in bands of about a million pixels


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; an unavailable device is an error."""
    name = str(device)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(name)
    except RuntimeError:
        raise JKSPNetError(f"unknown device {name!r} (use auto, cpu, cuda or mps)") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise JKSPNetError("device cuda was asked for, but no CUDA GPU is available")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise JKSPNetError("device mps was asked for, but MPS is not available")
    return resolved


PRECISIONS = ("auto", "fp32", "bf16")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX): then bf16 inference
    is about twice as fast as float32. Elsewhere bf16 is emulated and slower, so auto is fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:  # not Linux: stay with float32
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 on CUDA GPUs and CPUs with native bf16, else fp32 (the network's
    ab then differ from float32's by about 0.1 on average, far below what the eye sees)."""
    if precision not in PRECISIONS:
        raise JKSPNetError(f"unknown precision {precision!r} (use {', '.join(PRECISIONS)})")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


def _version_of(tensor: torch.Tensor) -> tuple[int, int]:
    """Where a tensor's data lives and how often it was changed in place (tensors made under
    inference_mode count no changes)."""
    return tensor.data_ptr(), 0 if tensor.is_inference() else tensor._version


def check_size(size: int) -> int:
    """The network's input side: a positive multiple of 8 (three stride-2 stages)."""
    if size < 8 or size % 8:
        raise JKSPNetError(f"size must be a positive multiple of 8, got {size}")
    return size


SHAPES = ("square", "aspect")
"""The network's input: the photo squashed to a square, or at its own aspect ratio."""


def check_shape(shape: str) -> str:
    if shape not in SHAPES:
        raise JKSPNetError(f"shape must be one of {', '.join(SHAPES)}, got {shape!r}")
    return shape


def check_confidence(confidence: float) -> float:
    if not 0 <= confidence <= 10:
        raise JKSPNetError(f"confidence must be between 0 (off) and 10, got {confidence}")
    return float(confidence)


def check_temperature(temperature: float) -> float:
    if not temperature > 0:
        raise JKSPNetError(f"temperature must be greater than 0, got {temperature}")
    return float(temperature)


def _bands(height: int, width: int) -> list[tuple[int, int]]:
    rows = max(1, _BAND_PIXELS // max(width, 1))
    return [(top, min(top + rows, height)) for top in range(0, height, rows)]


def _by_shape(tensors: Sequence[torch.Tensor]) -> list[list[int]]:
    """The indices of ``tensors``, grouped by shape in order of first appearance."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, tensor in enumerate(tensors):
        groups.setdefault(tuple(tensor.shape), []).append(index)
    return list(groups.values())


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
        ``fp32`` or ``bf16``. ``upsample``: ``guided`` (edge-aware, see :mod:`jkspnet.upsample`)
        or ``bilinear``. ``shape``: the network's input, ``square`` (the photo squashed to
        size x size, as trained) or ``aspect`` (short side ``size``, the photo's aspect ratio;
        see :func:`jkspnet.decoding.aspect_shape`). ``confidence``: the strength of
        confidence-aware decoding (:func:`jkspnet.decoding.confident_ab`), 0 = off. ``shape``
        and ``confidence`` default to the values stored with the weights.
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
        results: list[torch.Tensor | None] = [None] * len(network_inputs)
        for indices in _by_shape(network_inputs):
            stacked = torch.stack([network_inputs[i] for i in indices])
            for index, ab in zip(indices, self.predict_ab(stacked, temperature), strict=True):
                results[index] = ab
        return results  # type: ignore[return-value]

    def predict_ab_list_at(
        self, network_inputs: Sequence[torch.Tensor], temperatures: Sequence[float]
    ) -> list[list[torch.Tensor]]:
        """For each temperature, the ab (2, h, w) of each input, as :meth:`predict_ab_list`."""
        results: list[list[torch.Tensor | None]] = [
            [None] * len(network_inputs) for _ in temperatures
        ]
        for indices in _by_shape(network_inputs):
            stacked = torch.stack([network_inputs[i] for i in indices])
            for at_t, abs_at_t in zip(
                results, self.predict_ab_at(stacked, temperatures), strict=True
            ):
                for index, ab in zip(indices, abs_at_t, strict=True):
                    at_t[index] = ab
        return results  # type: ignore[return-value]

    def inference_net(self, rebuild: bool = False) -> InferenceNet:
        """The network's fast inference form (:mod:`jkspnet.inference`) in this precision.

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
        coefficient maps (:mod:`jkspnet.upsample`), which put colour edges on L's edges."""
        if self.upsample == "bilinear":
            return ab.float()
        height, width = prepared.lightness.shape
        grid = grid_shape(height, width, max(ab.shape[-2:]))
        small_l = F.interpolate(
            prepared.lightness[None, None], size=grid, mode="bilinear", antialias=True
        )[0, 0]
        return guided_coefficients(ab, small_l)

    def finish(self, prepared: PreparedPhoto, ab: torch.Tensor) -> Image.Image:
        """Join a predicted ab (2, s, s) to the full-resolution L and return the 8-bit photo."""
        lightness = prepared.lightness
        height, width = lightness.shape
        maps = self._full_resolution_maps(prepared, ab)
        guided = maps.shape[0] == 4
        # Bilinear upsampling is separable: widen all rows once (small), then blend the two
        # nearest rows for each band of output rows, as F.interpolate(align_corners=False) does.
        wide = F.interpolate(maps[None], size=(maps.shape[-2], width), mode="bilinear")[0]
        src_rows = maps.shape[-2]
        scale = src_rows / height
        out = np.empty((height, width, 3), dtype=np.uint8)
        out_view = torch.from_numpy(out)
        for top, bottom in _bands(height, width):
            rows = torch.arange(top, bottom, device=self.device, dtype=torch.float32)
            src = ((rows + 0.5) * scale - 0.5).clamp(min=0)
            low = src.floor().long().clamp(max=src_rows - 1)
            high = (low + 1).clamp(max=src_rows - 1)
            weight = (src - low).view(1, -1, 1)
            band = torch.lerp(wide.index_select(1, low), wide.index_select(1, high), weight)
            ab_band = apply_coefficients(band, lightness[top:bottom]) if guided else band
            lab = torch.cat([lightness[top:bottom][None], ab_band], dim=0)
            rgb = lab_to_srgb8(lab)
            out_view[top:bottom].copy_(rgb.permute(1, 2, 0))  # 4x faster than through numpy
        image = Image.fromarray(out, "RGB")
        if prepared.alpha is not None:
            image.putalpha(Image.fromarray(prepared.alpha, "L"))
        image.info.update(prepared.metadata)  # save_photo writes them where the format can
        return image

    def colorize_batch(
        self, photos: Sequence[Photo | PhotoInput], temperature: float | None = None
    ) -> list[Image.Image]:
        """Colorize several photos of any sizes in one pass through the network."""
        prepared = [self.prepare(photo) for photo in photos]
        if not prepared:
            return []
        ab = self.predict_ab_list([p.network_input for p in prepared], temperature)
        return [self.finish(p, a) for p, a in zip(prepared, ab, strict=True)]

    def colorize(self, photo: Photo | PhotoInput, temperature: float | None = None) -> Image.Image:
        """Colorize one photo (a path or a PIL image): 8-bit RGB (RGBA if it had alpha)."""
        return self.colorize_batch([photo], temperature)[0]


__all__ = [
    "PRECISIONS",
    "Colorizer",
    "PreparedPhoto",
    "check_size",
    "resolve_device",
    "resolve_precision",
]
