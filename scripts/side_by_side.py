"""Put photos side by side in one JPEG, as README's and examples/'s before-and-after pictures.

    jkspnet colorize examples/astronaut.jpg -o /tmp/astronaut-colour.jpg
    python scripts/side_by_side.py examples/astronaut.jpg /tmp/astronaut-colour.jpg \
        astronaut.png -o examples/astronaut-before-after.jpg --height 341

Each photo is scaled to the same height (Lanczos) and the panels are separated by a white gap;
greyscale panels are shown as RGB. The output is written atomically, and an existing file is
replaced only with ``--overwrite``, so a picture is never half-written or clobbered by mistake.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

from jkspnet.media.files import write_atomic


def side_by_side(photos: list[Image.Image], height: int, gap: int) -> Image.Image:
    """The photos at ``height`` pixels, left to right, ``gap`` white pixels apart."""
    panels = [
        photo.convert("RGB").resize(
            (max(1, round(photo.width * height / photo.height)), height), Image.LANCZOS
        )
        for photo in photos
    ]
    width = sum(panel.width for panel in panels) + gap * (len(panels) - 1)
    sheet = Image.new("RGB", (width, height), "white")
    left = 0
    for panel in panels:
        sheet.paste(panel, (left, 0))
        left += panel.width + gap
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="+", type=Path, help="photos, left to right")
    parser.add_argument("-o", "--out", type=Path, required=True, help="JPEG to write")
    parser.add_argument("--height", type=int, default=341, help="panel height in pixels (341)")
    parser.add_argument("--gap", type=int, default=5, help="white pixels between panels (5)")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality (90)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    args = parser.parse_args()
    if args.height < 1 or args.gap < 0:
        parser.error("--height must be at least 1 and --gap at least 0")
    photos = []
    for path in args.photos:
        try:
            with Image.open(path) as photo:
                photo.load()  # decode now, so a truncated file fails here with its name
                photos.append(photo.copy())
        except OSError as error:
            sys.exit(f"side_by_side.py: cannot read a photo: {error}")
    sheet = side_by_side(photos, args.height, args.gap)
    try:
        write_atomic(
            args.out,
            lambda stream: sheet.save(stream, format="JPEG", quality=args.quality),
            overwrite=args.overwrite,
        )
    except FileExistsError:
        sys.exit(f"side_by_side.py: {args.out} exists; pass --overwrite to replace it")
    print(f"wrote {args.out}: {sheet.width}x{sheet.height}")


if __name__ == "__main__":
    main()
