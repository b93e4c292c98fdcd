"""Atomic writes: all or nothing, never clobbering unless asked."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from jkspnet.cli import main
from jkspnet.media.files import leftover_temporaries, unwritable_reason, write_atomic


def test_bytes_text_and_streams(tmp_path):
    write_atomic(tmp_path / "a" / "b.bin", b"\x00\x01")
    write_atomic(tmp_path / "t.txt", "héllo")
    write_atomic(tmp_path / "s.bin", lambda stream: stream.write(b"streamed"))
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "t.txt").read_text("utf-8") == "héllo"
    assert (tmp_path / "s.bin").read_bytes() == b"streamed"


def test_no_clobber_unless_asked(tmp_path):
    target = tmp_path / "f.txt"
    write_atomic(target, "first", overwrite=False)
    with pytest.raises(FileExistsError):
        write_atomic(target, "second", overwrite=False)
    assert target.read_text() == "first"
    write_atomic(target, "third")
    assert target.read_text() == "third"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("kept")

    def fail(stream):
        stream.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, fail)
    assert target.read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_leftover_temporaries_are_what_a_killed_writer_left(tmp_path):
    killed_mid_write = (
        "import os, sys\n"
        "from jkspnet.media.files import write_atomic\n"
        "def die(stream): stream.write(b'half'); stream.flush(); os.kill(os.getpid(), 9)\n"
        "write_atomic(sys.argv[1], die)"
    )
    subprocess.run([sys.executable, "-c", killed_mid_write, str(tmp_path / "a.jpg")], check=False)
    (tmp_path / "b.png").write_bytes(b"done")
    (tmp_path / "a.jpg.tmp").write_bytes(b"a user's file")
    (tmp_path / ".c.jpg.12345678.tmp").write_bytes(b"another target's")
    left = leftover_temporaries(tmp_path, {"a.jpg", "b.png"})
    assert [path.read_bytes() for path in left] == [b"half"]
    assert left[0].name.startswith(".a.jpg.") and not (tmp_path / "a.jpg").exists()
    assert leftover_temporaries(tmp_path / "missing", {"a.jpg"}) == []


def test_a_file_in_the_folder_path(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        write_atomic(tmp_path / "file" / "out.txt", "y")


def test_without_hard_links_the_file_is_still_placed_and_nothing_clobbered(tmp_path, monkeypatch):
    def no_links(source, target):  # a FAT or exFAT drive: link() is not permitted
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    target = tmp_path / "out.jpg"
    write_atomic(target, b"first", overwrite=False)
    assert target.read_bytes() == b"first"
    with pytest.raises(FileExistsError):
        write_atomic(target, b"second", overwrite=False)
    assert target.read_bytes() == b"first" and [p.name for p in tmp_path.iterdir()] == ["out.jpg"]


def test_unwritable_reason_probes_the_nearest_existing_folder(tmp_path, monkeypatch, capsys):
    assert unwritable_reason(tmp_path / "new" / "deeper") is None  # would be made in tmp_path
    assert list(tmp_path.iterdir()) == []  # the probe file is gone, nothing was created
    (tmp_path / "file").write_text("x")
    assert unwritable_reason(tmp_path / "file" / "out") == os.strerror(errno.ENOTDIR)

    sealed = tmp_path / "sealed"  # a folder that cannot be entered (root passes chmod, so patch)
    real_exists = Path.exists

    def exists(self, *args, **kwargs):
        if self.parent == sealed:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_exists(self, *args, **kwargs)

    monkeypatch.setattr(Path, "exists", exists)
    assert unwritable_reason(sealed / "out") == os.strerror(errno.EACCES)
    Image.new("L", (8, 8)).save(tmp_path / "x.png")
    code = main(["colorize", str(tmp_path / "x.png"), "-o", str(sealed / "out")])
    err = capsys.readouterr().err
    assert code == 1 and err == f"error: {sealed / 'out'}: {os.strerror(errno.EACCES)}\n"
