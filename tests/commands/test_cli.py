"""The command line: outputs where asked, inputs untouched, one clear line per problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from safetensors.torch import load_file, save_file

from jkspnet import Colorizer
from jkspnet.cli import main

from ..conftest import digest
from ..hostile import AWKWARD, BAD, Case, deny_reading, deny_writing


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_one_photo_to_one_file(capsys, tmp_path, photo_dir, fresh_weights):
    source = photo_dir / "astronaut_grey.png"
    before = digest(source)
    code, out, err = run(
        capsys, "colorize", source, "-o", tmp_path / "result.jpg", "--weights", fresh_weights
    )
    assert code == 0, err
    assert f"wrote {tmp_path / 'result.jpg'}" in out
    result = Image.open(tmp_path / "result.jpg")
    assert result.format == "JPEG" and result.size == Image.open(source).size
    assert digest(source) == before


def test_folder_keeps_names_and_formats(capsys, tmp_path, photo_dir, fresh_weights):
    hashes = {p.name: digest(p) for p in photo_dir.iterdir()}
    out_dir = tmp_path / "new" / "out"
    code, out, err = run(
        capsys,
        "colorize",
        photo_dir,
        "-o",
        out_dir,
        "--weights",
        fresh_weights,
        "--batch-size",
        "2",
    )
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(hashes)
    for name in hashes:
        original, result = Image.open(photo_dir / name), Image.open(out_dir / name)
        assert result.size == original.size and result.format == original.format
        assert result.mode == "RGB"
    assert {p.name: digest(p) for p in photo_dir.iterdir()} == hashes
    assert "colorized 3, failed 0, skipped 0" in out


def test_format_option_and_existing_outputs(capsys, tmp_path, photo_dir, fresh_weights):
    out_dir = tmp_path / "out"
    args = ["colorize", photo_dir, "-o", out_dir, "--weights", fresh_weights, "--format", "png"]
    assert run(capsys, *args)[0] == 0
    assert sorted(p.suffix for p in out_dir.iterdir()) == [".png"] * 3
    stamps = {p.name: p.stat().st_mtime_ns for p in out_dir.iterdir()}

    code, out, err = run(capsys, *args)
    assert code == 0 and "skipped 3 existing" in err
    assert {p.name: p.stat().st_mtime_ns for p in out_dir.iterdir()} == stamps

    code, out, err = run(capsys, *args, "--overwrite")
    assert code == 0 and "colorized 3" in out
    assert all(p.stat().st_mtime_ns != stamps[p.name] for p in out_dir.iterdir())


def test_a_bad_photo_does_not_stop_the_batch(capsys, tmp_path, photo_dir, fresh_weights):
    (photo_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (photo_dir / "empty.png").write_bytes(b"")
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "colorize", photo_dir, "-o", out_dir, "--weights", fresh_weights)
    assert code == 1
    assert "colorized 3, failed 2, skipped 0" in out
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 2
    assert any("broken.jpg" in line for line in error_lines)
    assert any("empty.png: empty file" in line for line in error_lines)
    assert "Traceback" not in err
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "astronaut.jpg",
        "astronaut_grey.png",
        "coffee.webp",
    ]


def test_globs_and_recursion(capsys, tmp_path, photo_dir, fresh_weights):
    nested = photo_dir / "album"
    nested.mkdir()
    Image.open(photo_dir / "coffee.webp").save(nested / "inner.jpg")
    out_dir = tmp_path / "out"
    code, *_ = run(
        capsys, "colorize", str(photo_dir / "*.jpg"), "-o", out_dir, "--weights", fresh_weights
    )
    assert code == 0 and [p.name for p in out_dir.iterdir()] == ["astronaut.jpg"]
    code, *_ = run(
        capsys, "colorize", photo_dir, "-r", "-o", tmp_path / "deep", "--weights", fresh_weights
    )
    assert code == 0 and (tmp_path / "deep" / "album" / "inner.jpg").is_file()


@pytest.mark.parametrize(
    ("make_input", "expected"),
    [
        (lambda d: d / "missing.jpg", "no such file or folder"),
        (lambda d: d, "no photos or films found in this folder"),
    ],
)
def test_nothing_to_colorize(capsys, tmp_path, fresh_weights, make_input, expected):
    code, _, err = run(
        capsys, "colorize", make_input(tmp_path), "-o", tmp_path / "o", "--weights", fresh_weights
    )
    assert code == 1 and expected in err and "Traceback" not in err


def test_output_cannot_be_written(capsys, tmp_path, photo_dir, fresh_weights):
    blocker = tmp_path / "file.txt"
    blocker.write_text("I am a file")
    code, _, err = run(capsys, "colorize", photo_dir, "-o", blocker, "--weights", fresh_weights)
    assert code == 2 and "exists and is not a folder" in err
    code, _, err = run(
        capsys,
        "colorize",
        photo_dir / "coffee.webp",
        "-o",
        blocker / "x.png",
        "--weights",
        fresh_weights,
    )
    assert code == 1 and "cannot write" in err and "Traceback" not in err
    assert blocker.read_text() == "I am a file"


def test_the_input_is_never_the_output(capsys, photo_dir, fresh_weights):
    source = photo_dir / "coffee.webp"
    before = digest(source)
    code, _, err = run(
        capsys, "colorize", source, "-o", source, "--weights", fresh_weights, "--overwrite"
    )
    assert code == 1 and "replace the input itself" in err
    assert digest(source) == before


def test_weights_problems_are_one_line(capsys, tmp_path, photo_dir, fresh_weights):
    tensors = load_file(str(fresh_weights / "model.safetensors"))
    tensors["abp.weight"] = tensors["abp.weight"][:100]
    save_file(tensors, str(tmp_path / "wrong.safetensors"))
    source = photo_dir / "coffee.webp"
    code, _, err = run(
        capsys,
        "colorize",
        source,
        "-o",
        tmp_path / "o.png",
        "--weights",
        tmp_path / "wrong.safetensors",
    )
    assert code == 2 and "layer abp.weight" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.png").exists()


def test_bad_options(capsys, tmp_path, photo_dir, fresh_weights):
    bad = (
        ["--size", "100"],
        ["--temperature", "0"],
        ["--batch-size", "0"],
        ["--neutral-shape", "hard"],
        ["--neutral", "-1"],
        ["--saturation", "-1"],
        ["--saturation", "9"],
        ["--saturation", "vivid"],
    )
    for extra in bad:
        with pytest.raises(SystemExit) as caught:
            main(["colorize", str(photo_dir), "-o", str(tmp_path), *extra])
        assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "neutral must be between 0 (off) and 30, got -1.0" in err
    assert "saturation must be between 0 and 4 (1 = off), got 9.0" in err
    assert "saturation must be a number, got 'vivid'" in err
    code, _, err = run(
        capsys,
        "colorize",
        photo_dir / "coffee.webp",
        "-o",
        tmp_path / "x.gif",
        "--weights",
        fresh_weights,
    )
    assert code == 2 and "cannot write .gif" in err


def test_the_decoding_flags_reach_the_colorizer(capsys, tmp_path, photo_dir, fresh_weights):
    """--saturation, --neutral and --neutral-shape override the weights' decoding, as the spec
    says."""
    import argparse

    from jkspnet.commands.options import add_model_options, spec_from_options

    parser = argparse.ArgumentParser()
    add_model_options(parser)
    flags = ["--neutral", "4", "--neutral-shape", "garrote", "--shape", "aspect"]
    spec = spec_from_options(parser.parse_args([*flags, "--saturation", "1.25"]))
    assert (spec.neutral, spec.neutral_shape, spec.shape) == (4.0, "garrote", "aspect")
    assert spec.saturation == 1.25
    defaults = spec_from_options(parser.parse_args([]))
    assert defaults.neutral_shape is None and defaults.saturation is None  # the weights' own
    source = photo_dir / "astronaut_grey.png"
    out = tmp_path / "garrote.png"
    flags = ["--neutral", "4", "--neutral-shape", "garrote", "--weights", fresh_weights]
    code, _, err = run(capsys, "colorize", source, "-o", out, *flags, "--saturation", "1.3")
    assert code == 0 and out.is_file(), err


def test_summary_command(capsys):
    code, out, _ = run(capsys, "summary")
    assert code == 0
    assert "Total params: 17,639,339" in out and "Total mult-adds (G): 570.51" in out


def test_a_new_command_is_one_module_and_its_name(capsys, monkeypatch):
    """docs/architecture.md's recipe: a module with HELP, DESCRIPTION, add_arguments and run,
    named in COMMANDS, is a command with its help line, its own --help and its exit status."""
    import types

    from jkspnet import commands
    from jkspnet.errors import JKSPNetError

    hello = types.ModuleType(f"{commands.__name__}.hello")
    hello.HELP, hello.DESCRIPTION = "say hello", "Say hello to someone."
    hello.add_arguments = lambda parser: parser.add_argument("--name", required=True)

    def greet(args) -> int:
        if args.name == "nobody":
            raise JKSPNetError("nobody to greet")
        print(f"hello {args.name}")
        return 3

    hello.run = greet
    monkeypatch.setattr(commands, "COMMANDS", (*commands.COMMANDS, hello))
    assert run(capsys, "hello", "--name", "you") == (3, "hello you\n", "")
    assert run(capsys, "hello", "--name", "nobody") == (2, "", "error: nobody to greet\n")
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = capsys.readouterr().out.split("export", 1)[1]  # after the others, with its help
    assert "hello" in listed and "say hello" in listed
    with pytest.raises(SystemExit):
        main(["hello", "--help"])
    assert "Say hello to someone." in capsys.readouterr().out


def test_missing_default_weights_are_one_line(capsys, tmp_path, photo_dir, monkeypatch):
    monkeypatch.setattr("jkspnet.nn.backends.torch_network.bundled_weights", lambda: None)
    code, _, err = run(capsys, "colorize", photo_dir, "-o", tmp_path / "o")
    assert code == 2
    assert err.strip().splitlines() == [
        "error: no default weights are bundled with this version yet; pass --weights PATH "
        "(a folder written by save_pretrained or a .safetensors file)"
    ]
    assert not (tmp_path / "o").exists()


def test_module_entry_point_colorizes_the_example_with_the_bundled_weights(tmp_path):
    example = Path(__file__).parents[2] / "examples" / "lighthouse.jpg"
    before = digest(example)
    result = subprocess.run(
        [sys.executable, "-m", "jkspnet", "colorize", str(example), "-o", str(tmp_path / "c.jpg")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stderr
    output = Image.open(tmp_path / "c.jpg")
    assert output.size == Image.open(example).size and output.mode == "RGB"
    assert digest(example) == before
    # colorize ends without the interpreter's teardown (run_program): what it printed to pipes
    # still arrives, and a failure's status still is the process's
    assert result.stdout.strip() == f"wrote {tmp_path / 'c.jpg'}"
    failed = subprocess.run(
        [
            sys.executable,
            "-m",
            "jkspnet",
            "colorize",
            str(tmp_path / "no.jpg"),
            "-o",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1 and failed.stderr.startswith("error: "), failed.stderr


# ------------------------------------------------------------------------ hostile photos
def _write_case(folder: Path, case: Case, astronaut) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / case.name
    path.write_bytes(case.make(Image.fromarray(astronaut)))
    return path


def _single_error(err: str, source: Path, reason: str) -> None:
    """stderr is one line that names the file and the reason: no traceback, no warnings."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: {source}: ") and reason in lines[0]


