"""Reading host files for one collection, keeping a list of what went wrong.

A collector reads through a HostReader: a missing optional file is simply absent,
while an unreadable or garbled one is noted as a problem (which fails that collector)
and the rest of the collection carries on, so nothing else is lost.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from panicwatch.host import READ_LIMIT, Host, read_text
from panicwatch.parsers.procfs import ParseError, parse_int

T = TypeVar("T")

# Reading these from a kernel interface means "this feature is off", not a failure
# (e.g. /proc/pressure/* with psi=0 gives EOPNOTSUPP), or "not now": kexec_crash_size
# gives EBUSY while a crash kernel is being loaded, and other sources cover that moment.
_ABSENT_ERRNOS = {errno.ENOENT, errno.ENOTDIR, errno.EOPNOTSUPP, errno.ENODEV, errno.EBUSY}


def is_absent(error: OSError) -> bool:
    return error.errno in _ABSENT_ERRNOS


def describe_error(error: BaseException) -> str:
    if isinstance(error, OSError) and error.filename:
        return f"{error.filename}: {error.strerror or error}"
    return f"{type(error).__name__}: {error}"


class HostReader:
    """One area's reads within one scrape.

    Readers made for the same scrape share ``cache``, so a snapshot several areas need
    (the kdump state, the mount table, the crash directory listing) is read once per
    scrape, and each area that uses it inherits the problems met while reading it.
    """

    def __init__(self, host: Host, cache: dict[Callable[..., Any], Any] | None = None) -> None:
        self.host = host
        self.problems: list[str] = []
        self._cache = {} if cache is None else cache

    def sibling(self) -> HostReader:
        """A reader for another area of the same scrape."""
        return HostReader(self.host, self._cache)

    def snapshot(self, read: Callable[[HostReader], T]) -> T:
        """``read(reader)``, done once per scrape and shared."""
        if read not in self._cache:
            sub = self.sibling()
            try:
                outcome: tuple[Any, BaseException | None] = (read(sub), None)
            except Exception as e:
                outcome = (None, e)
            self._cache[read] = (outcome, tuple(sub.problems))
        (value, error), problems = self._cache[read]
        for message in problems:
            self.problem(message)
        if error is not None:
            raise error
        return value

    def problem(self, message: str) -> None:
        if message not in self.problems:
            self.problems.append(message)

    def text(self, path: Path, *, required: bool = False, limit: int = READ_LIMIT) -> str | None:
        """The file's text; None if it is absent (a problem only if required) or unreadable."""
        try:
            return read_text(path, limit)
        except OSError as e:
            if is_absent(e) and not required:
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
