"""What one photo's work in the server costs in memory: the growth of the process's peak RSS
while a flat greyscale PNG of --side x --side goes through the server's per-photo steps
(decode and prepare, the network, the full-resolution finish and the PNG), per pixel. The
server's ``--max-pixels-in-flight`` bound is stated with this figure (README: server).

    python benchmarks/bench_photo_memory.py --side 3000
"""

from __future__ import annotations

import argparse
import gc
import io
import resource

from PIL import Image
from results import print_and_save

from jkspnet.pipeline.spec import ColorizerSpec
from jkspnet.serve.work import PhotoWork


def png(side: int) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("L", (side, side), 128).save(buffer, format="PNG")
    buffer.seek(0)
    return buffer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=3000)
    parser.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args()
    colorizer = ColorizerSpec(device="cpu", max_pixels=10 * args.side**2).load()
    work = PhotoWork(colorizer, colorizer.max_pixels)

    def one(photo: io.BytesIO) -> None:
        prepared, _ = work.prepare(photo, colorizer.config.size)
        ab = colorizer.predict_ab(prepared.network_input[None], colorizer.config.temperature)
        work.finish(prepared, ab[0])

    one(png(256))  # warm: the network's buffers and the libraries' own
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    one(png(args.side))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    pixels = args.side**2
    print_and_save(
        {
            "pixels": pixels,
            "peak_rss_before_MiB": round(before / 2**20, 1),
            "peak_rss_growth_MiB": round((after - before) / 2**20, 1),
            "bytes_per_pixel": round((after - before) / pixels, 1),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
