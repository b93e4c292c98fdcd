"""What the benchmark scripts share: their results, one aligned line each, and JSON on request."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path


def print_and_save(result: dict, out: str | None) -> None:
    """Print ``result`` as aligned ``key: value`` lines; write it as JSON to ``out`` if given."""
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:>{width}}: {value}")
    if out:
        Path(out).write_text(json.dumps(result, indent=2) + "\n")


def run_process(
    command: list[str], environment: dict[str, str] | None = None
) -> tuple[float, float, float]:
    """Run ``command`` as its own process (``environment`` added to this one's): its wall and
    CPU seconds (user + system, from ``os.wait4``) and its peak RSS in MiB; a failure stops
    the benchmark."""
    start = time.perf_counter()
    env = {**os.environ, **(environment or {})}
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # Linux: KiB