@pytest.mark.parametrize("case", BAD.values(), ids=list(BAD))
def test_a_bad_photo_is_one_error_line_and_no_output(
    capsys, tmp_path, fresh_weights, astronaut, case
):
    source = _write_case(tmp_path / "in", case, astronaut)
    before = digest(source)
    out = tmp_path / "out"
    code, stdout, err = run(
        capsys, "colorize", source, "-o", out / "result.png", "--weights", fresh_weights
    )
    assert code == 1 and "colorized 0, failed 1" in stdout
    _single_error(err, source, case.reason)
    assert not out.exists()  # not even an empty folder or a temporary
    assert digest(source) == before


@pytest.mark.parametrize("case", AWKWARD.values(), ids=list(AWKWARD))
def test_an_awkward_photo_comes_out_right(capsys, tmp_path, fresh_weights, astronaut, case):
    source = _write_case(tmp_path / "in", case, astronaut)
    before = digest(source)
    target = tmp_path / "out" / "result.png"
    code, stdout, err = run(capsys, "colorize", source, "-o", target, "--weights", fresh_weights)
    assert code == 0 and stdout.strip() == f"wrote {target}"
    assert err.strip().splitlines() == ([f"note: {source}: {case.note}"] if case.note else [])
    result = Image.open(target)
    assert result.size == case.size(Image.fromarray(astronaut))
    assert result.mode == case.mode
    assert result.getexif().get(0x0112) is None  # already upright: no orientation to reapply
    assert digest(source) == before


