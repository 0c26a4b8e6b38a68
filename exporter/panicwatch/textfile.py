"""`panicwatch metrics --output FILE`: the page written for node_exporter's textfile collector.

node_exporter reads ``*.prom`` in its directory at every scrape, so a half-written file would
be scraped half. The page goes to a temporary file in the same directory (same filesystem:
the rename is atomic), named so the collector never reads it (``.NAME.XXXX.tmp``: hidden,
not ``.prom``), then is renamed over FILE.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

# node_exporter usually runs as another user (prometheus); the page holds nothing secret.
MODE = 0o644


def write_atomically(path: Path, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to ``path`` so that a reader sees the old file or the new one, whole.
    Raises OSError; the temporary file never outlives a failure."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fchmod(f.fileno(), MODE)
            os.fsync(f.fileno())  # a crash after the rename leaves the new page, not an empty file
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
