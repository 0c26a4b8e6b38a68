"""The operations a worker can make on each path (``--op``), and which entries each applies to.

``stat`` is ``os.lstat``: what ``stat(1)`` does by default (it reports on a symlink, not its
target), so it counts the same calls as the shell loop; on a file or directory it is the same
lookup and GETATTR as ``stat(2)``, and it never leaves the tree through a symlink.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC
FILE, DIR, SYMLINK, OTHER = "file", "dir", "symlink", "other"
ALL_KINDS = frozenset({FILE, DIR, SYMLINK, OTHER})


def _open_close(path: str) -> None:
    os.close(os.open(path, OPEN_FLAGS))


def _list_dir(path: str) -> None:
    os.listdir(path)


@dataclass(frozen=True)
class Op:
    call: Callable[[str], object]
    kinds: frozenset[str]  # what the walk hands it (a PATH given is always handed over)
    about: str


OPS: dict[str, Op] = {
    "stat": Op(os.lstat, ALL_KINDS, "lstat every entry (symlinks not followed, as stat(1))"),
    "open": Op(_open_close, frozenset({FILE, DIR}),
               "open O_RDONLY|O_NONBLOCK|O_NOFOLLOW and close every file and directory"),
    "statvfs": Op(os.statvfs, ALL_KINDS - {SYMLINK}, "statvfs every entry except symlinks"),
    "readdir": Op(_list_dir, frozenset({DIR}), "list every directory"),
}
