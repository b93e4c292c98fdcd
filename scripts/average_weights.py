"""Average the weights of JKSPNet runs that share a start (a "model soup", Wortsman et al. 2022).

    python scripts/average_weights.py runs/a runs/b --ratio 2,1 --out runs/soup

Why: two fine-tunes of one set of weights lie in one basin, and their average often scores
better than either (issue 22: 0.4 and a group-balanced run from it, 2:1, keep more of the
colourfulness at the same PSNR over grey than both on the held-out photos). Each input is what
``--weights`` takes (a ``save_pretrained`` folder, a training run, a weights file); parameters
and BatchNorm running statistics are averaged with the ratio's weights, batch counters come
from the first input, the config (size, decoding) from the first input. Written by
``save_pretrained`` in float32, atomically; an existing ``--out`` is refused without
``--overwrite``. Bad input is one line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from jkspnet.errors import JKSPNetError
from jkspnet.nn.backends.torch_network import load_model
from jkspnet.nn.weights import CONFIG_NAME, WEIGHTS_NAME, save_weights


def average(states: list[dict[str, torch.Tensor]], ratio: list[float]) -> dict[str, torch.Tensor]:
    """The states averaged key by key with weights ``ratio`` (normalised); integer tensors
    (BatchNorm's batch counters) are the first state's."""
    total = sum(ratio)
    averaged = {}
    for key, first in states[0].items():
        if not first.is_floating_point():
            averaged[key] = first.clone()
            continue
        averaged[key] = sum(
            state[key].double() * (share / total)
            for state, share in zip(states, ratio, strict=True)
        ).to(first.dtype)
    return averaged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="+", help="two or more weights that share a start")
    parser.add_argument("--ratio", help="comma-separated weights, one per input (default: equal)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace weights in --out")
    args = parser.parse_args(argv)
    try:
        if len(args.weights) < 2:
            raise JKSPNetError("give two or more weights to average")
        ratio = [1.0] * len(args.weights)
        if args.ratio:
            try:
                ratio = [float(x) for x in args.ratio.split(",")]
            except ValueError:
                raise JKSPNetError(f"--ratio: not numbers: {args.ratio!r}") from None
            if len(ratio) != len(args.weights) or min(ratio) < 0 or sum(ratio) <= 0:
                raise JKSPNetError(
                    f"--ratio: give {len(args.weights)} numbers, 0 or more, not all 0"
                )
        taken = [(args.out / name).exists() for name in (WEIGHTS_NAME, CONFIG_NAME)]
        if any(taken) and not args.overwrite:
            raise JKSPNetError(f"{args.out}: holds weights already; use --overwrite")
        models = [load_model(path) for path in args.weights]
        model, config = models[0]
        model.load_state_dict(average([m.state_dict() for m, _ in models], ratio))
        save_weights(model, args.out, config)
    except JKSPNetError as error:  # WeightsError included: a missing or unfit input
        print(f"average_weights.py: error: {error}", file=sys.stderr)
        return 2
    shares = ", ".join(
        f"{path} x{share:g}" for path, share in zip(args.weights, ratio, strict=True)
    )
    print(f"wrote {args.out}: the average of {shares}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
