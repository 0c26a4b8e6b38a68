"""blocked_tasks: tasks in D counted and classified by what they wait on.

Real where possible: processes (and a thread of a multithreaded process) stuck in the kernel on a
frozen FUSE mount, read from the real /proc; a real race against exiting processes; a stack read
that really blocks (a FIFO in a fixture tree); permission denied for real (a forked child that
drops to nobody). Exact counts come from fixture procfs trees through --path.procfs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from conftest import scrape_text, value
from freezefs import FreezeFS
from panicwatch.collectors.base import PanicwatchCollector
from panicwatch.collectors.blocked_tasks import BlockedTasksCollector
from panicwatch.exposition import render_all
from panicwatch.host import Host
from panicwatch.parsers.task_state import WAITS, Frame, classify, is_plain_task, parse_stack, parse_stat
from panicwatch.reader import HostReader
from panicwatch.snapshots.blocked_tasks import StackReader, TaskKey, read_blocked_tasks, scan_blocked

# --------------------------------------------------------------------------------------------
# Kernel stacks as /proc/<pid>/task/<tid>/stack prints them (6.1 unless said otherwise)
# --------------------------------------------------------------------------------------------

# NFSv4 stat() waiting for the GETATTR reply: a sync RPC sleeps in rpc_wait_bit_killable.
RPC_GETATTR = """\
[<0>] rpc_wait_bit_killable+0x11/0x70 [sunrpc]
[<0>] __wait_on_bit+0x2d/0x90
[<0>] out_of_line_wait_on_bit+0x8a/0xb0
[<0>] __rpc_execute+0x10c/0x3e0 [sunrpc]
[<0>] rpc_execute+0x95/0xc0 [sunrpc]
[<0>] rpc_run_task+0x12d/0x190 [sunrpc]
[<0>] nfs4_call_sync_sequence+0x74/0xb0 [nfsv4]
[<0>] _nfs4_proc_getattr+0x163/0x1a0 [nfsv4]
[<0>] nfs4_proc_getattr+0x6b/0x120 [nfsv4]
[<0>] __nfs_revalidate_inode+0x9a/0x2b0 [nfs]
[<0>] nfs_getattr+0x207/0x3a0 [nfs]
[<0>] vfs_statx+0x95/0x170
[<0>] vfs_fstatat+0x55/0x70
[<0>] __do_sys_newfstatat+0x26/0x60
[<0>] do_syscall_64+0x58/0xc0
[<0>] entry_SYSCALL_64_after_hwframe+0x64/0xce
"""
# close() of an NFSv4 file: nfs4_do_close waits for the CLOSE RPC.
RPC_CLOSE = """\
[<0>] rpc_wait_bit_killable+0x1e/0x90 [sunrpc]
[<0>] __wait_on_bit+0x42/0x110
[<0>] out_of_line_wait_on_bit+0x92/0xb0
[<0>] __rpc_wait_for_completion_task+0x2a/0x40 [sunrpc]
[<0>] nfs4_do_close+0x2c8/0x330 [nfsv4]
[<0>] __put_nfs_open_context+0xc1/0x150 [nfs]
[<0>] nfs_file_release+0x3e/0x50 [nfs]
[<0>] __fput+0xff/0x2a0
[<0>] task_work_run+0x5d/0xa0
[<0>] exit_to_user_mode_prepare+0x1e3/0x1f0
[<0>] syscall_exit_to_user_mode+0x1b/0x40
[<0>] do_syscall_64+0x67/0x80
[<0>] entry_SYSCALL_64_after_hwframe+0x64/0xce
"""
# RHEL 7 (3.10): real addresses, and the end-of-trace marker.
RPC_OLD_FORMAT = """\
[<ffffffffc04a6e24>] rpc_wait_bit_killable+0x24/0xb0 [sunrpc]
[<ffffffffc04a88d4>] __rpc_execute+0x154/0x410 [sunrpc]
[<ffffffffc04aa0d8>] rpc_execute+0x68/0xb0 [sunrpc]
[<ffffffffc049a0e0>] rpc_run_task+0xf0/0x130 [sunrpc]
[<ffffffffc06b98d3>] nfs4_call_sync_sequence+0x63/0xa0 [nfsv4]
[<ffffffffc06ba6bc>] _nfs4_proc_getattr+0xcc/0xf0 [nfsv4]
[<ffffffffc06c6f7a>] nfs4_proc_getattr+0x7a/0x130 [nfsv4]
[<ffffffffc0668c4e>] __nfs_revalidate_inode+0xbe/0x310 [nfs]
[<ffffffffc0669262>] nfs_getattr+0x92/0x290 [nfs]
[<ffffffff8d24c439>] vfs_getattr+0x49/0x80
[<ffffffff8d24c4b5>] vfs_fstatat+0x45/0x80
[<ffffffff8d24ca1e>] SYSC_newstat+0x2e/0x60
[<ffffffff8d24cd0e>] SyS_newstat+0xe/0x10
[<ffffffff8d776ddb>] system_call_fastpath+0x22/0x27
[<ffffffffffffffff>] 0xffffffffffffffff
"""
# sunrpc and nfs built into the kernel: no module tags, the names alone.
RPC_BUILTIN = "".join(line.split(" [")[0] + "\n" for line in RPC_GETATTR.splitlines())
# A kworker flushing NFS pages: the WRITE is an async RPC, waited for by xprt/transport steps.
RPC_RESERVE = """\
[<0>] xprt_reserve+0x5a/0x70 [sunrpc]
[<0>] call_reserve+0x1e/0x30 [sunrpc]
[<0>] __rpc_execute+0x8e/0x3e0 [sunrpc]
[<0>] rpc_async_schedule+0x29/0x40 [sunrpc]
[<0>] process_one_work+0x1c7/0x380
[<0>] worker_thread+0x4d/0x380
[<0>] kthread+0xd7/0x100
[<0>] ret_from_fork+0x1f/0x30
"""
# A Kerberos mount waiting for rpc.gssd to answer the credential upcall.
RPC_GSS_UPCALL = """\
[<0>] gss_cred_init+0x2c1/0x3b0 [auth_rpcgss]
[<0>] rpcauth_lookup_credcache+0x2bd/0x3a0 [sunrpc]
[<0>] rpcauth_lookupcred+0x81/0xb0 [sunrpc]
[<0>] rpcauth_refreshcred+0x14b/0x170 [sunrpc]
[<0>] __rpc_execute+0x8e/0x3e0 [sunrpc]
"""
# close() flushing dirty NFS pages: waits for writeback, done by someone else's WRITE RPCs.
NFS_WRITEBACK = """\
[<0>] folio_wait_bit_common+0x13d/0x350
[<0>] folio_wait_writeback+0x28/0x80
[<0>] __filemap_fdatawait_range+0x85/0xf0
[<0>] filemap_write_and_wait_range+0x85/0xf0
[<0>] nfs_wb_all+0x23/0x110 [nfs]
[<0>] nfs4_file_flush+0x6f/0xa0 [nfsv4]
[<0>] filp_close+0x2e/0x80
[<0>] __x64_sys_close+0x1e/0x60
[<0>] do_syscall_64+0x58/0xc0
[<0>] entry_SYSCALL_64_after_hwframe+0x64/0xce
"""
# open() waiting for the state manager to recover an expired lease.
NFS_RECOVERY = """\
[<0>] nfs_wait_bit_killable+0x1e/0x90 [nfs]
[<0>] __wait_on_bit+0x42/0x110
[<0>] out_of_line_wait_on_bit+0x92/0xb0
[<0>] nfs4_wait_clnt_recover+0x61/0x90 [nfsv4]
[<0>] nfs4_client_recover_expired_lease+0x1a/0x70 [nfsv4]
[<0>] _nfs4_do_open.isra.0+0x7c/0x4f0 [nfsv4]
[<0>] nfs4_do_open+0xd1/0x210 [nfsv4]
[<0>] nfs4_atomic_open+0xe7/0x100 [nfsv4]
[<0>] nfs_atomic_open+0x29b/0x6c0 [nfs]
[<0>] path_openat+0x6a4/0x1240
[<0>] do_filp_open+0xaf/0x160
[<0>] do_sys_openat2+0xaf/0x170
"""
# A local ext4 fsync waiting for the journal commit.
OTHER_JOURNAL = """\
[<0>] jbd2_log_wait_commit+0xac/0x120 [jbd2]
[<0>] ext4_sync_file+0x2ba/0x390 [ext4]
[<0>] __x64_sys_fsync+0x34/0x60
[<0>] do_syscall_64+0x58/0xc0
[<0>] entry_SYSCALL_64_after_hwframe+0x64/0xce
"""
# A read from a local disk.
OTHER_DISK = """\
[<0>] io_schedule+0x46/0x70
[<0>] bit_wait_io+0x11/0x70
[<0>] __wait_on_bit+0x42/0x110
[<0>] out_of_line_wait_on_bit+0x92/0xb0
[<0>] __wait_on_buffer+0x30/0x40
[<0>] ext4_read_bh+0x6e/0x80 [ext4]
[<0>] ext4_read_inode_bitmap+0x2e3/0x6b0 [ext4]
"""
# 4.x: mmap_sem contention; call_rwsem_* is not sunrpc's call_* state machine.
OTHER_RWSEM = """\
[<ffffffff8132a5a7>] call_rwsem_down_write_failed+0x17/0x30
[<ffffffff811a2c4d>] vm_mmap_pgoff+0x7d/0xe0
[<ffffffff811bae8e>] SyS_mmap_pgoff+0x1ae/0x250
"""
# An nfsd thread writing to its local disk: sunrpc frames, but the server side.
OTHER_NFSD = """\
[<0>] folio_wait_bit_common+0x13d/0x350
[<0>] filemap_write_and_wait_range+0x85/0xf0
[<0>] nfsd_vfs_write+0x2a2/0x4d0 [nfsd]
[<0>] nfsd4_write+0x12d/0x1a0 [nfsd]
[<0>] nfsd4_proc_compound+0x355/0x680 [nfsd]
[<0>] nfsd_dispatch+0x15b/0x250 [nfsd]
[<0>] svc_process_common+0x2d6/0x6e0 [sunrpc]
[<0>] svc_process+0xad/0x100 [sunrpc]
[<0>] nfsd+0xd5/0x190 [nfsd]
[<0>] kthread+0xd7/0x100
"""
# What this machine's kernel shows for a caller stuck on a frozen FUSE request (seen below).
OTHER_FUSE = """\
[<0>] request_wait_answer+0xd6/0x290
[<0>] __fuse_simple_request+0x120/0x330
[<0>] fuse_dentry_revalidate+0x192/0x440
[<0>] lookup_fast+0x153/0x160
[<0>] walk_component+0x20/0x190
[<0>] path_lookupat+0xa7/0x180
[<0>] filename_lookup+0x125/0x230
[<0>] vfs_statx+0x7a/0x170
"""


@pytest.mark.parametrize(("stack", "wchan", "wait"), [
    (RPC_GETATTR, "rpc_wait_bit_killable", "rpc"),
    (RPC_CLOSE, "rpc_wait_bit_killable", "rpc"),
    (RPC_OLD_FORMAT, "rpc_wait_bit_killable", "rpc"),
    (RPC_BUILTIN, "rpc_wait_bit_killable", "rpc"),
    (RPC_RESERVE, "xprt_reserve", "rpc"),
    (RPC_GSS_UPCALL, "gss_cred_init", "rpc"),
    (NFS_WRITEBACK, "folio_wait_bit_common", "nfs"),
    (NFS_RECOVERY, "nfs_wait_bit_killable", "nfs"),
    (OTHER_JOURNAL, "jbd2_log_wait_commit", "other"),
    (OTHER_DISK, "io_schedule", "other"),
    (OTHER_RWSEM, "call_rwsem_down_write_failed", "other"),
    (OTHER_NFSD, "folio_wait_bit_common", "other"),
    (OTHER_FUSE, "request_wait_answer", "other"),
    ("", "0", "other"),
])
def test_classification_by_stack(stack, wchan, wait):
    assert classify(wchan, parse_stack(stack)) == wait
    assert classify("", parse_stack(stack)) == wait  # wchan adds nothing the stack does not show


@pytest.mark.parametrize(("wchan", "wait"), [
    ("rpc_wait_bit_killable", "rpc"),
    ("__rpc_wait_for_completion_task", "rpc"),
    ("xprt_reserve_xprt", "rpc"),
    ("call_transmit", "rpc"),
    ("nfs_wait_bit_killable", "nfs"),
    ("nfs4_wait_clnt_recover", "nfs"),
    ("nfs41_sequence_process", "nfs"),
    ("pnfs_layoutcommit_inode", "nfs"),
    ("nlmclnt_block", "nfs"),
    ("_nfs4_do_open.isra.0", "nfs"),
    # Generic waits: an NFS page or an ext4 one, wchan alone cannot tell.
    ("folio_wait_bit_common", "other"),
    ("io_schedule", "other"),
    ("request_wait_answer", "other"),
    ("nfsd_vfs_write", "other"),
    ("svc_recv", "other"),
    ("call_rwsem_down_read_failed", "other"),
    ("call_usermodehelper_exec", "other"),
    ("0", "other"),
    ("", "other"),
    (None, "other"),
])
def test_classification_by_wchan_alone(wchan, wait):
    assert classify(wchan) == wait


def test_rpc_wins_over_nfs_and_frames_parse():
    frames = parse_stack(RPC_GETATTR)
    assert frames[0] == Frame("rpc_wait_bit_killable", "sunrpc")
    assert frames[2] == Frame("out_of_line_wait_on_bit", "")
    assert Frame("nfs_getattr", "nfs") in frames
    assert parse_stack(RPC_OLD_FORMAT)[-1] == Frame("0xffffffffffffffff", "")
    # the same nfs frames with and without the RPC underneath
    assert classify("", [f for f in frames if f.module != "sunrpc"]) == "nfs"
    assert classify("", frames) == "rpc"


def test_parse_stat_with_awkward_command_names():
    assert parse_stat(stat_line(42, "a) D (b", "S", threads=3, start=777)) == ("S", 3, 777)
    assert parse_stat(stat_line(42, "", "D")) == ("D", 1, 1000)
    assert parse_stat(stat_line(42, "x\n)", "D").encode()) == ("D", 1, 1000)
    assert parse_stat("42 (truncated) S 1 2 3") is None
    assert parse_stat("no parentheses at all") is None
    assert parse_stat("1 (x) S" + " x" * 60) is None
    assert parse_stat("") is None


def test_parse_stat_of_this_kernel():
    own = parse_stat(Path(f"/proc/self/task/{threading.get_native_id()}/stat").read_bytes())
    assert own is not None and own.state == "R" and own.num_threads >= 1 and own.start > 0


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_parse_stat_never_raises(data):
    parsed = parse_stat(data)
    assert parsed is None or len(parsed.state) == 1


@settings(max_examples=500, deadline=None)
@given(st.integers(1, 4_194_304), st.text(max_size=20), st.sampled_from("RSDZTtXIPK"),
       st.integers(0, 5000), st.integers(0, 2**63), st.booleans())
def test_the_fast_path_agrees_with_the_parser(pid, comm, state, threads, start, mangle):
    """The scan skips parsing for single-threaded tasks not in D: only when parse_stat agrees."""
    data = stat_line(pid, comm, state, threads=threads, start=start).encode("utf-8", "surrogatepass")
    if mangle:
        data = data.replace(b" ", b"  ", 3)
    if is_plain_task(data):
        parsed = parse_stat(data)
        assert parsed is not None and parsed.num_threads == 1 and parsed.state not in "DZ"


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=600), st.one_of(st.none(), st.text(max_size=40)))
def test_parse_stack_and_classify_never_raise(text, wchan):
    assert classify(wchan, parse_stack(text)) in WAITS


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(
    (RPC_GETATTR + NFS_WRITEBACK + OTHER_NFSD + OTHER_JOURNAL).splitlines()), max_size=30))
def test_any_rpc_frame_makes_it_rpc(lines):
    frames = parse_stack("\n".join(lines))
    wait = classify("", frames)
    has_rpc = any(f.module == "sunrpc" and not f.symbol.startswith("svc") for f in frames)
    has_nfs = any(f.module in ("nfs", "nfsv4") for f in frames)
    assert wait == ("rpc" if has_rpc else "nfs" if has_nfs else "other")


# --------------------------------------------------------------------------------------------
# Fixture procfs trees
# --------------------------------------------------------------------------------------------


def stat_line(pid: int, comm: str, state: str, *, threads: int = 1, start: int = 1000) -> str:
    """A stat line as the kernel prints it: fields 3..52 after "pid (comm) "."""
    fields = ["0"] * 50
    fields[0], fields[1], fields[17], fields[19] = state, "1", str(threads), str(start)
    return f"{pid} ({comm}) {' '.join(fields)}\n"


class ProcTree:
    """A fake procfs: <root>/<pid>/stat and <root>/<pid>/task/<tid>/{stat,wchan,stack}."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "self").symlink_to("1")  # non-numeric entries are not processes

    def process(self, pid: int, threads: dict[int, tuple[str, str, str | None]], *, comm: str = "app",
                start: int = 1000) -> None:
        """threads: tid -> (state, wchan, stack text or None for no stack file)."""
        leader_state = threads[pid][0]
        (self.root / str(pid)).mkdir(exist_ok=True)
        (self.root / str(pid) / "stat").write_text(
            stat_line(pid, comm, leader_state, threads=len(threads), start=start))
        for tid, (state, wchan, stack) in threads.items():
            self.thread(pid, tid, state, wchan, stack, comm=comm, start=start + tid - pid)

    def thread(self, pid: int, tid: int, state: str, wchan: str, stack: str | None, *, comm: str = "app",
               start: int = 1000) -> None:
        task = self.root / str(pid) / "task" / str(tid)
        task.mkdir(parents=True, exist_ok=True)
        (task / "stat").write_text(stat_line(tid, comm, state, start=start))
        (task / "wchan").write_text(wchan)
        if stack is not None:
            (task / "stack").write_text(stack)

    def set_state(self, pid: int, tid: int, state: str) -> None:
        paths = [self.root / str(pid) / "task" / str(tid) / "stat"]
        if tid == pid:
            paths.append(self.root / str(pid) / "stat")
        for path in paths:
            text = path.read_text()
            close = text.rindex(")")
            path.write_text(text[: close + 2] + state + text[close + 3 :])