def test_max_pixels_is_configurable(capsys, tmp_path, photo_dir, fresh_weights):
    source = photo_dir / "coffee.webp"
    out = tmp_path / "out"
    args = ["colorize", source, "-o", out / "c.png", "--weights", fresh_weights]
    code, _, err = run(capsys, *args, "--max-pixels", "100000")
    assert code == 1
    _single_error(err, source, "600x400 is 240,000 pixels, over the limit of 100,000")
    assert not out.exists()
    assert run(capsys, *args, "--max-pixels", "240000")[0] == 0


def test_a_folder_with_link_loops(capsys, tmp_path, photo_dir, fresh_weights):
    (photo_dir / "album").mkdir()
    os.symlink("..", photo_dir / "album" / "up")  # a folder loop: not followed
    os.symlink("loop.jpg", photo_dir / "loop.jpg")  # a file loop: one error line
    hashes = {p.name: digest(p) for p in photo_dir.iterdir() if p.is_file()}
    out = tmp_path / "out"
    code, stdout, err = run(
        capsys, "colorize", photo_dir, "-r", "-q", "-o", out, "--weights", fresh_weights
    )
    assert code == 1 and "colorized 3, failed 1, skipped 0" in stdout
    _single_error(err, photo_dir / "loop.jpg", "symbolic link loop")
    assert sorted(p.name for p in out.rglob("*")) == [
        "astronaut.jpg",
        "astronaut_grey.png",
        "coffee.webp",
    ]
    assert {p.name: digest(p) for p in photo_dir.iterdir() if p.is_file()} == hashes


