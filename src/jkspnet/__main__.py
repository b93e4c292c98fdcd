"""``python -m jkspnet``: the same as the ``jkspnet`` command."""

import sys

from .commands import main

sys.exit(main())
