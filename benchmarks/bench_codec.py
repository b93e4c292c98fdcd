"""Where a photo's time goes, against the codec floor: stage costs per megapixel, in one run.

Three parts, each alternating its variants round by round (the machine may be shared: medians;
the whole processes run first, while this process is small, since Linux counts a child's peak
RSS from its fork):

  - --folder N: whole processes, as a user runs them: `jkspnet colorize FOLDER -o OUT --format
    jpg` on N greyscale JPEGs of --folder-megapixels against a plain Pillow script that decodes
    and encodes the same photos (same JPEG options): wall and CPU seconds (os.wait4), peak RSS,
    and the ratios. --spin adds the same command with OpenMP's threads spinning as they do by
    default (GOMP_SPINCOUNT set, so the command leaves OMP_WAIT_POLICY alone);
    --baseline-python PY adds the same command from another installation (a venv of the
    previous version: before and after in one run).
  - --latency: one photo of --latency-megapixels in a fresh process, cold, beside a bare
    `python -c "import torch"` and the codec floor for that photo.
  - stages (--megapixels, default 2 12 24; none to skip): for each size and each input kind (a
    greyscale and a colour JPEG made from the example photo, enlarged; the colour one is the
    example colorized by the bundled weights), a warm process times decoding, the
    full-resolution L, the network's input (the antialiased resize), the network, the finish
    (guided upsampling, LAB to 8-bit sRGB, alpha) and encoding as JPEG, PNG and TIFF
    (jkspnet.media.photos.save_photo, atomic), in milliseconds per megapixel, wall and CPU
    (this process's, all threads). The codec floor is decoding plus encoding the same photo as
    RGB with Pillow and the same options, in the same rounds; "x floor" is the whole path over it.

    python benchmarks/bench_codec.py --rounds 3
    python benchmarks/bench_codec.py --megapixels --folder 12 --folder-megapixels 12 --spin
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image
from results import run_process

from jkspnet.media.photos import _SAVE_OPTIONS, load_photo, save_photo

if TYPE_CHECKING:
    from jkspnet import Colorizer

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "lighthouse.jpg"
OUTPUTS = {"jpg": "JPEG", "png": "PNG", "tif": "TIFF"}
FLOOR_SCRIPT = """
import sys
from pathlib import Path
from PIL import Image
options = {"quality": 95, "subsampling": 0}
out = Path(sys.argv[2])
out.mkdir(exist_ok=True)
for path in sorted(Path(sys.argv[1]).iterdir()):
    with Image.open(path) as photo:
        photo.convert("RGB").save(out / path.name, format="JPEG", **options)
"""


def photo_size(megapixels: float, aspect: float = 4 / 3) -> tuple[int, int]:
    width = round((megapixels * 1e6 * aspect) ** 0.5)
    return width, round(width / aspect)


def make_inputs(colorizer: Colorizer, megapixels: list[float], kinds: list[str], work: Path):
    """{(megapixels, kind): path} of JPEGs (quality 90) enlarged from the example photo."""
    with Image.open(EXAMPLE) as example:
        grey = example.convert("L")
    colour = colorizer.colorize(grey)
    paths = {}
    for mp in megapixels:
        for kind in kinds:
            source = grey if kind == "grey" else colour
            path = work / f"{kind}-{mp:g}mp.jpg"
            source.resize(photo_size(mp), Image.Resampling.BICUBIC).save(path, quality=90)
            paths[mp, kind] = path
    return paths


def timed(function: Callable[[], object]) -> tuple[object, float, float]:
    """``function()``, its wall and CPU (process, all threads) seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def one_round(colorizer: Colorizer, path: Path, out: Path) -> dict[str, tuple[float, float]]:
    """Each stage of one photo once, and the codec floor for each output format."""
    import torch.nn.functional as F

    costs: dict[str, tuple[float, float]] = {}
    photo, *costs["decode"] = timed(lambda: load_photo(path))
    lightness, *costs["L"] = timed(lambda: colorizer._lightness(photo.pixels))
    shape = colorizer.prepare(photo).network_input.shape[-2:]  # (square or aspect)
    _, *costs["network input"] = timed(
        lambda: F.interpolate(lightness[None, None], size=shape, mode="bilinear", antialias=True)
    )
    prepared = colorizer.prepare(photo)
    ab, *costs["network"] = timed(lambda: colorizer.predict_ab_list([prepared.network_input]))
    image, *costs["finish"] = timed(lambda: colorizer.finish(prepared, ab[0]))
    for suffix, fmt in OUTPUTS.items():
        target = out / f"out.{suffix}"
        _, *costs[f"encode {suffix}"] = timed(lambda t=target: save_photo(image, t, overwrite=True))

        def floor(target: Path = out / f"floor.{suffix}", fmt: str = fmt) -> None:
            with Image.open(path) as source:
                source.convert("RGB").save(target, format=fmt, **_SAVE_OPTIONS.get(fmt, {}))

        _, *costs[f"floor {suffix}"] = timed(floor)
    return costs


