"""/proc/<pid>/mountinfo (Documentation/filesystems/proc.rst, section 3.5)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from panicwatch.parsers.inet_diag import Endpoint, normalize_endpoint

_OCTAL = re.compile(r"\\([0-7]{3})")

# Filesystems where statvfs/stat may wait on a server or a daemon; never touched on the
# scrape path. autofs: a stat would trigger the automount.
UNSAFE_FSTYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "9p", "lustre", "gpfs",
    "afs", "beegfs", "ocfs2", "gfs2", "autofs", "davfs", "sshfs", "fuse", "fuseblk", "virtiofs",
})


def unescape(field: str) -> str:
    """The kernel escapes space, tab, newline and backslash as \\ooo octal."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


@dataclass(frozen=True)
class Mount:
    mount_id: int
    root: str
    mountpoint: str
    fstype: str
    source: str
    options: str
    super_options: str

    @property
    def may_block(self) -> bool:
        return self.fstype in UNSAFE_FSTYPES or self.fstype.startswith("fuse.")


def parse_mountinfo(text: str) -> tuple[list[Mount], int]:
    """Mounts, and how many malformed lines were skipped."""
    mounts, skipped = [], 0
    for line in text.split("\n"):
        if not line.strip():
            continue
        left, sep, right = line.partition(" - ")
        # An empty source prints as two spaces: split on single spaces to keep its place.
        fields, tail = left.split(" "), right.split(" ")
        if (not sep or len(fields) < 6 or len(tail) < 2
                or not (fields[0].isascii() and fields[0].isdigit())):
            skipped += 1
            continue
        mounts.append(Mount(
            mount_id=int(fields[0]),
            root=unescape(fields[3]),
            mountpoint=unescape(fields[4]),
            fstype=tail[0],
            source=unescape(tail[1]),
            options=fields[5],
            super_options=tail[2] if len(tail) > 2 else "",
        ))
    return mounts, skipped


def mount_of(path: str, mounts: list[Mount]) -> Mount | None:
    """The mount a host-absolute path lives on: the last-mounted longest prefix."""
    best: Mount | None = None
    for m in mounts:
        mp = m.mountpoint.rstrip("/") or "/"
        inside = path == mp or path.startswith(mp if mp == "/" else mp + "/")
        if inside and (best is None or len(mp) >= len(best.mountpoint.rstrip("/") or "/")):
            best = m
    return best


NFS_PORT = 2049


def nfs_server(super_options: str) -> Endpoint | None:
    """The server address and port an NFS mount's options name (``addr=``, ``port=``; 2049
    when no port or port 0 is given), the address the kernel connected to; None without an
    IP address there (names are never resolved) or with a port out of range."""
    options = dict(o.partition("=")[::2] for o in super_options.split(","))
    port = options.get("port", "")
    try:
        return normalize_endpoint((options.get("addr", ""),
                                   int(port) if port.isdecimal() and int(port) else NFS_PORT))
    except ValueError:
        return None
