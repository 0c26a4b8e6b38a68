"""Snapshot of the NFS client: per-mount statistics and the client-wide RPC counters.

Both come from procfs text that the kernel generates without touching any server, so
reading them never blocks on a hung mount.
"""

from __future__ import annotations

from panicwatch.parsers import mountstats
from panicwatch.parsers.inet_diag import Endpoint
from panicwatch.parsers.mountinfo import nfs_server
from panicwatch.reader import HostReader
from panicwatch.snapshots.mounts import read_mounts

# A host with thousands of NFS mounts prints several MiB; past this, something is wrong.
MOUNTSTATS_LIMIT = 256 << 20


def read_mountstats(reader: HostReader, pid: str) -> mountstats.MountstatsResult | None:
    """The NFS mounts of ``pid``'s mount namespace; each mount the parser skipped is a problem."""
    path = reader.host.mountstats(pid)
    text = reader.text(path, required=True, limit=MOUNTSTATS_LIMIT)
    if text is None:
        return None
    if len(text) >= MOUNTSTATS_LIMIT:
        reader.problem(f"{path}: over {MOUNTSTATS_LIMIT} bytes, the rest was not read")
    result = mountstats.parse_mountstats(text)
    for reason in result.skipped:
        reader.problem(f"{path}: {reason}")
    return result


def read_rpc_nfs(reader: HostReader) -> mountstats.RpcNfsStats | None:
    """Absent (None) when the NFS client module is not loaded."""
    return reader.parsed(reader.host.rpc_nfs(), mountstats.parse_rpc_nfs)


def nfs_mount_servers(reader: HostReader) -> list[tuple[str, Endpoint]]:
    """(mount point, server address and port) of each NFS mount, from the mount table's
    ``addr=``/``port=`` (the address the kernel connected to; 2049 when no port is given).
    Mounts without an IP address there are left out: names are never resolved here."""
    servers = []
    for mount in reader.snapshot(read_mounts) or []:
        if mount.fstype in mountstats.NFS_FSTYPES:
            server = nfs_server(mount.super_options)
            if server is not None:
                servers.append((mount.mountpoint, server))
    return servers