def host_tree(tmp_path: Path) -> ProcTree:
    """A tree with every case in it; the expected counts are in test_fixture_tree_counts."""
    t = ProcTree(tmp_path / "proc")
    t.process(1, {1: ("S", "do_epoll_wait", OTHER_JOURNAL)}, comm="systemd")
    t.process(200, {200: ("D", "rpc_wait_bit_killable", RPC_GETATTR)}, comm="ls")
    # multithreaded: the leader sleeps (S), one worker is stuck on NFS writeback, one runs
    t.process(300, {300: ("S", "futex_wait_queue", None), 301: ("D", "folio_wait_bit_common", NFS_WRITEBACK),
                    302: ("R", "0", "")}, comm="java")
    # zombie leader (exited with pthread_exit): its last thread is stuck in an RPC
    t.process(400, {400: ("Z", "0", ""), 401: ("D", "rpc_wait_bit_killable", RPC_CLOSE)}, comm="defunct")
    # D on a local disk; and a D task whose stack cannot be read (a directory: read gives EISDIR)
    t.process(500, {500: ("D", "jbd2_log_wait_commit", OTHER_JOURNAL)}, comm="fsync")
    t.process(600, {600: ("D", "nfs_wait_bit_killable", None)}, comm="nostack")
    (t.root / "600/task/600/stack").mkdir()
    # vanished between listing and reading: a pid directory without stat ...
    (t.root / "700").mkdir()
    # ... a listed thread without stat ...
    t.process(800, {800: ("S", "0", ""), 801: ("D", "rpc_wait_bit_killable", RPC_GETATTR)}, comm="exiting")
    (t.root / "800/task/801/stat").unlink()
    # ... and a D task gone between the scan and the wchan read (no wchan file any more)
    t.process(900, {900: ("D", "nfs_wait_bit_killable", NFS_RECOVERY)}, comm="gone")
    (t.root / "900/task/900/wchan").unlink()
    return t


