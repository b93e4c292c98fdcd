"""The web API (``jkspnet serve``): success, every error code, health, OpenAPI, concurrency.

Fresh (untrained) weights: these tests check plumbing (sizes, codes, batching), never colours.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from fastapi.testclient import TestClient

from jkspnet import Colorizer
from jkspnet.cli import main
from jkspnet.serve.app import create_app

from ..hostile import AWKWARD, BAD, EDITS, bomb_png, mutate, seed_photos


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server_colorizer(fresh_weights: Path) -> Colorizer:
    return Colorizer.from_pretrained(fresh_weights, device="cpu")


@pytest.fixture(scope="module")
def client(server_colorizer: Colorizer, fresh_weights: Path) -> Iterator[TestClient]:
    app = create_app(server_colorizer, max_bytes=2_000_000)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def astronaut_jpeg(astronaut: np.ndarray) -> bytes:
    return jpeg_bytes(astronaut)


def post(client: TestClient, data: bytes, name="photo.jpg", kind="image/jpeg", **fields):
    return client.post(
        "/api/colorize",
        files={"image": (name, data, kind)},
        data={k: str(v) for k, v in fields.items()},
    )


def assert_error(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["error"]
    assert message and "\n" not in message and "Traceback" not in message
    assert not _PATH.search(message) and "jkspnet-" not in message, message  # no server paths
    return message


_PATH = re.compile(r"(/[\w.-]+){2,}")  # /tmp/x, /home/me/weights...: never shown to a client


# ------------------------------------------------------------------------------------ success
def test_colorize_returns_png_of_the_photo_size(client, astronaut, astronaut_jpeg):
    response = post(client, astronaut_jpeg)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    result = Image.open(io.BytesIO(response.content))
    assert result.format == "PNG"
    assert result.size == (astronaut.shape[1], astronaut.shape[0])
    assert result.mode == "RGB"


def test_rgba_grey_and_options_keep_the_size(client, astronaut):
    rgba = Image.fromarray(astronaut).convert("RGBA")
    rgba.putalpha(128)
    response = post(client, png_bytes(rgba), "a.png", "image/png", temperature=0.4, size=64)
    assert response.status_code == 200, response.text
    result = Image.open(io.BytesIO(response.content))
    assert result.size == rgba.size and result.mode == "RGBA"
    assert np.asarray(result)[..., 3].min() == 128
    grey = png_bytes(Image.fromarray(astronaut).convert("L").resize((97, 61)))
    response = post(client, grey, "g.bin", "application/octet-stream")  # sniffed by decoding
    assert response.status_code == 200, response.text
    assert Image.open(io.BytesIO(response.content)).size == (97, 61)


def test_temperature_changes_the_result(client, astronaut_jpeg):
    plain = post(client, astronaut_jpeg, temperature=1.0).content
    vivid = post(client, astronaut_jpeg, temperature=0.2).content
    assert plain != vivid


# ------------------------------------------------------------------------------------- errors
def test_not_an_image_is_400(client):
    message = assert_error(post(client, b"hello, I am not a photo", "x.jpg"), 400)
    assert "not" in message.lower()
    assert_error(post(client, b"\x89PNG\r\n\x1a\n" + b"\0" * 50, "t.png", "image/png"), 400)
    assert_error(post(client, b"", "empty.jpg"), 400)
    no_field = client.post("/api/colorize", files={"photo": ("a.jpg", b"123", "image/jpeg")})
    assert_error(no_field, 400)


def test_declared_non_image_type_is_415(client, astronaut_jpeg):
    message = assert_error(post(client, b"just text", "notes.txt", "text/plain"), 415)
    assert message.startswith("that file is not a picture") and "choose a photo" in message
    assert_error(post(client, b"%PDF-1.4", "doc.pdf", "application/pdf"), 415)
    raw = client.post(
        "/api/colorize", content=astronaut_jpeg, headers={"content-type": "image/jpeg"}
    )
    assert_error(raw, 415)


def test_too_many_bytes_is_413(client):
    big = b"\xff" * 2_100_000
    assert_error(post(client, big), 413)

    def chunks():  # no Content-Length: counted while reading
        boundary = b"xyz"
        yield b"--" + boundary + b'\r\nContent-Disposition: form-data; name="image"; '
        yield b'filename="big.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        for _ in range(40):
            yield b"\xff" * 65536
        yield b"\r\n--" + boundary + b"--\r\n"

    response = client.post(
        "/api/colorize",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert_error(response, 413)


def test_a_reference_over_the_byte_limit_is_413(client, astronaut_jpeg):
    files = {
        "image": ("a.jpg", astronaut_jpeg, "image/jpeg"),
        "reference": ("r.jpg", b"\xff" * 2_100_000),
    }
    assert "reference photo is over" in assert_error(client.post("/api/colorize", files=files), 413)


def test_too_many_pixels_is_413_before_decoding(client):
    started = time.perf_counter()
    message = assert_error(post(client, bomb_png(60_000, 60_000), "bomb.png", "image/png"), 413)
    assert "3,600,000,000 pixels" in message
    assert time.perf_counter() - started < 5  # never decoded 3.6 gigapixels


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", "warm"),
        ("temperature", "0"),
        ("temperature", "-1"),
        ("temperature", "nan"),
        ("temperature", "1e9"),
        ("size", "abc"),
        ("size", "100"),
        ("size", "0"),
        ("size", "4096"),
    ],
)
def test_bad_parameters_are_422(client, astronaut_jpeg, field, value):
    message = assert_error(post(client, astronaut_jpeg, **{field: value}), 422)
    assert field in message


# ------------------------------------------------------------------ hints, reference, uncertainty
def two_regions(width: int = 96, height: int = 64) -> bytes:
    """A grey photo: a dark left half and a bright right half, split by a strong L edge."""
    pixels = np.full((height, width), 200, np.uint8)
    pixels[:, : width // 2] = 40
    return png_bytes(Image.fromarray(pixels, "L"))


def rgb_of(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(int)


def test_a_hint_colours_its_region_and_stops_at_the_edge(client):
    photo = two_regions()
    plain = rgb_of(post(client, photo, "two.png", "image/png"))
    hints = json.dumps([{"x": 20, "y": 30, "color": "#20a040"}])
    hinted = rgb_of(post(client, photo, "two.png", "image/png", hints=hints))
    assert hinted.shape == plain.shape == (64, 96, 3)
    near = np.abs(hinted[20:40, 10:30] - plain[20:40, 10:30]).mean()
    far = np.abs(hinted[:, 60:] - plain[:, 60:]).mean()
    assert near > 5 and far < 2, (near, far)
    green = hinted[30, 20]
    assert green[1] > green[0] and green[1] > green[2]
    empty = rgb_of(post(client, photo, "two.png", "image/png", hints="[]"))
    assert np.array_equal(empty, plain)  # no hints: the automatic (batched) path


def test_a_preview_is_smaller_with_the_hints_where_they_were_put(client):
    """Issue 21: a page's preview while editing: at most ``preview`` pixels a side, the photo's
    own size in a header, and hints (points and strokes, in the photo's own pixels) steering the
    same place of the smaller result."""
    photo = two_regions(384, 256)
    full = post(client, photo, "two.png", "image/png")
    assert full.headers["x-jkspnet-photo-size"] == "384x256"
    plain = rgb_of(post(client, photo, "two.png", "image/png", preview=96))
    assert plain.shape == (64, 96, 3)
    hints = json.dumps(
        [
            {"x": 80, "y": 120, "color": "#20a040", "radius": 8},
            {"points": [[40, 200], [150, 200]], "color": "#20a040", "width": 16},
        ]
    )
    response = post(client, photo, "two.png", "image/png", hints=hints, preview=96)
    assert response.headers["x-jkspnet-photo-size"] == "384x256"
    hinted = rgb_of(response)
    assert hinted.shape == (64, 96, 3)
    near = np.abs(hinted[20:40, 10:30] - plain[20:40, 10:30]).mean()  # (80, 120) / 4
    far = np.abs(hinted[:, 60:] - plain[:, 60:]).mean()
    assert near > 5 and far < 2, (near, far)
    # a photo smaller than the preview comes back whole; hints are checked in its own pixels
    assert rgb_of(post(client, photo, "two.png", "image/png", preview=4000)).shape == (256, 384, 3)
    outside = json.dumps(
        [{"x": 300, "y": 250, "color": "#20a040"}, {"x": 390, "y": 5, "color": "#fff"}]
    )
    words = assert_error(
        post(client, photo, "two.png", "image/png", hints=outside, preview=96), 422
    )
    assert words.startswith("hints: hint 2 at (390, 5) is outside the photo (384x256")
    for bad in ("12", "big", "100.5"):
        assert "preview" in assert_error(
            post(client, photo, "t.png", "image/png", preview=bad), 422
        )


def test_hints_are_in_the_photo_as_displayed(client, astronaut):
    rotated = AWKWARD["EXIF-rotated JPEG"].make(Image.fromarray(astronaut))
    height, width = astronaut.shape[:2]  # displayed turned a quarter: width and height swap
    inside = json.dumps([{"x": height - 1, "y": width - 1, "color": "#8a3b2a"}])
    response = post(client, rotated, "r.jpg", hints=inside)
    assert Image.open(io.BytesIO(response.content)).size == (height, width), response.text
    outside = json.dumps([{"x": 5, "y": height - 10, "color": "#8a3b2a"}])  # in the file
    assert "outside the photo" in assert_error(post(client, rotated, "r.jpg", hints=outside), 422)


@pytest.mark.parametrize(
    ("hints", "words"),
    [
        ('[{"x": 1, "y": 2', "not valid JSON"),
        ('{"x": 1, "y": 2, "color": "#ffffff"}', "list"),
        ('[{"x": 1, "y": 2, "color": "red"}]', "colour"),
        ('[{"x": 1, "y": 2}]', "color"),
        ('[{"x": "left", "y": 2, "color": "#ffffff"}]', "x"),
        ('[{"x": 1, "y": 2, "color": "#ffffff", "radius": -3}]', "radius"),
        ('[{"x": 9999, "y": 2, "color": "#ffffff"}]', "outside the photo"),
    ],
)
def test_bad_hints_are_a_one_line_422(client, astronaut_jpeg, hints, words):
    message = assert_error(post(client, astronaut_jpeg, hints=hints), 422)
    assert words in message and message.startswith("hints: ")


def test_a_reference_photo_lends_its_palette(client, astronaut, coffee):
    grey = jpeg_bytes(np.asarray(Image.fromarray(astronaut).convert("RGB").convert("L")))
    plain = rgb_of(post(client, grey))
    files = {"image": ("g.jpg", grey, "image/jpeg"), "reference": ("c.jpg", jpeg_bytes(coffee))}
    guided = rgb_of(client.post("/api/colorize", files=files))
    assert guided.shape == plain.shape and not np.array_equal(guided, plain)
    none = client.post("/api/colorize", files=files, data={"reference_strength": "0"})
    assert rgb_of(none).shape == plain.shape


@pytest.mark.parametrize(
    ("reference", "status", "words"),
    [
        (b"not a photo at all", 400, "not a usable reference photo"),
        (b"", 400, "empty file"),
        ("grey", 422, "reference photo: has no colour (grey); choose a colour photo as the"),
    ],
)
def test_a_bad_reference_is_a_clean_4xx(
    client, astronaut_jpeg, astronaut, reference, status, words
):
    if reference == "grey":
        reference = png_bytes(Image.fromarray(astronaut).convert("L"))
    files = {"image": ("a.jpg", astronaut_jpeg, "image/jpeg"), "reference": ("r.png", reference)}
    assert words in assert_error(client.post("/api/colorize", files=files), status)


@pytest.mark.parametrize("value", ["-1", "much", "inf", "99"])
def test_a_bad_reference_strength_is_422(client, astronaut_jpeg, coffee, value):
    files = {
        "image": ("a.jpg", astronaut_jpeg, "image/jpeg"),
        "reference": ("c.jpg", jpeg_bytes(coffee)),
    }
    response = client.post("/api/colorize", files=files, data={"reference_strength": value})
    assert "reference_strength" in assert_error(response, 422)


def test_an_empty_reference_field_counts_as_absent(client, astronaut_jpeg):
    """Issue 21's QA: /docs' "Try it out" sends an empty reference field; it is no reference."""
    plain = post(client, astronaut_jpeg)
    as_text = post(client, astronaut_jpeg, reference="")
    files = {"image": ("a.jpg", astronaut_jpeg, "image/jpeg"), "reference": ("", b"")}
    as_file = client.post("/api/colorize", files=files)
    for response in (as_text, as_file):
        assert response.status_code == 200, response.text
        assert np.array_equal(rgb_of(response), rgb_of(plain))


def test_the_docs_examples_work_on_any_photo(client, server_colorizer):
    """/docs pre-fills each field with its example: the weights' size and temperature, a hint at
    pixel (0, 0) and strength 1, together, colorize even a 1x1 photo."""
    spec = client.get("/openapi.json").json()
    fields = spec["paths"]["/api/colorize"]["post"]["requestBody"]["content"][
        "multipart/form-data"
    ]["schema"]["properties"]
    examples = {name: field["example"] for name, field in fields.items() if "example" in field}
    assert examples["size"] == server_colorizer.config.size
    tiny = png_bytes(Image.new("L", (1, 1), 90))
    response = post(client, tiny, "tiny.png", "image/png", **examples)
    assert response.status_code == 200, response.text
    assert Image.open(io.BytesIO(response.content)).size == (1, 1)


def test_size_with_hints_is_refused(client, astronaut_jpeg):
    hints = json.dumps([{"x": 5, "y": 5, "color": "#ffffff"}])
    assert "size" in assert_error(post(client, astronaut_jpeg, hints=hints, size=64), 422)


def test_uncertainty_is_a_grey_png_of_the_photo_size(client, astronaut):
    rotated = AWKWARD["EXIF-rotated JPEG"].make(Image.fromarray(astronaut))
    response = client.post("/api/uncertainty", files={"image": ("r.jpg", rotated, "image/jpeg")})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    uncertainty = Image.open(io.BytesIO(response.content))
    assert uncertainty.mode == "L" and uncertainty.size == (astronaut.shape[0], astronaut.shape[1])
    bad = client.post("/api/uncertainty", files={"image": ("x.jpg", b"nope", "image/jpeg")})
    assert "not a usable photo" in assert_error(bad, 400)
    assert_error(client.post("/api/uncertainty", files={"photo": ("x.jpg", b"1")}), 400)
    assert_error(
        client.post("/api/uncertainty", content=b"x", headers={"content-type": "image/png"}), 415
    )


# ------------------------------------------------------------------------- health and openapi
def test_health(client, fresh_weights):
    health = client.get("/api/health").json()
    assert health["model"] == "JKSPNet"
    assert health["device"] == "cpu" and health["precision"] in {"fp32", "bf16"}
    assert len(health["weights_sha256"]) == 64
    recorded = json.loads((fresh_weights / "config.json").read_text())["sha256"]
    assert health["weights_sha256"] == recorded
    by_file = Colorizer.from_pretrained(fresh_weights / "model.safetensors", device="cpu")
    assert by_file.config.sha256 == health["weights_sha256"]


def test_weights_without_config_have_no_sha(tmp_path, fresh_weights):
    lone = tmp_path / "other.safetensors"
    lone.write_bytes((fresh_weights / "model.safetensors").read_bytes())
    assert Colorizer.from_pretrained(lone, device="cpu").config.sha256 is None


def test_openapi_and_page(client):
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/api/colorize"]["post"]
    schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"image", "temperature", "size", "hints", "reference", "reference_strength"} <= set(
        schema["properties"]
    )
    assert "image/png" in operation["responses"]["200"]["content"]
    assert {"400", "413", "415", "422", "503"} <= set(operation["responses"])
    assert "/api/health" in spec["paths"]
    uncertainty = spec["paths"]["/api/uncertainty"]["post"]
    assert "image/png" in uncertainty["responses"]["200"]["content"]
    page = client.get("/")
    assert page.status_code == 200 and "JKSPNet" in page.text
    for asset in ("app.js", "style.css"):
        assert client.get(f"/static/{asset}").status_code == 200
        assert f"/static/{asset}" in page.text
    for module in ("common.js", "render.js", "marks.js", "picker.js", "view.js", "zip.js"):
        served = client.get(f"/static/{module}")  # app.js's modules, as a browser loads them
        assert served.status_code == 200 and served.headers["content-type"].startswith(
            "text/javascript"
        )
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from outside
    assert client.get("/static/..%2Fserver.py").status_code == 404


def test_docs_and_favicon_are_served_from_here(client):
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert "http" not in docs.text  # its script and style come from this server, not a CDN
    for asset in re.findall(r'(?:src|href)="(/[^"]+)"', docs.text):
        assert client.get(asset).status_code == 200, asset
    assert client.get("/docs/..%2Fcore.py").status_code == 404
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert Image.open(io.BytesIO(icon.content)).format == "ICO"


def test_serve_without_web_extra(monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_fastapi(name, *args, **kwargs):
        if name.split(".")[0] in {"fastapi", "uvicorn", "multipart"}:
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_fastapi)
    assert main(["serve", "--port", "8123"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: jkspnet serve needs the web extra: pip install 'jkspnet[web]'"]


# ------------------------------------------------------------------------------- concurrency
class SlowPredict:
    """Wraps predict_ab: counts calls and batch sizes, and takes ``delay`` seconds."""

    def __init__(self, colorizer: Colorizer, delay: float) -> None:
        self.inner = colorizer.predict_ab
        self.delay = delay
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, batch, temperature=None):
        with self.lock:
            self.calls.append(len(batch))
        time.sleep(self.delay)
        return self.inner(batch, temperature)


def fire(client: TestClient, data: bytes, count: int) -> list:
    responses: list = [None] * count
    barrier = threading.Barrier(count)

    def one(index: int) -> None:
        barrier.wait()
        responses[index] = post(client, data)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return responses


def test_concurrent_requests_are_batched(fresh_weights, astronaut, monkeypatch):
    colorizer = Colorizer.from_pretrained(fresh_weights, device="cpu")
    slow = SlowPredict(colorizer, delay=0.3)
    monkeypatch.setattr(colorizer, "predict_ab", slow)
    app = create_app(colorizer, workers=1, queue_size=16, max_batch=8, batch_wait_s=0.02)
    small = jpeg_bytes(astronaut[:64, :80])
    with TestClient(app, raise_server_exceptions=False) as test_client:
        responses = fire(test_client, small, 8)
    assert [r.status_code for r in responses] == [200] * 8
    for response in responses:
        assert Image.open(io.BytesIO(response.content)).size == (80, 64)
    assert sum(slow.calls) == 8
    assert len(slow.calls) < 8, slow.calls  # several photos shared a forward pass
    assert max(slow.calls) > 1


def test_full_queue_is_503(fresh_weights, astronaut, monkeypatch):
    colorizer = Colorizer.from_pretrained(fresh_weights, device="cpu")
    monkeypatch.setattr(colorizer, "predict_ab", SlowPredict(colorizer, delay=1.0))
    app = create_app(colorizer, workers=1, queue_size=1, max_batch=1)
    small = jpeg_bytes(astronaut[:32, :40])
    with TestClient(app, raise_server_exceptions=False) as test_client:
        responses = fire(test_client, small, 6)
        codes = sorted(r.status_code for r in responses)
        assert set(codes) == {200, 503}, codes
        assert codes.count(200) >= 2
        busy = next(r for r in responses if r.status_code == 503)
        assert "busy" in assert_error(busy, 503)
        assert busy.headers["retry-after"] == "1"
        assert app.state.counters["in_flight"] == 0  # every slot was given back
        assert post(test_client, small).status_code == 200


# ------------------------------------------------------------------------- hostile uploads
@pytest.mark.parametrize("case", BAD.values(), ids=list(BAD))
def test_a_bad_photo_is_a_clean_4xx(client, astronaut, case):
    data = case.make(Image.fromarray(astronaut))
    message = assert_error(post(client, data, case.name, "application/octet-stream"), case.status)
    assert case.reason in message
    assert "bytes not processed" not in message and "image file is" not in message  # PIL's words


@pytest.mark.parametrize("case", AWKWARD.values(), ids=list(AWKWARD))
def test_an_awkward_photo_comes_back_right(client, astronaut, case):
    data = case.make(Image.fromarray(astronaut))
    response = post(client, data, case.name, "application/octet-stream", size=16)
    assert response.status_code == 200, response.text
    result = Image.open(io.BytesIO(response.content))
    assert result.size == case.size(Image.fromarray(astronaut)) and result.mode == case.mode
    assert response.headers.get("x-jkspnet-note", "") == case.note  # the GIF's first frame


_SEEDS = seed_photos(Image.fromarray(skimage.data.astronaut()))


@pytest.mark.filterwarnings("ignore::UserWarning")  # PIL on corrupt EXIF
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(sorted(_SEEDS)),
    edits=st.lists(
        st.tuples(st.sampled_from(EDITS), st.integers(0, 1 << 20), st.integers(0, 0xFFFF)),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_uploads_never_give_a_5xx(client, seed, edits):
    response = post(client, mutate(_SEEDS[seed], edits), "x", "application/octet-stream", size=16)
    if response.status_code != 200:
        assert_error(response, 413 if response.status_code == 413 else 400)


def test_an_unexpected_failure_is_a_plain_500(fresh_weights, astronaut, monkeypatch):
    colorizer = Colorizer.from_pretrained(fresh_weights, device="cpu")

    def broken(*args, **kwargs):
        raise RuntimeError(f"CUDA error in {fresh_weights}/model.py line 12")

    monkeypatch.setattr(colorizer, "predict_ab", broken)
    with TestClient(create_app(colorizer), raise_server_exceptions=False) as test_client:
        response = post(test_client, jpeg_bytes(astronaut[:32, :40]))
        message = assert_error(response, 500)
        assert message == "internal error while colorizing; see the server's log"
        assert test_client.get("/api/health").status_code == 200  # still serving


def test_serve_binds_to_localhost_by_default(monkeypatch, fresh_weights):
    import uvicorn

    bound = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: bound.update(options))
    assert main(["serve", "--weights", str(fresh_weights), "--device", "cpu"]) == 0
    assert bound["host"] == "127.0.0.1" and bound["port"] == 8000


# ----------------------------------------------------------------------- suggested colours
def test_suggest_answers_the_colours_likely_at_a_point(client, astronaut_jpeg, astronaut):
    def suggest(**fields):
        data = {key: str(value) for key, value in fields.items()}
        files = {"image": ("a.jpg", astronaut_jpeg, "image/jpeg")}
        return client.post("/api/suggest", files=files, data=data)

    response = suggest(x=20, y=30.5)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["x"] == 20 and answer["y"] == 30.5
    assert 3 <= len(answer["suggestions"]) <= 6
    for one in answer["suggestions"]:
        assert len(one["color"]) == 7 and one["color"].startswith("#")
        assert 0 <= one["probability"] <= 1
    outside = assert_error(suggest(x=astronaut.shape[1], y=1), 422)
    assert outside.startswith("suggest: point") and "outside the photo" in outside
    assert "no y" in assert_error(suggest(x=1), 422)
    assert "must be a number" in assert_error(suggest(x="left", y=1), 422)
    assert "finite" in assert_error(suggest(x="inf", y=1), 422)
    schema = client.get("/openapi.json").json()["paths"]["/api/suggest"]["post"]
    assert "application/json" in schema["responses"]["200"]["content"]
    # on a preview (a copy 64 pixels a side), x and y stay the photo's own; outside is outside
    small = suggest(x=200, y=150, preview=64)
    assert small.status_code == 200 and small.json()["x"] == 200
    assert 3 <= len(small.json()["suggestions"]) <= 6
    outside = assert_error(suggest(x=astronaut.shape[1], y=1, preview=64), 422)
    assert f"point ({astronaut.shape[1]}, 1) is outside the photo" in outside
    assert "preview" in assert_error(suggest(x=1, y=1, preview=8), 422)


def test_strokes_are_hints_and_malformed_ones_are_422(client, astronaut_jpeg):
    stroke = {"points": [[10, 10], [60, 40]], "color": "#e01010", "width": 12}
    response = post(client, astronaut_jpeg, hints=json.dumps([stroke]))
    assert response.status_code == 200, response.text
    for bad, words in (
        ({**stroke, "points": [[10, 10]]}, "at least 2 points"),
        ({**stroke, "width": 0}, "width must be above 0"),
        ({**stroke, "points": [[10, 10], [10, 5000]]}, "point 2 at (10, 5000) is outside"),
    ):
        message = assert_error(post(client, astronaut_jpeg, hints=json.dumps([bad])), 422)
        assert words in message and "stroke (hint 1)" in message, message
