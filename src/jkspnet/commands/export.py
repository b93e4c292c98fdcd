"""``jkspnet export``: the network and its weights as one ONNX or TorchScript file."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import JKSPNetError
from ..nn.formats import DEFAULT_OPSET, FORMATS, TORCHSCRIPT_EXTRA
from .options import EXIT_OK, size_type

HELP = "export the network to ONNX or TorchScript"
DESCRIPTION = (
    "Export JKSPNet with its weights to one file. Inputs: l (N,1,H,W) float32, "
    "the L channel minus 50, H and W multiples of 8, and temperature (1,) float32; output: "
    "ab (N,2,H,W) float32 in LAB units. Batch, height and width are dynamic. The weights' "
    "default size and temperature are stored in the file (ONNX metadata_props; TorchScript "
    f"extra file {TORCHSCRIPT_EXTRA}). Use an ONNX file with "
    "'jkspnet colorize --backend onnxruntime --weights FILE.onnx'."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=FORMATS, default="onnx", help="onnx (default) or torchscript"
    )
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    parser.add_argument(
        "--weights",
        metavar="PATH",
        help="weights folder or file (default: the weights bundled with the package)",
    )
    parser.add_argument(
        "--size", type=size_type, help="default input side stored in the file (default: weights')"
    )
    parser.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset, >= 17 ({DEFAULT_OPSET})"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.exists() and not args.overwrite:
        raise JKSPNetError(f"{output}: exists; use --overwrite to replace it")
    if output.is_dir():
        raise JKSPNetError(f"{output}: is a folder; -o takes a file name")
    if args.opset < 17:
        raise JKSPNetError(f"--opset must be at least 17, got {args.opset}")
    from ..nn.export import export  # torch: when the command runs

    path = export(args.format, output, args.weights, size=args.size, opset=args.opset)
    print(f"wrote {path} ({args.format}, {path.stat().st_size / 1e6:.1f} MB)")
    return EXIT_OK
