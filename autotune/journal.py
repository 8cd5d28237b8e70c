"""The append-only journal: one JSON object a line, fsynced, under a file lock.

Two operations only, as in a journal storage: ``append`` a batch of events, ``read`` them
all back. A batch is written with one ``write`` and one ``fsync``, so the driver can keep a
whole wave of results durable at the cost of a single disk flush. A line torn by a crash or
a full disk is reported and skipped on read, never fatal, and the next append starts on a
fresh line so the damage cannot spread.
"""
from __future__ import annotations

import json
import os
from typing import Iterable

from filelock import FileLock

_dumps = json.JSONEncoder(separators=(",", ":"), default=str, allow_nan=True).encode


class Journal:
    def __init__(self, path: str):
        self.path = path
        self.lock = FileLock(os.path.splitext(path)[0] + ".lock")
        self._fd: int | None = None

    def append(self, events: Iterable[dict]) -> None:
        data = "".join(_dumps(e) + "\n" for e in events).encode()
        if not data:
            return
        with self.lock:
            fd = self._open()
            if not self._ends_with_newline(fd):
                data = b"\n" + data
            os.write(fd, data)
            os.fsync(fd)

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd

    def _ends_with_newline(self, fd: int) -> bool:
        size = os.fstat(fd).st_size
        return size == 0 or os.pread(fd, 1, size - 1) == b"\n"

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def read(self) -> tuple[list[dict], list[str]]:
        """All events in order, and one warning per line that could not be read."""
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            return [], []
        return parse_lines(raw)


def parse_lines(raw: bytes) -> tuple[list[dict], list[str]]:
    text = raw.decode("utf-8", errors="replace")
    lines = text.split("\n")
    complete = text.endswith("\n") or text == ""
    body = lines[:-1] if complete else lines
    try:  # fast path: the whole journal as one JSON array, one C-level parse
        events = json.loads("[" + ",".join(ln for ln in body if ln) + "]")
        if complete and all(isinstance(e, dict) for e in events):
            return events, []
    except ValueError:
        pass
    events, warnings = [], []
    for number, line in enumerate(body, 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            torn = number == len(body) and not complete
            what = "torn last line (crash mid-write?)" if torn else "corrupt line"
            warnings.append(f"history line {number}: {what} skipped: {line[:60]!r}")
            continue
        events.append(event)
    return events, warnings
