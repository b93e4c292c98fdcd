"""README's Python code blocks, executed: the imports of every block, and the whole of each block
that runs here in seconds on small stand-ins for the files it names. (The Ray Data recipe runs
in tests/cluster/test_cluster.py; the cluster call needs a running cluster and is imported only.)
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text("utf-8"), re.S)


def _block(marker: str) -> str:
    """The one README block that contains ``marker``."""
    found = [block for block in BLOCKS if marker in block]
    assert len(found) == 1, marker
    return found[0]


def _run(block: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.chdir(folder)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    return namespace


def test_every_import_in_readme_works():
    assert len(BLOCKS) >= 5
    for block in BLOCKS:
        tree = ast.parse(block)
        imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
        exec(compile(ast.Module(body=imports, type_ignores=[]), "README.md", "exec"), {})


def test_the_python_api_block_runs(tmp_path, monkeypatch):
    Image.fromarray(skimage.data.camera()[::4, ::4]).save(tmp_path / "old.jpg")
    Image.fromarray(skimage.data.coins()[::4, ::4]).save(tmp_path / "a.jpg")
    Image.fromarray(skimage.data.moon()[::4, ::4]).save(tmp_path / "b.png")
    from jkspnet import Colorizer

    Colorizer.from_pretrained(device="cpu").save_pretrained(tmp_path / "weights")
    found = _run(_block("colorizer.save_pretrained"), tmp_path, monkeypatch)
    assert found["colour"].size == (128, 128)
    assert Image.open(tmp_path / "colour.png").size == (128, 128)
    assert [image.size for image in found["many"]] == [(96, 76), (128, 128)]
    assert (tmp_path / "my-weights" / "model.safetensors").is_file()


def test_the_guided_colour_block_runs(tmp_path, monkeypatch):
    pytest.importorskip("scipy")
    (tmp_path / "examples").mkdir()
    shutil.copy(ROOT / "examples" / "lighthouse.jpg", tmp_path / "examples")
    Image.fromarray(skimage.data.camera()[::4, ::4]).save(tmp_path / "old.jpg")
    Image.fromarray(skimage.data.astronaut()[::4, ::4]).save(tmp_path / "similar.jpg")
    found = _run(_block("parse_hints("), tmp_path, monkeypatch)
    assert found["tower"].size == (638, 960)
    assert found["hints"][0].x == 320
    assert found["styled"].size == (128, 128)
    assert found["unsure"].mode == "L"
    assert 3 <= len(found["likely"]) <= 6 and found["likely"][0].hex.startswith("#")


def test_the_film_block_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("av")
    from jkspnet.video import write_video

    still = np.repeat(skimage.data.camera()[::8, ::8, None], 3, axis=2)
    write_video(tmp_path / "film.mp4", [still] * 6, 12)
    _run(_block("colorize_video(colorizer"), tmp_path, monkeypatch)
    assert capsys.readouterr().out.split()[0] == "6"  # frames written
    assert (tmp_path / "colour.mp4").is_file()
