"""Snapshot of the NFS client: per-mount statistics and the client-wide RPC counters.

Both come from procfs text that the kernel generates without touching any server, so
reading them never blocks on a hung mount.
"""

from __future__ import annotations

from panicwatch.parsers import mountstats
from panicwatch.reader import HostReader

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
