"""Snapshot of the crash dumps waiting in the local crash directory.

The scan is bounded: the crash directory's top level and one level down, no symlinks
followed; the dumps' saved logs are read by triage (panicwatch.triage.dumps).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, tzinfo
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from panicwatch import host as paths
from panicwatch.parsers import vmcore_layout
from panicwatch.parsers.mountinfo import mount_of
from panicwatch.reader import HostReader, describe_error
from panicwatch.snapshots.kdump import read_target_state
from panicwatch.snapshots.mounts import read_mounts

# A crash dir (or dump dir) with more entries than this is not one; only this many are
# looked at, and the collector says so, since the counts would then be incomplete.
MAX_ENTRIES = 1000


@dataclass(frozen=True)
class Dump:
    name: str  # directory name, e.g. 127.0.0.1-2024-05-01-03:12:45
    layout: str
    timestamp: float
    incomplete: bool
    bytes: int
    dmesg: str | None  # host-absolute path of the saved dmesg
    core: str | None  # host-absolute path of the dump file (vmcore, dump.<stamp>, ...)


@dataclass(frozen=True)
class VmcoreInventory:
    crash_dir: str | None  # None: no local crash directory to look at
    dumps: tuple[Dump, ...]
    unchecked_reason: str | None = None

    @property
    def newest(self) -> Dump | None:
        return max(self.dumps, key=lambda d: d.timestamp, default=None)


def host_timezone(reader: HostReader) -> tzinfo:
    """Dump directory names are the capture's local time, which is the host's zone.

    /etc/localtime is usually an absolute symlink into the host's zoneinfo: follow it
    inside the rootfs, not in our own filesystem.
    """
    path = reader.host.root(paths.LOCALTIME)
    try:
        link = os.readlink(path)
        path = reader.host.root(link) if link.startswith("/") else path.parent / link
    except OSError:
        pass  # a regular file (or absent)
    try:
        with open(path, "rb") as f:
            return ZoneInfo.from_file(f)
    except (OSError, ValueError):
        return UTC


def _too_many(reader: HostReader, directory: str) -> None:
    reader.problem(f"{directory}: over {MAX_ENTRIES} entries, only the first {MAX_ENTRIES} counted")


def _scan_dump_dir(path: str | Path) -> tuple[bool, bool, int, list[str], bool]:
    """(has a dump file, incomplete, bytes, file names, listing cut short) for one
    candidate directory."""
    names: list[str] = []
    size, has_dump, incomplete, cut = 0, False, False, False
    with os.scandir(path) as it:
        for seen, entry in enumerate(it):
            if seen >= MAX_ENTRIES:
                cut = True
                break
            if not entry.is_file(follow_symlinks=False):
                continue  # only regular files: a FIFO or symlink named dmesg must not be opened
            names.append(entry.name)
            if vmcore_layout.is_incomplete_marker(entry.name):
                incomplete = True
            if vmcore_layout.is_dump_file(entry.name):
                has_dump = True
                size += entry.stat(follow_symlinks=False).st_size
    return has_dump, incomplete, size, names, cut


@lru_cache(maxsize=4096)  # the same directories every scrape: made once while unchanged
def _dump(name: str, path: str, named: vmcore_layout.DumpDirName | None, has_dump: bool,
          incomplete: bool, size: int, names: tuple[str, ...], mtime: float,
          zone: tzinfo) -> Dump:
    # A dump directory without a finished dump file is a capture that did not finish.
    incomplete = incomplete or not has_dump
    stamp = named.stamp.replace(tzinfo=zone).timestamp() if named and named.stamp else mtime
    dmesg = vmcore_layout.dmesg_file(names)
    core = vmcore_layout.core_file(names)
    return Dump(
        name=name,
        layout=named.layout if named else "unknown",
        timestamp=stamp,
        incomplete=incomplete,
        bytes=size,
        dmesg=f"{path}/{dmesg}" if dmesg else None,
        core=f"{path}/{core}" if core else None,
    )


def dump_at(path: Path, zone: tzinfo) -> Dump:
    """One dump directory named on the command line (paths in it are local, not host's)."""
    has_dump, incomplete, size, names, _ = _scan_dump_dir(path)
    mtime = os.stat(path, follow_symlinks=False).st_mtime
    name = path.resolve().name
    return _dump(name, str(path), vmcore_layout.classify_dir(name), has_dump, incomplete, size,
                 tuple(names), mtime, zone)


def scan_crash_dir(reader: HostReader, crash_dir: str) -> VmcoreInventory:
    zone = host_timezone(reader)
    local = reader.host.root(crash_dir)
    dumps = []
    try:
        with os.scandir(local) as it:
            entries = [e for _, e in zip(range(MAX_ENTRIES + 1), it, strict=False)]
    except FileNotFoundError:
        return VmcoreInventory(crash_dir, ())
    except OSError as e:
        reader.problem(describe_error(e))
        return VmcoreInventory(crash_dir, (), describe_error(e))
    if len(entries) > MAX_ENTRIES:
        _too_many(reader, crash_dir)
        entries = entries[:MAX_ENTRIES]
    mounts = reader.snapshot(read_mounts)
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            continue  # kexec_cmd, kdump_lock, apport *.crash, ...
        sub = f"{crash_dir.rstrip('/')}/{entry.name}"
        mount = mount_of(sub, mounts) if mounts is not None else None
        if mounts is None or (mount is not None and mount.may_block):
            continue  # never list a directory that may sit on a network mount
        named = vmcore_layout.classify_dir(entry.name)
        if named is None and entry.name.startswith(vmcore_layout.TEST_DUMP_PREFIX):
            continue  # `kdumpctl test` proves capture works; it is not a crash
        try:
            has_dump, incomplete, size, names, cut = _scan_dump_dir(entry.path)
            mtime = entry.stat(follow_symlinks=False).st_mtime
        except OSError as e:
            reader.problem(describe_error(e))
            continue
        if cut:
            _too_many(reader, sub)
        if named is None and not has_dump:
            continue  # some other directory
        dumps.append(_dump(entry.name, sub, named, has_dump, incomplete, size, tuple(names),
                           mtime, zone))
    return VmcoreInventory(crash_dir, tuple(sorted(dumps, key=lambda d: d.name)))


def read_inventory(reader: HostReader) -> VmcoreInventory:
    target = reader.snapshot(read_target_state)
    if not target.exists or target.local_dir is None:
        reason = target.unchecked_reason or f"{target.target.label} does not exist"
        return VmcoreInventory(None, (), reason)
    return scan_crash_dir(reader, target.local_dir)