def test_an_unreadable_photo(capsys, tmp_path, photo_dir, fresh_weights, monkeypatch):
    source = photo_dir / "coffee.webp"
    before = digest(source)
    deny_reading(source, monkeypatch)
    out = tmp_path / "out"
    code, _, err = run(capsys, "colorize", source, "-o", out / "c.png", "--weights", fresh_weights)
    assert code == 1
    _single_error(err, source, "permission denied")
    assert not out.exists()
    source.chmod(0o644)
    assert digest(source) == before


def test_an_output_folder_that_is_not_writable(
    capsys, tmp_path, photo_dir, fresh_weights, monkeypatch
):
    out = tmp_path / "locked"
    out.mkdir()
    deny_writing(out, monkeypatch)
    source = photo_dir / "coffee.webp"
    code, _, err = run(capsys, "colorize", source, "-o", out / "c.png", "--weights", fresh_weights)
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"error: {out}: cannot write there (Permission denied): 1 output(s) not written"
    ]
    out.chmod(0o755)
    assert list(out.iterdir()) == []  # no partial file, no temporary


def test_an_unwritable_output_folder_fails_before_any_work_and_the_others_go_on(
    capsys, tmp_path, photo_dir, fresh_weights, monkeypatch
):
    inputs = tmp_path / "in"
    for sub in ("open", "locked"):
        (inputs / sub).mkdir(parents=True)
        for name in ("astronaut.jpg", "coffee.webp"):
            (inputs / sub / name).write_bytes((photo_dir / name).read_bytes())
    out = tmp_path / "out"
    (out / "locked").mkdir(parents=True)
    deny_writing(out / "locked", monkeypatch)
    prepared = []
    real_prepare = Colorizer.prepare
    monkeypatch.setattr(
        Colorizer,
        "prepare",
        lambda self, photo, *a: prepared.append(1) or real_prepare(self, photo, *a),
    )
    code, stdout, err = run(
        capsys, "colorize", inputs, "-r", "-o", out, "--weights", fresh_weights, "--size", "32"
    )
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[0] == (
        f"error: {out / 'locked'}: cannot write there (Permission denied): 2 output(s) not written"
    )
    assert "colorized 2, failed 2, skipped 0" in stdout
    assert len(prepared) == 2  # the locked folder's photos were not even decoded
    assert sorted(p.name for p in (out / "open").iterdir()) == ["astronaut.jpg", "coffee.webp"]
