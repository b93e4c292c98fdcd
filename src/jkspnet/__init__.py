"""JKSPNet: automatic photo colorization with a small U-Net over the LAB colour space.

The names below are imported on first use (PEP 562), so that ``import jkspnet.cluster`` or
``import jkspnet.media.files`` does not import torch: a Ray driver or a bookkeeping actor that
touches no pixels starts in a fraction of the time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "JKSPNetError": "errors",
    "PhotoError": "errors",
    "WeightsError": "errors",
    "Hint": "media.hints",
    "HintError": "media.hints",
    "parse_hints": "media.hints",
    "JKPSNET": "nn.model",
    "NUM_BINS": "nn.bins",
    "JKSPNet": "nn.model",
    "ab_bins": "nn.bins",
    "Colorizer": "pipeline.colorizer",
}

if TYPE_CHECKING:
    from .errors import JKSPNetError, PhotoError, WeightsError
    from .media.hints import Hint, HintError, parse_hints
    from .nn.bins import NUM_BINS, ab_bins
    from .nn.model import JKPSNET, JKSPNet
    from .pipeline.colorizer import Colorizer


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jkspnet' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "JKPSNET",
    "NUM_BINS",
    "Colorizer",
    "Hint",
    "HintError",
    "JKSPNet",
    "JKSPNetError",
    "PhotoError",
    "WeightsError",
    "__version__",
    "ab_bins",
    "parse_hints",
]
