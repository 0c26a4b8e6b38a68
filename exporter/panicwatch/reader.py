"""Reading host files for one collection, keeping a list of what went wrong.

A collector reads through a HostReader: a missing optional file is simply absent,
while an unreadable or garbled one is noted as a problem (which fails that collector)
and the rest of the collection carries on, so nothing else is lost.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from panicwatch.host import READ_LIMIT, Host, read_text
from panicwatch.parsers.procfs import ParseError, parse_int

T = TypeVar("T")

# Reading these from a kernel interface means "this feature is off", not a failure
# (e.g. /proc/pressure/* with psi=0 gives EOPNOTSUPP).
_ABSENT_ERRNOS = {errno.ENOENT, errno.ENOTDIR, errno.EOPNOTSUPP, errno.ENODEV}


def describe_error(error: BaseException) -> str:
    if isinstance(error, OSError) and error.filename:
        return f"{error.filename}: {error.strerror or error}"
    return f"{type(error).__name__}: {error}"


class HostReader:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.problems: list[str] = []

    def problem(self, message: str) -> None:
        if message not in self.problems:
            self.problems.append(message)

    def text(self, path: Path, *, required: bool = False, limit: int = READ_LIMIT) -> str | None:
        """The file's text; None if it is absent (a problem only if required) or unreadable."""
        try:
            return read_text(path, limit)
        except OSError as e:
            if e.errno in _ABSENT_ERRNOS and not required:
                return None
            self.problem(describe_error(e))
            return None

    def parsed(self, path: Path, parser: Callable[[str], T], *, required: bool = False) -> T | None:
        text = self.text(path, required=required)
        if text is None:
            return None
        try:
            return parser(text)
        except ParseError as e:
            self.problem(f"{path}: {e}")
            return None

    def integer(self, path: Path, *, required: bool = False) -> int | None:
        return self.parsed(path, parse_int, required=required)

    def first_integer(self, *paths: Path) -> int | None:
        """The first of several equivalent files that exists (new and legacy sysfs names)."""
        for path in paths:
            value = self.integer(path)
            if value is not None:
                return value
        return None
