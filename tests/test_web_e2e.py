"""The web page end to end, in a real (headless) Chromium against ``python -m jkspnet serve``.

Needs Debian's chromium at /usr/bin/chromium (CI installs it); the Python playwright package drives
it, and no browser is ever downloaded. Fresh (untrained) weights: this checks the page's plumbing
(upload, sizes, re-render, download, errors), never the colours.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from .hostile import AWKWARD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
)
sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("fastapi")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(fresh_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with open(log, "wb") as stream:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jkspnet",
                "serve",
                "--weights",
                str(fresh_weights),
                "--device",
                "cpu",
                "--port",
                str(port),
            ],
            stdout=stream,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server did not answer within 60 s:\n{log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_page_colorizes_rerenders_downloads_and_reports_errors(
    server: str, tmp_path: Path, astronaut: np.ndarray
) -> None:
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut).convert("L").save(photo, quality=90)
    width, height = Image.open(photo).size
    gif = tmp_path / "anim.gif"
    gif.write_bytes(AWKWARD["animated GIF"].make(Image.fromarray(astronaut)))
    notes = tmp_path / "notes.txt"
    notes.write_text("this is not a photo\n")
    outside: list[str] = []
    posts: list[str] = []

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            page.on(
                "request",
                lambda r: (
                    outside.append(r.url)
                    if not r.url.startswith((server, "blob:", "data:"))
                    else None
                ),
            )
            page.on(
                "request",
                lambda r: posts.append(r.url) if r.method == "POST" else None,
            )
            page.goto(server)
            page.wait_for_selector("#model:has-text('JKSPNet')")

            page.set_input_files("#file", str(photo))
            card = page.locator(".card").first
            card.locator(".download:not([hidden])").wait_for(timeout=60_000)
            size = card.locator("img.after").evaluate(
                "img => img.complete && img.naturalWidth ? [img.naturalWidth, img.naturalHeight]"
                " : new Promise(ok => img.onload = () => ok([img.naturalWidth, img.naturalHeight]))"
            )
            assert size == [width, height]
            assert card.get_attribute("data-renders") == "1"
            assert len(posts) == 1

            # the split slider moves the divider
            card.locator(".split").fill("25")
            assert "25%" in card.locator(".compare").evaluate("e => e.style.cssText")

            # saturation re-renders (debounced: one more request)
            first_src = card.locator("img.after").get_attribute("src")
            page.locator("#saturation").fill("90")
            page.wait_for_function(
                "() => document.querySelector('.card').dataset.renders === '2'", timeout=60_000
            )
            assert len(posts) == 2
            assert card.locator("img.after").get_attribute("src") != first_src

            download_link = card.locator(".download")
            assert download_link.get_attribute("download") == "astronaut-colour.png"
            with page.expect_download() as info:
                download_link.click()
            saved = tmp_path / "download.png"
            info.value.save_as(saved)
            assert Image.open(saved).size == (width, height)

            page.set_input_files("#file", str(gif))
            animated = page.locator(".card", has_text="anim.gif")
            animated.locator(".note:not([hidden])").wait_for(timeout=60_000)
            assert animated.locator(".note").inner_text() == "has 2 frames; colorized the first"

            page.set_input_files("#file", str(notes))
            bad = page.locator(".card", has_text="notes.txt")
            bad.locator(".error:not([hidden])").wait_for(timeout=30_000)
            message = bad.locator(".error").inner_text()
            assert "not an image" in message
            assert bad.locator(".download").is_hidden()

            shot = tmp_path / "jkspnet-web.png"
            page.screenshot(path=str(shot), full_page=True)
            shutil.copyfile(shot, "/tmp/jkspnet-web.png")
        finally:
            browser.close()
    assert outside == []
