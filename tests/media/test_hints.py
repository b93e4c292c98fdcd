"""Hints as the API, JSON files and the CLI give them: parsed, checked, refused in one line."""

from __future__ import annotations

import json

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
