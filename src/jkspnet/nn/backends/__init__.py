"""Network backends: what runs the network behind a :class:`~jkspnet.pipeline.colorizer.Colorizer`.

Each backend is one module here, ``<name>_network.py``, with a class that follows
:class:`~jkspnet.nn.backends.base.Network` and ``load(weights, device, precision)`` that makes
it. :data:`BACKENDS` lists them by file name, so naming them (``--backend``'s choices) imports
neither torch nor any runtime: adding a backend (OpenVINO, TensorRT, Core ML) is one new file.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from typing import TYPE_CHECKING

from ...errors import check_choice

if TYPE_CHECKING:
    from .base import Network

_SUFFIX = "_network"
DEFAULT_BACKEND = "torch"
BACKENDS: tuple[str, ...] = tuple(
    sorted(
        (
            info.name.removesuffix(_SUFFIX)
            for info in pkgutil.iter_modules(__path__)
            if info.name.endswith(_SUFFIX)
        ),
        key=lambda name: (name != DEFAULT_BACKEND, name),
    )
)
"""The backends' names, the default first."""

PRECISIONS = ("auto", "fp32", "bf16")
"""The network's arithmetic: auto picks bf16 where the hardware computes it natively."""


def load_network(
    backend: str,
    weights: str | os.PathLike[str] | None = None,
    device: str = "auto",
    precision: str = "auto",
) -> Network:
    """The network of ``backend`` from ``weights`` (None: the bundled weights, where the backend
    reads them), on ``device`` in ``precision``."""
    backend = check_choice("backend", backend, BACKENDS)
    module = importlib.import_module(f"{__name__}.{backend}{_SUFFIX}")
    precision = check_choice("precision", precision, PRECISIONS)
    return module.load(weights, device=device, precision=precision)
