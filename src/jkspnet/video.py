"""Compatibility home of the film names, as README and 0.1.0 import them: films are read and
written by :mod:`jkspnet.media.video`, stabilised by :mod:`jkspnet.media.stabilizer`."""

from .media.video import *  # noqa: F403
from .media.video import __all__  # noqa: F401
