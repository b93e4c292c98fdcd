"""The web page end to end, in a real (headless) Chromium against ``python -m jkspnet serve``.

Needs Debian's chromium at /usr/bin/chromium (CI installs it); the Python playwright package drives
it, and no browser is ever downloaded. Mostly fresh (untrained) weights: this checks the page's
plumbing (upload, sizes, re-render, download, errors) and that a colour point steers the colours
where it is put and not across an edge, never how good the colours are. Two of issue 21's items
need colours only trained weights give (a blue sky, a region the network tells apart by its
texture): those run against a second server with the bundled weights.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2lab

from jkspnet.media.hints import (
    Hint,
    HintError,
    Stroke,
    check_hints,
    parse_hints,
    read_hints_file,
    sidecar_of,
)
from jkspnet.nn.weights import bundled_weights

from ..hostile import AWKWARD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DESKTOP = {"width": 1000, "height": 900}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path(os.environ.get("JKSPNET_SCREENSHOTS", "/tmp"))
# Chromium does not hand a multipart body with a file to Playwright: the page's own forms are
# recorded as they are sent, each field's text (or a file's name and size).
RECORD_FORMS = """
window.sentForms = [];
const sendForm = window.fetch;
window.fetch = (url, options) => {
  if (options && options.body instanceof FormData) {
    const fields = {};
    for (const [key, value] of options.body) {
      fields[key] = typeof value === "string" ? value : { name: value.name, size: value.size };
    }
    window.sentForms.push({ url: String(url), fields });
  }
  return sendForm(url, options);
};
"""

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


@contextlib.contextmanager
def serving(weights: Path | None, log: Path) -> Iterator[str]:
    """``python -m jkspnet serve`` on a free port with ``weights`` (None: the bundled ones), its
    URL once it answers; stopped afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "jkspnet", "serve", "--device", "cpu", "--port", str(port)]
    if weights is not None:
        command += ["--weights", str(weights)]
    with open(log, "wb") as stream:
        process = subprocess.Popen(
            command,
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


@pytest.fixture(scope="module")
def server(fresh_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(fresh_weights, tmp_path_factory.mktemp("server") / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def trained_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server with the bundled (trained) weights: for what only trained colours show."""
    if bundled_weights() is None:
        pytest.skip("no bundled weights ship in this checkout")
    with serving(None, tmp_path_factory.mktemp("trained-server") / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Page:
    """A page of the app, recording the forms it sends, requests to elsewhere and GETs that
    failed."""

    def __init__(self, browser, server: str, viewport: dict[str, int] = DESKTOP) -> None:
        self.page = browser.new_page(viewport=viewport)
        self.page.add_init_script(RECORD_FORMS)
        self.outside: list[str] = []
        self.failed_gets: list[str] = []
        local = (server, "blob:", "data:")
        self.page.on(
            "request",
            lambda r: None if r.url.startswith(local) else self.outside.append(r.url),
        )
        self.page.on(
            "response",
            lambda r: (
                self.failed_gets.append(r.url)
                if r.request.method == "GET" and r.status >= 400
                else None
            ),
        )
        self.page.goto(server)
        self.page.wait_for_selector("#model:has-text('JKSPNet')")

    def add(self, path: Path):
        """Add a photo; its card once the first result is in."""
        self.page.set_input_files("#file", str(path))
        card = self.page.locator(".card", has_text=path.name).first
        wait_ready(card, renders=1)
        return card

    def forms(self, path: str = "/api/colorize") -> list[dict]:
        """The fields of each form sent to ``path``, oldest first."""
        sent = self.page.evaluate("window.sentForms")
        return [form["fields"] for form in sent if form["url"].endswith(path)]

    def close(self) -> None:
        self.page.close()
        assert self.outside == []
        assert self.failed_gets == []  # /favicon.ico among them: no 404 on any load


def wait_ready(card, renders: int) -> None:
    """Wait until the card shows its ``renders``-th result and it is the latest."""
    card.page.wait_for_function(
        "([card, n]) => card.dataset.state === 'ready' && Number(card.dataset.renders) >= n",
        arg=[card.element_handle(), renders],
        timeout=60_000,
    )


def last_hints(page: Page) -> list[dict] | None:
    text = page.forms()[-1].get("hints")
    return None if text is None else json.loads(text)


def result_pixels(card) -> np.ndarray:
    """The result the card shows, decoded here from its PNG (exact, not a screenshot)."""
    data_url = card.locator("img.after").evaluate(
        """async img => {
            const blob = await (await fetch(img.src)).blob();
            return await new Promise(ok => {
                const reader = new FileReader();
                reader.onload = () => ok(reader.result);
                reader.readAsDataURL(blob);
            });
        }"""
    )
    png = base64.b64decode(data_url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def click_photo(card, fx: float, fy: float) -> None:
    """Click the photo at a fraction of its shown width and height."""
    compare = card.locator(".compare")
    box = compare.bounding_box()
    compare.click(position={"x": box["width"] * fx, "y": box["height"] * fy})


@pytest.fixture
def two_regions(tmp_path: Path) -> Path:
    """A small grey photo, dark on the left and bright on the right: a strong L edge."""
    pixels = np.full((100, 160), 210, np.uint8)
    pixels[:, :80] = 45
    path = tmp_path / "two-regions.png"
    Image.fromarray(pixels, "L").save(path)
    return path


# ------------------------------------------------------------------------------------ tests
def test_page_colorizes_rerenders_downloads_and_reports_errors(
    browser, server: str, tmp_path: Path, astronaut: np.ndarray
) -> None:
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut).convert("L").save(photo, quality=90)
    width, height = Image.open(photo).size
    gif = tmp_path / "anim.gif"
    gif.write_bytes(AWKWARD["animated GIF"].make(Image.fromarray(astronaut)))
    notes = tmp_path / "notes.txt"
    notes.write_text("this is not a photo\n")
    app = Page(browser, server)
    page = app.page

    card = app.add(photo)
    assert result_pixels(card).shape == (height, width, 3)
    assert len(app.forms()) == 1
    # the weights' own temperature (1 here, as for the bundled 0.6) sits mid-slider, and is sent
    assert page.locator("#saturation").input_value() == "50"
    assert app.forms()[0]["temperature"] == "1"
    # large enough to place points: fitted to the window, not the photo's own 251 px
    shown = card.locator(".compare").bounding_box()
    assert shown["width"] > 1.5 * width
    assert abs(shown["width"] / shown["height"] - width / height) < 0.02

    # the split slider moves the divider; both sides are labelled
    card.locator(".split").fill("25")
    assert "25%" in card.locator(".compare").evaluate("e => e.style.cssText")
    assert card.locator(".before-label").inner_text() == "Before"
    assert card.locator(".after-label").inner_text() == "After"

    # saturation re-renders (debounced: one more request); Download waits for it
    first_src = card.locator("img.after").get_attribute("src")
    page.locator("#saturation").fill("90")
    assert card.locator(".download").get_attribute("aria-disabled") == "true"
    assert card.locator(".download").get_attribute("href") is None  # no stale result saved
    wait_ready(card, renders=2)
    assert len(app.forms()) == 2
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
    wording = bad.locator(".error").inner_text()
    assert "that file is not a picture" in wording and "choose a photo" in wording
    assert "image type" not in wording  # plain words, not a MIME type's
    assert bad.locator(".retry").is_hidden()  # trying again would not help
    assert bad.locator(".download").get_attribute("href") is None

    # every photo is described by its own name
    alts = page.locator(".card img.after, .card img.before").evaluate_all(
        "imgs => imgs.map(i => i.alt)"
    )
    assert len(alts) == len(set(alts)) == 6
    assert "Colorized: astronaut.jpg" in alts and "Original: anim.gif" in alts

    page.screenshot(path=str(tmp_path / "shot.png"), full_page=True)
    shutil.copyfile(tmp_path / "shot.png", SCREENSHOTS / "jkspnet-web.png")
    app.close()


def test_a_colour_point_steers_its_region_and_stops_at_the_edge(
    browser, server: str, two_regions: Path
) -> None:
    app = Page(browser, server)
    card = app.add(two_regions)
    before = result_pixels(card)
    assert last_hints(app) is None

    click_photo(card, 0.25, 0.5)  # in the dark half, whatever the scale on screen
    assert card.locator(".pin").count() == 1
    card.locator(".picker .swatch[title='foliage green']").click()
    assert card.locator(".download").get_attribute("aria-disabled") == "true"
    wait_ready(card, renders=2)
    hints = last_hints(app)
    assert len(hints) == 1 and hints[0]["color"] == "#4f7a3a"
    assert abs(hints[0]["x"] - 40) <= 0.5 and abs(hints[0]["y"] - 50) <= 0.5  # photo pixels

    after = result_pixels(card)
    near = np.abs(after[35:65, 25:55] - before[35:65, 25:55]).mean()
    across = np.abs(after[:, 100:] - before[:, 100:]).mean()  # the bright half, past the edge
    assert near > 5 and across < 2, (near, across)
    green = after[50, 40]
    assert green[1] > green[0] and green[1] > green[2]
    app.close()


def test_the_picker_first_offers_the_colours_likely_at_the_point(
    browser, server: str, two_regions: Path
) -> None:
    app = Page(browser, server)
    card = app.add(two_regions)
    click_photo(card, 0.25, 0.5)
    row = card.locator(".picker .suggested")
    card.page.wait_for_function(
        "row => row.dataset.state === 'ready'", arg=row.element_handle(), timeout=60_000
    )
    asked = app.forms("/api/suggest")
    assert len(asked) == 1 and asked[0]["image"]["name"] == "two-regions.png"
    assert abs(float(asked[0]["x"]) - 40) <= 0.5 and abs(float(asked[0]["y"]) - 50) <= 0.5
    offered = row.locator(".swatch")
    assert 3 <= offered.count() <= 6
    answer = httpx.post(
        f"{server}/api/suggest",
        files={"image": ("p.png", two_regions.read_bytes(), "image/png")},
        data={"x": asked[0]["x"], "y": asked[0]["y"]},
    ).json()["suggestions"]
    assert [offered.nth(i).get_attribute("data-color") for i in range(offered.count())] == [
        one["color"] for one in answer
    ]
    assert offered.first.locator(".share").inner_text().endswith("%")
    # the picker is the first row's: choosing a suggestion colours the point with it
    offered.nth(1).click()
    wait_ready(card, renders=2)
    assert last_hints(app)[0]["color"] == answer[1]["color"]
    assert offered.nth(1).get_attribute("aria-pressed") == "true"
    # the same point again asks nothing more; a moved point asks again
    card.locator(".close-picker").click()
    card.locator(".pin").first.press("Enter")
    assert len(app.forms("/api/suggest")) == 1
    card.locator(".pin").first.press("ArrowRight")
    card.page.wait_for_function(
        "() => window.sentForms.filter(f => f.url.endsWith('/api/suggest')).length === 2",
        timeout=60_000,
    )
    app.close()


def test_points_are_dragged_and_removed(browser, server: str, two_regions: Path) -> None:
    app = Page(browser, server)
    page = app.page
    card = app.add(two_regions)
    click_photo(card, 0.25, 0.25)
    card.locator(".close-picker").click()
    wait_ready(card, renders=2)

    pin = card.locator(".pin").first
    start = pin.bounding_box()
    box = card.locator(".compare").bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.75, steps=5)
    page.mouse.up()
    wait_ready(card, renders=3)
    (hint,) = last_hints(app)
    assert abs(hint["x"] - 120) <= 1 and abs(hint["y"] - 75) <= 1

    # the keyboard moves a focused point, Delete removes it
    pin.focus()
    page.keyboard.press("ArrowLeft")
    wait_ready(card, renders=4)
    assert last_hints(app)[0]["x"] < hint["x"]
    page.keyboard.press("Delete")
    wait_ready(card, renders=5)
    assert card.locator(".pin").count() == 0 and last_hints(app) is None

    # right-click removes one; Clear points removes them all
    for fx in (0.2, 0.4, 0.6):
        click_photo(card, fx, 0.5)
        card.locator(".close-picker").click()
    card.locator(".pin").nth(1).click(button="right")
    assert card.locator(".pin").count() == 2
    card.locator(".clear-points").click()
    assert card.locator(".pin").count() == 0
    wait_ready(card, renders=6)
    assert last_hints(app) is None
    app.close()


def test_uncertainty_overlay_and_reference_photo(
    browser, server: str, two_regions: Path, tmp_path: Path, coffee: np.ndarray
) -> None:
    reference = tmp_path / "coffee.jpg"
    Image.fromarray(coffee).save(reference, quality=90)
    app = Page(browser, server)
    card = app.add(two_regions)

    card.locator(".show-uncertainty").check()
    card.locator(".uncertainty-map:not([hidden])").wait_for(timeout=30_000)
    assert len(app.forms("/api/uncertainty")) == 1
    # the veil covers the most uncertain fifth only (issue 21: it painted all but the sky)
    covered = card.locator(".uncertainty-map").evaluate(
        """canvas => {
            const context = canvas.getContext("2d");
            const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
            let covered = 0;
            for (let i = 3; i < data.length; i += 4) covered += data[i] > 0;
            return covered / (data.length / 4);
        }"""
    )
    assert 0 < covered <= 0.21, covered
    card.locator(".map-opacity").fill("30")
    assert card.locator(".uncertainty-map").evaluate("c => getComputedStyle(c).opacity") == "0.3"
    assert card.locator(".legend").is_visible()
    card.locator(".show-uncertainty").uncheck()
    assert card.locator(".uncertainty-map").is_hidden()

    card.locator(".reference-file").set_input_files(str(reference))
    wait_ready(card, renders=2)
    sent = app.forms()[-1]
    assert sent["reference"]["name"] == "coffee.jpg" and sent["reference_strength"] == "1"
    assert card.locator(".reference-thumb").get_attribute("alt") == "Reference: coffee.jpg"
    card.locator(".remove-reference").click()
    wait_ready(card, renders=3)
    assert "reference" not in app.forms()[-1]
    app.close()


def test_qa_order_reference_strength_and_focus_after_delete(
    browser, server: str, two_regions: Path, tmp_path: Path, coffee: np.ndarray
) -> None:
    """Issue 21's QA: photos chosen together appear in their order; a new reference starts at
    strength 1 whatever the last one had, and the slider reaches the API's 4; after Delete
    removes a point, focus stays on the photo's points."""
    second = tmp_path / "second.png"
    Image.open(two_regions).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(second)
    app = Page(browser, server)
    page = app.page
    page.set_input_files("#file", [str(two_regions), str(second)])
    names = page.locator(".card .name").all_inner_texts()
    assert names == ["two-regions.png", "second.png"]
    card = page.locator(".card", has_text="two-regions.png").first
    wait_ready(card, renders=1)

    reference = tmp_path / "coffee.jpg"
    Image.fromarray(coffee).save(reference, quality=90)
    strength = card.locator(".reference-strength")
    card.locator(".reference-file").set_input_files(str(reference))
    assert strength.get_attribute("max") == "4"
    strength.fill("0")
    card.locator(".remove-reference").click()
    card.locator(".reference-file").set_input_files(str(reference))
    assert strength.input_value() == "1"
    card.locator(".remove-reference").click()

    click_photo(card, 0.2, 0.3)
    card.locator(".close-picker").click()
    click_photo(card, 0.3, 0.7)
    card.locator(".close-picker").click()
    pins = card.locator(".pin")
    pins.first.focus()
    pins.first.press("Delete")
    assert pins.count() == 1
    focused = page.evaluate("document.activeElement.className")
    assert "pin" in focused.split(), focused
    pins.first.press("Delete")
    assert pins.count() == 0
    assert page.evaluate("document.activeElement.classList.contains('compare')")
    app.close()


def test_qa_download_during_a_rerender_the_fold_and_the_swatch_keys(
    browser, server: str, two_regions: Path
) -> None:
    """Issue 21's QA: a Download clicked during a re-render is kept and starts with the new
    result; at 1366x768 the page scrolls to the photo just added, whole; the swatches are one
    Tab stop and the arrows move among them; a phone's help names no right-click or Delete."""
    app = Page(browser, server, {"width": 1366, "height": 768})
    page = app.page
    card = app.add(two_regions)
    box = card.locator(".compare").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= 768, box  # the whole photo in view

    click_photo(card, 0.25, 0.5)
    card.locator(".picker .swatch[title='red']").click()
    assert card.locator(".download").get_attribute("aria-disabled") == "true"
    with page.expect_download(timeout=60_000) as download:
        card.locator(".download").click()
        assert "as soon as the new result is ready" in card.locator(".note").inner_text()
    assert download.value.suggested_filename == "two-regions-colour.png"
    assert last_hints(app)[0]["color"] == "#b52a2a"  # the download came after that render
    assert card.locator(".note").is_hidden()

    card.locator(".pin").first.press("Enter")  # the picker, its first swatch focused
    name = "document.activeElement.getAttribute('aria-label') || document.activeElement.title"
    first = page.evaluate(name)
    page.keyboard.press("ArrowRight")
    second = page.evaluate(name)
    assert first != second and page.evaluate("document.activeElement.classList.contains('swatch')")
    page.keyboard.press("ArrowLeft")
    assert page.evaluate(name) == first
    page.keyboard.press("Tab")  # past all the swatches in one step
    assert "swatch" not in page.evaluate("document.activeElement.className")
    app.close()

    phone = Page(browser, server, PHONE)
    card = phone.add(two_regions)
    help_text = phone.page.locator("#help").inner_text()
    assert "Remove point" in help_text
    assert "right-click" not in help_text and "Delete" not in help_text
    # the picker opens below the photo, not over it or the point just placed; both in view
    click_photo(card, 0.5, 0.8)
    picker = card.locator(".picker").bounding_box()
    photo = card.locator(".compare").bounding_box()
    pin = card.locator(".pin").bounding_box()
    assert picker["y"] >= photo["y"] + photo["height"], (picker, photo)
    assert pin["y"] >= 0 and picker["y"] + picker["height"] <= PHONE["height"] + 1, (pin, picker)
    assert picker["width"] <= PHONE["width"]
    phone.close()


def settle(card) -> None:
    """Wait until the card's result is the latest (each change marks it stale at once)."""
    wait_ready(card, renders=1)


def drag(page, card, start: tuple[float, float], end: tuple[float, float], steps: int = 8) -> None:
    """Drag on the photo between fractions of its shown width and height."""
    box = card.locator(".compare").bounding_box()
    page.mouse.move(box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1])
    page.mouse.down()
    x, y = box["x"] + box["width"] * end[0], box["y"] + box["height"] * end[1]
    page.mouse.move(x, y, steps=steps)
    page.mouse.up()


def test_brush_size_and_undo_redo_over_every_change(
    browser, server: str, two_regions: Path
) -> None:
    """Issue 21 items 4 and 5: a brush stroke drawn on the photo is sent as the API's stroke JSON;
    Size is a point's radius and a stroke's width; undo and redo (keys and buttons) step over
    add, move, recolour, resize and delete of points and strokes."""
    app = Page(browser, server)
    page = app.page
    card = app.add(two_regions)
    assert card.locator(".undo").is_disabled() and card.locator(".redo").is_disabled()

    card.locator(".size").fill("6")
    assert card.locator(".size-value").inner_text() == "6 px"
    click_photo(card, 0.25, 0.5)
    card.locator(".close-picker").click()
    settle(card)
    (point,) = last_hints(app)
    assert point["radius"] == 3  # Size is the spot's width: radius half of it

    card.locator(".tool-brush").click()
    card.locator(".size").fill("10")
    drag(page, card, (0.6, 0.3), (0.9, 0.3))
    assert card.locator(".pin").count() == 1 and card.locator(".handle").count() == 1
    card.locator(".close-picker").click()
    settle(card)
    sent = last_hints(app)
    assert len(sent) == 2 and sent[0] == point
    stroke = sent[1]
    assert set(stroke) == {"points", "color", "width"} and stroke["width"] == 10
    assert len(stroke["points"]) >= 3
    xs = [p[0] for p in stroke["points"]]
    assert abs(xs[0] - 96) <= 1 and abs(xs[-1] - 144) <= 1 and xs == sorted(xs)
    assert all(abs(p[1] - 30) <= 1 for p in stroke["points"])  # photo pixels
    hints = parse_hints(json.dumps(sent))  # what the library reads, and inside the photo
    check_hints(hints, 160, 100)
    assert isinstance(hints[1], Stroke) and hints[1].width == 10
    # the stroke is drawn over the photo where it was painted
    drawn = card.locator("svg.marks polyline.stroke")
    assert drawn.count() == 1 and drawn.get_attribute("stroke-width") == "10"
    # a click in brush mode paints nothing
    click_photo(card, 0.5, 0.8)
    assert card.locator(".pin, .handle").count() == 2

    history = [sent]
    # recolour the stroke: select its handle, a swatch
    card.locator(".handle").click()
    card.locator(".picker .swatch[title='red']").click()
    settle(card)
    assert last_hints(app)[1]["color"] == "#b52a2a"
    history.append(last_hints(app))
    # move the point by dragging its pin; nudge the stroke with an arrow (the whole stroke moves)
    pin = card.locator(".pin").first.bounding_box()
    box = card.locator(".compare").bounding_box()
    page.mouse.move(pin["x"] + pin["width"] / 2, pin["y"] + pin["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.8, steps=4)
    page.mouse.up()
    card.locator(".close-picker").click()
    settle(card)
    assert abs(last_hints(app)[0]["y"] - 80) <= 1
    history.append(last_hints(app))
    card.locator(".handle").press("ArrowDown")
    card.locator(".handle").press("ArrowDown")  # a run of nudges is one step
    settle(card)
    moved = last_hints(app)[1]
    pairs = zip(stroke["points"], moved["points"], strict=True)
    assert all(abs(b[1] - a[1] - 2) < 0.01 for a, b in pairs)
    history.append(last_hints(app))
    # resize the selected stroke, then delete the point
    card.locator(".handle").click()
    card.locator(".size").fill("4")
    card.locator(".close-picker").click()
    settle(card)
    assert last_hints(app)[1]["width"] == 4
    history.append(last_hints(app))
    card.locator(".pin").press("Delete")
    settle(card)
    assert len(last_hints(app)) == 1
    history.append(last_hints(app))

    # Ctrl+Z walks back through every step, Ctrl+Shift+Z forward again; the buttons too
    for expected in reversed(history[:-1]):
        page.keyboard.press("Control+z")
        settle(card)
        assert last_hints(app) == expected
    for expected in history[1:3]:
        page.keyboard.press("Control+Shift+z")
        settle(card)
        assert last_hints(app) == expected
    card.locator(".undo").click()
    settle(card)
    assert last_hints(app) == history[1]
    card.locator(".redo").click()
    settle(card)
    assert last_hints(app) == history[2]
    assert card.locator(".pin").count() == 1 and card.locator(".handle").count() == 1
    # a new change after an undo drops what could be redone
    card.locator(".undo").click()
    card.locator(".tool-point").click()
    click_photo(card, 0.1, 0.1)
    assert card.locator(".redo").is_disabled()
    card.locator(".close-picker").click()
    settle(card)
    assert len(last_hints(app)) == 3
    app.close()


def test_points_save_as_the_cli_sidecar_and_load_back(
    browser, server: str, two_regions: Path, tmp_path: Path
) -> None:
    """Issue 21 item 5: Save points writes NAME.hints.json exactly as the CLI reads it (read
    here by jkspnet.media.hints), and Load points reads such a file back; a bad file is one line
    and changes nothing."""
    app = Page(browser, server)
    page = app.page
    card = app.add(two_regions)
    assert card.locator(".save-hints").is_disabled()
    click_photo(card, 0.25, 0.5)
    card.locator(".picker .swatch[title='foliage green']").click()
    card.locator(".close-picker").click()
    card.locator(".size").fill("12")
    click_photo(card, 0.75, 0.25)
    card.locator(".close-picker").click()
    card.locator(".tool-brush").click()
    drag(page, card, (0.6, 0.7), (0.9, 0.8))
    card.locator(".close-picker").click()
    settle(card)
    sent = last_hints(app)

    with page.expect_download() as info:
        card.locator(".save-hints").click()
    assert info.value.suggested_filename == sidecar_of(two_regions).name == "two-regions.hints.json"
    saved = tmp_path / "saved" / info.value.suggested_filename
    saved.parent.mkdir()
    info.value.save_as(saved)
    hints = read_hints_file(saved)  # the CLI's reader: a sidecar beside the photo is this file
    check_hints(hints, 160, 100)
    assert [h.to_json() for h in hints] == sent
    kinds = [type(h) for h in hints]
    assert kinds == [Hint, Hint, Stroke] and hints[0].hex == "#4f7a3a" and hints[1].radius == 6

    # a sidecar written by the library loads into the page, replacing what was there
    sidecar = tmp_path / "two-regions.hints.json"
    written = [
        Hint(10, 20, (200, 30, 30), radius=4).to_json(),
        Stroke(((100, 50), (150, 50), (150, 90)), (30, 200, 30), 8).to_json(),
    ]
    sidecar.write_text(json.dumps({"hints": written}))
    renders = int(card.get_attribute("data-renders"))
    card.locator(".load-hints").set_input_files(str(sidecar))
    # the page reads the file asynchronously, so the card is still 'ready' with the old result
    # for a moment: wait for the render the loaded points start, not just for a ready card
    wait_ready(card, renders=renders + 1)
    assert last_hints(app) == written
    assert card.locator(".pin").count() == 1 and card.locator(".handle").count() == 1
    assert "1 colour point, 1 brush stroke" in card.locator(".point-count").inner_text()

    # a point outside the photo: one line, nothing changed, nothing sent
    forms = len(app.forms())
    bad = tmp_path / "bad.hints.json"
    bad.write_text(json.dumps([{"x": 500, "y": 20, "color": "#ff0000"}]))
    card.locator(".load-hints").set_input_files(str(bad))
    card.locator(".error:not([hidden])").wait_for()
    assert "bad.hints.json: hint 1 at (500, 20) is outside the photo (160x100)" in (
        card.locator(".error .message").inner_text()
    )
    assert card.locator(".pin").count() == 1 and len(app.forms()) == forms
    bad.write_text(json.dumps([{"x": 5, "y": 5, "color": "#ff0000", "size": 3}]))
    card.locator(".load-hints").set_input_files(str(bad))
    # the page reads the file asynchronously; the previous error stays shown until it has
    sync_api.expect(card.locator(".error .message")).to_contain_text("hint 1: unknown key(s) size")
    with pytest.raises(HintError, match="unknown key"):  # as the CLI refuses it
        read_hints_file(bad)
    assert card.locator(".pin").count() == 1 and len(app.forms()) == forms
    # loading is one undo step
    card.locator(".undo").click()
    settle(card)
    assert last_hints(app) == sent
    app.close()


def test_the_eyedropper_takes_colours_from_the_result_and_the_reference(
    browser, server: str, two_regions: Path, tmp_path: Path
) -> None:
    """Issue 21 item 5: the eyedropper sets the selected point's colour from the result where
    the photo is clicked, or from the reference photo."""
    reference = tmp_path / "halves.png"
    halves = np.zeros((60, 80, 3), np.uint8)
    halves[:, :40] = (200, 40, 40)
    halves[:, 40:] = (40, 60, 200)
    Image.fromarray(halves).save(reference)
    app = Page(browser, server)
    page = app.page
    card = app.add(two_regions)
    click_photo(card, 0.25, 0.5)
    card.locator(".picker .swatch[title='yellow']").click()
    settle(card)
    card.locator(".eyedropper").click()
    assert card.locator(".picker").is_hidden()
    assert "take its colour" in card.locator(".point-count").inner_text()
    pixels = result_pixels(card)
    click_photo(card, 0.8, 0.2)
    expected = "#{:02x}{:02x}{:02x}".format(*pixels[20, 128])
    assert card.locator(".pin").count() == 1  # no new point: the click took a colour
    settle(card)
    assert last_hints(app)[0]["color"] == expected
    assert card.locator(".picker").is_visible()

    card.locator(".reference-file").set_input_files(str(reference))
    settle(card)
    card.locator(".pin").click()
    card.locator(".eyedropper").click()
    thumb = card.locator(".reference-thumb")
    for fx, color in ((0.25, "#c82828"), (0.75, "#283cc8")):
        if not card.locator(".eyedropper[aria-pressed='true']").count():
            card.locator(".eyedropper").click()
        box = thumb.bounding_box()
        thumb.click(position={"x": box["width"] * fx, "y": box["height"] / 2})
        settle(card)
        assert last_hints(app)[0]["color"] == color
    # Escape gives up without a change
    card.locator(".eyedropper").click()
    page.keyboard.press("Escape")
    assert card.locator(".eyedropper").get_attribute("aria-pressed") == "false"
    assert card.locator(".picker").is_visible()
    card.locator(".close-picker").click()
    click_photo(card, 0.5, 0.5)
    assert card.locator(".pin").count() == 2  # a click adds a point again
    app.close()


def test_the_split_divider_is_dragged_on_the_photo(browser, server: str, two_regions: Path):
    """Issue 21's QA "Split": the before/after divider is dragged on the photo itself."""
    app = Page(browser, server)
    page = app.page
    card = app.add(two_regions)
    divider = card.locator(".divider").bounding_box()
    box = card.locator(".compare").bounding_box()
    assert abs(divider["x"] + divider["width"] / 2 - (box["x"] + box["width"] / 2)) <= 2
    page.mouse.move(divider["x"] + divider["width"] / 2, box["y"] + box["height"] * 0.7)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.7, steps=5)
    page.mouse.up()
    assert abs(float(card.locator(".split").input_value()) - 25) <= 1
    moved = card.locator(".divider").bounding_box()
    assert abs(moved["x"] + moved["width"] / 2 - (box["x"] + box["width"] * 0.25)) <= 2
    # the before side is clipped there: the original shows left of the divider only
    clip = card.locator("img.before").evaluate("e => getComputedStyle(e).clipPath")
    assert "75" in clip, clip
    assert card.locator(".pin").count() == 0 and len(app.forms()) == 1  # no point, no render
    click_photo(card, 0.25, 0.5)  # a click on the divider, without a drag, puts a point there
    assert card.locator(".pin").count() == 1
    app.close()


def test_zoom_and_pan_keep_points_on_the_photo(browser, server: str, two_regions: Path) -> None:
    """Issue 21 item 5: zoom (buttons, keys, Ctrl + wheel) and pan (a drag, the wheel) for
    large photos; a click on the zoomed photo puts the point at the photo pixel under it, pins
    keep their size and follow, and nothing re-renders."""
    app = Page(browser, server)
    page = app.page
    card = app.add(two_regions)
    frame = card.locator(".compare").bounding_box()
    pin_size = None
    card.locator(".zoom-in").click()
    card.locator(".zoom-in").click()
    assert card.locator(".zoom-level").inner_text() == "225%"
    shown = card.locator("img.after").bounding_box()
    assert abs(shown["width"] - 2.25 * frame["width"]) < 2
    assert abs(shown["x"] + shown["width"] / 2 - (frame["x"] + frame["width"] / 2)) < 2

    # a click at a quarter of the frame is (25 + 62.5) / 225 of the photo: x = 62.2 of 160
    click_photo(card, 0.25, 0.5)
    card.locator(".close-picker").click()
    settle(card)
    (hint,) = last_hints(app)
    assert abs(hint["x"] - 160 * 87.5 / 225) <= 0.5 and abs(hint["y"] - 50) <= 0.5
    pin = card.locator(".pin").bounding_box()
    pin_size = pin["width"]
    assert abs(pin["x"] + pin["width"] / 2 - (frame["x"] + frame["width"] / 4)) <= 2
    renders = len(app.forms())

    # a drag pans: the photo and its pin move with the pointer, no point is added
    drag(page, card, (0.4, 0.6), (0.6, 0.6), steps=5)
    assert card.locator(".pin").count() == 1
    moved = card.locator(".pin").bounding_box()
    assert abs(moved["x"] - pin["x"] - 0.2 * frame["width"]) <= 2
    assert moved["width"] == pin_size  # pins keep their size at any zoom
    # never past the photo's edge: its left edge stays at or left of the frame's
    drag(page, card, (0.2, 0.5), (0.95, 0.5), steps=5)
    assert card.locator("img.after").bounding_box()["x"] <= frame["x"] + 1
    # the wheel pans; Ctrl + wheel zooms about the pointer; 0 fits the photo again
    before = card.locator("img.after").bounding_box()
    page.mouse.move(frame["x"] + frame["width"] / 2, frame["y"] + frame["height"] / 2)
    page.mouse.wheel(0, 40)
    assert card.locator("img.after").bounding_box()["y"] < before["y"]
    page.keyboard.down("Control")
    page.mouse.wheel(0, -300)
    page.keyboard.up("Control")
    assert card.locator(".zoom-level").inner_text() != "225%"
    card.locator(".compare").focus()
    page.keyboard.press("0")
    assert card.locator(".zoom-level").inner_text() == "100%"
    assert card.locator(".zoom-fit").is_disabled()
    fitted = card.locator("img.after").bounding_box()
    assert abs(fitted["width"] - frame["width"]) < 1 and abs(fitted["x"] - frame["x"]) < 1
    pin = card.locator(".pin").bounding_box()
    assert abs(pin["x"] + pin["width"] / 2 - (frame["x"] + frame["width"] * hint["x"] / 160)) <= 2
    assert len(app.forms()) == renders  # zoom and pan re-render nothing
    assert last_hints(app) == [hint]
    app.close()


def test_a_large_photo_is_edited_on_a_preview_and_downloaded_whole(
    browser, server: str, tmp_path: Path
) -> None:
    """Issue 21's QA "Slow re-render": while editing, the page asks for a screen-sized preview
    (hints still in the photo's own pixels); Download asks once for the full size."""
    pixels = np.full((1600, 2400), 210, np.uint8)
    pixels[:, :1200] = 45
    photo = tmp_path / "large.png"
    Image.fromarray(pixels, "L").save(photo)
    app = Page(browser, server)
    page = app.page
    card = app.add(photo)
    side = int(app.forms()[-1]["preview"])
    frame = card.locator(".compare").bounding_box()
    assert side == max(1024, int(np.ceil(frame["width"])))  # the frame's, at this screen's DPR
    shown = card.locator("img.after").evaluate("i => [i.naturalWidth, i.naturalHeight]")
    assert shown == [side, round(1600 * side / 2400)]
    click_photo(card, 0.25, 0.5)
    card.locator(".close-picker").click()
    settle(card)
    (hint,) = last_hints(app)
    assert abs(hint["x"] - 600) <= 3 and abs(hint["y"] - 800) <= 3  # the photo's own pixels
    pin = card.locator(".pin").bounding_box()
    assert abs(pin["x"] + pin["width"] / 2 - (frame["x"] + frame["width"] / 4)) <= 2
    sent = len(app.forms())
    with page.expect_download(timeout=60_000) as info:
        card.locator(".download").click()
    saved = tmp_path / "large-colour.png"
    info.value.save_as(saved)
    assert Image.open(saved).size == (2400, 1600)
    full = app.forms()[-1]
    assert len(app.forms()) == sent + 1 and "preview" not in full
    assert json.loads(full["hints"]) == [hint]
    with page.expect_download(timeout=60_000):
        card.locator(".download").click()
    assert len(app.forms()) == sent + 1  # the same state: asked once
    app.close()


def test_download_all_saves_every_result_in_one_zip(
    browser, server: str, two_regions: Path, tmp_path: Path
) -> None:
    """Issue 21 item 5: Download all gives one zip of every photo's current result, in the
    page's order and named as each Download names it; clicked during a re-render, it waits."""
    second = tmp_path / "second.png"
    Image.open(two_regions).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(second)
    app = Page(browser, server)
    page = app.page
    assert page.locator("#download-all").is_hidden()
    page.set_input_files("#file", [str(two_regions), str(second)])
    cards = [page.locator(".card", has_text=name).first for name in ("two-regions", "second")]
    for card in cards:
        wait_ready(card, renders=1)
    click_photo(cards[0], 0.25, 0.5)
    cards[0].locator(".picker .swatch[title='red']").click()
    with page.expect_download(timeout=60_000) as info:
        page.locator("#download-all").click()  # during the re-render: it waits for it
        assert "as soon as every new result is ready" in page.locator("#zip-note").inner_text()
    assert info.value.suggested_filename == "jkspnet-colour.zip"
    saved = tmp_path / "all.zip"
    info.value.save_as(saved)
    assert last_hints(app)[0]["color"] == "#b52a2a"  # the zip came after that render
    with zipfile.ZipFile(saved) as archive:
        assert archive.testzip() is None  # every CRC right
        assert archive.namelist() == ["two-regions-colour.png", "second-colour.png"]
        for name, card in zip(archive.namelist(), cards, strict=True):
            with archive.open(name) as member:
                pixels = np.asarray(Image.open(member).convert("RGB")).astype(int)
            assert np.array_equal(pixels, result_pixels(card))
    assert page.locator("#zip-note").is_hidden()
    app.close()


def test_a_server_gone_away_says_so_and_retries(browser, server: str, two_regions: Path) -> None:
    app = Page(browser, server)
    page = app.page
    page.route("**/api/colorize", lambda route: route.abort("connectionrefused"))
    page.set_input_files("#file", str(two_regions))
    card = page.locator(".card").first
    card.locator(".error:not([hidden])").wait_for(timeout=30_000)
    message = card.locator(".error .message").inner_text()
    assert "Cannot reach the JKSPNet server" in message and "Failed to fetch" not in message
    page.unroute("**/api/colorize")
    card.locator(".retry").click()
    wait_ready(card, renders=1)
    assert card.locator(".error").is_hidden()
    app.close()


def test_a_card_is_removed_and_all_are_cleared(browser, server: str, two_regions: Path, tmp_path):
    other = tmp_path / "other.png"
    shutil.copyfile(two_regions, other)
    app = Page(browser, server)
    page = app.page
    assert page.locator("#clear-all").is_hidden()
    app.add(two_regions)
    app.add(other)
    page.get_by_role("button", name="Remove other.png").click()
    assert page.locator(".card").count() == 1
    page.locator("#clear-all").click()
    assert page.locator(".card").count() == 0
    assert page.locator("#clear-all").is_hidden()
    app.close()


def test_focus_rings_and_the_phone_layout(
    browser, server: str, two_regions: Path, astronaut: np.ndarray, tmp_path: Path
) -> None:
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut).convert("L").save(photo, quality=90)

    def outline(page, selector: str) -> float:
        return page.locator(selector).first.evaluate(
            "e => parseFloat(getComputedStyle(e).outlineWidth) *"
            " (getComputedStyle(e).outlineStyle === 'none' ? 0 : 1)"
        )

    app = Page(browser, server)
    page = app.page
    card = app.add(photo)
    # the page scrolled to the new photo, so Tab goes on from there: its first control
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('download')")
    page.locator("#file").focus()  # the file input, inside the drop zone
    assert outline(page, "#drop") >= 2
    card.locator(".split").focus()
    assert outline(page, ".card .split") >= 2
    # a point without a mouse: Enter on the photo, a colour, Escape, arrows
    card.locator(".compare").focus()
    assert outline(page, ".card .compare") >= 2
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.title") == "sky blue"
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.className").startswith("pin")
    page.keyboard.press("ArrowUp")
    wait_ready(card, renders=2)
    (hint,) = last_hints(app)
    assert hint["color"] == "#7ea6d8" and hint["x"] == 125 and hint["y"] < 166
    page.screenshot(path=str(SCREENSHOTS / "jkspnet-web-desktop.png"), full_page=True)
    app.close()

    phone = Page(browser, server, PHONE)
    page = phone.page
    card = phone.add(photo)
    slider = page.locator("#saturation").bounding_box()
    value = page.locator("#saturation-value").bounding_box()
    assert abs((value["y"] + value["height"] / 2) - (slider["y"] + slider["height"] / 2)) < 8
    assert value["x"] >= slider["x"] + slider["width"] - 1  # beside it, not wrapped below
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shown = card.locator(".compare").bounding_box()
    assert shown["width"] > 0.8 * PHONE["width"]
    page.screenshot(path=str(SCREENSHOTS / "jkspnet-web-phone.png"), full_page=True)
    phone.close()


def test_the_api_docs_load_from_here(browser, server: str) -> None:
    page = browser.new_page(viewport=DESKTOP)
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(server) else outside.append(r.url))
    page.goto(f"{server}/docs")
    page.locator(".opblock-summary", has_text="/api/colorize").first.wait_for(timeout=20_000)
    assert page.locator(".opblock-summary", has_text="/api/uncertainty").count() == 1
    page.close()
    assert outside == []  # Swagger UI from this server, not a CDN


def test_the_api_docs_try_it_out_works_as_prefilled(
    browser, server: str, two_regions: Path
) -> None:
    """Issue 21's QA: /docs "Try it out" on /api/colorize, with only a photo chosen and every
    other field as Swagger pre-fills it (an empty reference among them), colorizes the photo."""
    page = browser.new_page(viewport=DESKTOP)
    page.goto(f"{server}/docs")
    block = page.locator(".opblock", has_text="/api/colorize").first
    block.locator(".opblock-summary").click()
    block.get_by_role("button", name="Try it out").click()
    block.locator("input[type=file]").first.set_input_files(str(two_regions))
    filled = dict(
        block.locator("input[placeholder], textarea[placeholder]").evaluate_all(
            "es => es.map(e => [e.placeholder, e.value])"
        )
    )
    health = httpx.get(f"{server}/api/health").json()
    assert filled["size"] == str(health["size"])  # the weights' own: it goes with hints
    assert json.loads(filled["hints"]) == [{"x": 0, "y": 0, "color": "#8a3b2a"}]  # any photo
    assert filled["reference_strength"] == "1"
    block.get_by_role("button", name="Execute").click()
    status = block.locator(".live-responses-table tr.response .response-col_status").first
    status.wait_for(timeout=60_000)
    body = block.locator(".live-responses-table tr.response .response-col_description").inner_text()
    assert status.inner_text().strip() == "200", body
    page.close()


# ------------------------------------------------- issue 21 with the bundled (trained) weights
EXAMPLE = Path(__file__).parents[2] / "examples" / "lighthouse.jpg"


def test_qa_a_red_reference_leaves_the_sky_blue_and_each_strength_leans_further(
    browser, trained_server: str, tmp_path: Path
) -> None:
    """Issue 21's QA "Reference colours spill": a red-flower reference turned the sky red-orange,
    strengths 1 and 2 looked the same and the slider stopped at 2. Here the lighthouse's sky,
    blue in the automatic result, stays blue under a red-only reference; strength 2 changes the
    result visibly from 1; the slider reaches 4 and 4 is what the page sends. The change is
    measured on the tower's brick, where red is plausible: the sky, most of the photo, should
    not move, and how far the brick moves depends on the weights (at strength 1, 0.3 moved it
    34 levels, 0.4, surer of a grey brick, 4.4, 0.5, surer still of this photo it trained on,
    1.8, and 0.6 2.4; from 1 to 2, 16.3, 12.1, 7.5 and 4.6; from 2 to 4, 17.5 with 0.5 and 14.0
    with 0.6, whose brick's red minus blue goes 43.8, 49.8, 60.8, 91.9 from automatic to 4)."""
    rng = np.random.default_rng(0)
    red = np.clip(rng.normal((200, 30, 40), 15, (64, 64, 3)), 0, 255).astype(np.uint8)
    reference = tmp_path / "red-flowers.png"
    Image.fromarray(red).save(reference)
    app = Page(browser, trained_server)
    card = app.add(EXAMPLE)
    sky = (slice(0, 420), slice(0, 130))  # left of the tower, above its gallery (638 x 960)
    brick = (slice(760, 960), slice(130, 500))  # the tower's foot

    def blue_sky(pixels: np.ndarray) -> tuple[float, float]:
        """The share of the sky's pixels more blue than red, and the sky's mean b in LAB."""
        part = pixels[sky]
        return (part[..., 2] > part[..., 0]).mean(), rgb2lab(part.astype(np.uint8))[..., 2].mean()

    automatic = result_pixels(card)
    share, b = blue_sky(automatic)
    assert share > 0.95 and b < -10, (share, b)  # the photo is fit for the check

    strength = card.locator(".reference-strength")
    card.locator(".reference-file").set_input_files(str(reference))
    wait_ready(card, renders=2)
    assert app.forms()[-1]["reference_strength"] == "1"
    at = {1: result_pixels(card)}
    share, b = blue_sky(at[1])
    assert share > 0.95 and b < -10, (share, b)  # the former rule: a red-orange sky, b > 0
    assert np.abs(at[1][brick] - automatic[brick]).mean() > 1  # the reference does change it

    assert strength.get_attribute("max") == "4"
    for renders, value in ((3, 2), (4, 4)):
        strength.fill(str(value))
        wait_ready(card, renders=renders)
        assert app.forms()[-1]["reference_strength"] == str(value)
        at[value] = result_pixels(card)
    step = np.abs(at[2][brick] - at[1][brick]).mean()
    assert step > 3, step  # the former rule: strengths 1 and 2 alike (the whole photo 2.3 apart)
    assert np.abs(at[4][brick] - at[2][brick]).mean() > 1
    # the lean grows with the strength: the brick goes redder each time
    redness = [(at[s][brick][..., 0] - at[s][brick][..., 2]).mean() for s in (1, 2, 4)]
    assert redness[0] < redness[1] < redness[2], redness
    app.close()


@pytest.fixture
def two_textures(tmp_path: Path) -> Path:
    """Issue 21's case: two regions with the same mean L, told apart by their texture only
    (grain on the left, a smooth ramp on the right), 256 x 128."""
    rng = np.random.default_rng(0)
    grain = np.clip(rng.normal(120, 40, (128, 128)), 0, 255)
    ramp = np.tile(np.linspace(60, 180, 128), (128, 1))
    path = tmp_path / "two-textures.png"
    Image.fromarray(np.hstack([grain, ramp]).astype(np.uint8), "L").save(path)
    return path


def test_a_point_leaves_a_far_region_of_another_texture_as_it_was(
    browser, trained_server: str, two_textures: Path
) -> None:
    """Issue 21's "hints stay in their region", on the page: a red point on the grainy half
    colours it; the smooth half, of the same mean L, keeps the automatic colours (the former
    propagation, led by L alone, washed red over it)."""
    app = Page(browser, trained_server)
    card = app.add(two_textures)
    automatic = result_pixels(card)
    click_photo(card, 0.25, 0.5)
    card.locator(".picker .swatch[title='red']").click()
    wait_ready(card, renders=2)
    (hint,) = last_hints(app)
    assert abs(hint["x"] - 64) <= 0.5 and abs(hint["y"] - 64) <= 0.5
    guided = result_pixels(card)
    near = np.abs(guided[40:88, 40:88] - automatic[40:88, 40:88]).mean()
    far = np.abs(guided[:, 150:] - automatic[:, 150:])  # the smooth half, past its edge
    assert near > 20 and far.mean() < 2, (near, far.mean())
    assert np.percentile(far, 99) <= 6  # within a few levels everywhere, not just on average
    app.close()
