"""JKSPNet: automatic photo colorization with a small U-Net over the LAB colour space."""

__version__ = "0.1.0"

from .errors import JKSPNetError, PhotoError, WeightsError
from .guidance import Hint, HintError, parse_hints
from .model import JKPSNET, NUM_BINS, JKSPNet, ab_bins
from .pipeline import Colorizer

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
