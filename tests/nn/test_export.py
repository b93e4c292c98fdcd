"""Export to ONNX and TorchScript: same ab as PyTorch, dynamic shapes, the onnxruntime backend.

Fresh (untrained) weights: parity of the plumbing, not a judgement of colours.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from jkspnet.cli import main
from jkspnet.errors import JKSPNetError
from jkspnet.nn.backends.torch_network import load_model
from jkspnet.nn.export import load_torchscript

PARITY = 1e-3  # max |Δab| in LAB units, fp32


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory, fresh_weights: Path) -> Path:
    for name in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(name)
    path = tmp_path_factory.mktemp("export") / "jkspnet.onnx"
    assert main(["export", "-o", str(path), "--weights", str(fresh_weights)]) == 0
    return path


@pytest.fixture(scope="module")
def torchscript_file(tmp_path_factory, fresh_weights: Path) -> Path:
    path = tmp_path_factory.mktemp("export") / "jkspnet.pt"
    args = ["export", "--format", "torchscript", "-o", str(path), "--weights", str(fresh_weights)]
    assert main(args) == 0
    return path


@pytest.fixture(scope="module")
def reference(fresh_weights: Path) -> torch.nn.Module:
    return load_model(fresh_weights)[0]


def test_onnx_file_is_self_contained_with_metadata_and_dynamic_axes(onnx_file):
    import onnx

    assert [p.name for p in onnx_file.parent.iterdir()] == [onnx_file.name]  # no external data
    proto = onnx.load(str(onnx_file))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["jkspnet.size"] == "128" and float(meta["jkspnet.temperature"]) == 1.0
    assert max(o.version for o in proto.opset_import if o.domain == "") >= 17
    (l_input, t_input), (ab_output,) = proto.graph.input, proto.graph.output
    assert (l_input.name, t_input.name, ab_output.name) == ("l", "temperature", "ab")
    dims = l_input.type.tensor_type.shape.dim
    assert [bool(d.dim_param) for d in dims] == [True, False, True, True]


@pytest.mark.parametrize(
    ("batch", "size", "temperature"),
    [
        (1, 64, 1.0),
        (3, 64, 0.38),
        (1, 128, 0.38),
        (3, 128, 1.0),
        (3, 96, 0.38),
        (2, (120, 40), 1.0),
    ],
)
def test_parity_with_pytorch(onnx_file, torchscript_file, reference, batch, size, temperature):
    from jkspnet.pipeline.spec import ColorizerSpec

    height, width = size if isinstance(size, tuple) else (size, size)
    generator = torch.Generator().manual_seed(batch * height)
    x = torch.rand(batch, 1, height, width, generator=generator) * 100 - 50
    with torch.inference_mode():
        expected = reference(x, temperature)
    onnx = ColorizerSpec(str(onnx_file), backend="onnxruntime", device="cpu").load()
    ort_ab = onnx.predict_ab(x, temperature)
    scripted, config = load_torchscript(torchscript_file)
    with torch.inference_mode():
        ts_ab = scripted(x, torch.tensor([temperature]))
    assert config.size == 128 and config.temperature == 1.0
    for got in (ort_ab, ts_ab):
        assert got.shape == (batch, 2, height, width) and got.dtype == torch.float32
        assert (got - expected).abs().max().item() < PARITY


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _colorize_both(capsys, tmp_path, source, weights, onnx_file, *flags) -> dict[str, np.ndarray]:
    """``source`` colorized by the torch backend from ``weights`` and by onnxruntime from
    ``onnx_file`` (fp32, extra ``flags``), as int arrays by backend."""
    outputs = {}
    for backend, path in (("torch", weights), ("onnxruntime", onnx_file)):
        target = tmp_path / f"{backend}.png"
        code, _out, err = _run(
            capsys, "colorize", source, "-o", target, "--weights", path, "--backend", backend,
            "--precision", "fp32", *flags,
        )  # fmt: skip
        assert code == 0, err
        outputs[backend] = np.asarray(Image.open(target)).astype(int)
    return outputs


def test_colorize_with_onnxruntime_matches_torch(
    capsys, tmp_path, photo_dir, fresh_weights, onnx_file
):
    source = photo_dir / "astronaut.jpg"
    outputs = _colorize_both(
        capsys, tmp_path, source, fresh_weights, onnx_file, "--temperature", 0.38
    )
    assert outputs["onnxruntime"].shape == outputs["torch"].shape
    assert outputs["onnxruntime"].shape[:2] == Image.open(source).size[::-1]
    assert np.abs(outputs["onnxruntime"] - outputs["torch"]).max() <= 2


def test_a_film_through_the_onnxruntime_backend_matches_torch(
    capsys, tmp_path, photo_dir, fresh_weights, onnx_file
):
    av = pytest.importorskip("av")
    from jkspnet.media.video import write_video

    still = np.asarray(Image.open(photo_dir / "astronaut.jpg").convert("L").convert("RGB"))
    frames = [
        np.ascontiguousarray(still[i * 4 : i * 4 + 96, i * 4 : i * 4 + 128]) for i in range(6)
    ]
    film = tmp_path / "film.mp4"
    write_video(film, frames, 12, crf=0)
    decoded = {}
    for backend, weights in (("torch", fresh_weights), ("onnxruntime", onnx_file)):
        target = tmp_path / f"{backend}.mp4"
        code, _out, err = _run(
            capsys, "colorize", film, "-o", target, "--weights", weights, "--backend", backend,
            "--precision", "fp32", "--crf", "0", "-q",
        )  # fmt: skip
        assert code == 0, err
        with av.open(str(target)) as container:
            decoded[backend] = [
                f.to_ndarray(format="rgb24").astype(int) for f in container.decode(video=0)
            ]
    assert len(decoded["onnxruntime"]) == len(decoded["torch"]) == 6
    for a, b in zip(decoded["onnxruntime"], decoded["torch"], strict=True):
        assert np.abs(a - b).max() <= 3  # same ab; lossless H.264 rounds through 4:2:0


def test_onnxruntime_backend_errors_are_one_line(
    capsys, tmp_path, photo_dir, fresh_weights, onnx_file
):
    source = photo_dir / "astronaut.jpg"
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf \x00\xff" * 10)
    cases = [
        ("--backend", "onnxruntime", "--weights", garbage),
        ("--backend", "onnxruntime", "--weights", fresh_weights),  # torch weights
        ("--backend", "torch", "--weights", onnx_file),  # an ONNX file for torch
        ("--backend", "onnxruntime", "--weights", onnx_file, "--device", "cuda"),
        ("--backend", "onnxruntime", "--weights", onnx_file, "--precision", "bf16"),
    ]
    for options in cases:
        code, _out, err = _run(capsys, "colorize", source, "-o", tmp_path / "x.png", *options)
        assert code == 2, err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_missing_onnxruntime_says_how_to_install(monkeypatch, onnx_file):
    from jkspnet.nn.backends.onnxruntime_network import OnnxNetwork

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(JKSPNetError, match=r"pip install 'jkspnet\[onnx\]'"):
        OnnxNetwork(onnx_file)


def test_export_refuses_to_clobber_and_bad_options(capsys, tmp_path, onnx_file, fresh_weights):
    code, _out, err = _run(capsys, "export", "-o", onnx_file, "--weights", fresh_weights)
    assert code == 2 and "--overwrite" in err and len(err.strip().splitlines()) == 1
    code, _out, err = _run(capsys, "export", "-o", tmp_path / "m.onnx", "--opset", "13")
    assert code == 2 and "opset" in err
    assert not (tmp_path / "m.onnx").exists()


def test_the_decoding_after_the_graph_travels_with_the_export(
    capsys, tmp_path, photo_dir, fresh_weights
):
    """Saturation and the neutral threshold are applied after the exported graph; the file
    carries them, so the onnxruntime backend decodes at the weights' defaults as torch does (an
    export of 0.6 read without them came out at T = 1 with no gain: muted)."""
    from jkspnet.pipeline.colorizer import Colorizer
    from jkspnet.pipeline.spec import ColorizerSpec

    for name in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(name)
    spec = {"saturation": 1.3, "neutral": 5.0, "neutral_shape": "garrote"}
    weights = tmp_path / "decoded"
    Colorizer.from_pretrained(fresh_weights, device="cpu", **spec).save_pretrained(weights)
    onnx_path, script_path = tmp_path / "decoded.onnx", tmp_path / "decoded.pt"
    assert main(["export", "-o", str(onnx_path), "--weights", str(weights)]) == 0
    args = ["export", "--format", "torchscript", "-o", str(script_path), "--weights", str(weights)]
    assert main(args) == 0
    _, config = load_torchscript(script_path)
    assert (config.saturation, config.neutral, config.neutral_shape) == (1.3, 5.0, "garrote")
    onnx = ColorizerSpec(str(onnx_path), backend="onnxruntime", device="cpu").load()
    assert (onnx.saturation, onnx.neutral, onnx.neutral_shape) == (1.3, 5.0, "garrote")
    outputs = _colorize_both(capsys, tmp_path, photo_dir / "astronaut.jpg", weights, onnx_path)
    assert np.abs(outputs["onnxruntime"] - outputs["torch"]).max() <= 2