def only(host: Host, area: BlockedTasksCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(PanicwatchCollector(host, [area]))
    return registry


def scrape_once(registry: CollectorRegistry) -> dict:
    return scrape_text(render_all(registry).decode())


def counts(s: dict) -> dict[str, float]:
    return {wait: value(s, "panicwatch_blocked_tasks", wait=wait) for wait in WAITS}


def test_fixture_tree_counts(tmp_path):
    t = host_tree(tmp_path)
    host = Host.from_paths("/", procfs=t.root)
    snap = read_blocked_tasks(HostReader(host))
    got = {(task.pid, task.tid): (task.wait, task.wchan, task.stack) for task in snap.tasks}
    assert got == {
        (200, 200): ("rpc", "rpc_wait_bit_killable", True),
        (300, 301): ("nfs", "folio_wait_bit_common", True),
        (400, 401): ("rpc", "rpc_wait_bit_killable", True),
        (500, 500): ("other", "jbd2_log_wait_commit", True),
        (600, 600): ("nfs", "nfs_wait_bit_killable", False),  # unreadable stack: by wchan
    }  # 801 and 900 vanished; 300 and 302 are not in D
    assert snap.scan.tasks == 11 and snap.scan.processes == 8  # 700 had no stat
    assert not snap.unexamined

    s = scrape_once(only(host, BlockedTasksCollector()))
    assert counts(s) == {"nfs": 2, "rpc": 2, "other": 1}
    assert value(s, "panicwatch_blocked_tasks_unexamined") == 0
    assert value(s, "panicwatch_blocked_tasks_without_stack") == 1
    assert value(s, "panicwatch_collector_success", collector="blocked_tasks") == 1
    for wait in WAITS:
        assert value(s, "panicwatch_blocked_task_longest_seconds", wait=wait) == 0  # first sight


def test_longest_grows_resets_on_reuse_and_forgets(tmp_path):
    t = ProcTree(tmp_path / "proc")
    t.process(10, {10: ("D", "rpc_wait_bit_killable", RPC_GETATTR)})
    t.process(20, {20: ("D", "nfs_wait_bit_killable", NFS_RECOVERY)})
    registry = only(Host.from_paths("/", procfs=t.root), BlockedTasksCollector())
    scrape_once(registry)
    time.sleep(0.3)
    s = scrape_once(registry)
    assert value(s, "panicwatch_blocked_task_longest_seconds", wait="rpc") >= 0.3
    assert value(s, "panicwatch_blocked_task_longest_seconds", wait="nfs") >= 0.3
    assert value(s, "panicwatch_blocked_task_longest_seconds", wait="other") == 0
    # pid 10 is reused by a new process (another start time): a new task, seen for 0 s
    t.process(10, {10: ("D", "rpc_wait_bit_killable", RPC_GETATTR)}, start=5000)
    # pid 20 wakes up for one scrape: forgotten, and new again when it blocks again
    t.set_state(20, 20, "S")
    s = scrape_once(registry)
    assert value(s, "panicwatch_blocked_task_longest_seconds", wait="rpc") < 0.2
    assert counts(s) == {"nfs": 0, "rpc": 1, "other": 0}
    assert value(s, "panicwatch_blocked_task_longest_seconds", wait="nfs") == 0
    time.sleep(0.2)
    t.set_state(20, 20, "D")
    s = scrape_once(registry)
    assert value(s, "panicwatch_blocked_task_longest_seconds", wait="nfs") < 0.1
    assert value(s, "panicwatch_blocked_task_longest_seconds", wait="rpc") >= 0.2


def test_past_the_cap_the_longest_blocked_are_examined(tmp_path):
    t = ProcTree(tmp_path / "proc")
    t.process(50, {50: ("D", "nfs_wait_bit_killable", NFS_RECOVERY)})
    t.process(60, {60: ("D", "nfs_wait_bit_killable", NFS_RECOVERY)})
    registry = only(Host.from_paths("/", procfs=t.root), BlockedTasksCollector(max_examined=2))
    scrape_once(registry)
    time.sleep(0.2)
    # three newer tasks listed *before* the old ones: still the old ones keep their places
    for pid in (5, 6, 7):
        t.process(pid, {pid: ("D", "rpc_wait_bit_killable", RPC_GETATTR)})
    s = scrape_once(registry)
    assert counts(s) == {"nfs": 2, "rpc": 0, "other": 0}
    assert value(s, "panicwatch_blocked_tasks_unexamined") == 3
    assert value(s, "panicwatch_blocked_task_longest_seconds", wait="nfs") >= 0.2
    # one old task finishes: the oldest of the newcomers (all equally new: listing order) takes its place
    t.set_state(50, 50, "S")
    s = scrape_once(registry)
    assert counts(s) == {"nfs": 1, "rpc": 1, "other": 0}
    assert value(s, "panicwatch_blocked_tasks_unexamined") == 2
    assert value(s, "panicwatch_blocked_task_longest_seconds", wait="rpc") >= 0.0
    # with no detail at all, everything is counted as unexamined
    s = scrape_once(only(Host.from_paths("/", procfs=t.root), BlockedTasksCollector(max_examined=0)))
    assert counts(s) == {"nfs": 0, "rpc": 0, "other": 0}
    assert value(s, "panicwatch_blocked_tasks_unexamined") == 4


def test_garbled_stat_fails_the_collector_but_not_the_count(tmp_path):
    t = ProcTree(tmp_path / "proc")
    t.process(10, {10: ("D", "rpc_wait_bit_killable", RPC_GETATTR)})
    (t.root / "11").mkdir()
    (t.root / "11" / "stat").write_text("garbage\n")
    s = scrape_once(only(Host.from_paths("/", procfs=t.root), BlockedTasksCollector()))
    assert counts(s) == {"nfs": 0, "rpc": 1, "other": 0}
    assert value(s, "panicwatch_collector_success", collector="blocked_tasks") == 0


def test_without_procfs_the_collector_fails_alone(tmp_path):
    s = scrape_once(only(Host.from_paths("/", procfs=tmp_path / "missing"), BlockedTasksCollector()))
    assert value(s, "panicwatch_collector_success", collector="blocked_tasks") == 0
    assert value(s, "panicwatch_blocked_tasks", wait="nfs") is None


def helper_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "panicwatch-stacks")


