"""Copy a training run's weights into the package as the bundled default weights.

    python scripts/bundle_weights.py --run runs/default --size 64 --temperature 0.6 \
        --shape aspect --confidence 0 --saturation 1.2 --neutral 5 --neutral-shape garrote

Writes src/jkspnet/assets/weights/{model.safetensors, config.json} in float16 (half the size;
the weights are upcast to float32 at load), with the inference size, temperature, input shape,
confidence-aware decoding, saturation and neutral threshold chosen on the source-held-out
validation split (`benchmarks/bench_decoding.py`), and the sha256 that
`Colorizer.from_pretrained` checks.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from jkspnet import Colorizer
from jkspnet.errors import check_choice
from jkspnet.pipeline.spec import (
    NEUTRAL_SHAPES,
    SHAPES,
    check_confidence,
    check_neutral,
    check_saturation,
    check_size,
    check_temperature,
)

DESTINATION = Path(__file__).resolve().parent.parent / "src" / "jkspnet" / "assets" / "weights"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="training run folder (its best/ is used)")
    parser.add_argument("--size", type=int, required=True, help="inference size (eval's pick)")
    parser.add_argument("--temperature", type=float, required=True, help="eval's pick")
    parser.add_argument("--shape", choices=SHAPES, default="square")
    parser.add_argument("--confidence", type=float, default=0.0, help="0 = off")
    parser.add_argument("--saturation", type=float, default=1.0, help="chroma gain, 1 = off")
    parser.add_argument("--neutral", type=float, default=0.0, help="chroma threshold, 0 = off")
    parser.add_argument("--neutral-shape", choices=NEUTRAL_SHAPES, default="soft")
    parser.add_argument("--out", type=Path, default=DESTINATION)
    args = parser.parse_args()

    colorizer = Colorizer.from_pretrained(args.run, device="cpu")
    colorizer.config.size = check_size(args.size)
    colorizer.config.temperature = check_temperature(args.temperature)
    colorizer.config.shape = check_choice("shape", args.shape, SHAPES)
    colorizer.config.confidence = check_confidence(args.confidence)
    colorizer.config.saturation = check_saturation(args.saturation)
    colorizer.config.neutral = check_neutral(args.neutral)
    colorizer.config.neutral_shape = args.neutral_shape
    folder = colorizer.save_pretrained(args.out, dtype=torch.float16)
    config = json.loads((folder / "config.json").read_text())
    size_mb = (folder / "model.safetensors").stat().st_size / 1e6
    print(
        f"wrote {folder}: {size_mb:.1f} MB, size {config['size']}, "
        f"temperature {config['temperature']}, shape {config['shape']}, "
        f"confidence {config['confidence']}, saturation {config['saturation']}, "
        f"neutral {config['neutral']} "
        f"({config['neutral_shape']}), "
        f"sha256 {config['sha256'][:16]}..."
    )


if __name__ == "__main__":
    main()
