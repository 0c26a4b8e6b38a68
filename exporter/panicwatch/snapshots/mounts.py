"""The mount table, from mountinfo (the host's init namespace first): which filesystem each
path is on, and so which paths must never be touched from a scrape."""

from __future__ import annotations

from panicwatch.parsers import mountinfo
from panicwatch.reader import HostReader

MOUNTINFO_LIMIT = 64 << 20  # busy Kubernetes nodes have mount tables of several MiB


def read_mounts(reader: HostReader) -> list[mountinfo.Mount] | None:
    for path in reader.host.mountinfo():
        text = reader.text(path, limit=MOUNTINFO_LIMIT)
        if text is None:
            continue
        mounts, skipped = mountinfo.parse_mountinfo(text)
        if skipped or len(text) >= MOUNTINFO_LIMIT:
            # A line we could not read may be the NFS mount: fail closed, touch nothing.
            reader.problem(f"{path}: {skipped} unreadable lines or over {MOUNTINFO_LIMIT} bytes")
            return None
        return mounts
    return None
