"""The colour pipeline: a photo of any size in, a colour photo of the same size out.

The network sees only a small square (``size`` x ``size``, 128 by default) of the photo's L
channel, resized with antialiasing. Its ab prediction is upsampled bilinearly to the full
resolution and joined to the photo's own, full-resolution L, so every detail of the original
tones survives. Full-resolution work runs in bands of rows so memory stays bounded for very large
photos, on the model's device.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..colour import pixels as pixel_stages
from ..colour import torch_pixels
from ..colour.decoding import aspect_shape, confident_ab, neutral_ab, saturated_ab
from ..colour.spaces import normalize_l
from ..colour.upsample import grid_shape, guided_coefficients
from ..errors import JKSPNetError, check_choice
from ..media.hints import ABTarget, Hint
from ..media.photos import Photo, load_photo
from ..nn.backends.base import Network
from ..nn.backends.torch_network import TorchNetwork, load_model
from ..nn.model import JKSPNet
from ..nn.weights import ModelConfig
from .spec import (
    NEUTRAL_SHAPES,
    SHAPES,
    ColorizerSpec,
    check_confidence,
    check_neutral,
    check_reference_strength,
    check_saturation,
    check_size,
    check_temperature,
)

PhotoInput = str | os.PathLike[str] | Image.Image


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
    """Colorizes photos: prepares each photo, runs the network (a :class:`Network`: PyTorch,
    ONNX Runtime...) on its small L, and finishes the colour at full resolution.

    ``spec`` says how (:class:`ColorizerSpec`: size, shape, upsampling, confidence, the pixel
    limit); what it leaves to the weights comes from the network's ``config``. Everything is
    settled here, once: the colorizer is not changed afterwards.

    >>> colorizer = Colorizer.from_pretrained("weights/")      # doctest: +SKIP
    >>> colorizer.colorize("old.jpg").save("colour.png")        # doctest: +SKIP
    """

    def __init__(self, network: Network, spec: ColorizerSpec | None = None) -> None:
        spec = spec or ColorizerSpec()
        weights = network.config
        self.network = network
        self.spec = spec
        self.config = dataclasses.replace(
            weights,
            size=weights.size if spec.size is None else spec.size,
            shape=weights.shape if spec.shape is None else spec.shape,
            confidence=weights.confidence if spec.confidence is None else spec.confidence,
            saturation=weights.saturation if spec.saturation is None else spec.saturation,
            neutral=weights.neutral if spec.neutral is None else spec.neutral,
            neutral_shape=(
                weights.neutral_shape if spec.neutral_shape is None else spec.neutral_shape
            ),
        )
        check_size(self.config.size)
        check_temperature(self.config.temperature)
        self.shape = check_choice("shape", self.config.shape, SHAPES)
        self.confidence = check_confidence(self.config.confidence)
        if self.confidence and not network.gives_distribution:
            raise JKSPNetError(f"the {spec.backend} backend has no confidence-aware decoding")
        self.saturation = check_saturation(self.config.saturation)
        self.neutral = check_neutral(self.config.neutral)
        self.neutral_shape = check_choice(
            "neutral shape", self.config.neutral_shape, NEUTRAL_SHAPES
        )
        self.upsample = spec.upsample
        self.max_pixels = spec.max_pixels

    @property
    def device(self) -> torch.device:
        return self.network.device

    @property
    def precision(self) -> str:
        return self.network.precision

    # ------------------------------------------------------------------ weights
    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike[str] | None = None, **options: Any
    ) -> Colorizer:
        """Load weights from a ``save_pretrained`` folder or a weights file.

        ``path=None`` takes the default weights bundled with the package, where they ship.
        ``options`` are :class:`~jkspnet.pipeline.spec.ColorizerSpec`'s, checked there:
        ``device``, ``precision`` (``auto``, ``fp32`` or ``bf16``), ``size``, ``max_pixels``,
        ``upsample`` (``guided`` or ``bilinear``), ``shape`` (``square`` or ``aspect``),
        ``confidence`` (confidence-aware decoding, 0 = off), ``saturation`` (the gain on every
        chroma, 1 = off), ``neutral`` (the chroma below which a pixel turns grey, 0 = off) and
        ``neutral_shape`` (``soft`` or ``garrote``). ``size``, ``shape``, ``confidence``,
        ``saturation``, ``neutral`` and ``neutral_shape`` default to the values stored with the
        weights. PyTorch runs the network; for another backend,
        ``ColorizerSpec(weights=..., backend=...).load()``.

        >>> Colorizer.from_pretrained(device="cpu", neutral=0)    # doctest: +SKIP
        """
        return cls.from_model(*load_model(None if path is None else os.fspath(path)), **options)

    @classmethod
    def from_model(
        cls, model: JKSPNet, config: ModelConfig | None = None, **options: Any
    ) -> Colorizer:
        """A Colorizer around a JKSPNet in memory (fresh, or being trained), run by PyTorch;
        ``config`` as stored with weights (default: the seed's), ``options`` as
        :meth:`from_pretrained`'s."""
        if {"weights", "backend"} & options.keys():
            raise TypeError("from_model runs a JKSPNet in memory: no weights, no backend")
        spec = ColorizerSpec(**options)
        network = TorchNetwork(model, config, device=spec.device, precision=spec.precision)
        return cls(network, spec)

    def save_pretrained(
        self, folder: str | os.PathLike[str], dtype: torch.dtype = torch.float32
    ) -> Path:
        """Write ``model.safetensors`` and ``config.json``, loadable by :meth:`from_pretrained`."""
        return self.network.save_pretrained(folder, self.config, dtype)

    # ----------------------------------------------------------------- pipeline
    def _lightness(self, pixels: np.ndarray) -> torch.Tensor:
        """Full-resolution L (H, W) on the device: by OpenCV on the CPU, else in torch."""
        if self.device.type == "cpu":
            return torch.from_numpy(pixel_stages.lightness(pixels))
        return torch_pixels.lightness(pixels, self.device)

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

    def predict_ab_at(
        self, network_input: torch.Tensor, temperatures: Sequence[float]
    ) -> list[torch.Tensor]:
        """ab (N, 2, size, size) at each temperature, from one pass through the network."""
        temperatures = [check_temperature(t) for t in temperatures]
        outputs = self.network.ab_at(network_input, temperatures, self.confidence)
        return [self._chroma_ab(ab) for ab in outputs]

    def _chroma_ab(self, ab: torch.Tensor) -> torch.Tensor:
        """``ab`` with its chromas scaled and the pale ones greyed, as the options ask
        (``saturation``, then ``neutral`` and ``neutral_shape``)."""
        ab = saturated_ab(ab, self.saturation)
        return neutral_ab(ab, self.neutral, garrote=self.neutral_shape == "garrote")

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

    def _layers(
        self, prepared: PreparedPhoto, ab: torch.Tensor, correction: ABCorrection | None
    ) -> list[tuple[torch.Tensor, float]]:
        """What :meth:`finish` upsamples to full resolution and adds up, with the scale of L in
        each local linear model (:func:`jkspnet.colour.pixels.finish`)."""
        layers = [(self._full_resolution_maps(prepared, ab), 0.01)]  # A * (L / 100) + B
        if correction is not None:  # guided: the local linear model D = A L + B, on L itself
            layers.append((correction.values, 1.0))
        return layers

    def finish(
        self,
        prepared: PreparedPhoto,
        ab: torch.Tensor,
        correction: ABCorrection | None = None,
    ) -> Image.Image:
        """Join a predicted ab (2, s, s) to the full-resolution L and return the 8-bit photo.

        ``correction`` (from :meth:`guide`) is added to the upsampled ab: the hints' colours.
        On the CPU the per-pixel work runs on OpenCV (:mod:`jkspnet.colour.pixels`), on a GPU
        in torch (:mod:`jkspnet.colour.torch_pixels`); the two agree to one code value."""
        lightness = prepared.lightness
        layers = self._layers(prepared, ab, correction)
        if lightness.device.type == "cpu":

            def array(tensor: torch.Tensor) -> np.ndarray:
                return tensor.detach().float().numpy()

            layers_ = [(array(maps), scale) for maps, scale in layers]
            pixels = pixel_stages.finish(array(lightness), layers_, prepared.alpha)
        else:
            pixels = torch_pixels.finish(lightness, layers, prepared.alpha)
        image = Image.fromarray(pixels, "RGB" if prepared.alpha is None else "RGBA")
        image.info.update(prepared.metadata)  # save_photo writes them where the format can
        return image

    # ----------------------------------------------------------------- guidance
    def predict_logits(self, network_input: torch.Tensor) -> torch.Tensor:
        """The 313 logits (N, 313, s, s) at T = 1 for a batch of normalised L (N, 1, s, s):
        the whole distribution, which guidance and the uncertainty map need."""
        if not self.network.gives_distribution:
            raise JKSPNetError(
                "colour hints, a reference photo and the uncertainty map need the torch backend"
            )
        return self.network.logits(network_input)

    def reference_histogram(self, reference: Photo | PhotoInput) -> torch.Tensor:
        """A reference photo's palette: its ab distribution over the 313 bins (smoothed).

        Measured at a small size (256 pixels on the long side): a palette does not need detail,
        and a 12 MP reference then costs no more than a small one."""
        from ..colour.spaces import REFERENCE_MIN_CHROMA, is_grey, rgb_to_lab
        from ..nn.bins import soft_histogram

        if not isinstance(reference, Photo):
            reference = load_photo(reference, max_pixels=self.max_pixels)
        pixels = reference.pixels
        grey = pixels.ndim != 3 or pixels.dtype != np.uint8
        if not grey:
            image = Image.fromarray(pixels, "RGB")
            image.thumbnail((256, 256), Image.Resampling.BILINEAR)
            small = np.asarray(image)
            grey = is_grey(small, REFERENCE_MIN_CHROMA)
        if grey:
            raise JKSPNetError(f"{reference.source or 'the reference'}: has no colour (grey)")
        rgb = torch.tensor(small).permute(2, 0, 1).double() / 255.0
        return soft_histogram(rgb_to_lab(rgb)[1:])

    def _decoded(self, log_p: torch.Tensor, temperature: float) -> torch.Tensor:
        """ab (2, s, s) from log-probabilities (1, 313, s, s) decoded as the automatic path
        decodes (annealed mean, confidence, neutrals), so that hints correct the automatic
        colour rather than another decoding of the same distribution."""
        from ..nn.distribution import expected_ab, normalized_entropy

        ab = expected_ab(log_p, temperature, self.network.ab_projection())
        if self.confidence:  # the flatness the network's head gives: the entropy at T
            ab = confident_ab(ab, normalized_entropy(log_p / temperature), self.confidence)
        return self._chroma_ab(ab)[0]

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
        from ..nn.distribution import MAX_ENTROPY, entropy, log_probabilities, reweight
        from .propagation import correction_coefficients, hint_grid, propagate

        temperature = check_temperature(
            self.config.temperature if temperature is None else temperature
        )
        log_p = log_probabilities(logits[None])
        if histogram is not None:
            log_p = reweight(log_p, histogram, reference_strength)
        ab = self._decoded(log_p, temperature)
        if not targets:
            return ab, None
        height, width = prepared.lightness.shape
        grid = hint_grid(height, width)
        confidence = 1.0 - entropy(log_p) / MAX_ENTROPY

        def on_grid(x: torch.Tensor, antialias: bool = False) -> torch.Tensor:
            x = x[None].float()
            return F.interpolate(x, size=grid, mode="bilinear", antialias=antialias)[0]

        lightness = on_grid(prepared.lightness[None], antialias=True)[0]
        seen = on_grid(log_p[0].exp().sqrt())  # what the network sees: its distributions
        correction = propagate(
            lightness.cpu().numpy(),
            on_grid(ab).cpu().numpy(),
            on_grid(confidence)[0].cpu().numpy(),
            targets,
            scale=(grid[0] / height, grid[1] / width),
            features=seen.cpu().numpy(),
        )
        values = torch.from_numpy(correction).float()
        if grid == (height, width):
            return ab, ABCorrection(values, guided=False)
        return ab, ABCorrection(correction_coefficients(lightness.cpu(), values), guided=True)

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