def stages(args, colorizer: Colorizer, work: Path) -> list[dict]:
    paths = make_inputs(colorizer, args.megapixels, args.kinds, work)
    samples: dict[tuple, dict[str, list[tuple[float, float]]]] = {key: {} for key in paths}
    for path in paths.values():  # warm-up: first calls build caches and tables
        one_round(colorizer, path, work)
    for _ in range(args.rounds):
        for key, path in paths.items():
            for stage, cost in one_round(colorizer, path, work).items():
                samples[key].setdefault(stage, []).append(cost)
    rows = []
    for (mp, kind), by_stage in samples.items():
        width, height = photo_size(mp)
        real_mp = width * height / 1e6
        medians = {
            stage: [statistics.median(c[i] for c in costs) * 1000 / real_mp for i in (0, 1)]
            for stage, costs in by_stage.items()
        }
        work_stages = ("decode", "L", "network input", "network", "finish")
        row = {"megapixels": mp, "kind": kind, "ms_per_mp": medians, "x_floor": {}}
        for suffix in OUTPUTS:
            whole = [sum(medians[s][i] for s in (*work_stages, f"encode {suffix}")) for i in (0, 1)]
            floor = medians[f"floor {suffix}"]
            row["x_floor"][suffix] = [whole[i] / floor[i] for i in (0, 1)]
        rows.append(row)
        print(f"\n{mp:g} MP {kind} ({width}x{height}), ms per MP, median of {args.rounds}:")
        print(f"  {'stage':<16}{'wall':>9}{'CPU':>9}")
        for stage, (wall, cpu) in medians.items():
            print(f"  {stage:<16}{wall:>9.2f}{cpu:>9.2f}")
        for suffix, (wall, cpu) in row["x_floor"].items():
            print(f"  whole path to {suffix}: {wall:.2f}x the codec floor (CPU {cpu:.2f}x)")
    return rows


