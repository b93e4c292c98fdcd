"""Writing files so that a crash or a kill never leaves half of one, and nothing is clobbered.

Every output of JKSPNet (photos, reports, run records) goes through :func:`write_atomic`: the
bytes go to a temporary file beside the target, are flushed to disk, and the file is renamed
into place in one step.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Callable, Collection
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
    :class:`FileExistsError` is raised, even if it appears while we write.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file stands where a folder is needed: not a "target exists"
        raise NotADirectoryError(errno.ENOTDIR, "a file stands in its folder path") from None
    handle, temp_name = tempfile.mkstemp(
        prefix=_temporary_prefix(path.name), suffix=_TEMPORARY_SUFFIX, dir=path.parent
    )
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
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


_TEMPORARY_SUFFIX = ".tmp"
# What mkstemp makes of the prefix and suffix: eight characters of its alphabet between them.
_TEMPORARY_NAME = re.compile(r"\.(.+)\.[a-z0-9_]{8}" + re.escape(_TEMPORARY_SUFFIX))


def _temporary_prefix(name: str) -> str:
    return f".{name}."


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


def leftover_temporaries(folder: str | os.PathLike[str], names: Collection[str]) -> list[Path]:
    """The temporary files in ``folder`` that :func:`write_atomic` made for targets named in
    ``names`` and never renamed: what a writer killed mid-write (SIGKILL, a lost node) leaves.
    Only safe to remove once no writer of those targets is still at work."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    found = []
    for entry in entries:
        match = _TEMPORARY_NAME.fullmatch(entry.name)
        if match and match.group(1) in names and entry.is_file(follow_symlinks=False):
            found.append(Path(entry.path))
    return found


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
        handle, probe = tempfile.mkstemp(prefix=".jkspnet-probe-", dir=folder)
    except OSError as error:  # also a folder above that cannot be entered
        return error.strerror or str(error)
    os.close(handle)
    os.unlink(probe)
    return None
