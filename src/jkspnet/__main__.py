"""``python -m jkspnet``: the same as the ``jkspnet`` command."""

import sys

from .cli import main

sys.exit(main())
