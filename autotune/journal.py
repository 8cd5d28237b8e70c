"""The append-only journal: one event a line, fsynced, under a file lock.

Two operations only, as in a journal storage: ``append`` a batch of events, ``read`` them
all back. What a line holds, and how damage is recognised, is the events module's business;
this one owns the file. A batch is written with one ``write`` and one ``fsync``, so the
driver can keep a whole wave of results durable at the cost of a single disk flush. A line
torn by a crash is skipped on read, never fatal, and the next append starts on a fresh line
so the damage cannot spread. A full disk is not left as a torn line: the file is cut back to
where the batch began and ``DiskFull`` names the path.
"""
from __future__ import annotations

import os
from typing import Iterable

from filelock import FileLock

from . import events as ev
from .errors import DiskFull, StudyError, is_disk_full


class Journal:
    def __init__(self, path: str):
        self.path = path
        self.lock = FileLock(os.path.splitext(path)[0] + ".lock")
        self._fd: int | None = None

    def append(self, events: Iterable[dict]) -> None:
        data = b"".join(ev.encode(e) for e in events)
        if not data:
            return
        try:
            with self.lock:
                fd = self._open()
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data
                self._write_all(fd, data, size)
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskFull(self.path) from None
            raise

    def _write_all(self, fd: int, data: bytes, size: int) -> None:
        """All of ``data`` made durable, or none of it (a short write on a full disk is cut
        back, so no half line stays behind)."""
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError:
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass
            raise

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def read(self) -> ev.Decoded:
        """Every valid event in order, and one warning per line that could not be used."""
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            return ev.Decoded()
        except IsADirectoryError:  # was a traceback from status, report and run alike
            raise StudyError(f"{self.path}: is a directory, expected the study's history "
                             "(a file of one event a line)") from None
        except OSError as exc:  # an I/O error, a loop of links: one line, as the CLI promises
            raise StudyError(f"cannot read {self.path} ({exc.strerror or exc})") from None
        return ev.decode(raw)