def test_a_stack_read_that_blocks_does_not_hold_up_the_scrape(tmp_path, caplog):
    """A FIFO as the stack file: opening it blocks for real, like a task holding its exec lock."""
    t = ProcTree(tmp_path / "proc")
    t.process(10, {10: ("D", "nfs_wait_bit_killable", None)})
    t.process(20, {20: ("D", "folio_wait_bit_common", NFS_WRITEBACK)})
    fifo = t.root / "10/task/10/stack"
    os.mkfifo(fifo)
    area = BlockedTasksCollector(stack_budget=0.3)
    registry = only(Host.from_paths("/", procfs=t.root), area)
    caplog.set_level("INFO", logger="panicwatch.collector")
    before = helper_threads()
    try:
        start = time.monotonic()
        s = scrape_once(registry)
        assert time.monotonic() - start < 1.5
        assert counts(s) == {"nfs": 2, "rpc": 0, "other": 0}  # 10 by its wchan
        assert value(s, "panicwatch_blocked_tasks_without_stack") == 1
        assert value(s, "panicwatch_collector_success", collector="blocked_tasks") == 1
        # still stuck: the next scrape does not wait at all, and reads no stack (the helper is busy)
        start = time.monotonic()
        s = scrape_once(registry)
        assert time.monotonic() - start < 0.25
        assert counts(s) == {"nfs": 1, "rpc": 0, "other": 1}  # 20: folio_wait_bit_common alone
        assert value(s, "panicwatch_blocked_tasks_without_stack") == 2
        assert helper_threads() - before == 1  # one helper, however many scrapes
    finally:
        release(fifo)
    deadline = time.monotonic() + 5
    while helper_threads() > before:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    # the helper is back; task 10 stays avoided (it may block again), 20 has its stack again
    s = scrape_once(registry)
    assert counts(s) == {"nfs": 2, "rpc": 0, "other": 0}
    assert value(s, "panicwatch_blocked_tasks_without_stack") == 1
    said = [r.getMessage() for r in caplog.records if r.name == "panicwatch.collector"]
    assert [m for m in said if "did not return" in m] and len(said) == 2  # once stuck, once back
    assert "are back" in said[-1]


