"""What the benchmark scripts share: their results, one aligned line each, and JSON on request."""

from __future__ import annotations

import json
from pathlib import Path


def print_and_save(result: dict, out: str | None) -> None:
    """Print ``result`` as aligned ``key: value`` lines; write it as JSON to ``out`` if given."""
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:>{width}}: {value}")
    if out:
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
