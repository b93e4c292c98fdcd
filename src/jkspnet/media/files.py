"""Writing files so that a crash or a kill never leaves half of one, and nothing is clobbered.

Every output of JKSPNet (photos, reports, run records) goes through :func:`write_atomic`: the
bytes go to a temporary file beside the target, are flushed to disk, and the file is renamed
into place in one step. Temporaries are named ``.jkspnet-tmp.*`` (:data:`TEMPORARY_PREFIX`); one
that a killed writer left is removed by the next run writing to its folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: os.umask is process-wide, and threads write files


def write_atomic(
    path: str | os.PathLike[str],
    content: bytes | str | Callable[[BinaryIO], None],
    overwrite: bool = True,
) -> None:
    """Write ``content`` (bytes, text as UTF-8, or a function that writes to a binary stream).

    The folder is created if missing. Without ``overwrite`` an existing file is left alone and
    :class:`FileExistsError` is raised, even if it appears while we write. The temporary is
    named by :func:`temporary_name`; a writer killed outright (SIGKILL, a lost node) leaves it,
    and the next run that writes to the folder removes it (:func:`remove_stale_temporaries`).
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(str(path))
    make_folders(path.parent)
    handle, temp_name = _make_temporary(path.parent, path.name)
    try:
        with os.fdopen(handle, "wb") as stream:
            if callable(content):
                content(stream)
            else:
                stream.write(content.encode("utf-8") if isinstance(content, str) else content)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp_name, 0o666 & ~_UMASK)
        if overwrite:
            os.replace(temp_name, path)
        else:
            _place_without_clobbering(temp_name, path)
    except BaseException:  # an error, Ctrl-C, or SIGTERM/SIGHUP (raised as Interrupted)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def make_folders(folder: str | os.PathLike[str]) -> None:
    """``mkdir -p`` without recursion: ``Path.mkdir(parents=True)`` and ``os.makedirs`` recurse
    once per missing level, and fail with RecursionError in a tree 1,000 folders deep."""
    folder = Path(folder)
    missing = []
    while not folder.is_dir():
        if folder.exists() or folder.is_symlink():
            if folder.is_dir():  # another writer (a thread of this batch) made it meanwhile
                break
            # a file stands where a folder is needed
            raise NotADirectoryError(errno.ENOTDIR, "a file stands in its folder path", str(folder))
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for step in reversed(missing):
        try:
            step.mkdir()
        except FileExistsError:
            if not step.is_dir():
                raise NotADirectoryError(
                    errno.ENOTDIR, "a file stands in its folder path", str(step)
                ) from None


def not_regular(mode: int) -> str | None:
    """What a file of ``mode`` (from ``stat``) is, if it is not a regular file or a folder:
    opening a named pipe blocks until someone writes to it, a device may never end, so these
    are refused from their ``stat``, before any ``open``."""
    for test, kind in _SPECIAL_KINDS:
        if test(mode):
            return kind
    return None


def new_file_mode() -> int:
    """The mode a new file gets here (0o666 less the umask): what a temporary file that a
    library makes owner-only is given before it takes its final name."""
    return 0o666 & ~_UMASK


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a written file, or a folder's entries (its renames), to the disk. A folder that
    cannot be synced (some filesystems refuse) is left as it is; a file's failure is raised."""
    folder = os.path.isdir(path)
    try:
        handle = os.open(path, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
    except OSError:
        if not folder:
            raise


_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


# ---------------------------------------------------------------------------- temporaries
TEMPORARY_PREFIX = ".jkspnet-tmp."
"""Every temporary file or folder JKSPNet writes starts with this; the glob
``.jkspnet-tmp.*`` finds them all. The full name is ``.jkspnet-tmp.HOST.PID.RANDOM.NAME.tmp``:
HOST is 8 hex digits of the machine's name, PID the writing process, NAME the target's name
(cut to 40 bytes), so a run can tell a live writer's temporary from a dead one's."""
_NAME_BYTES = 40
_TEMPORARY_NAME = re.compile(
    re.escape(TEMPORARY_PREFIX) + r"([0-9a-f]{8})\.([0-9]+)\.[a-z0-9_]{8}\..*\.tmp", re.S
)


def host_tag() -> str:
    """8 hex digits standing for this machine (its name's SHA-1), as temporaries carry it."""
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _short(name: str) -> str:
    """``name`` cut to :data:`_NAME_BYTES` bytes (as the filesystem counts them)."""
    raw = os.fsencode(name)
    return name if len(raw) <= _NAME_BYTES else os.fsdecode(raw[:_NAME_BYTES])


def _temporary_parts(name: str) -> tuple[str, str]:
    return f"{TEMPORARY_PREFIX}{host_tag()}.{os.getpid()}.", f".{_short(name)}.tmp"


def _make_temporary(folder: Path, name: str) -> tuple[int, str]:
    prefix, suffix = _temporary_parts(name)
    return tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)


