"""sunrpc debugfs/sysfs parsers and the task age tracker.

Fixtures in tests/fixtures/sunrpc/ are written from the kernel's format strings (net/sunrpc/debugfs.c
tasks_show and xprt_info_show, net/sunrpc/sysfs.c rpc_sysfs_xprt_*_show) for several kernel
generations. The fuzz tests render tasks with their own copy of the tasks_show format, independent
of the parser; hypothesis draws a seed and a ``random.Random`` fills in the bulk (cheaper than
drawing every field through strategies on this 2-core machine).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panicwatch.parsers.sunrpc import (
    RPC_CALL_MAJORSEEN,
    Parsed,
    RpcTask,
    SysfsXprtInfo,
    TasksFile,
    XprtInfo,
    client_id_from_dirname,
    parse_sysfs_address,
    parse_sysfs_xprt_info,
    parse_task_line,
    parse_tasks,
    parse_xprt_info,
    xprt_dir_from_link,
)
from panicwatch.tracking.rpc_task_ages import ServerTasks, TaskTracker, TrackedTask, aggregate_by_server

FIXTURES = Path(__file__).parent / "fixtures" / "sunrpc"
SUNRPC = " [sunrpc]"
PGIO = "nfs_pgio_common_ops [nfs]"

MANY = settings(max_examples=2_000, deadline=None)
SOME = settings(max_examples=300, deadline=None)


def fixture(name: str) -> str:
    # newline="" keeps the text as written (no newline translation)
    with open(FIXTURES / name, encoding="utf-8", newline="") as f:
        return f.read()


def rpc(task_id: int, flags: int, status: int, client_id: int, xid: int, timeout: int, ops: str, program: str,
        version: int, procedure: str, action: str, queue: str) -> RpcTask:
    return RpcTask(task_id, flags, status, client_id, xid, timeout, ops, program, version, procedure, action,
                   queue)


# --- tasks: fixtures ------------------------------------------------------------------------------


def test_tasks_6_1_nfsv3_stuck_server() -> None:
    """Debian 6.1, NFSv3 hard mount, server dropped: replies awaited on xprt_pending, one write
    waiting for the transport, one for a request slot, one running. Timeouts are jiffies left."""
    result = parse_tasks(fixture("tasks_6.1_nfsv3_stuck.txt"))
    assert result.skipped == []
    dflt = "rpc_default_ops" + SUNRPC
    assert result.tasks == [
        rpc(2271, 0x08a0, 0, 4, 0x8b3b9a47, 11873, dflt, "nfs", 3, "GETATTR", "call_status" + SUNRPC,
            "xprt_pending"),
        rpc(2272, 0x08a1, 0, 4, 0x8b3b9a48, 11874, PGIO, "nfs", 3, "READ", "call_status" + SUNRPC,
            "xprt_pending"),
        rpc(2280, 0x0881, 0, 4, 0x8b3b9a4f, 14201, PGIO, "nfs", 3, "WRITE", "call_status" + SUNRPC,
            "xprt_pending"),
        rpc(2291, 0x0081, 0, 4, 0x8b3b9a50, 0, PGIO, "nfs", 3, "WRITE", "call_transmit_status" + SUNRPC,
            "xprt_sending"),
        rpc(2293, 0x0081, 0, 4, 0, 0, "nfs_commit_ops [nfs]", "nfs", 3, "COMMIT",
            "call_reserveresult" + SUNRPC, "xprt_backlog"),
        rpc(2295, 0x0080, -11, 4, 0, 0, dflt, "nfs", 3, "ACCESS", "call_reserve" + SUNRPC, "none"),
    ]
    assert [t.major_timeout for t in result.tasks] == [True, True, False, False, False, False]


def test_tasks_4_18_nfsv41_session_slots_and_delay_queue() -> None:
    """RHEL 8: NFSv4.1 (NO_RETRANS_TIMEOUT on every task), tasks waiting for a session slot
    (queue name with spaces, xid 0), a soft SEQUENCE, an OPEN on delayq. Timeouts relative."""
    result = parse_tasks(fixture("tasks_4.18_nfsv41.txt"))
    assert result.skipped == []
    prep = "rpc_prepare_task" + SUNRPC
    assert result.tasks == [
        rpc(17603, 0x48a1, 0, 9, 0x1f3e6c02, 60000, PGIO, "nfs", 4, "READ", "call_status" + SUNRPC,
            "xprt_pending"),
        rpc(17611, 0x4881, 0, 9, 0x1f3e6c09, 60000, PGIO, "nfs", 4, "WRITE", "call_status" + SUNRPC,
            "xprt_pending"),
        rpc(17620, 0x4281, 0, 9, 0, 0, "nfs41_sequence_ops [nfsv4]", "nfs", 4, "SEQUENCE", prep,
            "ForeChannel Slot table"),
        rpc(17625, 0x4080, 0, 9, 0, 0, "nfs41_call_sync_ops [nfsv4]", "nfs", 4, "GETATTR", prep,
            "ForeChannel Slot table"),
        rpc(17630, 0x4081, 0, 9, 0, 15000, "nfs4_open_ops [nfsv4]", "nfs", 4, "OPEN", prep, "delayq"),
    ]
    # a soft task never carries MAJORSEEN: it fails at its major timeout instead
    assert [t.major_timeout for t in result.tasks] == [True, False, False, False, False]


def test_tasks_6_15_trailer_repeated_and_cut_short() -> None:
    """2025 kernels end every read() chunk with clnt[addr] RPC tasks[N]; a chunk that has no room
    for it gets it cut short and NUL-terminated, glued to the next task line."""
    text = fixture("tasks_6.15_trailer.txt")
    assert "\x00" in text
    result = parse_tasks(text)
    assert result.skipped == []
    assert [(t.task_id, t.client_id, t.xid, t.procedure, t.queue) for t in result.tasks] == [
        (1021, 0x2a, 0x5d0c0e11, "READ", "xprt_pending"),
        (1022, 0x2a, 0x5d0c0e12, "READ", "xprt_pending"),
        (1030, 0x2a, 0x5d0c0e19, "WRITE", "xprt_sending"),
        (1031, 0x2a, 0, "GETATTR", "ForeChannel Slot table"),
    ]
    assert result.tasks[0].flags == 0x48a5 and result.tasks[0].major_timeout
    # A full trailer mid-file (a read() that stopped early) is not a task either.
    twice = parse_tasks("clnt[10.0.0.1:2049] RPC tasks[7]\n" + text)
    assert (twice.skipped, len(twice.tasks)) == ([], 4)


def test_tasks_5_4_builtin_sunrpc_unresolved_ops() -> None:
    """sunrpc built in (no module suffix), tk_ops not named by kallsyms, soft rpcbind tasks,
    procedures "NULL" and "no proc"."""
    result = parse_tasks(fixture("tasks_5.4_builtin.txt"))
    assert result.skipped == []
    assert result.tasks == [
        rpc(17, 0x0680, 0, 0, 0x3c7f1a20, 2491, "0xffffffff82a3c1e0", "rpcbind", 4, "GETADDR", "call_status",
            "xprt_pending"),
        rpc(18, 0x0680, -110, 0, 0x3c7f1a21, 0, "0xffffffff82a3c1e0", "rpcbind", 4, "NULL", "call_status",
            "none"),
        rpc(19, 0x0081, 0, 1, 0, 0, "0xffffffff82a3d2c0", "nfs", 4, "no proc", "call_bc_transmit", "none"),
    ]
    assert not any(t.major_timeout for t in result.tasks)


def test_tasks_variants_and_skipped_lines() -> None:
    """Flags printed %08x are read; a hex task id (a vendor fork's %llx), a dmesg header and a cut
    line are reported, each with its line number."""
    result = parse_tasks(fixture("tasks_variants.txt"))
    assert [(t.task_id, t.flags, t.xid, t.queue) for t in result.tasks] == [
        (501, 0x48a1, 0x11, "xprt_pending"), (504, 0x0081, 0x14, "unknown")]
    assert result.skipped == [
        "line 2: not a task line: "
        "'1f7 0881      0 0x3 0x12      100 nfs_pgio_common_ops [nfs] nfsv4 WRITE a:call_s'",
        "line 3: not a task line: '-pid- flgs status -client- --rqstp- -timeout ---ops--'",
        "line 4: not a task line: '  503 0881      0 0x3 0x13      100 nfs_pgio_common_ops [nfs] nfsv4 WRI'",
    ]


@pytest.mark.parametrize("text", ["", "\n", "\n\n  \n", "\x00"])
def test_tasks_empty(text: str) -> None:
    assert parse_tasks(text) == TasksFile([], [])


def test_task_line_fields_at_their_limits() -> None:
    line = ("65535 ffff -10008 0xffffffff 0xffffffff -9223372036854775808 nfs4_locku_ops [nfsv4] nfsaclv3 "
            "no proc a:0x0 q:NFSv4.0 transport Slot table")
    task = parse_task_line(line)
    assert task == rpc(65535, 0xffff, -10008, 0xffffffff, 0xffffffff, -(2**63), "nfs4_locku_ops [nfsv4]",
                       "nfsacl", 3, "no proc", "0x0", "NFSv4.0 transport Slot table")
    assert task is not None and task.major_timeout
    # Unicode digits are not numbers here (int() would take them).
    assert parse_task_line(line.replace("65535", "٣")) is None


def test_major_timeout_is_bit_0x20() -> None:
    assert RPC_CALL_MAJORSEEN == 0x20
    task = parse_task_line("  412 0020      0 0x3 0x5e2c1a7b    14523 o nfsv3 READ a:x q:y")
    assert task is not None and task.major_timeout
    assert not task._replace(flags=0xffdf).major_timeout


# --- debugfs rpc_xprt/<n>/info -------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("xprt_info_4.18.txt", XprtInfo("tcp", "192.168.122.1", "2049", 0x12)),
    ("xprt_info_6.1_connecting.txt", XprtInfo("tcp6", "fd00:10::5", "2049", 0x15)),
    # 2025 kernels add netns: and saddr: lines
    ("xprt_info_6.15.txt", XprtInfo("tcp", "192.168.122.1", "2049", 0x212)),
    ("xprt_info_6.15_closed.txt", XprtInfo("tcp", "192.168.122.1", "2049", 0x10)),
])
def test_xprt_info_fixtures(name: str, expected: XprtInfo) -> None:
    assert parse_xprt_info(fixture(name)) == Parsed(expected, [])


def test_xprt_info_broken() -> None:
    assert parse_xprt_info("") == Parsed(None, ["no netid, addr, port, state lines"])
    assert parse_xprt_info("netid: tcp\naddr:  a\nport:  \nstate: 27\n") == Parsed(
        None, ["state is not 0x<hex>: '27'"])
    result = parse_xprt_info("netid: rdma\naddr:  10.1.1.1\nport:  20049\nstate: 0x2\nstate: 0x0\n"
                             "garbage line\nnetns: x\nmtu: 9000\n")
    assert result == Parsed(XprtInfo("rdma", "10.1.1.1", "20049", 0x2), [
        "line 5: 'state' given twice; the first one kept",
        "line 6: not a key:value line: 'garbage line'",
    ])


def test_debugfs_names() -> None:
    assert xprt_dir_from_link("../../rpc_xprt/1a") == "1a"
    assert xprt_dir_from_link("../../rpc_xprt/1a/") == "1a"
    assert xprt_dir_from_link("../../rpc_clnt/1a") is None
    assert xprt_dir_from_link("1a") is None
    assert client_id_from_dirname("2a") == 42
    assert client_id_from_dirname("xprt") is None
    assert client_id_from_dirname("") is None


# --- sysfs ---------------------------------------------------------------------------------------


def test_sysfs_xprt_info_6_1() -> None:
    text = fixture("sysfs_xprt_info_6.1.txt")
    assert text.endswith("\n\x00")  # rpc_sysfs_xprt_info_show returns ret + 1
    result = parse_sysfs_xprt_info(text)
    assert result == Parsed(SysfsXprtInfo(
        cur_cong=16384, cong_win=16384, binding_q_len=0, sending_q_len=1, pending_q_len=126,
        backlog_q_len=37, tasks_queuelen=164), [])


def test_sysfs_xprt_info_first_ten_keys_and_unknown_keys() -> None:
    result = parse_sysfs_xprt_info(fixture("sysfs_xprt_info_10keys.txt"))
    assert result == Parsed(SysfsXprtInfo(
        cur_cong=16384, cong_win=16384, binding_q_len=0, sending_q_len=1, pending_q_len=126,
        backlog_q_len=37), [])
    result = parse_sysfs_xprt_info("pending_q_len=x\nfuture_key=7 8\nbacklog_q_len=3\nno equals\n")
    assert result == Parsed(SysfsXprtInfo(backlog_q_len=3), [
        "line 4: not a key=value line: 'no equals'", "pending_q_len is not a number: 'x'"])
    assert parse_sysfs_xprt_info("num_reqs=128\n") == Parsed(SysfsXprtInfo(), [])
    assert parse_sysfs_xprt_info("a=1\n") == Parsed(None, ["no known xprt_info key"])


def test_sysfs_addresses() -> None:
    assert parse_sysfs_address(fixture("sysfs_dstaddr.txt")) == "192.168.122.1"
    assert parse_sysfs_address("fd00:10::5\n") == "fd00:10::5"
    assert parse_sysfs_address("") is None
    assert parse_sysfs_address("\x00") is None
    assert parse_sysfs_address("a b\n") is None


# --- task age tracking -----------------------------------------------------------------------------


def scrape(name: str) -> list[RpcTask]:
    result = parse_tasks(fixture(name))
    assert result.skipped == []
    return result.tasks


def ages(update: tuple[TrackedTask, ...]) -> dict[tuple[int, int], float]:
    return {(t.task.client_id, t.task.task_id): t.age_seconds for t in update}


SERVERS = {4: "192.168.122.1", 7: "10.20.0.5", 9: "10.9.9.9"}


def test_tracker_over_three_scrapes() -> None:
    tracker = TaskTracker()
    first = tracker.update(1000.0, scrape("tracker_scrape1.txt"))
    assert ages(first) == {(4, 100): 0.0, (4, 101): 0.0, (4, 102): 0.0, (7, 200): 0.0}
    assert len(tracker) == 4

    # 100 stays (same xid); 101 got its request slot (xid 0 -> 0x1003): the same task; 102 finished;
    # 103 is new; 200 came back with a new xid: a new task; 201 is new.
    second = tracker.update(1015.0, scrape("tracker_scrape2.txt"))
    assert ages(second) == {(4, 100): 15.0, (4, 101): 15.0, (4, 103): 0.0, (7, 200): 0.0, (7, 201): 0.0}
    assert [t.first_seen for t in second] == [1000.0, 1000.0, 1015.0, 1015.0, 1015.0]
    assert len(tracker) == 5
    assert all(t.tracked for t in second)

    third = tracker.update(1075.0, scrape("tracker_scrape3.txt"))
    assert ages(third) == {(4, 100): 75.0, (4, 101): 75.0, (4, 103): 60.0, (7, 200): 60.0}
    assert len(tracker) == 4
    assert [t.task.major_timeout for t in third] == [True, True, False, True]

    assert aggregate_by_server(third, SERVERS, stuck_after=60) == {
        "10.20.0.5": ServerTasks("10.20.0.5", tasks=1, oldest_age_seconds=60.0, stuck=1, major_timeouts=1),
        "10.9.9.9": ServerTasks("10.9.9.9", tasks=0, oldest_age_seconds=0.0, stuck=0, major_timeouts=0),
        "192.168.122.1": ServerTasks("192.168.122.1", tasks=3, oldest_age_seconds=75.0, stuck=3,
                                     major_timeouts=2),
    }
    by_server = aggregate_by_server(third, SERVERS, stuck_after=61)
    assert [(s.server, s.stuck) for s in by_server.values()] == [("10.20.0.5", 0), ("10.9.9.9", 0),
                                                                   ("192.168.122.1", 2)]

    # Everything finished: all forgotten; a task id seen again later starts from 0.
    empty = tracker.update(1090.0, [])
    assert (empty, len(tracker)) == ((), 0)
    again = tracker.update(1105.0, scrape("tracker_scrape3.txt"))
    assert set(ages(again).values()) == {0.0}


def test_tracker_xid_rules() -> None:
    base = rpc(1, 0x81, 0, 4, 0, 0, PGIO, "nfs", 3, "WRITE", "call_status", "xprt_pending")
    tracker = TaskTracker()

    def age_of(now: float, xid: int) -> float:
        [tracked] = tracker.update(now, [base._replace(xid=xid)])
        return tracked.age_seconds

    assert age_of(0.0, 0) == 0.0
    assert age_of(10.0, 0x10) == 10.0  # got a slot
    assert age_of(20.0, 0x10) == 20.0  # retransmissions keep the xid
    assert age_of(30.0, 0) == 30.0  # slot released for a restart
    assert age_of(40.0, 0x11) == 40.0  # and a new one got
    assert age_of(50.0, 0x12) == 0.0  # a different xid with no 0 in between: a new task
    assert age_of(45.0, 0x12) == 0.0  # a clock that went backwards never gives a negative age


def test_tracker_same_task_id_on_two_clients_and_duplicates() -> None:
    a = rpc(7, 0x81, 0, 1, 0x5, 0, PGIO, "nfs", 3, "READ", "call_status", "xprt_pending")
    b = a._replace(client_id=2)
    tracker = TaskTracker()
    update = tracker.update(1.0, [a, b, a])  # the second a counts once
    assert (ages(update), len(tracker)) == ({(1, 7): 0.0, (2, 7): 0.0}, 2)
    update = tracker.update(3.0, [b])
    assert (ages(update), len(tracker)) == ({(2, 7): 2.0}, 1)


def test_tracker_cap() -> None:
    tasks = [rpc(n, 0x81, 0, 1, 0x100 + n, 0, PGIO, "nfs", 3, "READ", "call_status", "xprt_pending")
             for n in range(5)]
    tracker = TaskTracker(max_tracked=3)
    first = tracker.update(0.0, tasks[:2])
    assert (len(first), len(tracker)) == (2, 2)
    # Two tracked tasks continue; one place left: task 2 gets it, 3 and 4 are reported untracked.
    second = tracker.update(10.0, tasks)
    assert [(t.task.task_id, t.age_seconds, t.tracked) for t in second] == [
        (0, 10.0, True), (1, 10.0, True), (2, 0.0, True), (3, 0.0, False), (4, 0.0, False)]
    assert len(tracker) == 3
    # Untracked tasks are new again next time, and stay untracked while the tracker is full.
    third = tracker.update(20.0, tasks)
    assert [(t.age_seconds, t.tracked) for t in third] == [
        (20.0, True), (20.0, True), (10.0, True), (0.0, False), (0.0, False)]
    # Room frees up: they are tracked from now.
    fourth = tracker.update(30.0, tasks[3:])
    assert [(t.age_seconds, t.tracked) for t in fourth] == [(0.0, True), (0.0, True)]
    assert len(tracker) == 2
    assert len(TaskTracker(max_tracked=0).update(0.0, tasks)) == 5
    with pytest.raises(ValueError, match="max_tracked"):
        TaskTracker(max_tracked=-1)


def test_tracker_retains_clients_that_could_not_be_read() -> None:
    tracker = TaskTracker()
    tracker.update(1000.0, scrape("tracker_scrape1.txt"))
    # Client 4's file could not be read: its tasks are kept, not reported; client 7's are gone.
    update = tracker.update(1010.0, [], retain_clients={4})
    assert (update, len(tracker)) == ((), 3)
    again = tracker.update(1020.0, scrape("tracker_scrape1.txt"))
    assert ages(again) == {(4, 100): 20.0, (4, 101): 20.0, (4, 102): 20.0, (7, 200): 0.0}


def test_aggregate_unknown_client_and_empty() -> None:
    task = rpc(1, 0xa1, 0, 99, 0x5, 0, PGIO, "nfs", 3, "READ", "call_status", "xprt_pending")
    tracked = [TrackedTask(task, 0.0, 120.0)]
    assert aggregate_by_server(tracked, {}, stuck_after=60) == {
        "unknown": ServerTasks("unknown", 1, 120.0, 1, 1)}
    assert aggregate_by_server(tracked, {}, stuck_after=60, unknown_server="") == {
        "": ServerTasks("", 1, 120.0, 1, 1)}
    assert aggregate_by_server([], {1: "a", 2: "a"}, stuck_after=1) == {"a": ServerTasks("a", 0, 0.0, 0, 0)}


# --- fuzz: generated tasks, rendered with the kernel's format ------------------------------------

SYMBOLS = ["call_status", "call_transmit_status", "call_reserveresult", "rpc_prepare_task",
           "call_connect_status", "call_start", "rpc_exit_task", "xprt_timer", "nfs_pgio_common_ops",
           "rpc_default_ops", "0x0", "0xffffffffc0a1b2c0", "x", "[odd]", "a]b", "sym.cold"]
MODULES = ["sunrpc", "nfs", "nfsv4", "rpcsec_gss_krb5", "nfs 5e27ffb3a1b2c3d4e5f60718293a4b5c6d7e8f90", ""]
PROGRAMS = ["nfs", "nfsacl", "lockd", "rpcbind", "mount", "status", "nfsv", "nfsv4cb", "v", "", "p12"]
PROCEDURES = ["READ", "WRITE", "GETATTR", "SEQUENCE", "NULL", "no proc", "OPEN_DOWNGRADE", "GETADDR",
              "CB_RECALL", "X", "two words"]
QUEUES = ["xprt_pending", "xprt_sending", "xprt_backlog", "xprt_binding", "delayq", "none", "unknown",
          "ForeChannel Slot table", "BackChannel Slot table", "NFSv4.0 transport Slot table", ""]
QUEUE_CHARS = "abc XYZ_.:[]-q a:q:\t\r\x0b\x1c\x85\u2028é中"
EDGE = [0, 1, 2**16 - 1, 2**16, 2**31 - 1, 2**32 - 1]


def number(rnd: random.Random, bits: int) -> int:
    return rnd.choice([*EDGE, 2**bits - 1]) if rnd.random() < 0.2 else rnd.getrandbits(bits)


def symbol(rnd: random.Random) -> str:
    name = rnd.choice(SYMBOLS)
    return f"{name} [{rnd.choice(MODULES)}]" if rnd.random() < 0.6 else name


def random_task(rnd: random.Random) -> tuple[RpcTask, str]:
    """A task and its line, rendered like tasks_show:
    "%5u %04x %6d 0x%x 0x%x %8ld %ps %sv%u %s a:%ps q:%s"."""
    if rnd.random() < 0.8:
        queue = rnd.choice(QUEUES)
    else:
        queue = "".join(rnd.choices(QUEUE_CHARS, k=rnd.randint(0, 12)))
    task = RpcTask(
        task_id=number(rnd, rnd.choice([16, 16, 40])), flags=number(rnd, rnd.choice([16, 32])),
        status=rnd.choice([-1, -1, 1]) * rnd.choice([0, 5, 11, 107, 110, 512, 10008, number(rnd, 31)]),
        client_id=number(rnd, 32), xid=0 if rnd.random() < 0.3 else number(rnd, 32),
        timeout_jiffies=rnd.choice([0, 15000, 60000, -1, 2**63 - 1, -(2**63), number(rnd, 40)]),
        ops=symbol(rnd), program=rnd.choice(PROGRAMS), version=rnd.choice([1, 2, 3, 4, number(rnd, 32)]),
        procedure=rnd.choice(PROCEDURES), action=symbol(rnd), queue=queue)
    flags = "%08x" if rnd.random() < 0.1 else "%04x"
    line = ("%5u " + flags + " %6d 0x%x 0x%x %8ld %s %sv%u %s a:%s q:%s") % (
        task.task_id, task.flags, task.status, task.client_id, task.xid, task.timeout_jiffies, task.ops,
        task.program, task.version, task.procedure, task.action, task.queue)
    return task, line


# Garbage that can sit between task lines. None of it holds " q:", which every task line has.
FRAGMENTS = ["", " ", "\t", "\x00", "clnt[10.0.0.1:2049] RPC tasks[3]", "clnt[[fd00::1]:2049] RPC tasks[",
             "clnt[",
             "-pid- flgs status -client- --rqstp- -timeout ---ops--", "  412 08a1   -110 0x3 0x5e2c1a7b",
             "  412 08a1 0 0x3 0x5 1 ops nfsv3 READ a:call_status", "netid: tcp", "state=CLOSED", "٣ 0 0 0x0"]
JUNK = "0123456789abcdefx []:-_ \t\r\x00\x0b\u2028٣é"
TRAILER = "clnt[10.0.0.1:2049] RPC tasks[12]"


def junk_line(rnd: random.Random) -> str:
    line = rnd.choice(FRAGMENTS) if rnd.random() < 0.5 else "".join(rnd.choices(JUNK, k=rnd.randint(0, 40)))
    return line.replace(" q:", " ")


def tasks_text(seed: int) -> tuple[list[RpcTask], str]:
    """Tasks with junk lines between them; some task lines carry a cut trailer and a NUL in front,
    as when the kernel ran out of room in a read() chunk."""
    rnd = random.Random(seed)
    expected: list[RpcTask] = []
    lines = [junk_line(rnd) for _ in range(rnd.choice([0, 1, 2]))]
    for _ in range(rnd.choice([0, 1, 2, 3, 5, 8])):
        task, line = random_task(rnd)
        if rnd.random() < 0.1:
            line = TRAILER[:rnd.randrange(len(TRAILER))] + "\x00" + line
        expected.append(task)
        lines.append(line)
        lines += [junk_line(rnd) for _ in range(rnd.choice([0, 0, 1, 2]))]
    if rnd.random() < 0.3:
        lines.append(TRAILER)
    return expected, "\n".join(lines) + rnd.choice(["", "\n"])


@MANY
@given(st.integers(0, 2**64 - 1))
def test_tasks_survive_garbage_lines(seed: int) -> None:
    expected, text = tasks_text(seed)
    assert parse_tasks(text).tasks == expected


# Text made of pieces of the formats, for the never-raises properties.
SOUP = [
    "  412 08a1   -110 0x3 0x5e2c1a7b    14523 nfs_pgio_common_ops [nfs] nfsv3 READ a:call_status [sunrpc]",
    " q:", " a:",
    "clnt[10.0.0.1:2049] RPC tasks[3]\n", "netid: tcp\naddr:  10.0.0.1\nport:  2049\nstate: 0x12\nnetns: 1\n",
    "saddr: <closed>\n", "last_used=4297519230\ncur_cong=256\nmain_xprt=1\ndst_port=2049\n", "num_xprts=2\n",
    "state=CLOSED\n", "state= CONNECTED   BOUND    \n", "\x00", "\n", " ", "=", ":", "0x", "-", "٣", "\u2028",
]


def soup_text(seed: int) -> str:
    rnd = random.Random(seed)
    return "".join(rnd.choices([*SOUP, *JUNK], k=rnd.randint(0, 40)))


soup = st.integers(0, 2**64 - 1).map(soup_text)


@MANY
@given(st.one_of(st.text(), soup))
def test_every_parser_takes_arbitrary_text(text: str) -> None:
    """Each parser gets every one of these texts: none raises, and what comes out is well-formed."""
    tasks = parse_tasks(text)
    assert all(min(t.task_id, t.flags, t.client_id, t.xid, t.version) >= 0 for t in tasks.tasks)
    assert all(isinstance(reason, str) for reason in tasks.skipped)

    for parse in (parse_xprt_info, parse_sysfs_xprt_info):
        result = parse(text)
        assert isinstance(result, Parsed)
        assert all(isinstance(reason, str) for reason in result.skipped)
        assert result.value is not None or result.skipped
    info = parse_xprt_info(text).value
    if info is not None:
        assert info.state >= 0
    address = parse_sysfs_address(text)
    assert address is None or (address and not any(c.isspace() for c in address))


# --- fuzz: key/value files with junk between their lines ----------------------------------------

VALUE_CHARS = "0123456789abcdef.:/<>-_ é"
NO_SEPARATOR_JUNK = "abc XYZ_.-0123456789\t\r\x0b\u2028é"


def _no_sep_junk(rnd: random.Random, separator: str) -> list[str]:
    return ["".join(rnd.choices(NO_SEPARATOR_JUNK, k=rnd.randint(0, 20))).replace(separator, "")
            for _ in range(rnd.choice([0, 1, 2, 3]))]


def _interleave(rnd: random.Random, lines: list[str], separator: str) -> str:
    out: list[str] = []
    for line in lines:
        out += _no_sep_junk(rnd, separator)
        out.append(line)
    out += _no_sep_junk(rnd, separator)
    return "\n".join(out) + rnd.choice(["", "\n", "\n\x00"])


def _word(rnd: random.Random) -> str:
    return "".join(rnd.choices(VALUE_CHARS.replace(" ", ""), k=rnd.randint(1, 12)))


def check_xprt_info_survives_garbage(rnd: random.Random) -> None:
    info = XprtInfo(netid=rnd.choice(["tcp", "tcp6", "udp", "rdma", "local"]), addr=_word(rnd),
                    port=rnd.choice(["2049", "20049", "0", ""]), state=number(rnd, rnd.choice([13, 64])))
    lines = [f"netid: {info.netid}", f"addr:  {info.addr}", f"port:  {info.port}", f"state: 0x{info.state:x}"]
    # lines of newer kernels (netns, saddr) and any others are read past
    lines += rnd.sample([f"netns: {number(rnd, 32)}", "saddr: <closed>", f"k1: {_word(rnd)}"],
                        rnd.choice([0, 1, 3]))
    rnd.shuffle(lines)
    assert parse_xprt_info(_interleave(rnd, lines, ":")).value == info


@MANY
@given(st.integers(0, 2**64 - 1))
def test_key_value_files_survive_garbage(seed: int) -> None:
    """Every record of the debugfs info and sysfs files comes out exactly, whatever junk lines
    (without the file's separator) sit around its lines, in any order, NUL or not at the end."""
    rnd = random.Random(seed)
    check_xprt_info_survives_garbage(rnd)

    names = list(SysfsXprtInfo.__slots__)
    present = [n for n in names if rnd.random() < 0.8] or ["backlog_q_len"]
    values: dict[str, int] = {n: number(rnd, rnd.choice([8, 32, 64])) for n in present}
    others = {"num_reqs": str(number(rnd, 32)), "dst_port": rnd.choice(["2049", "0", _word(rnd)]),
              "new_key": _word(rnd)}
    lines = [f"{k}={v}" for k, v in {**values, **others}.items()]
    rnd.shuffle(lines)
    assert parse_sysfs_xprt_info(_interleave(rnd, lines, "=")).value == SysfsXprtInfo(**values)


# --- tracker against a reference model -----------------------------------------------------------


@SOME
@given(st.integers(0, 2**64 - 1))
def test_tracker_matches_a_reference_model(seed: int) -> None:
    """Random scrapes from a small pool of (client, id, xid) triples, compared with a plain
    re-statement of the rules; with a cap, only the cap-related facts are checked."""
    rnd = random.Random(seed)
    cap = rnd.choice([2, 5, 1000])
    tracker = TaskTracker(max_tracked=cap)
    model: dict[tuple[int, int], tuple[int, float]] = {}
    now = 0.0
    for _ in range(rnd.randint(1, 8)):
        now += rnd.choice([0.0, 1.0, 15.0, 60.0])
        triples = {(rnd.randrange(3), rnd.randrange(4)): rnd.choice([0, 1, 2])
                   for _ in range(rnd.randint(0, 8))}
        tasks = [rpc(tid, 0, 0, clid, xid, 0, "o", "nfs", 3, "READ", "a", "q")
                 for (clid, tid), xid in triples.items()]
        update = tracker.update(now, tasks)
        assert len(tracker) <= cap
        assert len(update) == len(tasks)
        assert sum(t.tracked for t in update) <= cap
        if cap < 1000:
            assert all(t.age_seconds >= 0 for t in update)
            continue
        expected_model: dict[tuple[int, int], tuple[int, float]] = {}
        for (clid, tid), xid in triples.items():
            before = model.get((clid, tid))
            same = before is not None and (before[0] == xid or 0 in (before[0], xid))
            expected_model[(clid, tid)] = (xid, before[1] if same and before else now)
        model = expected_model
        assert {(t.task.client_id, t.task.task_id): t.first_seen for t in update} == {
            k: v[1] for k, v in model.items()}
        assert all(t.age_seconds == now - t.first_seen for t in update)
