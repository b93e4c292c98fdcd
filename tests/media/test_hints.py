"""Hints as the API, JSON files and the CLI give them: parsed, checked, refused in one line."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest

from jkspnet.errors import JKSPNetError
from jkspnet.media.hints import (
    Hint,
    HintError,
    check_hints,
    hint_targets,
    is_sidecar,
    parse_color,
    parse_hint_argument,
    parse_hints,
    read_hints_file,
    sidecar_of,
)


def test_parse_hints_from_text_bytes_and_objects():
    text = (
        '[{"x": 120, "y": 340, "color": "#8a3b2a"}, '
        '{"x": 1.5, "y": 2, "color": "#FFF", "radius": 4}]'
    )
    expected = [Hint(120, 340, (0x8A, 0x3B, 0x2A)), Hint(1.5, 2, (255, 255, 255), 4)]
    assert parse_hints(text) == expected
    assert parse_hints(text.encode()) == expected
    assert parse_hints(json.loads(text)) == expected
    assert parse_hints({"hints": json.loads(text)}) == expected
    assert parse_hints([h.to_json() for h in expected]) == expected


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("[{", "not valid JSON"),
        ('{"x": 1}', "must be a JSON list"),
        ('[{"x": 1, "y": 2}]', "no 'color'"),
        ('[{"x": 1, "y": 2, "color": "red"}]', "cannot read colour 'red'"),
        ('[{"x": 1, "y": 2, "color": "#12345g"}]', "cannot read colour"),
        ('[{"x": "1", "y": 2, "color": "#123456"}]', "'x' must be a number"),
        ('[{"x": 1, "y": true, "color": "#123456"}]', "'y' must be a number"),
        ('[{"x": 1, "y": 2, "color": "#123456", "radius": 0}]', "'radius' must be above 0"),
        ('[{"x": 1, "y": 2, "color": "#123456", "size": 3}]', "unknown key"),
        ("[3]", "must be an object"),
    ],
)
def test_bad_hints_are_one_line_errors(data, words):
    with pytest.raises(HintError) as caught:
        parse_hints(data)
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert isinstance(caught.value, JKSPNetError)


def test_hint_argument_and_colour():
    assert parse_hint_argument("10,20,#ff0000") == Hint(10, 20, (255, 0, 0))
    assert parse_hint_argument("10, 20, #ff0000, 3") == Hint(10, 20, (255, 0, 0), 3)
    assert parse_color("00ff00") == (0, 255, 0)
    for bad in ("10,20", "a,20,#ff0000", "10,20,#ff00"):
        with pytest.raises(HintError):
            parse_hint_argument(bad)


def test_hint_checks_its_own_fields():
    with pytest.raises(HintError):
        Hint(1, 2, (256, 0, 0))
    with pytest.raises(HintError):
        Hint(float("nan"), 2, (1, 2, 3))
    with pytest.raises(HintError):
        Hint(1, 2, (1, 2, 3), radius=-1)


def test_hints_outside_the_photo_are_refused():
    check_hints([Hint(0, 0, (1, 2, 3)), Hint(99.9, 49.5, (1, 2, 3))], 100, 50)
    for x, y in ((100, 10), (-0.1, 10), (10, 50)):
        with pytest.raises(HintError, match="outside the photo"):
            check_hints([Hint(x, y, (1, 2, 3))], 100, 50)


def test_sidecars(tmp_path):
    assert sidecar_of(tmp_path / "scan-012.tif") == tmp_path / "scan-012.hints.json"
    assert is_sidecar("a/scan-012.hints.json") and not is_sidecar("a/scan-012.json")
    with pytest.raises(HintError, match="no such hints file"):
        read_hints_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.hints.json"
    bad.write_text("[1,")
    with pytest.raises(HintError, match=r"bad\.hints\.json: hints are not valid JSON"):
        read_hints_file(bad)


def test_targets_are_the_colours_chroma():
    grey, red = hint_targets([Hint(0, 0, (128, 128, 128)), Hint(0, 0, (255, 0, 0))])
    assert abs(grey.a) < 0.01 and abs(grey.b) < 0.01
    assert red.a == pytest.approx(80.1, abs=0.2) and red.b == pytest.approx(67.2, abs=0.2)


# ------------------------------------------------------------------------ strokes (issue 21)
def test_a_stroke_is_a_hint_in_the_same_json():
    from jkspnet.media.hints import Hint, Stroke, hint_targets, parse_hints

    text = json.dumps(
        [
            {"x": 5, "y": 6, "color": "#102030"},
            {"points": [[10, 10], [30, 10], [30, 22]], "color": "#e01010", "width": 8},
        ]
    )
    point, stroke = parse_hints(text)
    assert isinstance(point, Hint) and isinstance(stroke, Stroke)
    assert stroke.points == ((10.0, 10.0), (30.0, 10.0), (30.0, 22.0)) and stroke.width == 8
    assert parse_hints([point.to_json(), stroke.to_json()]) == [point, stroke]  # round trip
    spots = stroke.spots()
    assert all(spot.radius == 4 and spot.color == (224, 16, 16) for spot in spots)
    assert (spots[0].x, spots[0].y) == (10, 10) and (spots[-1].x, spots[-1].y) == (30, 22)
    gaps = [((a.x - b.x) ** 2 + (a.y - b.y) ** 2) ** 0.5 for a, b in pairwise(spots)]
    assert max(gaps) <= 4 + 1e-9  # half a width apart: the brush leaves no gap
    assert len(hint_targets([point, stroke])) == 1 + len(spots)


@pytest.mark.parametrize(
    ("stroke", "words"),
    [
        ({"points": [[1, 1]], "color": "#fff", "width": 4}, "at least 2 points, got 1"),
        ({"points": [], "color": "#fff", "width": 4}, "at least 2 points, got 0"),
        ({"points": [[1, 1], [2, 2]], "color": "#fff", "width": 0}, "width must be above 0"),
        ({"points": [[1, 1], [2, 2]], "color": "#fff", "width": -3}, "width must be above 0"),
        ({"points": [[1, 1], [2, 2]], "color": "#fff", "width": "9"}, "width must be a number"),
        ({"points": [[1, 1], [2, 2]], "color": "#fff"}, "no 'width'"),
        ({"points": [[1, 1], [2]], "color": "#fff", "width": 4}, "point 2 must be [x, y]"),
        ({"points": [[1, 1], [2, None]], "color": "#fff", "width": 4}, "point 2 must be"),
        ({"points": "1,1", "color": "#fff", "width": 4}, "'points' must be a list"),
        ({"points": [[1, 1], [2, 2]], "color": "red", "width": 4}, "cannot read colour"),
        ({"points": [[1, 1], [2, 2]], "color": "#fff", "width": 4, "x": 1}, "unknown key"),
    ],
)
def test_malformed_strokes_are_one_line_errors(stroke, words):
    from jkspnet.media.hints import parse_hints

    with pytest.raises(HintError) as error:
        parse_hints([{"x": 1, "y": 1, "color": "#000"}, stroke])
    message = str(error.value)
    assert words in message and message.startswith("stroke (hint 2): ") and "\n" not in message


def test_a_stroke_outside_the_photo_is_refused():
    from jkspnet.media.hints import Stroke, check_hints

    inside = Stroke(((0, 0), (99.5, 49.5)), (1, 2, 3), 6)
    check_hints([inside], 100, 50)
    with pytest.raises(HintError, match=r"stroke \(hint 2\): point 2 at \(100, 3\) is outside"):
        check_hints([inside, Stroke(((1, 1), (100, 3)), (1, 2, 3), 6)], 100, 50)