def make_temporary_folder(folder: str | os.PathLike[str], name: str) -> Path:
    """A new empty folder in ``folder`` named as a temporary for ``name`` (to be renamed into
    place, e.g. a training checkpoint)."""
    prefix, suffix = _temporary_parts(name)
    return Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=folder))


def temporary_name(folder: str | os.PathLike[str], name: str) -> Path:
    """A fresh temporary path in ``folder`` for ``name``, not created: for writers that make the
    file themselves (safetensors, a symbolic link)."""
    prefix, suffix = _temporary_parts(name)
    return Path(folder) / f"{prefix}{secrets.token_hex(4)}{suffix}"


def is_temporary(name: str) -> bool:
    """Whether ``name`` (a file name, not a path) is one of JKSPNet's temporaries."""
    return _TEMPORARY_NAME.fullmatch(name) is not None


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), where /proc says; else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            fields = stream.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as stream:
            boot = next(int(line.split()[1]) for line in stream if line.startswith(b"btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, StopIteration):
        return None


def _writer_gone(host: str, pid: int, modified: float, before: float | None) -> bool:
    """Whether the process that wrote a temporary is gone: on this machine, no such process,
    or one started after the temporary was last written (its number reused); on another
    machine, only if the temporary has not changed since ``before``."""
    if host != host_tag():
        return before is not None and modified < before
    if pid == os.getpid():
        return False  # one of this process's threads may be writing it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's process, alive
        pass
    started = _process_start(pid)
    return started is not None and started > modified + 1.0


def stale_temporaries(
    folder: str | os.PathLike[str], untouched_since: float | None = None
) -> list[Path]:
    """The temporaries in ``folder`` whose writers are gone (see :func:`_writer_gone`): what a
    writer killed mid-write (SIGKILL, a lost node) left. Those of live writers are not listed.
    ``untouched_since`` (a time.time()) also lists other machines' temporaries not written to
    since then."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    found = []
    for entry in entries:
        match = _TEMPORARY_NAME.fullmatch(entry.name)
        if match is None:
            continue
        try:
            modified = entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if _writer_gone(match.group(1), int(match.group(2)), modified, untouched_since):
            found.append(Path(entry.path))
    return sorted(found)


def remove_stale_temporaries(
    folders: Iterable[str | os.PathLike[str]], untouched_since: float | None = None
) -> int:
    """Remove :func:`stale_temporaries` from each of ``folders`` (files, links and folders);
    how many. Every run calls this on the folders it will write, before it starts."""
    removed = 0
    for folder in dict.fromkeys(Path(f) for f in folders):  # each once, in order
        for path in stale_temporaries(folder, untouched_since):
            with contextlib.suppress(FileNotFoundError):  # another run's sweep was first
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed += 1
    return removed


_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS}


def _place_without_clobbering(temp_name: str, path: Path) -> None:
    """Move the finished file into place unless something now stands there.

    A hard link fails if the target exists, so no check-then-rename race can clobber it. Some
    filesystems (FAT and exFAT drives, some network shares) have no hard links: there the target
    is checked once more and the file renamed, leaving a window of microseconds, rather than
    throwing away a finished photo or film.
    """
    try:
        os.link(temp_name, path)
    except OSError as error:
        if error.errno not in _NO_HARD_LINKS:
            raise
        if path.exists():
            raise FileExistsError(errno.EEXIST, "exists", str(path)) from None
        os.rename(temp_name, path)
        return
    os.unlink(temp_name)


def unwritable_reason(folder: str | os.PathLike[str]) -> str | None:
    """Why no file can be made in ``folder`` (or, if it does not exist yet, in the nearest
    folder above it, where it would be created), or None if one can.

    Tried for real, with a probe file made and removed at once: permission bits say nothing of
    read-only filesystems, and root passes them all.
    """
    folder = Path(folder)
    try:
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        handle, probe = _make_temporary(folder, "probe")
    except OSError as error:  # also a folder above that cannot be entered
        return error.strerror or str(error)
    os.close(handle)
    os.unlink(probe)
    return None