def release(fifo: Path) -> None:
    """Open the FIFO's write end (non-blocking: a reader is waiting), and close it: EOF."""
    with contextlib.suppress(OSError):
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def test_stack_reader_budget_with_slow_reads():
    """Reads that are merely slow: what is done by the deadline is used, the rest is left out."""
    def slow(path: bytes) -> str:
        time.sleep(0.05)
        return OTHER_DISK

    reader = StackReader(slow)
    keys = [TaskKey(i, i, 1) for i in range(100)]
    first = reader.read([(k, b"x") for k in keys], budget=0.2)
    assert 1 <= len(first.stacks) < 100
    assert all(text == OTHER_DISK for text in first.stacks.values())
    deadline = time.monotonic() + 2
    while reader.busy() is not None:  # cancelled: it stops after the read in progress
        assert time.monotonic() < deadline
        time.sleep(0.01)
    # a task whose read was cut short by the deadline is avoided (it might be one that blocks)
    second = reader.read([(k, b"x") for k in keys[:2]], budget=1.0, alive=set(keys))
    assert set(second.stacks) == {k for k in keys[:2] if k != first.blocked_on}
    assert second.blocked_on is None


def test_permission_denied_for_real_falls_back_to_wchan():
    """A forked child that drops to nobody reads a fixture tree whose stack files are 0400 root,
    as /proc's are: permission denied, so every task is classified by its wchan."""
    top = Path(tempfile.mkdtemp(prefix="blocked-tasks-"))
    try:
        top.chmod(0o755)
        t = ProcTree(top / "proc")
        t.process(10, {10: ("D", "rpc_wait_bit_killable", RPC_GETATTR)})
        t.process(20, {20: ("D", "folio_wait_bit_common", NFS_WRITEBACK)})
        for stack in t.root.glob("*/task/*/stack"):
            stack.chmod(0o400)
        got = as_nobody(lambda: [
            (task.pid, task.wait, task.stack)
            for task in read_blocked_tasks(HostReader(Host.from_paths("/", procfs=t.root))).tasks])
        assert sorted(map(tuple, got)) == [(10, "rpc", False), (20, "other", False)]
    finally:
        shutil.rmtree(top)


