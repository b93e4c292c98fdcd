"""Copy a training run's weights into the package as the bundled default weights.

    python scripts/bundle_weights.py --run runs/default --size 96 --temperature 0.6

Writes src/jkspnet/assets/weights/{model.safetensors, config.json} in float16 (half the size;
the weights are upcast to float32 at load), with the inference size and temperature chosen by
`jkspnet eval` on the validation split, and the sha256 that `Colorizer.from_pretrained` checks.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from jkspnet import Colorizer
from jkspnet.pipeline import check_size, check_temperature

DESTINATION = Path(__file__).resolve().parent.parent / "src" / "jkspnet" / "assets" / "weights"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="training run folder (its best/ is used)")
    parser.add_argument("--size", type=int, required=True, help="inference size (eval's pick)")
    parser.add_argument("--temperature", type=float, required=True, help="eval's pick")
    parser.add_argument("--out", type=Path, default=DESTINATION)
    args = parser.parse_args()

    colorizer = Colorizer.from_pretrained(args.run, device="cpu")
    colorizer.config.size = check_size(args.size)
    colorizer.config.temperature = check_temperature(args.temperature)
    folder = colorizer.save_pretrained(args.out, dtype=torch.float16)
    config = json.loads((folder / "config.json").read_text())
    size_mb = (folder / "model.safetensors").stat().st_size / 1e6
    print(
        f"wrote {folder}: {size_mb:.1f} MB, size {config['size']}, "
        f"temperature {config['temperature']}, sha256 {config['sha256'][:16]}..."
    )


if __name__ == "__main__":
    main()
