"""The page's re-render after a new colour point, as a person sees it: from the click on the photo
to the updated picture shown, in headless Chromium against ``jkspnet serve`` (bundled weights,
CPU), on the example photo enlarged to --size (12 MP by default).

Two paths, --rounds points each, medians reported: the page as it is (a screen-sized preview
while editing, issue 21) and the page asking for the full size every time, as before (the
``preview`` field removed from its requests). Needs Debian's chromium and playwright.

    python benchmarks/bench_page.py --size 4240x2832 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image
from playwright.sync_api import sync_playwright
from results import print_and_save

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "lighthouse.jpg"
CHROMIUM = "/usr/bin/chromium"
# the page's requests without their preview field: the full-size path, as before issue 21
FULL_SIZE = """
const send = window.fetch;
window.fetch = (url, options) => {
  const form = options && options.body;
  if (window.fullSize && form instanceof FormData) form.delete("preview");
  return send(url, options);
};
"""


def serve(port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "jkspnet", "serve", "--device", "cpu", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("jkspnet serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4240x2832", help="WxH of the photo")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    folder = Path(tempfile.mkdtemp(prefix="bench-page-"))
    photo = folder / "photo.jpg"
    grey = Image.open(EXAMPLE).convert("L").resize((width, height), Image.Resampling.BICUBIC)
    grey.save(photo, quality=90)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = serve(port)
    result: dict[str, object] = {"size": args.size, "megapixels": round(width * height / 1e6, 1)}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM if os.path.exists(CHROMIUM) else None,
                args=["--headless", "--no-sandbox", "--disable-gpu"],
            )
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.add_init_script(FULL_SIZE)
            page.goto(f"http://127.0.0.1:{port}/")
            page.set_input_files("#file", str(photo))
            card = page.locator(".card").first
            done = "c => c.dataset.state === 'ready' && Number(c.dataset.renders) >= {}"
            page.wait_for_function(done.format(1), arg=card.element_handle(), timeout=120_000)
            renders = 1
            box = card.locator(".compare").bounding_box()
            for name, full, y in (("preview", False, 0.4), ("full", True, 0.7)):
                page.evaluate(f"window.fullSize = {str(full).lower()}")
                times = []
                for i in range(args.rounds + 1):  # the first one warms
                    card.locator(".size").fill("0")
                    x = box["width"] * (0.2 + 0.13 * i)
                    start = time.perf_counter()
                    card.locator(".compare").click(position={"x": x, "y": box["height"] * y})
                    renders += 1
                    try:
                        page.wait_for_function(
                            done.format(renders), arg=card.element_handle(), timeout=120_000
                        )
                    except Exception:
                        state = card.evaluate("c => [c.dataset.state, c.dataset.renders]")
                        print(state, card.locator(".error").inner_text(), file=sys.stderr)
                        raise
                    # the picture decoded and shown
                    card.locator("img.after").evaluate("i => i.decode()")
                    times.append(time.perf_counter() - start)
                    card.locator(".close-picker").click()
                result[f"{name}_s"] = round(statistics.median(times[1:]), 3)
                result[f"{name}_shown_px"] = card.locator("img.after").evaluate(
                    "i => i.naturalWidth * i.naturalHeight"
                )
            result["debounce_s"] = 0.25  # the page waits this long after a change: included
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print_and_save(result, args.out)


if __name__ == "__main__":
    main()