def as_nobody(work):
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop privileges, do the work, report as JSON, never return
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            os.write(write_end, json.dumps(work()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return json.loads(data)


def test_real_procfs_while_processes_come_and_go():
    """The scan races real processes exiting (and threads ending) under it: never a problem."""
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            procs = [subprocess.Popen(["true"]) for _ in range(10)]
            for p in procs:
                p.wait()

    def threads() -> None:
        while not stop.is_set():
            workers = [threading.Thread(target=time.sleep, args=(0.001,)) for _ in range(10)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()

    helpers = [threading.Thread(target=churn), threading.Thread(target=threads)]
    for h in helpers:
        h.start()
    try:
        host = Host.from_paths("/")
        deadline = time.monotonic() + 1.0
        scans = 0
        while time.monotonic() < deadline:
            reader = HostReader(host)
            snap = read_blocked_tasks(reader)
            assert reader.problems == []
            assert snap.scan.processes > 1
            scans += 1
        assert scans > 5
    finally:
        stop.set()
        for h in helpers:
            h.join()


# --------------------------------------------------------------------------------------------
# Real tasks in D on a frozen FUSE mount
# --------------------------------------------------------------------------------------------

# A stat() on a frozen FUSE mount first waits *interruptibly* (state S: request_wait_answer's
# wait_event_interruptible). A signal with a handler interrupts that wait; the kernel then sends
# FUSE_INTERRUPT and waits on, killable only: state D. The child blocks SIGUSR1 in its main thread
# (after starting the worker), so the signal is delivered to the stuck worker and its main thread
# stays in S: the leader's /proc/<pid>/stat does not show the D thread.
CHILD = r"""
import os, signal, sys, threading
signal.signal(signal.SIGUSR1, lambda *a: None)
def work():
    os.write(1, b"%d\n" % threading.get_native_id())  # one write: lines do not interleave
    os.stat(sys.argv[1])
worker = threading.Thread(target=work)
if sys.argv[2] == "thread":
    worker.start()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    os.write(1, b"masked\n")
    worker.join()
else:
    work()
"""


def task_state(pid: int, tid: int) -> str | None:
    try:
        text = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2]


def wait_for_state(pid: int, tid: int, state: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while task_state(pid, tid) != state:
        assert time.monotonic() < deadline, f"task {tid} of {pid} is {task_state(pid, tid)}, not {state}"
        time.sleep(0.01)


@pytest.fixture
def fuse(tmp_path):
    (tmp_path / "mnt").mkdir()
    with FreezeFS(tmp_path / "mnt", max_freeze=30) as fs:
        yield fs


def test_real_tasks_in_d_on_a_frozen_fuse_mount(fuse):
    target = fuse.path / "hello.txt"
    os.stat(target)  # looked up once: later stats revalidate side by side
    children: list[subprocess.Popen] = []
    fuse.freeze()
    try:
        stuck = []  # (pid, tid)
        for mode in ("process", "thread"):
            child = subprocess.Popen([sys.executable, "-c", CHILD, str(target), mode],
                                     stdout=subprocess.PIPE, text=True)
            children.append(child)
            lines = [child.stdout.readline().strip() for _ in range(1 if mode == "process" else 2)]
            stuck.append((child.pid, int(next(line for line in lines if line.isdigit()))))
        fuse.wait_held(2)
        for pid, tid in stuck:
            wait_for_state(pid, tid, "S")  # interruptible at first
            os.kill(pid, signal.SIGUSR1)
            wait_for_state(pid, tid, "D")
        pid, tid = stuck[1]
        assert tid != pid
        leader = Path(f"/proc/{pid}/stat").read_text()
        assert leader[leader.rindex(")") + 2] == "S"  # the process looks asleep, its thread is in D

        snap = read_blocked_tasks(HostReader(Host.from_paths("/")))
        mine = {(task.pid, task.tid): task for task in snap.tasks if (task.pid, task.tid) in stuck}
        assert set(mine) == set(stuck)
        for task in mine.values():
            assert task.wait == "other"  # FUSE frames are neither nfs nor rpc
            assert task.wchan == "request_wait_answer"
            assert task.stack == (os.geteuid() == 0)

        registry = only(Host.from_paths("/"), BlockedTasksCollector())
        first = scrape_once(registry)
        time.sleep(0.5)
        second = scrape_once(registry)
        assert value(first, "panicwatch_blocked_tasks", wait="other") >= 2
        assert value(second, "panicwatch_blocked_tasks", wait="other") >= 2
        grown = value(second, "panicwatch_blocked_task_longest_seconds", wait="other")
        assert grown >= 0.5 + value(first, "panicwatch_blocked_task_longest_seconds", wait="other") - 0.01
        assert value(second, "panicwatch_collector_success", collector="blocked_tasks") == 1
    finally:
        fuse.thaw()  # before waiting: a task in D on a held request cannot exit, even on SIGKILL
        for child in children:
            try:
                child.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.communicate()
    assert all(child.returncode == 0 for child in children)
    snap = read_blocked_tasks(HostReader(Host.from_paths("/")))
    assert not {(task.pid, task.tid) for task in snap.tasks} & set(stuck)
    assert not {(key.pid, key.tid) for key in scan_blocked("/proc").blocked} & set(stuck)


def test_stat_files_are_world_readable_stack_is_not():
    """What the fallbacks rely on, checked on this kernel."""
    me = threading.get_native_id()
    task = Path(f"/proc/{os.getpid()}/task/{me}")
    assert stat.S_IMODE((task / "stat").stat().st_mode) == 0o444
    assert stat.S_IMODE((task / "wchan").stat().st_mode) == 0o444
    assert stat.S_IMODE((task / "stack").stat().st_mode) == 0o400
