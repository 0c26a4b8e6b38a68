"""Snapshot of the RPC tasks in flight, from debugfs sunrpc (root only, never mounted by us),
and of the RPC transports' queues, from sysfs (kernels 5.14+, any user).

``<debugfs>/sunrpc/rpc_clnt/<clid>/tasks`` lists a client's tasks; its ``xprt`` link names
the ``rpc_xprt/<n>`` whose ``info`` holds the server address. These are generated from
kernel lists under a spinlock: reading them never waits on a server.
"""

from __future__ import annotations

import errno
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from panicwatch.parsers import sunrpc
from panicwatch.reader import HostReader, describe_error


@dataclass(frozen=True)
class RpcClients:
    tasks: list[sunrpc.RpcTask]
    servers: dict[int, str]  # client id -> server address
    unreadable: list[int]  # clients whose tasks file could not be read this time


class DebugfsUnavailable(Exception):
    """debugfs is not mounted, not readable by us, or has no sunrpc directory (no NFS)."""


def read_rpc_clients(reader: HostReader) -> RpcClients:
    root = reader.host.debugfs("sunrpc")
    try:
        entries = list(os.scandir(root / "rpc_clnt"))
    except OSError as e:
        raise DebugfsUnavailable(describe_error(e)) from None
    tasks: list[sunrpc.RpcTask] = []
    servers: dict[int, str] = {}
    unreadable: list[int] = []
    for entry in entries:
        client = sunrpc.client_id_from_dirname(entry.name)
        if client is None:
            continue
        text = reader.text(Path(entry.path) / "tasks")
        if text is None:
            unreadable.append(client)
        else:
            parsed = sunrpc.parse_tasks(text)
            tasks.extend(parsed.tasks)
            if parsed.skipped:  # one stable message, so it is logged once, not per task id
                reader.problem(f"{entry.path}/tasks: unreadable task lines skipped")
        server = _server_of(reader, root, Path(entry.path))
        if server:
            servers[client] = server
    return RpcClients(tasks, servers, unreadable)


def _server_of(reader: HostReader, root: Path, client_dir: Path) -> str | None:
    try:
        xprt = sunrpc.xprt_dir_from_link(os.readlink(client_dir / "xprt"))
    except OSError:
        return None  # a client being torn down
    if xprt is None:
        return None
    text = reader.text(root / "rpc_xprt" / xprt / "info")
    info = sunrpc.parse_xprt_info(text).value if text is not None else None
    return info.addr if info is not None and info.addr else None


def read_transports(reader: HostReader) -> dict[str, list[sunrpc.SysfsXprtInfo]]:
    """``/sys/kernel/sunrpc/xprt-switches/*/xprt-*``: each transport's queues, by server
    address (``dstaddr``). Empty where the kernel has no such directory (before 5.14)."""
    by_server: dict[str, list[sunrpc.SysfsXprtInfo]] = defaultdict(list)
    try:
        switches = list(os.scandir(reader.host.sys("kernel", "sunrpc", "xprt-switches")))
    except OSError:
        return {}
    for switch in switches:
        try:
            xprts = [e for e in os.scandir(switch.path) if e.name.startswith("xprt-")]
        except OSError:
            continue  # removed while we looked
        for xprt in xprts:
            address_text = reader.text(Path(xprt.path) / "dstaddr")
            server = sunrpc.parse_sysfs_address(address_text) if address_text else None
            try:
                with open(Path(xprt.path) / "xprt_info") as f:
                    info = sunrpc.parse_sysfs_xprt_info(f.read()).value
            except OSError as e:
                if e.errno not in (errno.ENOTCONN, errno.ENOENT):  # down, or just removed
                    reader.problem(describe_error(e))
                continue
            if server and info:
                by_server[server].append(info)
    return dict(by_server)
