"""A Ray worker setup hook for ``tests/cluster/test_cluster.py``: a photo named ``poison*`` kills
the worker process that decodes it, as a decoder crash or the kernel's out-of-memory killer
would.

Installed in the workers only (``worker_process_setup_hook``); the test process never runs it.
"""

from __future__ import annotations

import os


def install() -> None:
    from jkspnet.engines import batch

    load = batch._load

    def deadly(job, max_pixels):
        if job.source.name.startswith("poison"):
            os._exit(1)  # no exception, no cleanup: the process is gone
        return load(job, max_pixels)

    batch._load = deadly