def folder(args, work: Path) -> dict:
    source = work / "folder"
    source.mkdir()
    with Image.open(EXAMPLE) as example:
        grey = example.convert("L").resize(photo_size(args.folder_megapixels), Image.BICUBIC)
    for index in range(args.folder):
        grey.save(source / f"photo{index:03d}.jpg", quality=90)
    colorize = ["-m", "jkspnet", "colorize", str(source), "--format", "jpg", "-q", "-o"]
    variants = {
        "decode + encode (Pillow)": [sys.executable, "-c", FLOOR_SCRIPT, str(source)],
        "jkspnet colorize --format jpg": [sys.executable, *colorize],
    }
    if args.spin:  # OpenMP's own default, which `jkspnet colorize` turns off
        variants["the same, OpenMP threads spinning"] = [sys.executable, *colorize]
    if args.baseline_python:  # another installation (e.g. the previous release's venv)
        variants["the same, --baseline-python"] = [args.baseline_python, *colorize]
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
    for round_ in range(args.rounds):
        for name, command in variants.items():
            out = work / "folder-out"
            shutil.rmtree(out, ignore_errors=True)
            spinning = {"GOMP_SPINCOUNT": "300000"} if "spinning" in name else None
            samples[name].append(run_process([*command, str(out)], spinning))
            wall, cpu, rss = samples[name][-1]
            print(f"round {round_ + 1}: {name}: {wall:.2f} s, CPU {cpu:.2f} s, {rss:.0f} MiB")
    medians = {
        name: [statistics.median(s[i] for s in values) for i in range(3)]
        for name, values in samples.items()
    }
    floor = medians["decode + encode (Pillow)"]
    print(f"{args.folder} greyscale JPEGs of {args.folder_megapixels:g} MP, {args.rounds} rounds:")
    for name, (wall, cpu, rss) in medians.items():
        print(
            f"  {name:<32}{wall:8.2f} s (CPU {cpu:.2f} s, peak RSS {rss:.0f} MiB): "
            f"{wall / floor[0]:.2f}x the floor (CPU {cpu / floor[1]:.2f}x)"
        )
    return {"photos": args.folder, "megapixels": args.folder_megapixels, "samples": samples}


def latency(args, work: Path) -> dict:
    """One photo in a fresh process, against a bare ``import torch`` and the codec floor."""
    path = work / "one.jpg"
    with Image.open(EXAMPLE) as example:
        grey = example.convert("L").resize(photo_size(args.latency_megapixels), Image.BICUBIC)
    grey.save(path, quality=90)
    (work / "one").mkdir()
    variants = {
        "decode + encode (Pillow)": [sys.executable, "-c", FLOOR_SCRIPT, str(work / "one")],
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
        "jkspnet colorize one.jpg": [
            sys.executable, "-m", "jkspnet", "colorize", str(path), "-q", "--overwrite", "-o",
            str(work / "one-colour.jpg"),
        ],
    }  # fmt: skip
    shutil.copy(path, work / "one" / path.name)
    variants["decode + encode (Pillow)"].append(str(work / "one-floor"))
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, command in variants.items():
            samples[name].append(run_process(command))
    megapixels = args.latency_megapixels
    print(f"\none {megapixels:g} MP greyscale JPEG, fresh processes, median of {args.rounds}:")
    for name, values in samples.items():
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        print(f"  {name:<32}{wall:8.2f} s (CPU {cpu:.2f} s)")
    return {"megapixels": args.latency_megapixels, "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, nargs="*", default=[2, 12, 24])
    kinds = ["grey", "colour"]
    parser.add_argument("--kinds", nargs="+", choices=kinds, default=kinds)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--folder", type=int, default=0, help="also N photos, whole processes")
    parser.add_argument("--folder-megapixels", type=float, default=12)
    parser.add_argument(
        "--baseline-python", help="with --folder: also this interpreter's jkspnet, alternately"
    )
    parser.add_argument(
        "--spin",
        action="store_true",
        help="with --folder: also with OpenMP's threads spinning as by default (GOMP_SPINCOUNT)",
    )
    parser.add_argument(
        "--latency", action="store_true", help="also one photo in a fresh process, cold"
    )
    parser.add_argument("--latency-megapixels", type=float, default=2)
    parser.add_argument("--out", default=None, help="write results as JSON here")
    args = parser.parse_args()
    result: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="bench-codec-") as work:
        # Whole processes first, while this one is small: Linux counts a child's peak RSS from
        # its fork, so they must not start from a process holding torch and the weights.
        if args.folder:
            result["folder"] = folder(args, Path(work))
        if args.latency:
            result["latency"] = latency(args, Path(work))
        if args.megapixels:
            import torch

            from jkspnet import Colorizer

            colorizer = Colorizer.from_pretrained()
            threads = torch.get_num_threads()
            print(f"\n{colorizer.device}, {colorizer.precision}, torch {torch.__version__}, "
                  f"threads {threads}")  # fmt: skip
            result.update(torch=torch.__version__, threads=threads)
            result["stages"] = stages(args, colorizer, Path(work))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
