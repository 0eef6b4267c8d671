"""Local files read as pages: only regular files, opened so that nothing else can block a run.

A FIFO named `x.html` in a `directory` source hung a run for ever: opening a FIFO for reading
waits for a writer, inside a thread no time limit reaches and no signal stops (issue #21). A
device or socket named like a page would do the same or worse. So a file is opened without
blocking, checked, and refused unless it is a regular file.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

__all__ = ["NotRegularFile", "file_kind", "open_regular"]


class NotRegularFile(OSError):
    """A path that names a FIFO, a device, a socket or a directory, not a file of bytes."""


def file_kind(mode: int) -> str:
    """What st_mode describes, in words for a failure's detail."""
    for test, name in (
        (stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """`path` opened for reading in binary, or NotRegularFile (an OSError) when it is anything
    but a regular file. Symlinks are followed; a symlink loop is an OSError (ELOOP)."""
    # O_NONBLOCK: open() of a FIFO returns at once instead of waiting for a writer; the
    # descriptor is put back to blocking once it is known to be a regular file.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(
                errno.EINVAL, f"{file_kind(mode)}, not a regular file: only files are read",
                os.fspath(path),
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
