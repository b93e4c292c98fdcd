"""Atomic writes: all or nothing, never clobbering unless asked."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from jkspnet.cli import main
from jkspnet.media.files import (
    TEMPORARY_PREFIX,
    host_tag,
    is_temporary,
    make_folders,
    remove_stale_temporaries,
    stale_temporaries,
    unwritable_reason,
    write_atomic,
)

from ..hostile import remove_deep_tree


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


def _killed_mid_write(target: Path) -> None:
    """Run a writer that SIGKILLs itself halfway through ``target``: its temporary stays."""
    killed_mid_write = (
        "import os, sys\n"
        "from jkspnet.media.files import write_atomic\n"
        "def die(stream): stream.write(b'half'); stream.flush(); os.kill(os.getpid(), 9)\n"
        "write_atomic(sys.argv[1], die)"
    )
    subprocess.run([sys.executable, "-c", killed_mid_write, str(target)], check=False)


def test_a_killed_writers_temporary_is_stale_and_a_live_ones_is_not(tmp_path):
    _killed_mid_write(tmp_path / "a.jpg")
    (tmp_path / "b.png").write_bytes(b"done")
    (tmp_path / "a.jpg.tmp").write_bytes(b"a user's file")
    (tmp_path / ".c.jpg.12345678.tmp").write_bytes(b"not ours: no project prefix")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        prefix = f"{TEMPORARY_PREFIX}{host_tag()}.{live.pid}.abcdefgh."
        (tmp_path / f"{prefix}d.png.tmp").write_bytes(b"a live writer's")
        elsewhere = tmp_path / f"{TEMPORARY_PREFIX}00000000.1.abcdefgh.e.png.tmp"
        elsewhere.write_bytes(b"another machine's")
        stale = stale_temporaries(tmp_path)
        assert [path.read_bytes() for path in stale] == [b"half"]
        assert is_temporary(stale[0].name) and not (tmp_path / "a.jpg").exists()
        assert stale_temporaries(tmp_path, untouched_since=time.time() + 10) == sorted(
            [stale[0], elsewhere]
        )  # another machine's, untouched since then
        assert remove_stale_temporaries([tmp_path, tmp_path / "missing"]) == 1
        left = sorted(path.name for path in tmp_path.iterdir())
        assert left == sorted(
            [".c.jpg.12345678.tmp", "a.jpg.tmp", "b.png", f"{prefix}d.png.tmp", elsewhere.name]
        )
    finally:
        live.kill()
        live.wait()
    assert [p.name for p in stale_temporaries(tmp_path)] == [f"{prefix}d.png.tmp"]  # now gone


def test_a_reused_process_number_does_not_keep_a_temporary(tmp_path):
    """A temporary written before its process number's present owner started is stale."""
    temporary = tmp_path / f"{TEMPORARY_PREFIX}{host_tag()}.1.abcdefgh.x.png.tmp"
    temporary.write_bytes(b"half")  # pid 1 is alive, and started long before...
    os.utime(temporary, (1_000_000, 1_000_000))  # ...this "1970" temporary was written
    assert stale_temporaries(tmp_path) == [temporary]
    os.utime(temporary)  # written now: pid 1 may be writing it
    assert stale_temporaries(tmp_path) == []


def test_temporaries_of_long_and_undecodable_names(tmp_path):
    for name in ["x" * 250 + ".png", "caf\udce9.png", "a\nb.png"]:
        write_atomic(tmp_path / name, b"whole")
        assert (tmp_path / name).read_bytes() == b"whole"
    names = {os.fsdecode(n) for n in os.listdir(os.fsencode(tmp_path))}
    assert names == {"x" * 250 + ".png", "caf\udce9.png", "a\nb.png"}  # no temporary left


def test_folders_are_made_without_recursion(tmp_path):
    deep = tmp_path.joinpath("top", *["d"] * 1500)  # Path.mkdir(parents=True) recurses a level
    try:
        write_atomic(deep / "out.txt", "deep")
        assert (deep / "out.txt").read_text() == "deep"
        make_folders(deep)  # already there: nothing to do
    finally:
        remove_deep_tree(tmp_path / "top")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        make_folders(tmp_path / "file" / "a" / "b")


def test_a_folder_another_writer_makes_meanwhile_is_no_error(tmp_path, monkeypatch):
    """Writers of one batch make the same output folder at once: one can find it missing, then
    find it there, made by another, before it looks at what it is. That is no error (CI once
    failed a folder run with "a file stands in its folder path")."""
    made = tmp_path / "new" / "out"
    made.mkdir(parents=True)
    real_is_dir, looked = Path.is_dir, []

    def is_dir_late(path: Path) -> bool:  # the first look comes just before the other's mkdir
        if path == made and not looked:
            looked.append(path)
            return False
        return real_is_dir(path)

    monkeypatch.setattr(Path, "is_dir", is_dir_late)
    make_folders(made)
    assert looked == [made] and real_is_dir(made)


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
